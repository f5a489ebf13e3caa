"""The local service manager against a real broker and Redis on spare ports.

Uses its own ``TWIN_STATE_DIR`` but the shared jar cache, so only the first
run ever downloads Kafka. The tests share one pair of services and run in
file order: up, idempotence, crash recovery, port conflicts, down.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import redis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream import services
from stream.services import ServiceError

pytestmark = pytest.mark.integration

KAFKA_PORT = 19192
REDIS_PORT = 16479
TOPIC = "services-smoke"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_dead(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), f"pid {pid} still alive"


def _redis() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=REDIS_PORT, decode_responses=True)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def _topics() -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{KAFKA_PORT}")
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int | None]]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TWIN_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        env.setenv("TWIN_LOCAL_KAFKA_PORT", str(KAFKA_PORT))
        env.setenv("TWIN_LOCAL_REDIS_PORT", str(REDIS_PORT))
        try:
            yield {line.name: line.pid for line in services.up()}
        finally:
            services.down()


def test_pom_pins_the_python_kafka_version() -> None:
    pom = resources.files("stream").joinpath("kafka/pom.xml").read_text()
    pinned = re.search(r"<kafka.version>(.+?)</kafka.version>", pom)
    assert pinned is not None and pinned[1] == services.KAFKA_VERSION


async def test_up_starts_both_and_they_answer(started: dict[str, int | None]) -> None:
    assert set(started) == {"kafka", "redis"}
    assert all(pid and _alive(pid) for pid in started.values())
    client = _redis()
    assert client.ping()
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{KAFKA_PORT}")
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        assert [broker["port"] for broker in cluster["brokers"]] == [KAFKA_PORT]
        await admin.create_topics([NewTopic(TOPIC, num_partitions=8, replication_factor=1)])
    finally:
        await admin.close()
    assert TOPIC in await _topics()


def test_up_again_is_a_noop(started: dict[str, int | None]) -> None:
    again = services.up()
    assert {line.name: line.pid for line in again} == started
    assert [line.running for line in services.status()] == [True, True]
    assert [line.address for line in services.status()] == [
        f"127.0.0.1:{KAFKA_PORT}",
        f"127.0.0.1:{REDIS_PORT}",
    ]


async def test_killed_broker_restarts_with_its_data(started: dict[str, int | None]) -> None:
    old = services.kill_service("kafka", signal.SIGKILL)
    _wait_dead(old)
    assert services.pid_file("kafka").read_text().strip() == str(old)
    assert services.status()[0].running is False
    new = services.kafka_up()
    assert new != old and _alive(new)
    assert TOPIC in await _topics()  # storage kept, not formatted again


def test_stale_pid_file_is_cleaned_and_redis_restarted(started: dict[str, int | None]) -> None:
    _redis().set("services:probe", "kept")
    assert services.redis_down()
    services.pid_file("redis").write_text(f"{_dead_pid()}\n")
    (line,) = services.up(["redis"])
    assert line.running and line.pid is not None and _alive(line.pid)
    assert _redis().get("services:probe") == "kept"


def test_port_taken_by_a_foreign_process_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TWIN_STATE_DIR", str(tmp_path))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        with pytest.raises(ServiceError, match=f"port {busy} is already in use"):
            services.redis_up(busy)
        with pytest.raises(ServiceError, match=f"port {busy} is already in use"):
            services.up(kafka_port=busy, redis_port=busy + 10)
    assert [line.pid for line in services.status()] == [None, None]


def test_down_leaves_no_process(started: dict[str, int | None]) -> None:
    pids = [services.pid_of(name) for name in services.COMPONENTS]
    assert all(pids)
    services.down()
    for pid in pids:
        assert pid is not None and not _alive(pid)
    assert not any(services.pid_file(name).exists() for name in services.COMPONENTS)
    assert [line.running for line in services.status()] == [False, False]
    services.down()  # a second down is harmless
