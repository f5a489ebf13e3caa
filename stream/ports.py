"""Small ports between the updater and the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Envelope", "OutputSink"]


@dataclass(slots=True)
class Envelope:
    """One consumed Kafka record, as the updater sees it. Read it, do not change it.

    Not ``frozen``: a frozen dataclass sets each field through ``object.__setattr__``
    in ``__init__``, 717 ns against 172 for these six (Python 3.11), once per record.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = field(default=None, compare=False)
    """The record's Kafka timestamp, epoch seconds (None when it has none)."""


class OutputSink(Protocol):
    """Where alerts and dead letters go; ``send`` returns once the broker has them."""

    async def send(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None: ...
