"""Learned state of the twins: behaviour of each model and the round-trip contract.

The contract, as river's ``check_estimator`` checks pickling: learn, encode,
decode, and the *next* output of the decoded model is identical (``==``) to
the original's, for every component and for ``PatientModels`` as a whole.
"""

from __future__ import annotations

import math
import pickle
import random
import statistics
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from river import drift, metrics, stats, time_series

from twin.learning.anomaly import PopulationAnomalyModel
from twin.learning.baseline import BaselineParams, PersonalBaseline
from twin.learning.codec import (
    LEARNED_STATE_VERSION,
    LearningConfig,
    PatientModels,
    VitalSignals,
)
from twin.learning.drift import DriftParams, SustainedChange, SustainedChangeDetector
from twin.learning.errors import LearnedStateError, UnsupportedLearnedStateVersion
from twin.learning.forecast import (
    ForecastParams,
    VitalForecaster,
    _mean2,
    projected_news2_inputs,
)
from twin.learning.risk import (
    LAB_REFERENCE,
    NEWS2_SUBSCORES,
    PendingLabels,
    RiskModel,
    TwinSummary,
    features,
    worst_lab,
)
from twin.learning.vitals import VITAL_NAMES, VITALS
from twin.scores import news2

pytestmark = pytest.mark.unit

FIVE_MIN = 300.0
NORMAL = {
    "heart_rate": (75.0, 5.0),
    "respiratory_rate": (16.0, 2.0),
    "spo2": (97.0, 1.0),
    "systolic_bp": (122.0, 8.0),
    "diastolic_bp": (76.0, 6.0),
    "temperature_c": (37.0, 0.2),
}


def stream(
    seed: int, n: int, vitals: tuple[str, ...] = VITAL_NAMES
) -> Iterator[tuple[str, float, float]]:
    """``n`` vitals sets every 5 minutes around NORMAL, as (vital, value, at)."""
    rng = random.Random(seed)
    for i in range(n):
        for name in vitals:
            mean, sd = NORMAL[name]
            yield name, rng.gauss(mean, sd), i * FIVE_MIN


def hr_changes(values: list[float], dt: float = FIVE_MIN) -> tuple[list[SustainedChange], int]:
    """Confirmed changes and raw PageHinkley alarms of a heart rate series."""
    detector = SustainedChangeDetector(DriftParams(scale=VITALS["heart_rate"].scale))
    changes, alarms = [], 0
    for i, value in enumerate(values):
        change = detector.update(value, i * dt)
        alarms += detector.drift_detected
        if change is not None:
            changes.append(change)
    return changes, alarms


# -- the round-trip contract ------------------------------------------------------------


def test_baseline_round_trip_next_reading_identical() -> None:
    params = BaselineParams(min_std=3.0)
    original = PersonalBaseline(params)
    for _, value, _ in stream(1, 40, ("heart_rate",)):
        original.update(value)
    restored = PersonalBaseline.from_bytes(original.to_bytes(), params)
    assert len(original.to_bytes()) == 22
    for value in (75.0, 140.0, 20.0):  # typical, anomalous high, anomalous low
        assert restored.update(value) == original.update(value)
        assert restored.to_bytes() == original.to_bytes()


@pytest.mark.parametrize("step_at", [None, 30])
def test_drift_round_trip_next_update_identical(step_at: int | None) -> None:
    rng = random.Random(2)
    params = DriftParams(scale=5.0)
    original = SustainedChangeDetector(params)
    values = [
        rng.gauss(95.0 if step_at is not None and i >= step_at else 75.0, 4) for i in range(60)
    ]
    for i, value in enumerate(values[:-10]):
        original.update(value, i * FIVE_MIN)
        restored = SustainedChangeDetector.from_bytes(original.to_bytes(), params)
        assert restored.to_bytes() == original.to_bytes()
        assert restored.pending == original.pending
        assert restored.drift_detected == original.drift_detected
    for i, value in enumerate(values[-10:], start=50):
        assert restored.update(value, i * FIVE_MIN) == original.update(value, i * FIVE_MIN)
        assert restored.level == original.level
    assert len(original.to_bytes()) in (79, 95)


def test_forecaster_round_trip_in_every_phase() -> None:
    params = ForecastParams(low=20.0, high=220.0)
    original = VitalForecaster(params)
    # Bursts within a step, new steps, a long gap (restart): every phase and branch.
    times = [0, 10, 400, 420, 430, 800, 1200, 1210, 40_000, 40_005, 40_400, 40_800]
    for k, at in enumerate(times):
        restored = VitalForecaster.from_bytes(original.to_bytes(), params)
        assert restored.to_bytes() == original.to_bytes()
        assert restored.forecast() == original.forecast()
        value = 80.0 + 3 * math.sin(k)
        original.update(value, at)
        restored.update(value, at)
        assert restored.forecast() == original.forecast()
        assert restored.to_bytes() == original.to_bytes()
    assert len(original.to_bytes()) == 59


