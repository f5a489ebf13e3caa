"""The one agent that keeps twins: micro-batches in, :class:`TwinUpdater` does the rest."""

from __future__ import annotations

from typing import Any

from stream.app import app, input_channel, runtime, settings
from stream.ports import Envelope

__all__ = ["update_twins"]


@app.agent(input_channel, name="twin-updater")
async def update_twins(stream: Any) -> None:
    """Apply every input record to its twin, exactly once (see stream.updater)."""
    within = settings.batch_within_ms / 1000
    async for events in stream.take_events(settings.batch_max, within=within):
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
