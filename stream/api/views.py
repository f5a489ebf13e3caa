"""How a stored twin is shown: from :class:`~twin.state.TwinState` to the API's models.

Pure functions over the core's types, plus :func:`iter_twins`, the scan of the
store the list and population endpoints share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import cast

from stream.api.models import (
    Assessment,
    Band,
    BaselineView,
    ForecastView,
    LatestValue,
    LearnedView,
    MewsView,
    News2View,
    OpenAlert,
    ProfileView,
    QsofaView,
    RiskView,
    ScorePoint,
    TwinSummary,
    TwinView,
    VitalPoint,
    VitalWindows,
    WindowStatsView,
)
from stream.store import TwinStore
from twin import assess as _assess
from twin.alerting import SEVERITY_RANK, alert_id
from twin.codec import CodecError, decode_twin
from twin.config import TwinConfig
from twin.population import RISK_OUTCOME
from twin.state import TwinState
from twin.windows import SLOT_S, VitalWindow, WindowStats

__all__ = [
    "assessment_view",
    "band_of",
    "current",
    "iter_twins",
    "learned_risk",
    "open_alerts_of",
    "predicted_deterioration",
    "summary_of",
    "ts",
    "twin_view",
    "vital_series",
]

SCAN_CHUNK = 500


def ts(seconds: float | None) -> datetime | None:
    """Seconds since the epoch as an aware UTC datetime (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def assessment_view(a: _assess.Assessment) -> Assessment:
    """The core's assessment as the API shows it."""
    n, q, m = a.news2, a.qsofa, a.mews
    return Assessment(
        at=_at(a.at),
        news2=News2View(
            total=n.total,
            band=n.band,
            subscores=dict(n.subscores),
            missing=list(n.missing),
            partial=n.partial,
            red_score=n.red_score,
            response=n.response,
            monitoring_interval_minutes=n.monitoring_interval_minutes,
        ),
        qsofa=QsofaView(
            score=q.score,
            positive=q.positive,
            criteria=dict(q.criteria),
            missing=list(q.missing),
            partial=q.partial,
        ),
        mews=None
        if m is None
        else MewsView(
            total=m.total, subscores=dict(m.subscores), missing=list(m.missing), partial=m.partial
        ),
    )


def current(state: TwinState, cfg: TwinConfig) -> _assess.Assessment | None:
    """Scores at the twin's newest vitals, or None when it has none."""
    if state.last_vitals_at is None:
        return None
    return _assess.assess(state, cfg, at=state.last_vitals_at)


def band_of(a: _assess.Assessment | None) -> Band:
    """The NEWS2 band, ``unknown`` without vitals."""
    return "unknown" if a is None else cast(Band, a.news2.band)


def _stats(s: WindowStats | None) -> WindowStatsView | None:
    if s is None:
        return None
    return WindowStatsView(n=s.n, mean=s.mean, min=s.min, max=s.max, slope_per_h=s.slope_per_h)


def open_alerts_of(state: TwinState) -> list[OpenAlert]:
    """The twin's open alert episodes, most severe first."""
    at = state.newest_event_at
    out = [
        OpenAlert(
            alert_id=alert_id(state.patient_id, ep.rule, ep.episode),
            patient_id=state.patient_id,
            rule=ep.rule,
            kind=ep.kind,
            severity=ep.severity,
            opened_at=_at(ep.opened_at),
            last_firing_at=_at(ep.last_firing_at),
            acknowledged=ep.acked_until is not None and (at is None or at < ep.acked_until),
            clearing=ep.clear_since is not None,
        )
        for ep in state.open_alerts.values()
    ]
    out.sort(key=lambda a: (-SEVERITY_RANK[a.severity], a.opened_at))
    return out


def twin_view(state: TwinState, cfg: TwinConfig) -> TwinView:
    """Everything the API tells about one twin."""
    p = state.profile
    a = current(state, cfg)
    return TwinView(
        patient_id=state.patient_id,
        events_applied=state.events_applied,
        last_vitals_at=ts(state.last_vitals_at),
        newest_event_at=ts(state.newest_event_at),
        latest={
            k: LatestValue(value=o.value, at=_at(o.at), grade=o.grade)
            for k, o in sorted(state.latest.items())
        },
        assessment=None if a is None else assessment_view(a),
        windows={
            k: VitalWindows(h1=_stats(w.stats(3600)), h6=_stats(w.stats(21600)))
            for k, w in sorted(state.windows.items())
        },
        news2_history=[ScorePoint(at=_at(t), total=total) for t, total in state.news2_history],
        open_alerts=open_alerts_of(state),
        profile=None
        if p is None
        else ProfileView(
            age=p.age,
            sex=p.sex,
            ward=p.ward,
            region=p.region,
            spo2_scale=p.spo2_scale,
            conditions=list(p.conditions),
            updated_at=ts(p.updated_at),
        ),
        learned=learned_view(state),
    )


def learned_view(state: TwinState) -> LearnedView | None:
    """Baselines, forecasts (+30/+60 min), risk and anomaly, when the twin has learned any."""
    if state.learned is None and state.models is None and state.risk is None:
        return None
    models = state.patient_models()
    baselines = {}
    forecasts = {}
    for vital in models.vitals:
        m = models.models(vital)
        baselines[vital] = BaselineView(
            mean=round(m.baseline.mean, 2), std=round(m.baseline.std, 2), trusted=m.baseline.trusted
        )
        ahead = m.forecaster.forecast((1800, 3600))
        if ahead:
            forecasts[vital] = [
                ForecastView(horizon_minutes=h // 60, value=round(v, 2))
                for h, v in sorted(ahead.items())
            ]
    risk = None
    if state.risk is not None:
        risk = RiskView(
            probability=state.risk,
            outcome=RISK_OUTCOME,
            scored_at=ts(state.risk_at),
            model="online logistic regression (river), learned from outcomes",
        )
    return LearnedView(
        baselines=baselines or None,
        forecasts=forecasts or None,
        risk=risk,
        anomaly=state.anomaly,
    )


def _buckets(w: VitalWindow) -> list[tuple[int, int, int, int, int]]:
    # The window's flat layout (twin.windows): slot, n, sum, min, max in hundredths.
    d = list(w.data)
    return [(d[i], d[i + 1], d[i + 2], d[i + 3], d[i + 4]) for i in range(0, len(d) - 4, 5)]


def vital_series(state: TwinState) -> dict[str, list[VitalPoint]]:
    """Each windowed vital's buckets over the last 6 h, oldest first."""
    return {
        name: [
            VitalPoint(
                at=_at(slot * SLOT_S),
                n=n,
                mean=round(total / n / 100.0, 2),
                min=low / 100.0,
                max=high / 100.0,
            )
            for slot, n, total, low, high in _buckets(w)
            if n
        ]
        for name, w in sorted(state.windows.items())
    }


def learned_risk(state: TwinState) -> float | None:
    """The twin's online risk estimate, once the learning layer stores one."""
    return state.risk


PREDICTED_RULE = "news2.predicted"


def predicted_deterioration(state: TwinState) -> bool | None:
    """Whether the learned forecasts predict a worse NEWS2 band within the hour
    (an open ``news2.predicted`` alert); None while the twin has no learned state."""
    if getattr(state, "learned", None) is None:
        return None
    return PREDICTED_RULE in state.open_alerts


def summary_of(state: TwinState, cfg: TwinConfig) -> TwinSummary:
    """One row of the ward overview."""
    a = current(state, cfg)
    severities = [ep.severity for ep in state.open_alerts.values()]
    top = max(severities, key=SEVERITY_RANK.__getitem__) if severities else None
    return TwinSummary(
        patient_id=state.patient_id,
        ward=state.profile.ward if state.profile else None,
        region=state.profile.region if state.profile else None,
        band=band_of(a),
        news2_total=None if a is None else a.news2.total,
        partial=True if a is None else a.news2.partial,
        qsofa=None if a is None else a.qsofa.score,
        mews=None if a is None or a.mews is None else a.mews.total,
        last_vitals_at=ts(state.last_vitals_at),
        open_alerts=len(severities),
        top_severity=top,
        risk=learned_risk(state),
    )


async def iter_twins(store: TwinStore, partitions: int) -> AsyncIterator[TwinState]:
    """Every twin in the store, partition by partition, loaded ``SCAN_CHUNK`` at a time.

    Scaling limit: a full scan reads every twin (one ``SMEMBERS`` per partition
    and one ``MGET`` per chunk), so a list or population request costs O(twins)
    Redis work and decoding: fine for a hospital's few thousand twins, not for
    a region's hundreds of thousands. Beyond that, keep a per-partition index
    (band, ward, NEWS2) updated in the commit script and read only that.
    Twins that fail to decode (written by a newer codec) are skipped.
    """
    for partition in range(partitions):
        ids = await store.patient_ids(partition)
        for start in range(0, len(ids), SCAN_CHUNK):
            chunk = ids[start : start + SCAN_CHUNK]
            loaded = await store.load_twins(partition, chunk)
            for pid in chunk:
                raw = loaded.get(pid)
                if raw is None:
                    continue
                try:
                    yield decode_twin(raw)
                except CodecError:
                    continue