def test_patient_models_round_trip_next_signals_identical() -> None:
    original = PatientModels()
    observations = list(stream(3, 120))
    for vital, value, at in observations[:-12]:
        original.observe(vital, value, at)
    restored = PatientModels.decode(original.encode())
    assert restored.encode() == original.encode()
    for vital, value, at in observations[-12:]:
        assert restored.observe(vital, value, at) == original.observe(vital, value, at)
    assert restored.encode() == original.encode()
    assert restored.forecasts() == original.forecasts()


vital_names = st.sampled_from(VITAL_NAMES)
readings = st.tuples(
    vital_names,
    st.floats(min_value=-5.0, max_value=5.0),  # in SDs of the vital's NORMAL
    st.sampled_from([0.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 30_000.0]),
    st.booleans(),  # a spike
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(readings, min_size=1, max_size=250), st.data())
def test_patient_models_round_trip_property(
    sequence: list[tuple[str, float, float, bool]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(sequence)), label="cut")
    original, restored, at = PatientModels(), None, 1.7e9
    for k, (vital, sds, gap, spike) in enumerate(sequence):
        if k == cut:
            restored = PatientModels.decode(original.encode())
            assert restored.encode() == original.encode()
        mean, sd = NORMAL[vital]
        value = mean + (sds + (8.0 if spike else 0.0)) * sd
        at += gap
        signals = original.observe(vital, value, at)
        if restored is not None:
            assert restored.observe(vital, value, at) == signals
    if restored is not None:
        assert restored.encode() == original.encode()


# -- baseline ---------------------------------------------------------------------------


@pytest.mark.parametrize("fading_factor", [0.5, 0.75, 1.0])
def test_baseline_is_river_ewmean_and_ewvar_bit_for_bit(fading_factor: float) -> None:
    params = BaselineParams(fading_factor=fading_factor, anomaly_z=math.inf)
    baseline = PersonalBaseline(params)
    mean, var = stats.EWMean(fading_factor), stats.EWVar(fading_factor)
    for _, value, _ in stream(4, 500, ("heart_rate",)):
        baseline.update(value)
        mean.update(value)
        var.update(value)
        assert baseline.mean == mean.get()
        assert baseline.variance == var.get()


def test_baseline_small_fading_factor_starts_as_a_plain_average() -> None:
    # River's EWMean(0.02) would still weigh the first reading 80 % after twelve.
    baseline = PersonalBaseline(BaselineParams(fading_factor=0.02))
    values = [70.0, 90.0, 75.0, 85.0, 80.0, 72.0]
    for value in values:
        baseline.update(value)
    assert baseline.mean == pytest.approx(sum(values) / len(values))


def test_baseline_warm_up_is_not_trusted() -> None:
    baseline = PersonalBaseline(BaselineParams(warmup=12, min_std=3.0))
    for i in range(12):
        reading = baseline.update(75.0 + i % 3)
        assert (reading.trusted, reading.z, reading.anomalous) == (False, None, False)
    reading = baseline.update(500.0)  # not judged yet: it is the 13th reading that is
    assert reading.trusted and reading.z is not None and reading.anomalous


def test_baseline_anomalous_readings_do_not_teach() -> None:
    baseline = PersonalBaseline(BaselineParams(min_std=3.0))
    for _, value, _ in stream(5, 50, ("heart_rate",)):
        baseline.update(value)
    before = (baseline.mean, baseline.variance, baseline.n)
    for value in (160.0, 30.0, 170.0):
        assert baseline.update(value).anomalous
    assert (baseline.mean, baseline.variance, baseline.n) == before
    assert not baseline.update(76.0).anomalous
    assert baseline.n == before[2] + 1


def test_baseline_deviation_after_n_consecutive_readings_on_one_side() -> None:
    params = BaselineParams(warmup=12, deviation_k=3.0, deviation_n=3, min_std=1.0)
    baseline = PersonalBaseline(params)
    for i in range(200):
        baseline.update(70.0 + (i % 2))  # mean 70.5, std 0.5 -> floored at 1.0
    # 3.5 SD: beyond k, so counted, but within anomaly_z, so still taught.
    flags = [baseline.update(value).deviating for value in (74.0, 74.0, 74.0, 74.0)]
    assert flags == [False, False, True, True]
    assert not baseline.update(66.0).deviating  # the other side restarts the run
    assert not baseline.update(70.5).deviating
    assert not baseline.deviating


