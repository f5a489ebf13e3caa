"""The real ``twin-updater`` Faust agent under faust's ``test_context``, with in-memory ports.

No broker and no Redis: records go straight into the agent's stream, the twin
store is the runtime's own ``memory://`` store, and alerts land in a list sink.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from agents.twin_updater import update_twins
from stream.app import runtime
from stream.ports import Envelope
from stream.store import MemoryTwinStore
from stream.updater import TwinUpdater
from twin.alerting import alert_id
from twin.codec import decode_twin

pytestmark = pytest.mark.agents

PID = "p-agent-1"
T0 = 1_800_000_000.0
NORMAL: dict[str, Any] = {
    "heart_rate": 75, "respiratory_rate": 16, "spo2": 97, "systolic_bp": 122,
    "diastolic_bp": 78, "temperature_c": 37.0, "consciousness": "A", "on_oxygen": False,
}  # fmt: skip
# NEWS2 5 ("medium", urgent response) and 8 ("high", emergency response); SBP stays
# normal so qSOFA never fires.
MEDIUM = NORMAL | {"respiratory_rate": 22, "spo2": 95, "heart_rate": 95, "temperature_c": 38.3}
HIGH = NORMAL | {"respiratory_rate": 25, "spo2": 93, "heart_rate": 115, "temperature_c": 38.3}


# Hold 15 min, reminders every 15 min for high alerts, an ack silences them for 60 min.
TIMING = {
    "alert_hold_minutes": 15.0,
    "alert_cooldown_minutes": 15.0,
    "reminder_minutes": 15.0,
    "ack_silence_minutes": 60.0,
}


class ListSink:
    """A real in-memory output sink: keeps what was sent, per topic."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[bytes | None, bytes]]] = {}

    async def send(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.sent.setdefault(topic, []).extend(items)


@pytest.fixture
def updater(monkeypatch: pytest.MonkeyPatch) -> Iterator[TwinUpdater]:
    """The runtime's own updater, built as in a worker but on ``TWIN_REDIS_URL=memory://``.

    stream.app read its settings once, at import (whenever another test imported
    it first): the runtime gets the memory URL and the alert timings here rather
    than through the environment, which would leak into every later test.
    """
    memory = runtime.settings.model_copy(update={"redis_url": "memory://", **TIMING})
    monkeypatch.setattr(runtime, "settings", memory)
    monkeypatch.setattr(runtime, "_store", None)
    monkeypatch.setattr(runtime, "_updater", None)
    updater = runtime.updater
    assert isinstance(runtime._store, MemoryTwinStore)
    # FaustSink sends through the app's producer, which test_context does not start.
    updater.sink = ListSink()
    yield updater


class Feed:
    """Puts records on the agent's stream as the consumer would, one topic at a time.

    ``AgentTestWrapper.put`` names every message after the agent's original
    channel, which here spans six topics; the updater dispatches on the topic,
    so messages are built the way ``put`` builds them, with their own topic.
    """

    def __init__(self, agent: Any, updater: TwinUpdater) -> None:
        self.agent = agent
        self.updater = updater
        self.sent = 0
        self.batch_done = asyncio.Condition()
        process = updater.process

        async def process_and_tell(records: Sequence[Envelope]) -> None:
            await process(records)
            async with self.batch_done:
                self.batch_done.notify_all()

        updater.process = process_and_tell  # type: ignore[method-assign]

    async def put(self, topic: str, key: bytes, value: bytes) -> None:
        message = self.agent.to_message(key, value, partition=0, offset=self.sent)
        message.topic = topic
        channel = self.agent.stream().channel
        await channel.put(await channel.decode(message))
        self.sent += 1

    async def settled(self) -> None:
        """Wait until the updater has committed every record put so far."""
        async with asyncio.timeout(10), self.batch_done:
            await self.batch_done.wait_for(lambda: self.updater.counters.consumed >= self.sent)


def vitals(i: int, minute: float, values: dict[str, Any]) -> bytes:
    at = datetime.fromtimestamp(T0 + minute * 60, tz=UTC).isoformat()
    return orjson.dumps({"event_id": f"agent-{i}", "patient_id": PID, "observed_at": at, **values})


def alerts_sent(updater: TwinUpdater) -> list[dict[str, Any]]:
    sink = updater.sink
    assert isinstance(sink, ListSink)
    items = sink.sent.get(updater.settings.topic_alerts, [])
    assert all(key == PID.encode() for key, _ in items), "alerts are keyed by patient"
    return [orjson.loads(value) for _, value in items]


def news2_alerts(updater: TwinUpdater) -> list[tuple[str, str, str]]:
    # Only the NEWS2 rule: learned rules (personal baselines) may fire on the same vitals.
    alerts = alerts_sent(updater)
    assert not [a for a in alerts if a["rule"] == "qsofa"]
    return [(a["status"], a["severity"], a["alert_id"]) for a in alerts if a["rule"] == "news2"]


# Vitals every 5 min of event time (TIMING above).
BEFORE_ACK = [(0, NORMAL), (5, MEDIUM), (10, HIGH), (15, HIGH), (20, HIGH), (25, HIGH)]
AFTER_ACK = [(30 + 5 * i, HIGH) for i in range(6)] + [(60 + 5 * i, NORMAL) for i in range(4)]


async def test_deterioration_and_recovery_through_the_agent(updater: TwinUpdater) -> None:
    settings = updater.settings
    cfg = updater.config
    episode = alert_id(PID, "news2", 1)
    async with update_twins.test_context() as agent:
        feed = Feed(agent, updater)
        for i, (minute, values) in enumerate(BEFORE_ACK):
            await feed.put(settings.topic_vitals, PID.encode(), vitals(i, minute, values))
        await feed.settled()
        assert news2_alerts(updater) == [
            ("open", "medium", episode),  # minute 5: NEWS2 5
            ("escalated", "high", episode),  # minute 10: NEWS2 8
            ("reminder", "high", episode),  # minute 25: 15 min unacknowledged
        ]
        ack = {"alert_id": episode, "by": "rn-4411", "at": datetime.fromtimestamp(
            T0 + 26 * 60, tz=UTC).isoformat()}  # fmt: skip
        await feed.put(settings.topic_alert_acks, PID.encode(), orjson.dumps(ack))
        for i, (minute, values) in enumerate(AFTER_ACK, start=len(BEFORE_ACK)):
            await feed.put(settings.topic_vitals, PID.encode(), vitals(i, minute, values))
        await feed.settled()

    # Acknowledged at minute 26: no reminders at 40 or 55; clear from minute 60,
    # resolved at 75 after the 15-min hold.
    assert news2_alerts(updater) == [
        ("open", "medium", episode),
        ("escalated", "high", episode),
        ("reminder", "high", episode),
        ("resolved", "info", episode),
    ]
    resolved = [a for a in alerts_sent(updater) if a["status"] == "resolved"][-1]
    assert resolved["details"]["all_clear"] is True and resolved["details"]["was"] == "high"
    assert resolved["observed_at"].startswith(
        datetime.fromtimestamp(T0 + 75 * 60, tz=UTC).isoformat()[:19]
    )
    assert settings.topic_deadletter not in updater.sink.sent  # type: ignore[attr-defined]

    c = updater.counters
    n = len(BEFORE_ACK) + 1 + len(AFTER_ACK)
    assert (c.consumed, c.applied, c.duplicates, sum(c.dead_lettered.values())) == (n, n, 0, 0)
    assert c.balanced() and c.alerts_sent == c.alerts_committed

    store = runtime._store
    assert isinstance(store, MemoryTwinStore)
    twin = decode_twin(await store.get_twin(PID) or b"")
    assert twin.events_applied == n - 1  # acks are not events of the twin
    assert {k: twin.latest[k].value for k in NORMAL} == NORMAL
    assert twin.last_vitals_at == T0 + 75 * 60
    assert "news2" not in twin.open_alerts and twin.episodes["news2"] == 1
    assert twin.cooldown_until["news2"] == T0 + 75 * 60 + cfg.cooldown_s
    assert twin.news2_history[-1] == (T0 + 75 * 60, 0)
    assert twin.windows["heart_rate"].stats(6 * 3600).max == 115  # type: ignore[union-attr]


def test_a_stopping_worker_exits_hard_after_the_grace_period() -> None:
    import threading

    from agents.twin_updater import exit_unless_stopped

    fired = threading.Event()
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        fired.set()

    exit_unless_stopped(0.05, 70, fake_exit)
    assert fired.wait(5.0)
    assert codes == [70]


def test_the_hard_exit_waits_for_its_grace_period() -> None:
    import time

    from agents.twin_updater import exit_unless_stopped

    codes: list[int] = []
    timer = exit_unless_stopped(30.0, 70, codes.append)
    time.sleep(0.2)
    assert codes == [] and timer.daemon and timer.is_alive()
    timer.cancel()
