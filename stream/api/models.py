"""Response and request models of the HTTP API (not wire contracts: those live in ``schemas/``).

Times are ISO 8601 UTC datetimes. Every model forbids unknown fields so the
OpenAPI description is exact. ``learned`` sections are optional: they stay
``null`` until the online-learning layer stores baselines, forecasts and risk.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.alert import Alert, AlertSeverity
from schemas.labs import AnalyteName

__all__ = [
    "AckAccepted",
    "AckRequest",
    "AlertList",
    "Assessment",
    "Band",
    "BandCounts",
    "BaselineView",
    "ForecastView",
    "LatestValue",
    "LearnedView",
    "MewsView",
    "News2View",
    "OpenAlert",
    "PopulationGroup",
    "PopulationView",
    "ProfileView",
    "QsofaView",
    "RiskView",
    "ScorePoint",
    "TwinPage",
    "TwinSummary",
    "TwinView",
    "VitalPoint",
    "VitalWindows",
    "WhatIfLab",
    "WhatIfRequest",
    "WhatIfResult",
    "WindowStatsView",
]

Band = Literal["low", "low-medium", "medium", "high", "unknown"]
"""NEWS2 clinical risk band; ``unknown`` when the twin has no vitals yet."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LatestValue(_Model):
    value: bool | float | str
    at: datetime = Field(description="Event time of this value.")
    grade: Literal["bedside", "wearable", "lab"]


class News2View(_Model):
    total: int
    band: Band
    subscores: dict[str, int]
    missing: list[str]
    partial: bool = Field(description="Some parameters missing: total and band are lower bounds.")
    red_score: bool
    response: str = Field(description="RCP NEWS2 (2017) clinical response.")
    monitoring_interval_minutes: int = Field(description="0 means continuous monitoring.")


class QsofaView(_Model):
    score: int
    positive: bool
    criteria: dict[str, bool]
    missing: list[str]
    partial: bool


class MewsView(_Model):
    total: int
    subscores: dict[str, int]
    missing: list[str]
    partial: bool


class Assessment(_Model):
    at: datetime = Field(description="Event time the scores refer to.")
    news2: News2View
    qsofa: QsofaView
    mews: MewsView | None


class WindowStatsView(_Model):
    n: int
    mean: float
    min: float
    max: float
    slope_per_h: float | None


class VitalWindows(_Model):
    h1: WindowStatsView | None = Field(description="Last hour (at the window's bucket grain).")
    h6: WindowStatsView | None = Field(description="Last six hours (at the window's bucket grain).")


class VitalPoint(_Model):
    """One window bucket of one vital (bucket length: twin.windows.SLOT_S)."""

    at: datetime = Field(description="Start of the bucket.")
    n: int
    mean: float
    min: float
    max: float


class ScorePoint(_Model):
    at: datetime
    total: int


class OpenAlert(_Model):
    alert_id: str
    patient_id: str
    rule: str
    kind: str
    severity: AlertSeverity
    status: Literal["open"] = "open"
    opened_at: datetime
    last_firing_at: datetime
    acknowledged: bool = Field(description="Acknowledged and still within the silence period.")
    clearing: bool = Field(description="The rule stopped firing; resolves after the hold time.")


class ProfileView(_Model):
    age: int | None
    sex: str
    ward: str | None
    region: str | None
    spo2_scale: int
    conditions: list[str]
    updated_at: datetime | None


class BaselineView(_Model):
    """A personal baseline of one vital (filled in by the learning layer)."""

    mean: float
    std: float
    trusted: bool


class ForecastView(_Model):
    """A forecast of one vital at ``horizon_minutes`` (filled in by the learning layer)."""

    horizon_minutes: int
    value: float


class RiskView(_Model):
    """The online risk model's estimate for this twin, as last scored."""

    probability: float = Field(ge=0.0, le=1.0)
    outcome: str = Field(description="What the probability is of, e.g. in_hospital_death.")
    scored_at: datetime | None = None
    model: str


class LearnedView(_Model):
    """What the online models learned; every part is optional."""

    baselines: dict[str, BaselineView] | None = None
    forecasts: dict[str, list[ForecastView]] | None = None
    risk: RiskView | None = None
    anomaly: float | None = Field(
        None, description="Population anomaly score of the newest vitals, 0 typical to 1."
    )


class TwinView(_Model):
    patient_id: str
    events_applied: int
    last_vitals_at: datetime | None
    newest_event_at: datetime | None
    latest: dict[str, LatestValue]
    assessment: Assessment | None = Field(description="Scores at the newest vitals; null if none.")
    windows: dict[str, VitalWindows]
    news2_history: list[ScorePoint]
    open_alerts: list[OpenAlert]
    profile: ProfileView | None
    learned: LearnedView | None = None


class TwinSummary(_Model):
    patient_id: str
    ward: str | None
    region: str | None
    band: Band
    news2_total: int | None
    partial: bool
    qsofa: int | None
    mews: int | None
    last_vitals_at: datetime | None
    open_alerts: int
    top_severity: AlertSeverity | None
    risk: float | None = Field(None, description="Learned risk; null until available.")


class TwinPage(_Model):
    items: list[TwinSummary]
    total: int = Field(description="Twins matching the filters.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class AlertList(_Model):
    open: list[OpenAlert] = Field(description="Open episodes, from the twins.")
    recent: list[Alert] = Field(description="Recent alerts from the alerts topic, newest first.")


class AckRequest(_Model):
    by: str = Field(min_length=1, max_length=200, description="Staff id of who acknowledges.")


class AckAccepted(_Model):
    alert_id: str
    patient_id: str
    by: str
    at: datetime
    topic: str


BandCounts = dict[str, int | str]
"""Band -> count, or ``"<N"`` where the count is suppressed (small numbers)."""


class PopulationGroup(_Model):
    name: str
    total: int | str
    bands: BandCounts
    observations_per_hour: float = Field(description="Implied by the NEWS2 response frequency.")
    continuous: int | str = Field(description="Twins that need continuous monitoring.")


class PopulationView(_Model):
    twins: int
    min_group: int = Field(description="Counts below this are suppressed as '<min_group'.")
    bands: BandCounts
    wards: list[PopulationGroup]
    regions: list[PopulationGroup]
    observations_per_hour: float
    continuous_monitoring: int | str
    predicted_deteriorations_next_hour: int | None
    forecasts: str = Field(description="'available' or why predictions are missing.")


class WhatIfLab(_Model):
    analyte: AnalyteName
    value: float
    unit: str = Field(min_length=1, max_length=32)


class WhatIfRequest(_Model):
    """Hypothetical measurements (any subset of a vitals event's) and lab results."""

    heart_rate: float | None = Field(None, ge=0, le=300, description="bpm")
    respiratory_rate: float | None = Field(None, ge=0, le=80, description="/min")
    spo2: float | None = Field(None, ge=0, le=100, description="%")
    systolic_bp: float | None = Field(None, ge=20, le=300, description="mmHg")
    diastolic_bp: float | None = Field(None, ge=5, le=200, description="mmHg")
    temperature_c: float | None = Field(None, ge=25, le=45, description="degC")
    consciousness: Literal["A", "C", "V", "P", "U"] | None = None
    on_oxygen: bool | None = None
    labs: list[WhatIfLab] = Field(default_factory=list, max_length=20)


class WhatIfResult(_Model):
    patient_id: str
    at: datetime = Field(description="Event time the hypothetical values were applied at.")
    before: Assessment | None
    after: Assessment
    alerts: list[Alert] = Field(description="Alerts the hypothetical values would raise.")