def test_sustained_shift_rebases_the_baseline() -> None:
    rng = random.Random(6)
    models, at = PatientModels(), 0.0
    for _ in range(72):  # 6 h at 72 bpm
        models.observe("heart_rate", rng.gauss(72, 3), at)
        at += FIVE_MIN
    shifted = []
    for _ in range(48):  # then 4 h at 97 bpm
        shifted.append(models.observe("heart_rate", rng.gauss(97, 3), at))
        at += FIVE_MIN
    assert shifted[0].anomalous and shifted[3].deviating  # not learned at first...
    changes = [s.sustained_change for s in shifted if s.sustained_change is not None]
    assert len(changes) == 1 and changes[0].direction == "up"
    assert 20 < changes[0].magnitude < 30
    last = shifted[-12:]  # ...but the confirmed change re-based it
    assert not any(s.anomalous or s.deviating for s in last)
    assert last[-1].mean == pytest.approx(97, abs=3)


# -- drift ------------------------------------------------------------------------------


def test_drift_heart_rate_step_up_fires_once_with_direction_and_magnitude() -> None:
    rng = random.Random(7)
    values = [rng.gauss(75, 5) for _ in range(72)] + [rng.gauss(95, 5) for _ in range(72)]
    changes, _ = hr_changes(values)
    assert len(changes) == 1
    change = changes[0]
    assert change.direction == "up"
    assert 15 < change.magnitude < 25
    assert abs(change.onset_at - 72 * FIVE_MIN) <= 3 * FIVE_MIN
    assert change.confirmed_at - change.onset_at >= 3600


def test_drift_step_down_fires_down() -> None:
    rng = random.Random(8)
    values = [rng.gauss(97, 1) for _ in range(72)] + [rng.gauss(92, 1) for _ in range(72)]
    detector = SustainedChangeDetector(DriftParams(scale=VITALS["spo2"].scale))
    changes = [c for i, v in enumerate(values) if (c := detector.update(v, i * FIVE_MIN))]
    assert [c.direction for c in changes] == ["down"]
    assert changes[0].magnitude == pytest.approx(-5, abs=1.5)


@pytest.mark.parametrize("seed", range(5))
def test_drift_noise_without_a_step_does_not_fire(seed: int) -> None:
    rng = random.Random(seed)
    changes, _ = hr_changes([rng.gauss(75, 5) for _ in range(3 * 288)])  # 3 days
    assert changes == []


def test_drift_single_spike_does_not_fire_or_even_alarm() -> None:
    rng = random.Random(9)
    values = [rng.gauss(75, 5) for _ in range(288)]
    values[100] = 220.0
    changes, alarms = hr_changes(values)
    assert changes == [] and alarms == 0


def test_drift_half_hour_excursion_is_not_sustained() -> None:
    rng = random.Random(10)
    values = [rng.gauss(75, 5) for _ in range(100)]
    values += [rng.gauss(110, 5) for _ in range(6)] + [rng.gauss(75, 5) for _ in range(100)]
    changes, alarms = hr_changes(values)
    assert alarms >= 1 and changes == []


def test_drift_wraps_river_page_hinkley_without_clipping_for_small_moves() -> None:
    # Inside the clip range the detector sees exactly what river's PageHinkley sees.
    params = DriftParams(scale=5.0)
    detector = SustainedChangeDetector(params)
    reference = drift.PageHinkley(min_instances=12, delta=2.5, threshold=50.0, mode="both")
    for i, value in enumerate([75.0, 77.0, 73.0, 76.0] * 20):
        detector.update(value, i * FIVE_MIN)
        reference.update(value)
        assert detector.drift_detected == reference.drift_detected
        assert detector.level == reference._x_mean.get()


# -- forecast ---------------------------------------------------------------------------


def test_forecast_ramp_is_projected_forward_and_clamped() -> None:
    spec = VITALS["heart_rate"]
    forecaster = VitalForecaster(ForecastParams(low=spec.low, high=spec.high))
    for i in range(24):  # +2 bpm every 5 minutes
        forecaster.update(90.0 + 2 * i, i * FIVE_MIN)
    projected = forecaster.forecast((1800, 3600))
    assert forecaster.level is not None
    assert forecaster.level < projected[1800] < projected[3600] < spec.high
    assert forecaster.slope_per_hour == pytest.approx(24, rel=0.1)
    for i in range(24, 30):  # +4 bpm every 5 minutes up to 204: an hour ahead is past 220
        forecaster.update(136.0 + 12 * (i - 23), i * FIVE_MIN)
    assert forecaster.forecast()[3600] == spec.high


