"""Turn raw message bytes into a validated contract, or a reason it was rejected.

``decode`` never raises: every input is classified exactly once, as a model
or as a :class:`Rejection`. Error details name fields and rules, never values,
so they are safe to log and to put on the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, cast

from pydantic import BaseModel, ValidationError

from schemas.deadletter import RejectReason

__all__ = ["MAX_MESSAGE_BYTES", "Rejection", "decode", "describe_validation_error"]

MAX_MESSAGE_BYTES = 1_000_000

M = TypeVar("M", bound=BaseModel)

# Error types that mean "the value is there and typed right but not believable".
_IMPLAUSIBLE = frozenset({"implausible"})
_OWN_MESSAGES = frozenset(
    {"implausible", "value_error", "unknown_unit", "unsupported_code", "loinc_mismatch"}
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message cannot be applied to a twin."""

    reason: RejectReason
    error: str


def describe_validation_error(exc: ValidationError) -> tuple[RejectReason, str]:
    """Map a pydantic error to a reason code and a value-free description.

    >>> from schemas.vitals import VitalsEvent
    >>> try:
    ...     VitalsEvent.model_validate_json('{"event_id": "e", "patient_id": "p",'
    ...         '"observed_at": "2026-01-01T00:00:00Z", "heart_rate": 999}')
    ... except ValidationError as e:
    ...     describe_validation_error(e)
    ('implausible', 'heart_rate: heart_rate outside plausible range 0-300 bpm')
    """
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if errors and str(errors[0]["type"]) == "json_invalid":
        return "malformed_json", "not valid JSON"
    if errors and not errors[0]["loc"] and str(errors[0]["type"]).startswith("model"):
        return "malformed_json", "JSON value is not an object"
    reason: RejectReason = "invalid"
    for err in errors:
        kind = str(err["type"])
        if kind in _IMPLAUSIBLE:
            reason = "implausible"
        elif kind in ("unknown_unit", "unsupported_code"):
            reason = kind  # type: ignore[assignment]
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        kind = str(err["type"])
        # Messages of our own validators are value-free by construction; pydantic's
        # built-in ones are replaced by their type code.
        msg = str(err["msg"]) if kind in _OWN_MESSAGES else kind
        parts.append(f"{loc}: {msg}")
    if len(errors) > 5:
        parts.append(f"(+{len(errors) - 5} more)")
    # A pydantic message can quote an enum of allowed values but never the input:
    # include_input=False keeps patient values out of the description.
    return reason, "; ".join(parts)[:500]


def decode(model: type[M], raw: bytes | None) -> M | Rejection:
    """Parse and validate ``raw`` as ``model``; return a :class:`Rejection` instead of raising.

    >>> from schemas.vitals import VitalsEvent
    >>> decode(VitalsEvent, b"not json")
    Rejection(reason='malformed_json', error='not valid JSON')
    >>> ok = decode(VitalsEvent, b'{"event_id":"e1","patient_id":"p1",'
    ...             b'"observed_at":"2026-11-23T10:15:00Z","heart_rate":92}')
    >>> ok.heart_rate
    92.0
    """
    if raw is None:
        return Rejection("malformed_json", "empty message (tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection("malformed_json", f"message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        # model_validate_json without its Python frame: the same validator, same result.
        return cast(M, model.__pydantic_validator__.validate_json(raw))
    except ValidationError as exc:
        reason, error = describe_validation_error(exc)
        return Rejection(reason, error)
    except (ValueError, TypeError, RecursionError) as exc:  # defensive: never escape
        return Rejection("invalid", type(exc).__name__)
