"""The one agent that keeps twins: micro-batches in, :class:`TwinUpdater` does the rest."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from faust.types import EventT

from stream import gcpolicy
from stream.app import app, input_channel, runtime, settings
from stream.batching import ready_batches
from stream.faust_consumer import RecordBatch
from stream.ports import Envelope
from stream.store import StoreRolledBackError

__all__ = ["update_twins"]

log = logging.getLogger(__name__)


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
            await app.crash(exc)
            return