def test_forecast_falling_spo2_is_projected_down_and_never_above_100() -> None:
    spec = VITALS["spo2"]
    falling = VitalForecaster(ForecastParams(low=spec.low, high=spec.high))
    rising = VitalForecaster(ForecastParams(low=spec.low, high=spec.high))
    for i in range(12):
        falling.update(97.0 - 0.5 * i, i * FIVE_MIN)
        rising.update(96.0 + 0.5 * i, i * FIVE_MIN)
    assert falling.forecast()[3600] < falling.forecast()[1800] < 92.0
    assert rising.forecast()[3600] == 100.0


@given(
    st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-1000, 1000),
)
def test_mean2_is_statistics_mean(a: float, b: float) -> None:
    # The forecaster's model start uses _mean2 where river uses statistics.mean.
    assert _mean2(a, b) == statistics.mean((a, b))
    assert struct.pack("<d", _mean2(a, b)) == struct.pack("<d", statistics.mean((a, b)))
    # And the trend's start, river's statistics.mean of one difference.
    assert struct.pack("<d", (b - a) or 0.0) == struct.pack("<d", statistics.mean((b - a,)))


def test_forecast_restarting_every_reading_is_river_holt_winters() -> None:
    # Readings 5 s apart: each after the step's first re-initialises the model
    # (phase 2, _relearn) with the mean of the readings so far, as a fresh river
    # HoltWinters fed the step's first value and that mean would be.
    forecaster = VitalForecaster(ForecastParams(trend_damping_s=None))
    rng = random.Random(5)
    values = [80 + rng.gauss(0, 3) for _ in range(12)]  # steps at 0 s and 60 s (60-110 s)
    for i, value in enumerate(values):
        forecaster.update(value, 0.0 if i == 0 else 60.0 + 5.0 * (i - 1))
    river_model = time_series.HoltWinters(alpha=0.3, beta=0.1)
    river_model.learn_one(values[0])
    river_model.learn_one(sum(values[1:]) / len(values[1:]))
    assert forecaster.forecast((60, 600)) == {
        60: river_model.forecast(1)[0],
        600: river_model.forecast(10)[9],
    }


def test_forecast_undamped_is_river_holt_winters() -> None:
    forecaster = VitalForecaster(ForecastParams(trend_damping_s=None))
    river_model = time_series.HoltWinters(alpha=0.3, beta=0.1)
    rng = random.Random(11)
    for i in range(40):
        value = 80 + 0.3 * i + rng.gauss(0, 2)
        forecaster.update(value, i * FIVE_MIN)
        river_model.learn_one(value)
    assert forecaster.forecast((6 * 300, 12 * 300)) == {
        1800: river_model.forecast(6)[5],
        3600: river_model.forecast(12)[11],
    }


def test_forecast_readings_within_a_step_are_averaged() -> None:
    burst, single = VitalForecaster(), VitalForecaster()
    for i, value in enumerate([80.0, 84.0, 83.0, 87.0]):
        burst.update(value, i * FIVE_MIN)
        burst.update(value + 2.0, i * FIVE_MIN + 20)  # a second reading 20 s later
        single.update(value + 1.0, i * FIVE_MIN)
    assert burst.forecast() == single.forecast()


def test_forecast_restarts_after_a_long_gap() -> None:
    forecaster = VitalForecaster(ForecastParams(max_gap_s=6 * 3600))
    for i in range(10):
        forecaster.update(80.0 + i, i * FIVE_MIN)
    assert forecaster.ready
    forecaster.update(70.0, 10 * FIVE_MIN + 7 * 3600)
    assert not forecaster.ready and forecaster.forecast() == {}


def test_projected_news2_band_from_a_deteriorating_patient() -> None:
    models, at = PatientModels(), 0.0
    for i in range(24):  # two hours of steady worsening
        latest = {
            "respiratory_rate": 14.0 + 0.25 * i,
            "heart_rate": 80.0 + 1.2 * i,
            "systolic_bp": 130.0 - 1.2 * i,
            "spo2": 97.0,
            "temperature_c": 37.8,
        }
        for vital, value in latest.items():
            models.observe(vital, value, at)
        at += FIVE_MIN
    now = news2(
        **projected_news2_inputs({}, 3600, latest=latest, on_oxygen=False, consciousness="A")
    )
    ahead = projected_news2_inputs(
        models.forecasts(), 3600, latest=latest, on_oxygen=False, consciousness="A"
    )
    assert ahead["heart_rate"] is not None and ahead["heart_rate"] > latest["heart_rate"]
    assert ahead["systolic_bp"] is not None and ahead["systolic_bp"] < latest["systolic_bp"]
    projected = news2(**ahead)
    assert not projected.partial
    assert (now.total, now.band) == (2, "low")
    assert (projected.total, projected.band) == (6, "medium")


