"""Issue #6, scenario 1: SIGKILL the only worker three times mid-stream, restart it each time."""

from __future__ import annotations

import random
import signal
import time

import pytest

from tests.faults.feed import build_feed
from tests.faults.harness import FaultRun, ScenarioError

pytestmark = pytest.mark.faults


async def test_worker_sigkill_three_times(fault_run: FaultRun) -> None:
    run = fault_run
    feed = build_feed(run.settings, patients=200, events_per_patient=12, seed=61)
    n = len(feed)
    rng = random.Random(61)
    # Kill points: fractions of the feed produced, drawn once (fixed seed).
    points = sorted(rng.sample(range(int(0.10 * n), int(0.62 * n)), 3))
    run.workers.start("w1")
    producer = run.produce(feed, rate=70)
    await run.wait_consuming()
    for i, point in enumerate(points, 1):
        await producer.wait_produced(point)
        if producer.done:
            raise ScenarioError("the feed ended before the last kill; slow the producer")
        snapshot = producer.per_partition.copy()
        at = run.workers.signal("w1", signal.SIGKILL)
        run.workers.start("w1")
        await run.measure(f"SIGKILL #{i}", at, time.monotonic(), producer, snapshot)
    verdict = await run.complete(feed, producer)
    run.record(verdict, kill_points=points)
    assert not verdict.problems, verdict.problems
    assert verdict.figures["max_outage_s"] <= 15.0, "a worker restart took longer than 15 s"
