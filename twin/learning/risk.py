"""An online deterioration risk model that learns from delayed outcomes.

A :class:`TwinSummary` (plain values the twin already has: NEWS2 and its
subscores, qSOFA, slopes from the forecasters, the worst labs seen, alert
counts) becomes a fixed feature vector with :func:`features`. Every missing
value is imputed with a clinically normal value *and* flagged by a
``<name>_missing`` feature, so the model can learn what absence means instead
of reading it as normal. Labs enter as their excess beyond the reference
interval (``lab_lactate_above``, ``lab_ph_below``...), which keeps U-shaped
risks (potassium, pH, white cells) monotone for a linear model.

The model is river's ``preprocessing.StandardScaler() |
linear_model.LogisticRegression()``: online, calibrated enough to read as a
probability, and explainable (:meth:`RiskModel.weights` are log-odds per
standard deviation), which a bedside risk score needs more than the last
point of AUROC. It is shared by all patients of a partition.

Outcomes arrive hours after a score. :class:`PendingLabels` keeps the
features as scored, bounded, and turns them into labelled examples: positive
when an outcome event follows within ``horizon_s``, negative once
``horizon_s`` has passed without one.
"""

from __future__ import annotations

import math
import pickle
import struct
from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from river import compose, linear_model, optim, preprocessing
from river.utils.math import sigmoid

from twin.learning.errors import LearnedStateError, UnsupportedLearnedStateVersion

__all__ = [
    "LAB_REFERENCE",
    "NEWS2_SUBSCORES",
    "RISK_STATE_VERSION",
    "SLOPE_VITALS",
    "LabelledExample",
    "PendingLabels",
    "RiskModel",
    "TwinSummary",
    "features",
    "worst_lab",
]

RISK_STATE_VERSION = 1
_MAGIC = b"TWRISK"

NEWS2_SUBSCORES: tuple[str, ...] = (
    "respiratory_rate",
    "spo2",
    "air_or_oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "temperature_c",
)
SLOPE_VITALS: tuple[str, ...] = (
    "heart_rate",
    "respiratory_rate",
    "spo2",
    "systolic_bp",
    "temperature_c",
)
# Adult reference intervals in the canonical units of ``schemas.labs``; None
# where that side carries no deterioration risk.
LAB_REFERENCE: Mapping[str, tuple[float | None, float | None]] = {
    "lactate": (None, 2.0),  # mmol/L
    "creatinine": (None, 1.2),  # mg/dL
    "potassium": (3.5, 5.0),  # mmol/L
    "white_cell_count": (4.0, 12.0),  # 10^9/L (SIRS bounds)
    "platelets": (150.0, None),  # 10^9/L
    "bilirubin": (None, 1.2),  # mg/dL
    "ph": (7.35, 7.45),
    "bicarbonate": (22.0, None),  # mmol/L
}
_AGE_IMPUTED = 65.0


@dataclass(slots=True)
class TwinSummary:
    """What the risk model reads from a twin; None means not known.

    ``news2_subscores`` holds the parameters that were scored;
    ``slopes_per_hour`` the forecasters' trends (units per hour);
    ``worst_labs`` the worst value of each analyte seen (see :func:`worst_lab`).

    Read it, do not change it. Not ``frozen``, which costs ~90 ns per field in
    ``__init__`` (``object.__setattr__``): one is built per scored vitals set.
    """

    news2_total: int | None = None
    news2_subscores: Mapping[str, int] = field(default_factory=dict)
    news2_max: int | None = None
    qsofa: int | None = None
    on_oxygen: bool | None = None
    age_years: float | None = None
    hours_observed: float = 0.0
    slopes_per_hour: Mapping[str, float] = field(default_factory=dict)
    worst_labs: Mapping[str, float] = field(default_factory=dict)
    alerts: int = 0
    deviating_vitals: int = 0
    sustained_changes: int = 0


