"""The state of one patient's twin, and how to copy it.

Times are event times in seconds since the Unix epoch (UTC), as floats: the
core never reads a clock, callers pass ``now`` where wall time matters.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["AlertEpisode", "Observation", "SourceGrade", "TwinState"]

SourceGrade = Literal["bedside", "wearable", "lab"]
Value = float | str | bool


@dataclass(slots=True)
class Observation:
    """The latest value of one parameter with its event time and source grade."""

    value: Value
    at: float
    grade: SourceGrade = "bedside"


@dataclass(slots=True)
class AlertEpisode:
    """One open alert of one rule: opened, maybe escalated, until resolved."""

    rule: str
    episode: int
    severity: str
    opened_at: float
    last_firing_at: float


@dataclass(slots=True)
class TwinState:
    """Everything twinstream knows about one patient."""

    patient_id: str
    latest: dict[str, Observation] = field(default_factory=dict)
    events_applied: int = 0
    last_vitals_at: float | None = None
    open_alerts: dict[str, AlertEpisode] = field(default_factory=dict)
    episodes: dict[str, int] = field(default_factory=dict)

    def value(self, name: str, *, fresh_since: float | None = None) -> Value | None:
        """Latest value of ``name``, or None when absent or older than ``fresh_since``.

        >>> s = TwinState("p1", latest={"spo2": Observation(95.0, at=100.0)})
        >>> s.value("spo2"), s.value("spo2", fresh_since=200.0), s.value("heart_rate")
        (95.0, None, None)
        """
        obs = self.latest.get(name)
        if obs is None or (fresh_since is not None and obs.at < fresh_since):
            return None
        return obs.value

    def copy(self) -> TwinState:
        """A deep copy, for what-if questions that must not touch the real twin."""
        return copy.deepcopy(self)
