"""The state of one patient's twin, and how to copy it.

Times are event times in seconds since the Unix epoch (UTC), as floats: the
core never reads a clock, callers pass ``now`` where wall time matters.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from twin.learning.codec import DEFAULT_CONFIG, LearningConfig, PatientModels, VitalSignals
from twin.windows import VitalWindow

if TYPE_CHECKING:
    from twin.assess import Assessment

__all__ = [
    "AlertEpisode",
    "Observation",
    "Profile",
    "SourceGrade",
    "TwinState",
    "Value",
    "event_fingerprint",
]

SourceGrade = Literal["bedside", "wearable", "lab"]
Value = float | str | bool
_NUMBERS = (int, float)


@dataclass(slots=True)
class Observation:
    """The latest value of one parameter with its event time and source grade."""

    value: Value
    at: float
    grade: SourceGrade = "bedside"


@dataclass(slots=True)
class Profile:
    """What the scores need to know about the patient (latest profile wins)."""

    age: int | None = None
    sex: str = "unknown"
    ward: str | None = None
    region: str | None = None
    spo2_scale: int = 1
    conditions: list[str] = field(default_factory=list)
    updated_at: float | None = None


@dataclass(slots=True)
class AlertEpisode:
    """One open alert of one rule: opened, maybe escalated, until resolved."""

    rule: str
    episode: int
    kind: str
    severity: str
    opened_at: float
    last_firing_at: float
    clear_since: float | None = None
    acked_until: float | None = None
    last_notified_at: float = 0.0


@dataclass(slots=True)
class TwinState:
    """Everything twinstream knows about one patient."""

    patient_id: str
    latest: dict[str, Observation] = field(default_factory=dict)
    windows: dict[str, VitalWindow] = field(default_factory=dict)
    profile: Profile | None = None
    lab_history: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    news2_history: list[tuple[float, int]] = field(default_factory=list)
    news2_max: int | None = None
    """Highest NEWS2 total ever scored for this twin."""
    events_applied: int = 0
    last_vitals_at: float | None = None
    newest_event_at: float | None = None
    recent_ids: list[bytes] = field(default_factory=list)
    open_alerts: dict[str, AlertEpisode] = field(default_factory=dict)
    episodes: dict[str, int] = field(default_factory=dict)
    cooldown_until: dict[str, float] = field(default_factory=dict)
    learned: bytes | None = None
    """Encoded per-patient learned state (:class:`twin.learning.PatientModels`)."""
    risk: float | None = None
    """Online risk estimate (probability) as of ``risk_at``."""
    risk_at: float | None = None
    anomaly: float | None = None
    """Population anomaly score of the newest vitals, 0 (typical) to 1."""
    outcomes: dict[str, float] = field(default_factory=dict)
    first_event_at: float | None = None
    # Not persisted: decoded models kept hot in memory, and the newest signals.
    models: PatientModels | None = field(default=None, compare=False, repr=False)
    signals: list[VitalSignals] = field(default_factory=list, compare=False, repr=False)
    assessment: Assessment | None = field(default=None, compare=False, repr=False)

    def patient_models(self, config: LearningConfig = DEFAULT_CONFIG) -> PatientModels:
        """The learned models, decoded on first use and kept until the next encode."""
        if self.models is None:
            self.models = (
                PatientModels.decode(self.learned, config)
                if self.learned
                else PatientModels(config)
            )
        return self.models

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

    def number(self, name: str, *, fresh_since: float | None = None) -> float | None:
        """Like :meth:`value`, for numeric parameters only."""
        obs = self.latest.get(name)  # value() inlined: the scores read five a reading
        if obs is None or (fresh_since is not None and obs.at < fresh_since):
            return None
        v = obs.value
        if type(v) is float:  # the common case, first
            return v
        return float(v) if isinstance(v, _NUMBERS) and not isinstance(v, bool) else None

    def seen(self, event_id: str, window: int) -> bool:
        """Remember ``event_id``; True if it was among the last ``window`` ids."""
        fp = event_fingerprint(event_id)
        recent = self.recent_ids
        if fp in recent:
            return True
        recent.append(fp)
        if len(recent) > window:
            del recent[: len(recent) - window]
        return False

    def copy(self) -> TwinState:
        """A deep copy, for what-if questions that must not touch the real twin."""
        models = self.models
        if models is not None:
            self.learned = models.encode()
        # The live river objects do not deep-copy; the clone re-decodes ``learned``.
        self.models = None
        try:
            return copy.deepcopy(self)
        finally:
            self.models = models


# An empty 6-byte BLAKE2b, copied for each id: blake2b() parses a dozen keyword
# parameters and sets up its parameter block on every call, a copy is one memcpy.
_EMPTY_FINGERPRINT = hashlib.blake2b(digest_size=6)


def event_fingerprint(event_id: str) -> bytes:
    """A 6-byte fingerprint of an event id (collision odds ~1e-13 in a 32-id window).

    >>> event_fingerprint("v-1") == hashlib.blake2b(b"v-1", digest_size=6).digest()
    True
    """
    fingerprint = _EMPTY_FINGERPRINT.copy()
    fingerprint.update(event_id.encode())
    return fingerprint.digest()