def worst_lab(analyte: str, seen: float | None, value: float) -> float:
    """The worse of ``seen`` and ``value`` for ``analyte``, by :data:`LAB_REFERENCE`.

    Higher is worse for lactate, lower for platelets, farther from the middle
    of the interval for potassium, pH and white cells.

    >>> worst_lab("lactate", 3.1, 2.4), worst_lab("platelets", 90.0, 140.0)
    (3.1, 90.0)
    >>> worst_lab("potassium", 3.0, 5.8)
    5.8
    """
    if seen is None:
        return value
    low, high = LAB_REFERENCE[analyte]
    if low is not None and high is not None:
        middle = (low + high) / 2
        return value if abs(value - middle) > abs(seen - middle) else seen
    return max(seen, value) if high is not None else min(seen, value)


# Feature names built once, not per vector (the order of a vector's keys is its
# order here, which the pending labels' packed form relies on).
_SUBSCORE_KEYS = tuple((n, f"news2_{n}", f"news2_{n}_missing") for n in NEWS2_SUBSCORES)
_SLOPE_KEYS = tuple((n, f"slope_{n}", f"slope_{n}_missing") for n in SLOPE_VITALS)
_LAB_KEYS = tuple(
    (a, low, high, f"lab_{a}_above", f"lab_{a}_below", f"lab_{a}_missing")
    for a, (low, high) in LAB_REFERENCE.items()
)


def _nothing_known() -> dict[str, float]:
    """Every feature, in vector order, as for a summary that knows nothing: each
    value imputed and flagged missing (the last four are always overwritten)."""
    out: dict[str, float] = {}
    for name, imputed in (("news2_total", 0.0), ("news2_max", 0.0)):
        out[name], out[f"{name}_missing"] = imputed, 1.0
    for _, key, missing in _SUBSCORE_KEYS:
        out[key], out[missing] = 0.0, 1.0
    for name, imputed in (("qsofa", 0.0), ("on_oxygen", 0.0), ("age_years", _AGE_IMPUTED)):
        out[name], out[f"{name}_missing"] = imputed, 1.0
    out["log_hours_observed"] = 0.0
    for _, key, missing in _SLOPE_KEYS:
        out[key], out[missing] = 0.0, 1.0
    for _, low, high, above, below, missing in _LAB_KEYS:
        if high is not None:
            out[above] = 0.0
        if low is not None:
            out[below] = 0.0
        out[missing] = 1.0
    out["log_alerts"] = out["deviating_vitals"] = out["sustained_changes"] = 0.0
    return out


_NOTHING_KNOWN = _nothing_known()


def features(summary: TwinSummary) -> dict[str, float]:
    """The feature vector of ``summary``: always the same keys, no value silently 0.

    A copy of the all-missing vector with what is known written over it (a
    summary knows a fraction of the labs and slopes, and copying is cheaper
    than writing every key).

    >>> x = features(TwinSummary(news2_total=6, worst_labs={"lactate": 4.5}))
    >>> x["news2_total"], x["news2_total_missing"], x["lab_lactate_above"]
    (6.0, 0.0, 2.5)
    >>> x["lab_ph_below"], x["lab_ph_missing"], x["age_years"], x["age_years_missing"]
    (0.0, 1.0, 65.0, 1.0)
    >>> x["news2_max"], x["news2_max_missing"]  # imputed with the current total
    (6, 1.0)
    """
    s = summary
    out = _NOTHING_KNOWN.copy()
    total = s.news2_total
    if total is not None:
        out["news2_total"], out["news2_total_missing"] = float(total), 0.0
    if s.news2_max is not None:
        out["news2_max"], out["news2_max_missing"] = float(s.news2_max), 0.0
    elif total is not None:
        out["news2_max"] = total
    subscores = s.news2_subscores
    for name, key, missing in _SUBSCORE_KEYS:
        subscore = subscores.get(name)
        if subscore is not None:
            out[key], out[missing] = float(subscore), 0.0
    if s.qsofa is not None:
        out["qsofa"], out["qsofa_missing"] = float(s.qsofa), 0.0
    if s.on_oxygen is not None:
        out["on_oxygen"], out["on_oxygen_missing"] = float(s.on_oxygen), 0.0
    if s.age_years is not None:
        out["age_years"], out["age_years_missing"] = float(s.age_years), 0.0
    out["log_hours_observed"] = math.log1p(max(s.hours_observed, 0.0))
    slopes = s.slopes_per_hour
    if slopes:
        for name, key, missing in _SLOPE_KEYS:
            slope = slopes.get(name)
            if slope is not None:
                out[key], out[missing] = float(slope), 0.0
    labs = s.worst_labs
    if labs:
        for analyte, low, high, above, below, missing in _LAB_KEYS:
            lab = labs.get(analyte)
            if lab is not None:
                if high is not None:
                    out[above] = max(lab - high, 0.0)
                if low is not None:
                    out[below] = max(low - lab, 0.0)
                out[missing] = 0.0
    out["log_alerts"] = math.log1p(max(s.alerts, 0))
    out["deviating_vitals"] = float(s.deviating_vitals)
    out["sustained_changes"] = float(s.sustained_changes)
    return out


