"""The one agent that keeps twins: micro-batches in, :class:`TwinUpdater` does the rest."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from faust.types import EventT

from stream import gcpolicy
from stream.app import app, input_channel, runtime, settings
from stream.batching import ready_batches
from stream.faust_consumer import RecordBatch
from stream.ports import Envelope
from stream.store import StoreRolledBackError

__all__ = ["exit_unless_stopped", "update_twins"]

log = logging.getLogger(__name__)

CRASH_EXIT_GRACE_S = 30.0
"""How long a worker stopping on a store rollback may take to stop before it exits hard."""
CRASH_EXIT_CODE = 70  # EX_SOFTWARE


def exit_unless_stopped(
    grace_s: float = CRASH_EXIT_GRACE_S,
    code: int = CRASH_EXIT_CODE,
    exit_fn: Callable[[int], object] = os._exit,
) -> threading.Timer:
    """End the process with ``code`` in ``grace_s`` seconds unless it ended before.

    A timer thread, not the event loop: it fires even if the loop is blocked.
    For a worker that stops because it cannot go on: a supervisor restarts it,
    and a hard exit loses nothing (the twins, offsets and unsent alerts are in
    the store; Kafka redelivers what the store has not applied).
    """

    def fire() -> None:
        log.critical("worker still running %.0fs after it began to stop: exiting", grace_s)
        logging.shutdown()
        exit_fn(code)

    timer = threading.Timer(grace_s, fire)
    timer.daemon = True  # a process that ends by itself does not wait for it
    timer.start()
    return timer


def envelopes(events: Sequence[EventT[Any]]) -> list[Envelope]:
    """The records of ``events``: a :class:`RecordBatch` (batch delivery, see
    :mod:`stream.faust_consumer`) holds many, any other message one."""
    records: list[Envelope] = []
    for event in events:
        message = event.message
        value: Any = message.value
        if type(value) is RecordBatch:
            records.extend(value)
        else:
            records.append(
                Envelope(
                    message.topic,
                    message.partition,
                    message.offset,
                    message.key,
                    value,
                    message.timestamp,
                )
            )
    return records


@app.agent(input_channel, name="twin-updater")
async def update_twins(stream: Any) -> None:
    """Apply every input record to its twin, exactly once (see stream.updater)."""
    linger = settings.batch_within_ms / 1000
    # With batch delivery an event is up to batch_max records of one partition and
    # fetch. A fetch from a live feed brings a few records per partition: count
    # events generously (taking one per partition, a worker that fell behind caught
    # up by a handful of small batches per round: p50 6.5 s at 2,000/s), but not
    # so many that a backlog makes one round hold the event loop for seconds.
    most = 4 * settings.partitions if settings.faust_batch_delivery else settings.batch_max
    # And a batch brings at most this many twins into memory: the twins a batch
    # creates or loads stay there until it commits (taking whole rounds of new
    # patients, a worker loading 100,000 of them peaked at 1.1 GB RSS instead of 0.7).
    # Records of twins already in memory are not limited (TwinUpdater.chunks).
    cap = settings.batch_max * settings.partitions
    # A batch is what arrived while the previous one was processed (ready_batches),
    # not what a timer collected: no batch waits with its events ready.
    async for events in ready_batches(stream, most, linger):
        records = envelopes(events)
        try:
            for chunk in runtime.updater.chunks(records, cap):
                # The collector would only traverse what the batch holds for a while
                # (stream.gcpolicy.paused).
                with gcpolicy.paused():
                    await runtime.updater.process(chunk)
        except StoreRolledBackError as exc:
            # Our consumer position is past records the store lost. Only a rebalance
            # rewinds it (stream.app rewinds to the store's offsets): stop the worker
            # rather than go on with a gap; its restart (supervisor) applies them.
            log.critical("twin store lost acknowledged writes (%s): stopping the worker", exc)
            # Faust's shutdown after a crash did not always end the process: in one CI
            # run of tests/faults/test_redis_rollback.py the worker was still up 120 s
            # after this line, so its supervisor never restarted it.
            exit_unless_stopped()
            await app.crash(exc)
            return
