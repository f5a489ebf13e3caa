"""Shared base model and field types for the wire contracts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, StringConstraints
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "EventId",
    "PatientId",
    "Plausible",
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


_IMPLAUSIBLE_MESSAGE = "{field} outside plausible range {low}-{high} {unit}"


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
            _IMPLAUSIBLE_MESSAGE,
            {"field": name, "low": low, "high": high, "unit": unit},
        )


@dataclass(frozen=True, slots=True)
class Plausible:
    """The ``implausible`` range check of a number field, run by pydantic-core.

    Use it through :func:`plausible`. After the number's own validation (type,
    finiteness, other constraints) a second, bounded number schema checks the
    range; its error is replaced by the same ``implausible`` error
    :func:`check_plausible` raises (type, message and context), so nothing
    downstream can tell the two apart. No Python code runs per value, which
    matters for batched wearables (one check per reading and field).
    """

    name: str
    low: float
    high: float
    unit: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        number = handler(source)
        bounded: core_schema.CoreSchema
        if number["type"] == "int":
            if self.low != int(self.low) or self.high != int(self.high):
                raise TypeError(f"plausible({self.name!r}): an int field needs int bounds")
            bounded = core_schema.int_schema(ge=int(self.low), le=int(self.high))
        elif number["type"] == "float":
            bounded = core_schema.float_schema(ge=self.low, le=self.high)
        else:  # pragma: no cover - a programming error, caught at import
            raise TypeError(f"plausible() needs an int or float field, not {number['type']}")
        check = core_schema.custom_error_schema(
            bounded,
            custom_error_type="implausible",
            custom_error_message=_IMPLAUSIBLE_MESSAGE,
            custom_error_context={
                "field": self.name,
                "low": self.low,
                "high": self.high,
                "unit": self.unit,
            },
        )
        return core_schema.chain_schema([number, check])


def plausible(name: str, bounds: tuple[float, float, str]) -> Plausible:
    """:func:`check_plausible` as a constraint of a number field ``name``.

    Put it on the number type inside ``... | None``, last among its
    constraints. Errors are those of :func:`check_plausible`: type
    ``implausible`` at the field's location.

    >>> from pydantic import TypeAdapter, ValidationError
    >>> rate = TypeAdapter(Annotated[float, plausible("heart_rate", (0, 300, "bpm"))])
    >>> rate.validate_json("72")
    72.0
    >>> try:
    ...     rate.validate_json("400")
    ... except ValidationError as exc:
    ...     exc.errors()[0]["msg"]
    'heart_rate outside plausible range 0-300 bpm'
    """
    low, high, unit = bounds
    return Plausible(name, low, high, unit)
