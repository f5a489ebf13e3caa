"""Issue #6, scenarios 2-4: Redis killed, Redis frozen, the Kafka broker killed, mid-stream.

These kill the services themselves, so they run only against the local services
of ``stream.services`` (skipped when Kafka and Redis come from the environment
or from testcontainers).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import pytest

from stream import services as svc
from tests.conftest import Services
from tests.faults.feed import build_feed
from tests.faults.harness import FaultRun

pytestmark = pytest.mark.faults

FREEZE_S = 20.0


@contextlib.contextmanager
def services_restored():
    """Whatever happens in the scenario, leave both services running and awake."""
    try:
        yield
    finally:
        for name in svc.COMPONENTS:
            with contextlib.suppress(svc.ServiceError, ProcessLookupError):
                svc.kill_service(name, signal.SIGCONT)
        svc.up()


async def sigkill(name: str) -> None:
    """SIGKILL a service and wait until it is gone: ``up`` right after the signal
    would still find the dying process and wait on it instead of starting a new one."""
    pid = svc.kill_service(name, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while svc.pid_of(name) == pid:
        assert time.monotonic() < deadline, f"{name} (pid {pid}) survived SIGKILL"
        await asyncio.sleep(0.02)


async def test_redis_sigkill_and_restart(fault_run: FaultRun, local_services: Services) -> None:
    run = fault_run
    # Under appendfsync everysec, while a background fsync is slow (a busy disk),
    # Redis postpones writing its AOF for up to 2 s and still replies: a SIGKILL
    # then loses acknowledged writes, the worker finds the offsets gone back and
    # stops (seen once in CI). A supervisor restarts it, as in a deployment; the
    # end state must be equal to the oracle either way (GUARANTEES.md).
    run.workers.supervise = True
    feed = build_feed(run.settings, patients=200, events_per_patient=11, seed=62)
    run.workers.start("w1")
    producer = run.produce(feed, rate=100)
    await run.wait_consuming()
    await producer.wait_produced(len(feed) // 3)
    with services_restored():
        snapshot = producer.per_partition.copy()
        at = time.monotonic()
        await sigkill("redis")
        await asyncio.to_thread(svc.up, ["redis"])
        ended = time.monotonic()
        await run.measure("SIGKILL redis", at, ended, producer, snapshot)
    verdict = await run.complete(feed, producer)
    run.record(verdict, redis_restart_s=round(ended - at, 2))
    assert not verdict.problems, verdict.problems


async def test_redis_sigstop_20s(fault_run: FaultRun, local_services: Services) -> None:
    run = fault_run
    feed = build_feed(run.settings, patients=200, events_per_patient=11, seed=63)
    run.workers.start("w1")
    producer = run.produce(feed, rate=70)
    await run.wait_consuming()
    await producer.wait_produced(len(feed) // 5)
    with services_restored():
        snapshot = producer.per_partition.copy()
        at = time.monotonic()
        svc.kill_service("redis", signal.SIGSTOP)
        await asyncio.sleep(FREEZE_S)  # the fault itself: Redis frozen this long
        svc.kill_service("redis", signal.SIGCONT)
        ended = time.monotonic()
        await run.measure(f"SIGSTOP redis {FREEZE_S:.0f}s", at, ended, producer, snapshot)
    verdict = await run.complete(feed, producer)
    run.record(verdict, frozen_s=round(ended - at, 1))
    assert not verdict.problems, verdict.problems


# The broker's restart recovers every partition's log first: over 90 s here once, with
# the ~10,000 partitions the session's tests leave (stream.services._wait_ready).
@pytest.mark.timeout(600)
async def test_kafka_sigkill_and_restart(fault_run: FaultRun, local_services: Services) -> None:
    run = fault_run
    feed = build_feed(run.settings, patients=200, events_per_patient=11, seed=64)
    run.workers.start("w1")
    producer = run.produce(feed, rate=70)
    await run.wait_consuming()
    await producer.wait_produced(len(feed) // 4)
    with services_restored():
        snapshot = producer.per_partition.copy()
        at = time.monotonic()
        await sigkill("kafka")
        await asyncio.to_thread(svc.up, ["kafka"])
        ended = time.monotonic()
        await run.measure("SIGKILL kafka", at, ended, producer, snapshot)
    verdict = await run.complete(feed, producer)
    run.record(verdict, kafka_restart_s=round(ended - at, 2))
    assert not verdict.problems, verdict.problems