def test_projected_news2_missing_vital_stays_missing() -> None:
    inputs = projected_news2_inputs({"heart_rate": {1800: 95.0}}, 1800)
    result = news2(**inputs)
    assert result.partial and "respiratory_rate" in result.missing


# -- population anomaly model -------------------------------------------------------------


def trained_anomaly_model(n: int = 1000) -> tuple[PopulationAnomalyModel, random.Random]:
    rng = random.Random(12)
    model = PopulationAnomalyModel(window_size=250, seed=3)
    for _ in range(n):
        model.learn_one({name: rng.gauss(0, 1) for name in VITAL_NAMES})
    return model, rng


def test_anomaly_scores_an_abnormal_vector_above_typical_ones() -> None:
    model, rng = trained_anomaly_model()
    typical = [model.score_one({n: rng.gauss(0, 1) for n in VITAL_NAMES}) for _ in range(200)]
    shock = {"heart_rate": 4.8, "respiratory_rate": 4.5, "systolic_bp": -4.5, "spo2": -4.0}
    assert model.score_one(shock) > max(typical)


def test_anomaly_missing_vitals_and_first_window() -> None:
    model = PopulationAnomalyModel(window_size=10)
    model.learn_one({"heart_rate": 1.0})  # the trees still get every vital
    assert model.score_one({"heart_rate": 0.0}) == 0.0  # first window not full
    assert model.features({"heart_rate": None, "spo2": 99.0}) == {"spo2": 1.0}


def test_anomaly_dumps_loads_identical_scores_and_learning() -> None:
    model, rng = trained_anomaly_model(620)  # mid-window: counter and masses both matter
    raw = model.dumps()
    restored = PopulationAnomalyModel.loads(raw)
    assert restored.dumps() == raw
    for _ in range(300):
        x = {name: rng.gauss(0, 1.5) for name in VITAL_NAMES}
        assert restored.score_one(x) == model.score_one(x)
        restored.learn_one(x)
        model.learn_one(x)
    assert restored.dumps() == model.dumps()
    pickled = len(pickle.dumps(model._hst))
    print(f"\nanomaly checkpoint: {len(raw)} bytes (pickle of the same trees: {pickled} bytes)")
    assert len(raw) < pickled / 10


def test_anomaly_loads_rejects_other_versions_and_changed_trees() -> None:
    model, _ = trained_anomaly_model(300)
    raw = bytearray(model.dumps())
    with pytest.raises(UnsupportedLearnedStateVersion):
        PopulationAnomalyModel.loads(bytes(raw[:5] + b"\x09" + raw[6:]))
    seed_at = 5 + struct.calcsize("<BHBI")
    raw[seed_at] ^= 1  # another seed grows other trees: the fingerprint must catch it
    with pytest.raises(LearnedStateError, match="regenerate"):
        PopulationAnomalyModel.loads(bytes(raw))
    with pytest.raises(LearnedStateError):
        PopulationAnomalyModel.loads(b"pickle?")


def test_anomaly_fused_walk_is_rivers_at_the_production_size() -> None:
    """score_and_learn_one against river's own HalfSpaceTrees (score_one, then
    learn_one) with the partition's parameters, over several windows, with
    vitals missing, unknown z-scores and clipped ones."""
    from river import anomaly

    rng = random.Random(21)
    model = PopulationAnomalyModel()  # 10 trees, height 8, window 250
    model.prepare()
    river_hst = anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=250, seed=42)
    river_hst.learn_one(dict.fromkeys(VITAL_NAMES, 0.5))  # grows the same trees
    for nodes in river_hst._tree_nodes:
        for node in nodes:
            node.l_mass = node.r_mass = 0
    river_hst.counter = 0
    for i in range(1200):
        z = {
            name: None if rng.random() < 0.2 else rng.gauss(0.0, 2.5)
            for name in VITAL_NAMES[: 1 + i % len(VITAL_NAMES)]
        }
        x = model.features(z)
        expected = float(river_hst.score_one(x))
        river_hst.learn_one(x)
        assert model.score_and_learn_one(z) == expected


def test_fresh_anomaly_model_round_trips() -> None:
    model = PopulationAnomalyModel()
    restored = PopulationAnomalyModel.loads(model.dumps())
    assert restored.feature_names == model.feature_names
    assert restored.score_one({"heart_rate": 3.0}) == 0.0


# -- risk -------------------------------------------------------------------------------