FEATURE_NAMES: tuple[str, ...] = tuple(features(TwinSummary()))
"""The keys of every :func:`features` vector, in its order."""
_FEATURE_LIST = list(FEATURE_NAMES)  # compared with list(x): faster than tuples


class RiskModel:
    """Online logistic regression on standardised features, shared per partition.

    Examples
    --------
    >>> model = RiskModel()
    >>> sick = features(TwinSummary(news2_total=9, worst_labs={"lactate": 5.0}))
    >>> well = features(TwinSummary(news2_total=0, worst_labs={"lactate": 1.0}))
    >>> for _ in range(200):
    ...     model.learn(sick, True)
    ...     model.learn(well, False)
    >>> model.predict_proba(sick) > 0.9 > 0.1 > model.predict_proba(well)
    True
    >>> RiskModel.loads(model.dumps()).predict_proba(sick) == model.predict_proba(sick)
    True
    """

    __slots__ = ("_classifier", "_pipeline", "_scaler", "_terms", "n_learned")

    def __init__(
        self, *, learning_rate: float = 0.05, intercept_lr: float = 0.1, l2: float = 1e-4
    ) -> None:
        self._use(
            preprocessing.StandardScaler()
            | linear_model.LogisticRegression(
                optimizer=optim.SGD(learning_rate), intercept_lr=intercept_lr, l2=l2
            )
        )
        self.n_learned = 0

    def _use(self, pipeline: Any) -> None:
        self._pipeline = pipeline
        # Its two steps, called directly when predicting (the pipeline's own
        # predict_proba_one does the same through a few more calls and a copy).
        self._scaler: Any = pipeline["StandardScaler"]
        self._classifier: Any = pipeline["LogisticRegression"]
        self._terms: tuple[tuple[int, float, float, float], ...] | None = None

    def predict_proba(self, features: Mapping[str, float]) -> float:
        """Probability of the outcome (0.5 before anything was learned)."""
        if list(features) == _FEATURE_LIST:
            return self.predict_proba_vector(list(features.values()))
        return self._river_proba(features)

    def predict_proba_vector(self, values: Sequence[float]) -> float:
        """:meth:`predict_proba` of the :func:`features` vector whose values, in
        :data:`FEATURE_NAMES` order, are ``values``.

        River's arithmetic on plain numbers: ``StandardScaler.transform_one``
        then ``LogisticRegression.predict_proba_one`` give the same float, with
        the scaler's statistics and the weights read once per learned example
        (the dict-based calls cost ~10x more, once per scored vitals set).
        """
        terms = self._terms
        if terms is None or compose.Pipeline._LEARN_UNSUPERVISED_DURING_PREDICT:
            terms = self._terms = self._linear_terms()
            if terms is None:
                return self._river_proba(dict(zip(FEATURE_NAMES, values, strict=True)))
        logit = 0.0  # river's dot product: a sum in the vector's order, from 0.0
        for i, mean, std, weight in terms:
            logit += ((values[i] - mean) / std) * weight
        return float(sigmoid(logit + self._classifier.intercept))

    def _linear_terms(self) -> tuple[tuple[int, float, float, float], ...] | None:
        """(position, mean, standard deviation, weight) of each feature that moves the
        logit, in :data:`FEATURE_NAMES` order; None when only river's own calls give
        its result (its opt-in mode, another loss or scaling, or a feature the scaler
        has not seen: ``transform_one`` then adds it to the scaler's statistics)."""
        scaler, classifier = self._scaler, self._classifier
        if (
            compose.Pipeline._LEARN_UNSUPERVISED_DURING_PREDICT  # river's opt-in mode
            or type(classifier.loss) is not optim.losses.Log
            or scaler.window_size is not None
            or not scaler.with_std
        ):
            return None
        means, variances, weights = scaler.means, scaler.vars, classifier.weights
        terms = []
        for i, name in enumerate(FEATURE_NAMES):
            variance = variances.get(name)
            if variance is None or (variance and name not in means):
                return None
            weight = weights.get(name)
            if weight is None:  # river's dot product skips a feature without a weight
                continue
            if not variance:
                # Scaled to 0.0: a finite weight adds +-0.0 to a sum that starts
                # at +0.0, which leaves it unchanged.
                if not math.isfinite(weight):
                    return None
                continue
            std = variance**0.5  # river's expression (not math.sqrt)
            if type(std) is not float:  # a negative variance: whatever river makes of it
                return None
            terms.append((i, means[name], std, weight))
        return tuple(terms)

    def _river_proba(self, features: Mapping[str, float]) -> float:
        if compose.Pipeline._LEARN_UNSUPERVISED_DURING_PREDICT:  # river's opt-in mode
            return float(self._pipeline.predict_proba_one(dict(features))[True])
        x = self._scaler.transform_one(features)  # a new dict; ``features`` is not changed
        return float(self._classifier.predict_proba_one(x)[True])

    def learn(self, features: Mapping[str, float], outcome: bool) -> None:
        """Learn one labelled example (the features as they were when scored)."""
        self._pipeline.learn_one(dict(features), bool(outcome))
        self._terms = None  # the statistics and weights have moved
        self.n_learned += 1

    def weights(self) -> dict[str, float]:
        """Log-odds per standard deviation of each feature, largest effect first."""
        learned = self._pipeline["LogisticRegression"].weights
        return dict(sorted(learned.items(), key=lambda item: -abs(item[1])))

    def dumps(self) -> bytes:
        """Versioned checkpoint bytes (a tag, then a pickle of the river pipeline)."""
        payload = pickle.dumps((self._pipeline, self.n_learned), protocol=5)
        return _MAGIC + bytes([RISK_STATE_VERSION]) + payload

    @classmethod
    def loads(cls, raw: bytes) -> Self:
        """Rebuild a model from :meth:`dumps` (trusted bytes from our own store only)."""
        if not raw.startswith(_MAGIC) or len(raw) <= len(_MAGIC):
            raise LearnedStateError("not a risk model checkpoint (bad magic)")
        version = raw[len(_MAGIC)]
        if version != RISK_STATE_VERSION:
            raise UnsupportedLearnedStateVersion(
                f"risk model checkpoint version {version}, this build reads "
                f"{RISK_STATE_VERSION}: upgrade the worker or start a new model"
            )
        try:
            # The bytes come from the partition's own checkpoint key, never from outside.
            pipeline, n_learned = pickle.loads(raw[len(_MAGIC) + 1 :])  # noqa: S301
        except Exception as exc:
            raise LearnedStateError(f"risk model checkpoint is corrupt: {exc}") from exc
        model = cls()
        model._use(pipeline)
        model.n_learned = int(n_learned)
        return model


