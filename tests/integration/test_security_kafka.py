"""Kafka over TLS with SASL/SCRAM-SHA-512, against the local broker's secure mode.

A broker of its own (ports 61092-61094, Redis 61379) in a temporary
``TWIN_STATE_DIR``, started with ``services.up(secure=True)``: the SCRAM user
is created at format time (StorageTool ``--add-scram``). The tests run in file
order and the last one rotates the password (kafka-configs on the existing state
dir). The services stop at the end of the module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from pydantic import SecretStr

from stream import services
from stream.cli import spawn_worker, stop_process
from stream.kafka import ensure_topics, kafka_client_options, kafka_ssl_context
from stream.settings import Settings
from stream.store import RedisTwinStore
from twin.codec import decode_twin

pytestmark = pytest.mark.integration

KAFKA_PORT = 61092
SECURE_PORT = KAFKA_PORT + 2
REDIS_PORT = 61379
USER = "twinstream"
PASSWORD = "sec-test-Password-1"


@dataclass(frozen=True)
class SecureBroker:
    state: Path
    cafile: Path

    def settings(self, password: str = PASSWORD, **changes: object) -> Settings:
        values: dict[str, object] = {
            "kafka_bootstrap": f"127.0.0.1:{SECURE_PORT}",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": USER,
            "kafka_sasl_password": SecretStr(password),
            "kafka_ssl_cafile": str(self.cafile),
            "redis_url": f"redis://127.0.0.1:{REDIS_PORT}/0",
            "partitions": 2,
            **{f"topic_{n}": f"sec.{n}" for n in ("vitals", "labs", "wearables", "profiles")},
            **{f"topic_{n}": f"sec.{n}" for n in ("fhir", "outcomes", "alert_acks")},
            "topic_alerts": "sec.alerts",
            "topic_deadletter": "sec.deadletter",
            "consumer_group": "twinstream-sec",
            "key_prefix": "sec",
        }
        values.update(changes)
        return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    state = tmp_path_factory.mktemp("tsstate-sec-kafka")
    patch = pytest.MonkeyPatch()
    patch.setenv("TWIN_STATE_DIR", str(state))
    patch.setenv("TWIN_KAFKA_SASL_USERNAME", USER)
    patch.setenv("TWIN_KAFKA_SASL_PASSWORD", PASSWORD)
    for name in ("TWIN_LOCAL_REDIS_ACL", "TWIN_LOCAL_REDIS_TLS"):
        patch.delenv(name, raising=False)
    try:
        services.up(kafka_port=KAFKA_PORT, redis_port=REDIS_PORT, secure=True)
        yield SecureBroker(state, state / "tls" / "ca.pem")
    finally:
        services.down()
        patch.undo()


def test_local_secure_mode_exposes_ca_and_client_settings(broker: SecureBroker) -> None:
    assert broker.cafile.read_text().startswith("-----BEGIN CERTIFICATE-----")
    env_file = services.secure_env_file()
    assert env_file.stat().st_mode & 0o777 == 0o600
    text = env_file.read_text()
    assert f"TWIN_KAFKA_BOOTSTRAP=127.0.0.1:{SECURE_PORT}" in text
    assert "TWIN_KAFKA_SECURITY_PROTOCOL=SASL_SSL" in text
    assert f"TWIN_KAFKA_SSL_CAFILE={broker.cafile}" in text
    (kafka,) = [line for line in services.status() if line.name == "kafka"]
    assert kafka.running and f"SASL_SSL on 127.0.0.1:{SECURE_PORT}" in kafka.detail
    # Neither the generated broker config nor the broker's log holds the password.
    config = (broker.state / "config" / "server.properties").read_text()
    assert PASSWORD not in config
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in config
    assert PASSWORD not in (broker.state / "logs" / "kafka" / "server.log").read_text()


async def test_right_credentials_produce_and_consume_over_tls(broker: SecureBroker) -> None:
    settings = broker.settings()
    await ensure_topics(settings)
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all")
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(settings.topic_outcomes, f"m{i}".encode(), key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        settings.topic_outcomes,
        **kafka_client_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()
    assert got == [b"m0", b"m1", b"m2"]


async def test_worker_processes_vitals_over_sasl_ssl(broker: SecureBroker, tmp_path: Path) -> None:
    """The real worker (Faust app from create_app) consumes and produces over SASL_SSL only."""
    settings = broker.settings()
    await ensure_topics(settings)
    event = {
        "event_id": "sec-1",
        "patient_id": "p-sec-1",
        "observed_at": datetime.fromtimestamp(time.time() - 60, tz=UTC).isoformat(),
        "source": "security-test",
        "heart_rate": 81,
    }
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic_vitals, orjson.dumps(event), key=b"p-sec-1")
    finally:
        await producer.stop()

    env = {
        "TWIN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,  # the TLS port only
        "TWIN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "TWIN_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "TWIN_KAFKA_SASL_USERNAME": USER,
        "TWIN_KAFKA_SASL_PASSWORD": PASSWORD,
        "TWIN_KAFKA_SSL_CAFILE": str(broker.cafile),
        "TWIN_REDIS_URL": settings.redis_url,
        "TWIN_PARTITIONS": str(settings.partitions),
        "TWIN_CONSUMER_GROUP": settings.consumer_group,
        "TWIN_KEY_PREFIX": settings.key_prefix,
        **{f"TWIN_TOPIC_{n.upper()}": f"sec.{n}" for n in ("vitals", "labs", "wearables")},
        **{f"TWIN_TOPIC_{n.upper()}": f"sec.{n}" for n in ("profiles", "fhir", "outcomes")},
        "TWIN_TOPIC_ALERT_ACKS": "sec.alert_acks",
        "TWIN_TOPIC_ALERTS": "sec.alerts",
        "TWIN_TOPIC_DEADLETTER": "sec.deadletter",
    }
    log_path = tmp_path / "worker.log"
    worker = spawn_worker(env=env, log_path=str(log_path))
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    try:
        raw = None
        deadline = time.monotonic() + 90
        while raw is None and time.monotonic() < deadline and worker.poll() is None:
            raw = await store.get_twin("p-sec-1")
            await asyncio.sleep(0.5)
        assert raw is not None, log_path.read_text(errors="replace")[-3000:]
        assert decode_twin(raw).latest["heart_rate"].value == 81
    finally:
        await store.close()
        await asyncio.to_thread(stop_process, worker)


async def test_wrong_password_is_refused(broker: SecureBroker) -> None:
    wrong = broker.settings(password="not-the-password")
    options = kafka_client_options(wrong)
    # The connection itself reports the broker's verdict ...
    with pytest.raises(SaslAuthenticationFailed):
        await create_conn(
            "127.0.0.1",
            SECURE_PORT,
            security_protocol="SASL_SSL",
            ssl_context=options["ssl_context"],
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=USER,
            sasl_plain_password="not-the-password",
        )
    # ... and a client built from the settings cannot start.
    producer = AIOKafkaProducer(**options, request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
async def test_plaintext_to_the_tls_port_fails(broker: SecureBroker, protocol: str) -> None:
    """SASL_PLAINTEXT is what create_app used to send for SASL settings."""
    settings = broker.settings(kafka_security_protocol=protocol)
    if protocol == "PLAINTEXT":
        settings = broker.settings(
            kafka_security_protocol=protocol,
            kafka_sasl_mechanism=None,
            kafka_sasl_username=None,
            kafka_sasl_password=None,
        )
    producer = AIOKafkaProducer(**kafka_client_options(settings), request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(producer.start(), 60)
    await producer.stop()


async def test_tls_without_the_ca_fails_certificate_verification(broker: SecureBroker) -> None:
    settings = broker.settings(kafka_ssl_cafile=None)  # system trust store only
    context = kafka_ssl_context(settings)
    assert context is not None and context.check_hostname
    producer = AIOKafkaProducer(**kafka_client_options(settings), request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(producer.start(), 60)
    await producer.stop()


async def test_password_rotation_on_an_existing_state_dir(
    broker: SecureBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart with a new TWIN_KAFKA_SASL_PASSWORD replaces the credential (kafka-configs)."""
    rotated = "sec-test-Rotated-2"
    monkeypatch.setenv("TWIN_KAFKA_SASL_PASSWORD", rotated)
    await asyncio.to_thread(services.kafka_down)
    await asyncio.to_thread(services.kafka_up, KAFKA_PORT, secure=True)
    producer = AIOKafkaProducer(**kafka_client_options(broker.settings(password=rotated)))
    await producer.start()
    await producer.stop()
    with pytest.raises(SaslAuthenticationFailed):
        await create_conn(
            "127.0.0.1",
            SECURE_PORT,
            security_protocol="SASL_SSL",
            ssl_context=kafka_ssl_context(broker.settings()),
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=USER,
            sasl_plain_password=PASSWORD,
        )
    assert f"TWIN_KAFKA_SASL_PASSWORD={rotated}" in services.secure_env_file().read_text()