def synthetic_patient(rng: random.Random) -> tuple[TwinSummary, bool]:
    """Outcome driven by NEWS2 and lactate; lactate missing for 30 %, age for 10 %."""
    news2_total = min(int(rng.expovariate(0.35)), 15)
    lactate = rng.lognormvariate(0.2, 0.55) if rng.random() < 0.7 else None
    logit = -4.2 + 0.55 * news2_total + 1.2 * max(0.0, (lactate or 1.0) - 2.0)
    outcome = rng.random() < 1 / (1 + math.exp(-logit))
    summary = TwinSummary(
        news2_total=news2_total,
        news2_subscores={"heart_rate": min(news2_total, 3)},
        news2_max=news2_total + rng.randint(0, 2),
        age_years=rng.uniform(20, 95) if rng.random() < 0.9 else None,
        hours_observed=rng.uniform(0, 72),
        worst_labs={} if lactate is None else {"lactate": lactate},
    )
    return summary, outcome


def test_risk_prequential_auroc_above_0_8() -> None:
    rng = random.Random(13)
    model = RiskModel()
    # River's default 10 thresholds under-read the AUC of low probabilities.
    auroc = metrics.ROCAUC(n_thresholds=50)
    for _ in range(4000):
        summary, outcome = synthetic_patient(rng)
        x = features(summary)
        auroc.update(outcome, model.predict_proba(x))
        model.learn(x, outcome)
    print(f"\nprequential AUROC after 4000: {auroc.get():.3f}")
    assert auroc.get() > 0.8
    top = list(model.weights())[:3]
    assert "news2_total" in top and "lab_lactate_above" in top


def test_risk_features_flag_every_missing_value() -> None:
    empty = features(TwinSummary())
    full = features(
        TwinSummary(
            news2_total=3,
            news2_subscores=dict.fromkeys(NEWS2_SUBSCORES, 1),
            news2_max=5,
            qsofa=1,
            on_oxygen=True,
            age_years=70,
            slopes_per_hour={"heart_rate": 2.0},
            worst_labs={name: 1.0 for name in LAB_REFERENCE},
        )
    )
    assert empty.keys() == full.keys()  # a fixed schema whatever is known
    missing = {k for k, v in empty.items() if k.endswith("_missing") and v == 1.0}
    assert {"news2_total_missing", "age_years_missing", "lab_lactate_missing"} <= missing
    assert {f"lab_{name}_missing" for name in LAB_REFERENCE} <= missing
    assert full["news2_total_missing"] == full["lab_lactate_missing"] == 0.0
    assert full["slope_respiratory_rate_missing"] == 1.0
    assert empty["age_years"] == 65.0  # imputed, and flagged above
    assert full["lab_platelets_below"] == 149.0 and full["lab_ph_below"] == pytest.approx(6.35)


def test_risk_dumps_loads_identical_predictions() -> None:
    rng = random.Random(14)
    model = RiskModel()
    for _ in range(500):
        summary, outcome = synthetic_patient(rng)
        model.learn(features(summary), outcome)
    raw = model.dumps()
    restored = RiskModel.loads(raw)
    assert restored.n_learned == model.n_learned == 500
    for _ in range(50):
        summary, outcome = synthetic_patient(rng)
        x = features(summary)
        assert restored.predict_proba(x) == model.predict_proba(x)
        restored.learn(x, outcome)
        model.learn(x, outcome)
    print(f"\nrisk checkpoint: {len(raw)} bytes")
    with pytest.raises(UnsupportedLearnedStateVersion):
        RiskModel.loads(raw[:6] + b"\x02" + raw[7:])


def _river_proba(model: RiskModel, x: dict[str, float]) -> float:
    """River's own calls, the reference of :meth:`RiskModel.predict_proba`."""
    scaled = model._scaler.transform_one(x)
    return float(model._classifier.predict_proba_one(scaled)[True])


@pytest.mark.parametrize("seed", range(12))
def test_risk_prediction_is_rivers_bit_for_bit(seed: int) -> None:
    """The plain-number prediction gives river's float, whatever was learned:
    nothing, a few examples, or many with a large step; constant features too."""
    rng = random.Random(seed)
    model = RiskModel(learning_rate=rng.choice([0.05, 0.5, 2.0]), l2=rng.choice([0.0, 1e-2]))
    for _ in range(rng.choice([0, 1, 5, 300])):
        summary, outcome = synthetic_patient(rng)
        x = features(summary)
        if rng.random() < 0.5:  # off the synthetic patients' few values
            x = {k: v * rng.uniform(0.5, 2.0) + rng.gauss(0.0, 1.0) for k, v in x.items()}
        model.learn(x, outcome)
    for _ in range(200):
        summary, _ = synthetic_patient(rng)
        x = features(summary)
        if rng.random() < 0.5:
            x = {k: v * rng.uniform(0.5, 2.0) + rng.gauss(0.0, 3.0) for k, v in x.items()}
        expected = _river_proba(model, x)
        assert model.predict_proba_vector(list(x.values())) == expected
        assert model.predict_proba(x) == expected
        assert RiskModel.loads(model.dumps()).predict_proba(x) == expected


