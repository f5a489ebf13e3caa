"""One patient's alert lifecycle on the real broker and Redis, through a worker process.

Deterioration opens a NEWS2 alert, escalates it and reminds; an acknowledgement
published on the alert-acks topic stops the reminders; recovery resolves the
alert after the hold. Reminders, the hold and the ack's silence all run on event
time (the ack's ``at`` included), so the journey takes seconds, not hours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from subprocess import Popen
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.cli import spawn_worker, stop_process
from stream.kafka import ensure_topics, kafka_client_options
from stream.settings import Settings
from stream.store import RedisTwinStore
from twin.alerting import alert_id
from twin.codec import decode_twin
from twin.state import TwinState

pytestmark = pytest.mark.integration

PID = "p-life-1"
T0 = float(int(time.time()) // 60 * 60 - 3 * 3600)  # whole minutes, three hours ago
NORMAL: dict[str, Any] = {
    "heart_rate": 75, "respiratory_rate": 16, "spo2": 97, "systolic_bp": 122,
    "diastolic_bp": 78, "temperature_c": 37.0, "consciousness": "A", "on_oxygen": False,
}  # fmt: skip
# NEWS2 5 ("medium", urgent response) and 8 ("high", emergency response); SBP stays
# normal so qSOFA never fires.
MEDIUM = NORMAL | {"respiratory_rate": 22, "spo2": 95, "heart_rate": 95, "temperature_c": 38.3}
HIGH = NORMAL | {"respiratory_rate": 25, "spo2": 93, "heart_rate": 115, "temperature_c": 38.3}
TIMING = {
    "TWIN_ALERT_HOLD_MINUTES": "15",
    "TWIN_ALERT_COOLDOWN_MINUTES": "15",
    "TWIN_REMINDER_MINUTES": "15",
    "TWIN_ACK_SILENCE_MINUTES": "60",
}
# Vitals every 5 min of event time.
BEFORE_ACK = [(0, NORMAL), (5, MEDIUM), (10, HIGH), (15, HIGH), (20, HIGH), (25, HIGH)]
ACK_AT = 26  # silences reminders until minute 86
AFTER_ACK = [(30 + 5 * i, HIGH) for i in range(6)] + [(60 + 5 * i, NORMAL) for i in range(4)]
EPISODE = alert_id(PID, "news2", 1)


def iso(minute: float) -> str:
    return datetime.fromtimestamp(T0 + minute * 60, tz=UTC).isoformat()


def vitals(i: int, minute: float, values: dict[str, Any]) -> bytes:
    body = {"event_id": f"life-{i}", "patient_id": PID, "observed_at": iso(minute), **values}
    return orjson.dumps(body)


class AlertFeed:
    """Everything on the alerts topic for our patient, read as it arrives."""

    def __init__(self, settings: Settings, worker: Popen[bytes], log: Path) -> None:
        self.consumer = AIOKafkaConsumer(
            settings.topic_alerts,
            settings.topic_deadletter,
            **kafka_client_options(settings),
            group_id=None,
            auto_offset_reset="earliest",
        )
        self.deadletter = settings.topic_deadletter
        self.worker = worker
        self.log = log
        self.alerts: list[dict[str, Any]] = []
        self.dead: list[dict[str, Any]] = []

    def news2(self) -> list[tuple[str, str, str]]:
        # Only the NEWS2 rule: learned rules (personal baselines) may fire on the same vitals.
        alerts = [a for a in self.alerts if a["rule"] == "news2"]
        return [(a["status"], a["severity"], a["alert_id"]) for a in alerts]

    async def poll(self, timeout_ms: int = 500) -> None:
        for tp, records in (await self.consumer.getmany(timeout_ms=timeout_ms)).items():
            docs = [orjson.loads(r.value or b"{}") for r in records]
            if tp.topic == self.deadletter:
                self.dead.extend(docs)
            else:
                self.alerts.extend(a for a in docs if a["patient_id"] == PID)

    async def until(self, done: Callable[[], bool], what: str, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while not done():
            if self.worker.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                pytest.fail(f"{what}: got {self.news2()} (worker rc={self.worker.poll()})\n{tail}")
            await self.poll()


async def until_acknowledged(store: RedisTwinStore, feed: AlertFeed, wait_s: float) -> TwinState:
    """The twin in Redis once the worker has applied the ack."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and feed.worker.poll() is None:
        raw = await store.get_twin(PID)
        twin = decode_twin(raw) if raw else None
        if twin and "news2" in twin.open_alerts and twin.open_alerts["news2"].acked_until:
            return twin
        await asyncio.sleep(0.2)
    pytest.fail("the ack was not applied:\n" + feed.log.read_text(errors="replace")[-3000:])


