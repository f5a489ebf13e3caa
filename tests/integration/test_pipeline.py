"""End to end on the real broker and Redis: producer -> worker process -> Redis + alerts."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.cli import spawn_worker, stop_process
from stream.kafka import ensure_topics, kafka_client_options
from stream.settings import Settings
from stream.store import RedisTwinStore
from twin.alerting import alert_id
from twin.codec import decode_twin

pytestmark = pytest.mark.integration

T0 = time.time() - 3 * 3600
NORMAL = {
    "heart_rate": 75,
    "respiratory_rate": 16,
    "spo2": 97,
    "systolic_bp": 122,
    "diastolic_bp": 78,
    "temperature_c": 37.0,
    "consciousness": "A",
    "on_oxygen": False,
}


def reading(pid: int, i: int) -> dict[str, object]:
    values = dict(NORMAL)
    # p-0000: SpO2 88 (scores 3) at reading 5 only -> open; clear from reading 6,
    # resolved at reading 8 (20 min clear > the 15 min hold). Readings 10 min apart.
    # p-0001 and p-0002: SpO2 88 from reading 5 on -> open, never resolved.
    if (pid == 0 and i == 5) or (pid in (1, 2) and i >= 5):
        values["spo2"] = 88
    return {
        "event_id": f"it-{pid}-{i}",
        "patient_id": f"p-{pid:04d}",
        "observed_at": datetime.fromtimestamp(T0 + i * 600, tz=UTC).isoformat(),
        "source": "integration-test",
        **values,
    }


async def collect(settings: Settings, want_alerts: int, want_dead: int, wait_s: float, worker=None):
    consumer = AIOKafkaConsumer(
        settings.topic_alerts,
        settings.topic_deadletter,
        **kafka_client_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    alerts: list[dict] = []
    dead: list[dict] = []
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline and (len(alerts) < want_alerts or len(dead) < want_dead):
            if worker is not None and worker.poll() is not None:
                break
            for tp, recs in (await consumer.getmany(timeout_ms=500)).items():
                target = dead if tp.topic == settings.topic_deadletter else alerts
                target.extend(orjson.loads(r.value) for r in recs)
        # Linger briefly: anything beyond the expected count is a failure too.
        for tp, recs in (await consumer.getmany(timeout_ms=1500)).items():
            target = dead if tp.topic == settings.topic_deadletter else alerts
            target.extend(orjson.loads(r.value) for r in recs)
    finally:
        await consumer.stop()
    return alerts, dead


async def test_worker_applies_vitals_alerts_and_dead_letters(
    isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    for k, v in isolated_env.items():
        monkeypatch.setenv(k, v)
    settings = Settings()
    await ensure_topics(settings)
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all")
    await producer.start()
    try:
        for i in range(10):
            for pid in range(10):
                msg = reading(pid, i)
                await producer.send(
                    settings.topic_vitals, orjson.dumps(msg), key=msg["patient_id"].encode()
                )
        await producer.send(
            settings.topic_vitals, b'{"patient_id": "p-0003", "heart_rate": ', key=b"p-0003"
        )
        await producer.flush()
    finally:
        await producer.stop()

    worker = spawn_worker(env=isolated_env, log_path=str(tmp_path / "worker.log"))
    try:
        alerts, dead = await collect(settings, want_alerts=4, want_dead=1, wait_s=90, worker=worker)
    finally:
        await asyncio.to_thread(stop_process, worker)
    log = (tmp_path / "worker.log").read_text(errors="replace")

    rule = "news2"
    got = sorted((a["alert_id"], a["status"], a["patient_id"]) for a in alerts)
    want = sorted(
        [
            (alert_id("p-0000", rule, 1), "open", "p-0000"),
            (alert_id("p-0000", rule, 1), "resolved", "p-0000"),
            (alert_id("p-0001", rule, 1), "open", "p-0001"),
            (alert_id("p-0002", rule, 1), "open", "p-0002"),
        ]
    )
    assert got == want, log[-3000:]
    assert all(
        a["details"]["parameters_scoring_3"] == ["spo2"] for a in alerts if a["status"] == "open"
    )

    assert len(dead) == 1, log[-3000:]
    assert dead[0]["reason"] == "malformed_json"
    assert dead[0]["source_topic"] == settings.topic_vitals
    assert dead[0]["offset"] >= 0

    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    try:
        for pid in range(10):
            raw = await store.get_twin(f"p-{pid:04d}")
            assert raw is not None, f"no twin for p-{pid:04d}"
            twin = decode_twin(raw)
            assert twin.events_applied == 10
            assert twin.latest["heart_rate"].value == 75
            assert twin.latest["heart_rate"].at == pytest.approx(T0 + 9 * 600)
            assert twin.latest["spo2"].value == (88 if pid in (1, 2) else 97)
    finally:
        await store.close()
