"""Issue #6, scenarios 5 and 6: two workers in one group; one dies or hangs, the other
takes over its partitions; a hung worker that wakes up cannot overwrite the new owner."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.feed import build_feed
from tests.faults.harness import FaultRun

pytestmark = pytest.mark.faults


async def test_two_workers_sigkill_one(fault_run: FaultRun) -> None:
    run = fault_run
    feed = build_feed(run.settings, patients=200, events_per_patient=11, seed=65)
    run.workers.start("w1")
    run.workers.start("w2")
    producer = run.produce(feed, rate=90)
    await run.wait_consuming()
    before = await run.wait_group(2)
    await producer.wait_produced(len(feed) // 3)
    snapshot = producer.per_partition.copy()
    at = run.workers.signal("w1", signal.SIGKILL)
    await run.measure("SIGKILL w1 (w2 takes over)", at, at, producer, snapshot)
    after = await run.wait_group(1)
    verdict = await run.complete(feed, producer)
    run.record(
        verdict, owned_before=[sorted(s) for s in before], owned_after=[sorted(s) for s in after]
    )
    assert not verdict.problems, verdict.problems
    assert after == [set(range(run.settings.partitions))]


async def test_stopped_worker_is_fenced_when_it_wakes(fault_run: FaultRun) -> None:
    run = fault_run
    feed = build_feed(run.settings, patients=200, events_per_patient=12, seed=66)
    run.workers.start("w1")
    run.workers.start("w2")
    producer = run.produce(feed, rate=80)
    await run.wait_consuming()
    before = await run.wait_group(2)
    await producer.wait_produced(len(feed) // 4)
    snapshot = producer.per_partition.copy()
    at = run.workers.signal("w1", signal.SIGSTOP)
    # w1 holds its partitions until the broker expires its session (6 s); then
    # w2 gets them, claims them (epoch + 1) and resumes from Redis's offsets.
    await run.measure("SIGSTOP w1 (w2 takes over)", at, at, producer, snapshot)
    taken = await run.wait_group(1)
    stopped_for = time.monotonic() - at
    snapshot = producer.per_partition.copy()
    woke = run.workers.signal("w1", signal.SIGCONT)
    # w1 wakes with batches and twins of partitions it no longer owns: its commits
    # carry the old epoch and are refused; then it rejoins and the group rebalances.
    await run.measure("SIGCONT w1 (rejoins)", woke, woke, producer, snapshot)
    rejoined = await run.wait_group(2)
    verdict = await run.complete(feed, producer)
    fenced = run.workers.count_in_logs("StaleEpochError") + run.workers.count_in_logs(
        "claimed by another worker"
    )
    run.record(
        verdict,
        stopped_s=round(stopped_for, 1),
        fenced_commits_logged=fenced,
        owned=[[sorted(s) for s in g] for g in (before, taken, rejoined)],
    )
    assert not verdict.problems, verdict.problems
