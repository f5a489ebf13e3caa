"""The one agent that keeps twins: micro-batches in, :class:`TwinUpdater` does the rest."""

from __future__ import annotations

import logging
from typing import Any

from stream.app import app, input_channel, runtime, settings
from stream.ports import Envelope
from stream.store import StoreRolledBackError

__all__ = ["update_twins"]

log = logging.getLogger(__name__)


@app.agent(input_channel, name="twin-updater")
async def update_twins(stream: Any) -> None:
    """Apply every input record to its twin, exactly once (see stream.updater)."""
    within = settings.batch_within_ms / 1000
    async for events in stream.take_events(settings.batch_max, within=within):
        try:
            await runtime.updater.process(
                [
                    Envelope(
                        e.message.topic,
                        e.message.partition,
                        e.message.offset,
                        e.message.key,
                        e.message.value,
                    )
                    for e in events
                ]
            )
        except StoreRolledBackError as exc:
            # Our consumer position is past records the store lost. Only a rebalance
            # rewinds it (stream.app rewinds to the store's offsets): stop the worker
            # rather than go on with a gap; its restart (supervisor) applies them.
            log.critical("twin store lost acknowledged writes (%s): stopping the worker", exc)
            await app.crash(exc)
            return