def test_risk_prediction_of_other_mappings_and_in_rivers_learning_mode() -> None:
    from river import compose

    rng = random.Random(7)
    model = RiskModel()
    for _ in range(50):
        summary, outcome = synthetic_patient(rng)
        model.learn(features(summary), outcome)
    partial = {"news2_total": 7.0, "lab_lactate_above": 2.0}  # river's calls, as given
    assert model.predict_proba(partial) == _river_proba(model, dict(partial))
    x = features(synthetic_patient(rng)[0])
    before = model.predict_proba(x)
    with compose.learn_during_predict():  # the scaler learns while predicting
        assert model.predict_proba(x) != before
    twin_of_pipeline = pickle.loads(pickle.dumps(model._pipeline))
    after = twin_of_pipeline["LogisticRegression"].predict_proba_one(
        twin_of_pipeline["StandardScaler"].transform_one(x)
    )[True]
    assert model.predict_proba(x) == after  # the moved statistics are read again


def test_worst_lab_direction() -> None:
    assert worst_lab("lactate", None, 1.2) == 1.2
    assert worst_lab("bicarbonate", 18.0, 24.0) == 18.0
    assert worst_lab("ph", 7.40, 7.21) == 7.21


def test_pending_labels_are_bounded_and_label_by_horizon() -> None:
    pending = PendingLabels(horizon_s=3600.0, max_per_patient=3, capacity=4)
    for k in range(5):
        pending.add("p1", {"k": float(k)}, at=600.0 * k)
    assert len(pending) == 3 and pending.dropped == 2
    pending.add("p2", {"k": 9.0}, at=0.0)
    pending.add("p3", {"k": 9.0}, at=0.0)  # over capacity: refused
    assert len(pending) == 4 and pending.dropped == 3
    labelled = pending.outcome("p1", event_at=4000.0)
    assert [(e.scored_at, e.outcome) for e in labelled] == [
        (1200.0, True),
        (1800.0, True),
        (2400.0, True),
    ]
    assert [(e.patient_id, e.outcome) for e in pending.expire(now=3600.0)] == [("p2", False)]
    assert len(pending) == 0 and pending.discard("p1") == 0


# -- codec ------------------------------------------------------------------------------


def test_patient_models_size_for_six_vitals_after_500_observations() -> None:
    models = PatientModels()
    for vital, value, at in stream(15, 500):
        models.observe(vital, value, at)
    raw = models.encode()
    print(f"\nPatientModels, 6 vitals x 500 observations: {len(raw)} bytes")
    assert models.vitals == VITAL_NAMES
    assert len(raw) <= 1100


def test_vital_order_is_part_of_the_format() -> None:
    # Reordering VITALS would silently swap models between vitals in stored state.
    assert VITAL_NAMES == (
        "heart_rate",
        "respiratory_rate",
        "spo2",
        "systolic_bp",
        "diastolic_bp",
        "temperature_c",
    )


def test_decode_rejects_unknown_version_truncation_and_trailing_bytes() -> None:
    models = PatientModels()
    for vital, value, at in stream(16, 20, ("heart_rate", "spo2")):
        models.observe(vital, value, at)
    raw = models.encode()
    assert raw[0] == LEARNED_STATE_VERSION
    with pytest.raises(UnsupportedLearnedStateVersion, match="version 2"):
        PatientModels.decode(bytes([2]) + raw[1:])
    with pytest.raises(LearnedStateError, match="truncated"):
        PatientModels.decode(raw[:-1])
    with pytest.raises(LearnedStateError, match="trailing"):
        PatientModels.decode(raw + b"\x00")
    with pytest.raises(LearnedStateError, match="unknown vitals"):
        PatientModels.decode(bytes([LEARNED_STATE_VERSION, 0x80]))
    with pytest.raises(LearnedStateError):
        PatientModels.decode(b"")


def test_lazy_decode_writes_untouched_vitals_back_unchanged() -> None:
    models = PatientModels()
    for vital, value, at in stream(17, 50):
        models.observe(vital, value, at)
    raw = models.encode()
    partly = PatientModels.decode(raw)
    fully = PatientModels.decode(raw)
    for vital in VITAL_NAMES:
        fully.models(vital)
    partly.observe("heart_rate", 80.0, 50 * FIVE_MIN)
    fully.observe("heart_rate", 80.0, 50 * FIVE_MIN)
    assert partly.encode() == fully.encode()