@pytest.fixture
async def settings(isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in {**isolated_env, **TIMING}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    await ensure_topics(settings)
    return settings


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all")
    await producer.start()
    yield producer
    await producer.stop()


async def test_news2_alert_lifecycle_with_ack(
    isolated_env: dict[str, str], settings: Settings, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    key = PID.encode()
    for i, (minute, values) in enumerate(BEFORE_ACK):
        await producer.send(settings.topic_vitals, vitals(i, minute, values), key=key)
    await producer.flush()

    log = tmp_path / "worker.log"
    worker = spawn_worker(env={**isolated_env, **TIMING}, log_path=str(log))
    feed = AlertFeed(settings, worker, log)
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    try:
        await feed.consumer.start()
        try:
            await journey(feed, store, producer, settings)
        finally:
            await feed.consumer.stop()
        twin = decode_twin(await store.get_twin(PID) or b"")
    finally:
        await asyncio.to_thread(stop_process, worker)
        await store.close()

    assert feed.news2() == [
        ("open", "medium", EPISODE),
        ("escalated", "high", EPISODE),
        ("reminder", "high", EPISODE),
        ("resolved", "info", EPISODE),
    ]
    resolved = [a for a in feed.alerts if a["rule"] == "news2"][-1]
    assert resolved["details"]["all_clear"] is True and resolved["details"]["was"] == "high"
    assert datetime.fromisoformat(resolved["observed_at"]).timestamp() == T0 + 75 * 60
    assert feed.dead == []
    assert twin.events_applied == len(BEFORE_ACK) + len(AFTER_ACK)
    assert {k: twin.latest[k].value for k in NORMAL} == NORMAL
    assert "news2" not in twin.open_alerts and twin.episodes["news2"] == 1


async def journey(
    feed: AlertFeed, store: RedisTwinStore, producer: AIOKafkaProducer, settings: Settings
) -> None:
    key = PID.encode()
    # Deterioration: open (NEWS2 5), escalated (NEWS2 8), a reminder 15 min later.
    await feed.until(lambda: len(feed.news2()) >= 3, "open, escalated, reminder", 40)
    assert feed.news2() == [
        ("open", "medium", EPISODE),
        ("escalated", "high", EPISODE),
        ("reminder", "high", EPISODE),
    ]

    ack = {"alert_id": EPISODE, "by": "rn-4411", "at": iso(ACK_AT)}
    await producer.send_and_wait(settings.topic_alert_acks, orjson.dumps(ack), key=key)
    acked = await until_acknowledged(store, feed, 15)
    assert acked.open_alerts["news2"].acked_until == T0 + (ACK_AT + 60) * 60

    # Still NEWS2 8 for 30 min (reminders were due at minutes 40 and 55), then
    # normal from minute 60: resolved at 75, after the 15-min hold.
    for i, (minute, values) in enumerate(AFTER_ACK, start=len(BEFORE_ACK)):
        await producer.send(settings.topic_vitals, vitals(i, minute, values), key=key)
    await producer.flush()
    await feed.until(lambda: len(feed.news2()) >= 4, "resolved", 20)
    await feed.poll(timeout_ms=1500)  # linger: anything more would be a failure too
