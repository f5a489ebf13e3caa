"""Models shared by many twins: the population anomaly detector of a partition
and the online risk model, with the delayed-label bookkeeping between them.

Per vitals event (at most every ``every_s`` of event time per twin, so a
minute-by-minute monitor does not pay for it sixty times an hour) a twin gets
an anomaly score from its partition's HalfSpaceTrees over its baseline
z-scores, and a risk estimate from the shared logistic regression over its
features; the features are kept, as they were when scored, until the
patient's outcome arrives (``twin.outcomes``), and then learned with it.
"""

from __future__ import annotations

import math

from schemas.outcomes import OutcomeEvent
from twin.learning.anomaly import PopulationAnomalyModel
from twin.learning.risk import (
    FEATURE_NAMES,
    LAB_REFERENCE,
    NEWS2_SUBSCORES,
    SLOPE_VITALS,
    PendingLabels,
    RiskModel,
    TwinSummary,
    features,
)
from twin.state import TwinState

__all__ = ["RISK_OUTCOME", "PartitionModels", "feature_vector", "summarize"]

RISK_OUTCOME = "in_hospital_death"
"""The outcome the risk model learns; other outcomes are only recorded."""


# The twin's keys of the analytes the risk model reads.
_LATEST_LABS = tuple((f"lab.{analyte}", analyte) for analyte in LAB_REFERENCE)


def summarize(twin: TwinState) -> TwinSummary:
    """The risk model's view of a twin (labs: the latest values, in canonical units,
    of the analytes it reads, :data:`~twin.learning.risk.LAB_REFERENCE`)."""
    a = twin.assessment
    profile = twin.profile
    first = twin.first_event_at
    # Looked up, not found by scanning every latest value for a "lab." name:
    # a replayed ICU stay's twin holds 15-30 latest values, the model reads 8 labs.
    latest = twin.latest
    labs: dict[str, float] = {}
    for key, analyte in _LATEST_LABS:
        o = latest.get(key)
        if o is not None and isinstance(o.value, (int, float)):  # a tuple: faster
            labs[analyte] = float(o.value)
    oxygen = twin.value("on_oxygen")
    return TwinSummary(
        news2_total=a.news2.total if a else None,
        news2_subscores=dict(a.news2.subscores) if a else {},
        news2_max=twin.news2_max,
        qsofa=a.qsofa.score if a else None,
        on_oxygen=oxygen if isinstance(oxygen, bool) else None,
        age_years=float(profile.age) if profile and profile.age is not None else None,
        hours_observed=0.0
        if first is None or twin.last_vitals_at is None
        else (twin.last_vitals_at - first) / 3600.0,
        slopes_per_hour=_slopes_per_hour(twin),
        worst_labs=labs,
        alerts=len(twin.open_alerts),
        deviating_vitals=sum(1 for s in twin.signals if s.deviating),
        sustained_changes=sum(1 for r in twin.open_alerts if r.startswith("change.")),
    )


def _slopes_per_hour(twin: TwinState) -> dict[str, float]:
    """The forecasters' trends of the vitals just observed."""
    if not twin.signals:
        return {}
    models = twin.patient_models().models
    return {
        s.vital: slope
        for s in twin.signals
        if (slope := models(s.vital).forecaster.slope_per_hour) is not None
    }


# Where feature_vector writes each feature: its position in FEATURE_NAMES.
_AT = {name: i for i, name in enumerate(FEATURE_NAMES)}
_NOTHING_KNOWN = list(features(TwinSummary()).values())
_TOTAL, _TOTAL_MISSING = _AT["news2_total"], _AT["news2_total_missing"]
_MAX, _MAX_MISSING = _AT["news2_max"], _AT["news2_max_missing"]
_QSOFA, _QSOFA_MISSING = _AT["qsofa"], _AT["qsofa_missing"]
_OXYGEN, _OXYGEN_MISSING = _AT["on_oxygen"], _AT["on_oxygen_missing"]
_AGE, _AGE_MISSING = _AT["age_years"], _AT["age_years_missing"]
_LOG_HOURS, _LOG_ALERTS = _AT["log_hours_observed"], _AT["log_alerts"]
_DEVIATING, _SUSTAINED = _AT["deviating_vitals"], _AT["sustained_changes"]
_SUBSCORES_AT = {
    name: (_AT[f"news2_{name}"], _AT[f"news2_{name}_missing"]) for name in NEWS2_SUBSCORES
}
_SLOPES_AT = {name: (_AT[f"slope_{name}"], _AT[f"slope_{name}_missing"]) for name in SLOPE_VITALS}
# (the twin's key, (position, upper limit) of the excess above it, (position,
# lower limit) of the shortfall below it, position of the missing flag)
_LABS_AT = tuple(
    (
        f"lab.{analyte}",
        None if high is None else (_AT[f"lab_{analyte}_above"], high),
        None if low is None else (_AT[f"lab_{analyte}_below"], low),
        _AT[f"lab_{analyte}_missing"],
    )
    for analyte, (low, high) in LAB_REFERENCE.items()
)


