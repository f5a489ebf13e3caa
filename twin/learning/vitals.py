"""The vital signs the learned models follow, with the scales they are judged on.

The order of :data:`VITALS` is part of the encoded learned state (a bitmask
says which vitals a patient has): append new vitals at the end, never reorder.

``scale`` is the smallest change of clinical interest in one reading's noise
(drift thresholds are multiples of it); ``min_std`` floors a personal standard
deviation so that a very steady patient does not turn a 1 bpm wobble into a
large z-score; ``low``/``high`` bound forecasts to physiologically possible
values (narrower than the plausibility bounds of ``schemas.vitals``, which
reject device errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from twin.frozen import by_fields

__all__ = ["VITALS", "VITAL_NAMES", "VitalSpec", "vital_spec"]


@dataclass(frozen=True, slots=True)
class VitalSpec:
    """How one vital sign is scaled, floored and clamped."""

    name: str
    unit: str
    low: float
    high: float
    scale: float
    min_std: float

    def clamp(self, value: float) -> float:
        """``value`` limited to ``[low, high]``.

        >>> vital_spec("spo2").clamp(103.0)
        100.0
        """
        return min(max(value, self.low), self.high)

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


VITALS: Mapping[str, VitalSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            VitalSpec("heart_rate", "bpm", 20.0, 220.0, scale=5.0, min_std=3.0),
            VitalSpec("respiratory_rate", "/min", 4.0, 60.0, scale=2.0, min_std=1.5),
            VitalSpec("spo2", "%", 50.0, 100.0, scale=1.5, min_std=1.0),
            VitalSpec("systolic_bp", "mmHg", 50.0, 250.0, scale=8.0, min_std=5.0),
            VitalSpec("diastolic_bp", "mmHg", 20.0, 150.0, scale=6.0, min_std=4.0),
            VitalSpec("temperature_c", "degC", 33.0, 42.0, scale=0.3, min_std=0.2),
        )
    }
)
VITAL_NAMES: tuple[str, ...] = tuple(VITALS)


def vital_spec(name: str) -> VitalSpec:
    """The spec of vital ``name``; ``KeyError`` naming the known vitals otherwise.

    >>> vital_spec("heart_rate").scale
    5.0
    """
    try:
        return VITALS[name]
    except KeyError:
        raise KeyError(
            f"unknown vital {name!r}; expected one of {', '.join(VITAL_NAMES)}"
        ) from None
