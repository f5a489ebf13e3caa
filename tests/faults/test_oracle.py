"""The oracle's premise, checked without services: the fault feed ends in the same
twins, alerts and counters whichever way a worker interleaves the topics of a
partition, and however the records are cut into batches."""

from __future__ import annotations

import random

import pytest

from stream.ports import Envelope
from stream.settings import Settings
from tests.faults.feed import build_feed
from tests.faults.oracle import alert_keys, compare_twins, replay

pytestmark = pytest.mark.faults


def as_records(settings: Settings, messages: list[tuple[str, bytes, bytes]]) -> list[Envelope]:
    """Give each message a partition (by patient) and its offset in that topic-partition."""
    patients = sorted({key for _, key, _ in messages})
    partition = {key: i % settings.partitions for i, key in enumerate(patients)}
    next_offset: dict[tuple[str, int], int] = {}
    out = []
    for topic, key, value in messages:
        p = partition[key]
        offset = next_offset.get((topic, p), 0)
        next_offset[(topic, p)] = offset + 1
        out.append(Envelope(topic, p, offset, key, value))
    return out


def interleaved(records: list[Envelope], seed: int) -> list[Envelope]:
    """A random merge of the topic-partitions that keeps each one in offset order."""
    rng = random.Random(seed)
    queues: dict[tuple[str, int], list[Envelope]] = {}
    for r in records:
        queues.setdefault((r.topic, r.partition), []).append(r)
    for q in queues.values():
        q.reverse()
    out = []
    while queues:
        key = rng.choice(sorted(queues))
        # Take a run of a random length, as a fetch of one partition would.
        for _ in range(rng.randint(1, 60)):
            if not queues[key]:
                break
            out.append(queues[key].pop())
        if not queues[key]:
            del queues[key]
    return out


async def test_feed_outcome_does_not_depend_on_topic_interleaving() -> None:
    settings = Settings(partitions=4, stale_after_minutes=100000)
    feed = build_feed(settings, patients=120, events_per_patient=13, seed=5,
                      duplicates=40, reorder=30)  # fmt: skip
    records = as_records(settings, feed.messages)
    want = await replay(settings, records)
    assert want.counters["applied"] == feed.injected["applied"]
    assert want.counters["duplicates"] == feed.injected["duplicates"]
    assert {a["status"] for a in want.alerts} >= {"open", "escalated", "reminder", "resolved"}
    assert {a["rule"] for a in want.alerts} >= {"news2", "lab.critical.potassium", "lab.aki"}
    for seed in range(3):
        got = await replay(settings, interleaved(records, seed), batch=37 + seed * 100)
        assert compare_twins(got.twins, want.twins, settings) == []
        assert sorted(alert_keys(got.alerts)) == sorted(alert_keys(want.alerts))
        assert got.counters == want.counters
