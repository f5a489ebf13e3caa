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

from schemas.outcomes import OutcomeEvent
from twin.learning.anomaly import PopulationAnomalyModel
from twin.learning.risk import LAB_REFERENCE, PendingLabels, RiskModel, TwinSummary, features
from twin.state import TwinState

__all__ = ["RISK_OUTCOME", "PartitionModels", "summarize"]

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
        x = features(summarize(twin))
        twin.risk = round(self.risk.predict_proba(x), 4)
        twin.risk_at = at
        self.pending.add(twin.patient_id, x, at)
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
