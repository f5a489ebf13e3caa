"""Dead letters on ``twin.deadletter``: every message the worker could not apply."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.base import WireModel

__all__ = ["DeadLetter", "RejectReason"]

RejectReason = Literal[
    "malformed_json",  # not JSON, not an object, or too deep / too large
    "invalid",  # JSON, but not the topic's contract (missing or wrong-typed fields)
    "implausible",  # a value outside physiological plausibility bounds
    "unknown_unit",  # a lab unit we cannot convert without guessing
    "unsupported_code",  # a FHIR code twinstream does not map
    "processing_error",  # the twin core raised while applying the event
    "twin_unreadable",  # the stored twin is from a newer (or a retired) codec, or corrupt
]


class DeadLetter(WireModel):
    """A rejected message with enough context to find and replay it."""

    reason: RejectReason
    error: str = Field(description="Short description, never containing patient values.")
    source_topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    received_at: datetime
    original_b64: str = Field(description="The original message bytes, base64.")