def test_observe_builds_whole_signals() -> None:
    models = PatientModels()
    for vital, value, at in stream(5, 30, ("heart_rate",)):
        signals = models.observe(vital, value, at)
        assert type(signals) is VitalSignals and len(signals) == len(VitalSignals._fields)
        assert signals == VitalSignals(*signals) and signals.vital == vital
        assert (signals.value, signals.at) == (value, at)
    assert signals.trusted and signals.forecast


def test_observe_rejects_unknown_vitals_and_non_finite_values() -> None:
    models = PatientModels()
    with pytest.raises(KeyError, match="unknown vital"):
        models.observe("glucose", 5.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        models.observe("heart_rate", math.nan, 0.0)
    signals = models.observe_many({"heart_rate": 80.0, "spo2": None, "temperature_c": 37.0}, 0.0)
    assert [s.vital for s in signals] == ["heart_rate", "temperature_c"]


def test_config_without_rebasing_keeps_the_shifted_readings_anomalous() -> None:
    rng = random.Random(6)
    models, at = PatientModels(LearningConfig(rebase_on_change=False)), 0.0
    for _ in range(72):
        models.observe("heart_rate", rng.gauss(72, 3), at)
        at += FIVE_MIN
    last = [models.observe("heart_rate", rng.gauss(97, 3), at + k * FIVE_MIN) for k in range(48)]
    assert all(s.anomalous for s in last[-12:])  # the design problem rebasing solves


def test_pending_features_come_back_exactly_and_are_kept_compactly() -> None:
    import sys

    from twin.learning.risk import FEATURE_NAMES, PendingLabels, TwinSummary, features

    x = features(TwinSummary(news2_total=6, age_years=81.5, worst_labs={"lactate": 4.25}))
    assert tuple(x) == FEATURE_NAMES
    pending = PendingLabels(horizon_s=3600.0)
    pending.add("p1", x, at=0.0)
    pending.add("p1", {"news2_total": 1.0}, at=10.0)  # any other mapping is kept as given
    stored = pending._by_patient["p1"][0][1]
    assert sys.getsizeof(stored) < sys.getsizeof(x) / 2  # the dict, without its floats
    back = pending.outcome("p1", event_at=100.0)
    assert back[0].features == x and list(back[0].features) == list(x)
    assert back[1].features == {"news2_total": 1.0}
    pending.add_vector("p2", list(x.values()), at=0.0)  # the same vector, kept the same way
    assert pending._by_patient["p2"][0][1] == stored
    assert pending.outcome("p2", event_at=100.0)[0].features == x


def test_pending_vectors_are_bounded_as_mappings_are() -> None:
    from twin.learning.risk import FEATURE_NAMES

    by_vector = PendingLabels(horizon_s=3600.0, max_per_patient=2, capacity=3)
    by_mapping = PendingLabels(horizon_s=3600.0, max_per_patient=2, capacity=3)
    for k, patient in enumerate(["p1", "p1", "p1", "p2", "p3", "p3"]):
        values = [float(k)] * len(FEATURE_NAMES)
        by_vector.add_vector(patient, values, at=60.0 * k)
        by_mapping.add(patient, dict(zip(FEATURE_NAMES, values, strict=True)), at=60.0 * k)
    assert len(by_vector) == len(by_mapping) == 3
    assert by_vector.dropped == by_mapping.dropped == 3
    assert [(e.patient_id, e.scored_at, e.features) for e in by_vector.expire(now=1e9)] == [
        (e.patient_id, e.scored_at, e.features) for e in by_mapping.expire(now=1e9)
    ]


def test_patient_encoding_is_reused_only_until_models_are_handed_out() -> None:
    models = PatientModels()
    for i in range(20):
        models.observe("heart_rate", 70.0 + i % 3, at=300.0 * i)
    first = models.encode()
    assert models.encode() is first  # nothing changed: the same bytes
    models.observe("heart_rate", 90.0, at=6000.0)
    second = models.encode()
    assert second != first
    models.models("heart_rate").baseline.learn(120.0)  # changed from outside
    third = models.encode()
    assert third != second
    fresh = PatientModels.decode(third)
    assert fresh.encode() == third
    fresh.models("heart_rate").baseline.learn(120.0)
    assert fresh.encode() != third


def test_a_vitals_models_survive_pickle() -> None:
    """bench/naive_peer.py pickles twins with their models, compiled core or not."""
    models = PatientModels()
    for i in range(30):
        models.observe("heart_rate", 72.0 + i % 5, at=300.0 * i)
    original = models.models("heart_rate")
    copied = pickle.loads(pickle.dumps(original))
    packed = []
    for m in (original, copied):
        out = bytearray()
        m.baseline.pack_into(out)
        m.drift.pack_into(out)
        m.forecaster.pack_into(out)
        packed.append(bytes(out))
    assert len(packed[0]) > 40 and packed[0] == packed[1]
