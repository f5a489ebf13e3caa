"""Where tests get their Kafka and Redis, in order:

1. ``TWIN_KAFKA_BOOTSTRAP`` / ``TWIN_REDIS_URL`` when set (any running services);
2. testcontainers' Kafka and Redis when a Docker engine answers;
3. else the project's own local services (``stream.services``), started here
   and stopped at the end of the session if this session started them.

Tests that use none of these fixtures (unit, agents) need neither service.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    redis_url: str
    origin: str


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _testcontainers() -> Iterator[Services]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    with KafkaContainer().with_kraft() as kafka, RedisContainer() as redis:
        host = redis.get_container_host_ip()
        port = redis.get_exposed_port(6379)
        yield Services(kafka.get_bootstrap_server(), f"redis://{host}:{port}/0", "testcontainers")


@contextlib.contextmanager
def _local() -> Iterator[Services]:
    from stream import services as svc

    before = {s.name for s in svc.status() if s.running}
    svc.up()
    ports = svc.ServicePorts.resolve()
    try:
        yield Services(
            f"127.0.0.1:{ports.kafka}", f"redis://127.0.0.1:{ports.redis}/0", "local services"
        )
    finally:
        started = tuple(sorted({"kafka", "redis"} - before))
        if started and not os.environ.get("TWIN_KEEP_SERVICES"):
            svc.down(started)


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """A real Kafka broker and a real Redis for integration tests."""
    env_kafka = os.environ.get("TWIN_KAFKA_BOOTSTRAP")
    env_redis = os.environ.get("TWIN_REDIS_URL")
    if env_kafka and env_redis:
        yield Services(env_kafka, env_redis, "environment")
    elif _docker_answers():
        with _testcontainers() as found:
            yield found
    else:
        with _local() as found:
            yield found


@pytest.fixture
def isolated_env(services: Services) -> dict[str, str]:
    """TWIN_* variables giving one test its own topics, group and key prefix."""
    tag = uuid.uuid4().hex[:8]
    names = ("vitals", "labs", "wearables", "profiles", "fhir", "outcomes", "alert_acks")
    env = {f"TWIN_TOPIC_{n.upper()}": f"t{tag}.{n}" for n in names}
    env.update(
        TWIN_TOPIC_ALERTS=f"t{tag}.alerts",
        TWIN_TOPIC_DEADLETTER=f"t{tag}.deadletter",
        TWIN_CONSUMER_GROUP=f"twinstream-{tag}",
        TWIN_KEY_PREFIX=f"t{tag}",
        TWIN_KAFKA_BOOTSTRAP=services.kafka_bootstrap,
        TWIN_REDIS_URL=services.redis_url,
        TWIN_PARTITIONS="4",
    )
    return env
