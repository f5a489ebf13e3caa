"""The oracle of the fault suite: a single-threaded replay of what is in Kafka.

The records a fault run produced are read back from the input topics (topic,
partition, offset, key, value) and fed, per partition in offset order, through
a :class:`TwinUpdater` over a :class:`MemoryTwinStore` and an in-memory sink:
the same pure core the workers run, with no broker, no Redis, no crash. What a
faulty run ends with must equal what this replay ends with.

Topics are fed one after the other within a partition; the feed
(``tests/faults/feed.py``) is built so that the order across topics does not
change the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.kafka import kafka_client_options
from stream.ports import Envelope
from stream.settings import Settings
from stream.store import MemoryTwinStore
from stream.updater import TwinUpdater
from twin.assess import assess
from twin.codec import decode_twin
from twin.state import TwinState

__all__ = [
    "AlertKey",
    "ListSink",
    "OracleResult",
    "alert_keys",
    "compare_twins",
    "read_topics",
    "replay",
    "twin_summary",
]

AlertKey = tuple[str, str, str]
"""(alert_id, status, observed_at): one emission. Reminders share an (alert_id,
status) pair; their event time tells them apart."""


class ListSink:
    """A real in-memory sink: keeps what was sent, per topic."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[bytes | None, bytes]]] = {}

    async def send(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.sent.setdefault(topic, []).extend(items)


@dataclass
class OracleResult:
    """What the replay ends with."""

    records: int
    twins: dict[str, TwinState]
    alerts: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    counters: dict[str, int]
    last_offsets: dict[int, dict[str, int]] = field(default_factory=dict)
    """Per partition, per topic: the last offset (where a worker must get to)."""


async def read_topics(
    settings: Settings, topics: Iterable[str], timeout_s: float = 60.0
) -> list[Envelope]:
    """Every record now in ``topics`` (all partitions, from the start to the end offsets)."""
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Envelope] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            if loop.time() > deadline:
                raise TimeoutError(f"could not read {sorted(map(str, pending))} to their end")
            for tp, recs in (await consumer.getmany(*pending, timeout_ms=500)).items():
                for r in recs:
                    if r.offset < ends[tp]:
                        out.append(Envelope(r.topic, r.partition, r.offset, r.key, r.value))
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return out
    finally:
        await consumer.stop()


async def replay(
    settings: Settings, records: Sequence[Envelope], batch: int | None = None
) -> OracleResult:
    """Feed ``records`` through the pure core.

    By default one partition and one topic at a time, in offset order; with
    ``batch``, in the order given, ``batch`` records per micro-batch.
    """
    if batch is None:
        order = {t: i for i, t in enumerate(settings.input_topics())}
        records = sorted(records, key=lambda r: (r.partition, order.get(r.topic, 99), r.offset))
    store = MemoryTwinStore(settings.partitions)
    sink = ListSink()
    updater = TwinUpdater(settings, store, sink)
    step = batch or 500
    for i in range(0, len(records), step):
        await updater.process(records[i : i + step])
    assert updater.counters.balanced()
    twins: dict[str, TwinState] = {}
    for p in range(settings.partitions):
        for pid, raw in (await store.load_twins(p, await store.patient_ids(p))).items():
            twins[pid] = decode_twin(raw)
    last: dict[int, dict[str, int]] = {}
    for r in records:
        per = last.setdefault(r.partition, {})
        per[r.topic] = max(per.get(r.topic, -1), r.offset)
    return OracleResult(
        records=len(records),
        twins=twins,
        alerts=[orjson.loads(v) for _, v in sink.sent.get(settings.topic_alerts, [])],
        dead_letters=[orjson.loads(v) for _, v in sink.sent.get(settings.topic_deadletter, [])],
        counters=await store.counters(),
        last_offsets=last,
    )


def alert_keys(alerts: Iterable[Mapping[str, Any]]) -> list[AlertKey]:
    return [(a["alert_id"], a["status"], a["observed_at"]) for a in alerts]


def twin_summary(twin: TwinState, settings: Settings) -> dict[str, Any]:
    """What must match: events applied, latest values, NEWS2 now, alert episodes."""
    cfg = settings.twin_config()
    news2 = None
    if twin.last_vitals_at is not None:
        news2 = assess(twin, cfg, twin.last_vitals_at).news2.total
    return {
        "events_applied": twin.events_applied,
        "latest": {k: (o.value, o.at, o.grade) for k, o in sorted(twin.latest.items())},
        "news2": news2,
        "episodes": dict(sorted(twin.episodes.items())),
        "open": sorted((r, e.episode, e.severity) for r, e in twin.open_alerts.items()),
        "profile": None if twin.profile is None else twin.profile.spo2_scale,
    }


def compare_twins(
    got: Mapping[str, TwinState], want: Mapping[str, TwinState], settings: Settings
) -> list[str]:
    """Human-readable differences (empty when equal)."""
    diffs = []
    for pid in sorted(set(got) | set(want)):
        if pid not in got:
            diffs.append(f"{pid}: missing from the store")
            continue
        if pid not in want:
            diffs.append(f"{pid}: in the store but not in the oracle")
            continue
        a, b = twin_summary(got[pid], settings), twin_summary(want[pid], settings)
        for k in a:
            if a[k] != b[k]:
                diffs.append(f"{pid}.{k}: got {a[k]!r}, want {b[k]!r}")
    return diffs