@dataclass(frozen=True, slots=True)
class LabelledExample:
    """Features as scored at ``scored_at``, now with their outcome."""

    patient_id: str
    scored_at: float
    features: Mapping[str, float]
    outcome: bool


_VECTOR = struct.Struct(f"@{len(FEATURE_NAMES)}d")  # native doubles, as array("d") holds


def _pack(x: Mapping[str, float]) -> Mapping[str, float] | array[float]:
    if list(x) == _FEATURE_LIST:
        return array("d", _VECTOR.pack(*x.values()))  # faster than from a list of them
    return x  # any other mapping is kept as given


def _unpack(x: Mapping[str, float] | array[float]) -> Mapping[str, float]:
    return dict(zip(FEATURE_NAMES, x, strict=True)) if isinstance(x, array) else x


class PendingLabels:
    """Scored feature vectors waiting for their outcome, bounded in memory.

    Each patient keeps at most ``max_per_patient`` (oldest dropped first) and
    all together at most ``capacity`` (new ones refused when full); both count
    in ``dropped``. Times are event times.

    Examples
    --------
    >>> pending = PendingLabels(horizon_s=3600.0)
    >>> pending.add("p1", {"news2_total": 5.0}, at=0.0)
    >>> pending.add("p1", {"news2_total": 7.0}, at=1800.0)
    >>> pending.add("p2", {"news2_total": 1.0}, at=0.0)
    >>> [(e.patient_id, e.scored_at, e.outcome) for e in pending.outcome("p1", event_at=3000.0)]
    [('p1', 0.0, True), ('p1', 1800.0, True)]
    >>> [(e.patient_id, e.outcome) for e in pending.expire(now=3600.0)], len(pending)
    ([('p2', False)], 0)
    """

    __slots__ = ("_by_patient", "_size", "capacity", "dropped", "horizon_s", "max_per_patient")

    # A full feature vector (the keys :func:`features` always gives, in its order)
    # is kept as 8-byte floats: ~0.5 KB instead of ~3.5 KB as a dict of floats, for
    # each of up to ``capacity`` scores (100,000 twins scored once: ~300 MB less).

    def __init__(
        self, *, horizon_s: float = 24 * 3600.0, max_per_patient: int = 48, capacity: int = 100_000
    ) -> None:
        self.horizon_s = horizon_s
        self.max_per_patient = max_per_patient
        self.capacity = capacity
        self.dropped = 0
        self._size = 0
        self._by_patient: dict[str, deque[tuple[float, Mapping[str, float] | array[float]]]] = {}

    def __len__(self) -> int:
        return self._size

    def add(self, patient_id: str, features: Mapping[str, float], at: float) -> None:
        """Keep ``features`` scored at ``at`` until its outcome is known."""
        queue = self._room(patient_id)
        if queue is not None:
            queue.append((at, _pack(features)))
            self._size += 1

    def add_vector(self, patient_id: str, values: Sequence[float], at: float) -> None:
        """:meth:`add` the :func:`features` vector whose values, in
        :data:`FEATURE_NAMES` order, are ``values``."""
        queue = self._room(patient_id)
        if queue is not None:
            queue.append((at, array("d", _VECTOR.pack(*values))))
            self._size += 1

    def _room(
        self, patient_id: str
    ) -> deque[tuple[float, Mapping[str, float] | array[float]]] | None:
        """The patient's queue with room for one more, or None if all are full."""
        queue = self._by_patient.get(patient_id)
        if queue is None:  # not setdefault: that would build a deque every time
            queue = self._by_patient[patient_id] = deque()
        if len(queue) >= self.max_per_patient:
            queue.popleft()
            self._size -= 1
            self.dropped += 1
        if self._size >= self.capacity:
            self.dropped += 1
            if not queue:
                del self._by_patient[patient_id]
            return None
        return queue

    def outcome(self, patient_id: str, event_at: float) -> list[LabelledExample]:
        """The outcome happened at ``event_at``: label what was scored before it.

        Scores within ``horizon_s`` before the event are positive, older ones
        negative; scores after the event stay pending.
        """
        queue = self._by_patient.get(patient_id)
        out: list[LabelledExample] = []
        while queue and queue[0][0] <= event_at:
            at, x = queue.popleft()
            out.append(LabelledExample(patient_id, at, _unpack(x), event_at - at <= self.horizon_s))
        self._forget_if_empty(patient_id)
        self._size -= len(out)
        return out

    def expire(self, now: float) -> list[LabelledExample]:
        """Negatives: scores older than ``horizon_s`` at ``now`` with no outcome.

        Call it with a watermark that trails the outcome topic, so that a late
        outcome is not read as its absence.
        """
        out: list[LabelledExample] = []
        for patient_id, queue in list(self._by_patient.items()):
            while queue and now - queue[0][0] >= self.horizon_s:
                at, x = queue.popleft()
                out.append(LabelledExample(patient_id, at, _unpack(x), False))
            self._forget_if_empty(patient_id)
        self._size -= len(out)
        return out

    def discard(self, patient_id: str) -> int:
        """Forget a patient's pending scores (e.g. transferred out); how many."""
        queue = self._by_patient.pop(patient_id, None)
        n = len(queue) if queue else 0
        self._size -= n
        return n

    def _forget_if_empty(self, patient_id: str) -> None:
        queue = self._by_patient.get(patient_id)
        if queue is not None and not queue:
            del self._by_patient[patient_id]
