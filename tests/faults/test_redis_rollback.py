"""Redis loses its last seconds of writes (what a power loss does under ``appendfsync
everysec``, or a failover to a lagging replica): simulated by restarting Redis from
a copy of its append-only file taken a few seconds earlier.

A SIGKILL of Redis alone usually loses nothing (the AOF is written before Redis
replies, and the kernel keeps the written pages; but see ``test_service_faults``:
while a slow background fsync runs, ``everysec`` postpones the write and replies
anyway). A rollback is different: Redis's twins and applied offsets go back
together (same AOF), so the records in between must be applied again from Kafka,
but Faust has already committed Kafka offsets past them.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import pytest

from stream import services as svc
from tests.conftest import Services
from tests.faults.feed import build_feed
from tests.faults.harness import FaultRun
from tests.faults.test_service_faults import services_restored, sigkill

pytestmark = pytest.mark.faults

LOST_S = 4.0


def aof_dir() -> Path:
    return svc.state_dir() / "data" / "redis" / "appendonlydir"


async def rollback_redis(snapshot: Path) -> None:
    """SIGKILL Redis, put the old AOF back, start Redis again."""
    await sigkill("redis")
    shutil.rmtree(aof_dir())
    shutil.copytree(snapshot, aof_dir())
    await asyncio.to_thread(svc.up, ["redis"])


@pytest.mark.parametrize("worker", ["running", "restarted"])
async def test_redis_rolls_back_seconds(
    fault_run: FaultRun, local_services: Services, tmp_path: Path, worker: str
) -> None:
    run = fault_run
    # A worker that finds the store behind its position stops (it cannot rewind
    # its consumer in place); the harness restarts it, as a supervisor would.
    run.workers.supervise = True
    feed = build_feed(run.settings, patients=200, events_per_patient=11, seed=68)
    run.workers.start("w1")
    producer = run.produce(feed, rate=90)
    await run.wait_consuming()
    await producer.wait_produced(len(feed) // 4)
    with services_restored():
        snapshot = tmp_path / "aof-snapshot"
        shutil.copytree(aof_dir(), snapshot)
        taken = time.monotonic()
        applied_then = run.watch.total()
        # Let the worker apply and commit (to Redis and to Kafka) for a few more seconds.
        await asyncio.sleep(LOST_S)
        lost = run.watch.total() - applied_then
        snap = producer.per_partition.copy()
        at = time.monotonic()
        if worker == "restarted":
            run.workers.signal("w1", signal.SIGKILL)
        await rollback_redis(snapshot)
        if worker == "restarted":
            run.workers.start("w1")
        ended = time.monotonic()
        await run.measure(
            f"Redis rollback ({worker} worker)", at, ended, producer, snap, since_end=True
        )
    verdict = await run.complete(feed, producer)
    stopped = run.workers.count_in_logs("stopping the worker")
    rewound = run.workers.count_in_logs("rewinding")
    run.record(
        verdict,
        rolled_back_s=round(at - taken, 1),
        consumed_lost_by_redis=lost,
        worker=worker,
        stopped_on_rollback=stopped,
        rewinds_logged=rewound,
    )
    assert not verdict.problems, verdict.problems
    assert rewound >= 1, "the worker never rewound Kafka to the store's offsets"