def feature_vector(twin: TwinState) -> list[float]:
    """The values of ``features(summarize(twin))``, in
    :data:`~twin.learning.risk.FEATURE_NAMES` order, read straight from the twin:
    what a scored vitals set is predicted from and kept as (without the summary
    and the dict copy, about half the cost)."""
    out = _NOTHING_KNOWN.copy()
    a = twin.assessment
    total = None
    if a is not None:
        total = a.news2.total
        if total is not None:
            out[_TOTAL], out[_TOTAL_MISSING] = float(total), 0.0
        for name, subscore in a.news2.subscores.items():  # the scored ones only
            if subscore is not None and name in _SUBSCORES_AT:
                at, missing = _SUBSCORES_AT[name]
                out[at], out[missing] = float(subscore), 0.0
        if a.qsofa.score is not None:
            out[_QSOFA], out[_QSOFA_MISSING] = float(a.qsofa.score), 0.0
    if twin.news2_max is not None:
        out[_MAX], out[_MAX_MISSING] = float(twin.news2_max), 0.0
    elif total is not None:
        out[_MAX] = total  # as features() imputes it: the int itself
    oxygen = twin.value("on_oxygen")
    if isinstance(oxygen, bool):
        out[_OXYGEN], out[_OXYGEN_MISSING] = float(oxygen), 0.0
    profile = twin.profile
    if profile is not None and profile.age is not None:
        out[_AGE], out[_AGE_MISSING] = float(profile.age), 0.0
    first, last = twin.first_event_at, twin.last_vitals_at
    hours = 0.0 if first is None or last is None else (last - first) / 3600.0
    out[_LOG_HOURS] = math.log1p(0.0 if hours < 0.0 else hours)  # max(hours, 0.0)
    _write_signals(twin, out)
    _write_labs(twin, out)
    alerts = twin.open_alerts
    if alerts:  # none open: the imputed 0.0s
        out[_LOG_ALERTS] = math.log1p(len(alerts))
        out[_SUSTAINED] = float(sum(1 for rule in alerts if rule.startswith("change.")))
    return out


def _write_signals(twin: TwinState, out: list[float]) -> None:
    """The forecasters' slopes of the vitals just observed, and how many deviate."""
    signals = twin.signals
    if not signals:
        return
    models = twin.patient_models().models
    deviating = 0
    for s in signals:
        # Asked for every vital, as summarize does (asking hands the models out).
        slope = models(s.vital).forecaster.slope_per_hour
        if slope is not None and s.vital in _SLOPES_AT:
            at, missing = _SLOPES_AT[s.vital]
            out[at], out[missing] = float(slope), 0.0
        if s.deviating:
            deviating += 1
    out[_DEVIATING] = float(deviating)


def _write_labs(twin: TwinState, out: list[float]) -> None:
    """The latest value of each lab the model reads, as its excess beyond the reference."""
    latest = twin.latest
    for key, above, below, missing in _LABS_AT:
        o = latest.get(key)
        if o is not None and isinstance(o.value, (int, float)):  # a tuple: faster
            lab = float(o.value)
            # max(excess, 0.0), ties and NaN as it gives them, without the call
            if above is not None:
                excess = lab - above[1]
                out[above[0]] = 0.0 if excess < 0.0 else excess
            if below is not None:
                excess = below[1] - lab
                out[below[0]] = 0.0 if excess < 0.0 else excess
            out[missing] = 0.0


class PartitionModels:
    """The shared models one partition's twins use, and their pending labels."""

    def __init__(
        self,
        risk: RiskModel,
        anomaly: PopulationAnomalyModel | None = None,
        *,
        every_s: float = 900.0,
    ) -> None:
        self.risk = risk
        self.anomaly = anomaly if anomaly is not None else PopulationAnomalyModel()
        self.pending = PendingLabels(horizon_s=30 * 24 * 3600.0)
        self.every_s = every_s

    def after_vitals(self, twin: TwinState) -> bool:
        """Score the twin's newest vitals (anomaly, risk); True if it was scored."""
        at = twin.last_vitals_at
        if not twin.signals or at is None:
            return False
        if twin.risk_at is not None and at - twin.risk_at < self.every_s:
            return False
        z = {s.vital: s.z for s in twin.signals}
        twin.anomaly = round(self.anomaly.score_and_learn_one(z), 4)
        x = feature_vector(twin)  # features(summarize(twin)), as a list
        twin.risk = round(self.risk.predict_proba_vector(x), 4)
        twin.risk_at = at
        self.pending.add_vector(twin.patient_id, x, at)
        return True

    def on_outcome(self, twin: TwinState, event: OutcomeEvent) -> int:
        """Learn the risk model from the twin's scored features; return how many.

        Every score of the stay made before the outcome is labelled with it
        (an end-of-stay outcome such as in-hospital death applies to the whole
        stay). A repeated outcome message teaches nothing twice.
        """
        if event.outcome != RISK_OUTCOME:
            return 0
        examples = self.pending.outcome(twin.patient_id, event.observed_at.timestamp())
        label = event.value >= 0.5
        for example in examples:
            self.risk.learn(example.features, label)
        return len(examples)
