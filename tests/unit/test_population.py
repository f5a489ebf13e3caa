"""The partition models' fast paths read the twin as ``summarize`` + ``features`` do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from pydantic import BaseModel

from twin.assess import assess
from twin.config import TwinConfig
from twin.learning.risk import FEATURE_NAMES, features
from twin.population import feature_vector, summarize
from twin.state import AlertEpisode, Observation, Profile, TwinState

from .test_twin_core import apply, event_sequences

pytestmark = pytest.mark.unit


def _exactly(values: list[float]) -> list[tuple[type, str]]:
    """Values compared with their types, NaN and the sign of zero."""
    return [(type(v), repr(v)) for v in values]


def _assert_same_vector(twin: TwinState) -> None:
    expected = list(features(summarize(twin)).values())
    assert _exactly(feature_vector(twin)) == _exactly(expected)


@settings(max_examples=150, deadline=None)
@given(events=event_sequences(max_size=40, span_s=6 * 3600, profiles=True))
def test_feature_vector_is_features_of_summarize(events: list[BaseModel]) -> None:
    twin = TwinState("p-0001")
    for event in events:
        apply(twin, event)
        _assert_same_vector(twin)


def test_feature_vector_of_odd_twins() -> None:
    twin = TwinState("p1")
    _assert_same_vector(twin)  # knows nothing
    twin.latest["lab.lactate"] = Observation(True, at=0.0, grade="lab")  # a bool is an int
    twin.latest["lab.ph"] = Observation("haemolysed", at=0.0, grade="lab")  # not a number
    twin.latest["lab.potassium"] = Observation(float("nan"), at=0.0, grade="lab")
    twin.latest["on_oxygen"] = Observation(True, at=0.0)
    twin.profile = Profile(age=83)
    twin.first_event_at, twin.last_vitals_at = 7200.0, 3600.0  # vitals before the first event
    for rule in ("change.heart_rate", "news2", "change.spo2"):
        twin.open_alerts[rule] = AlertEpisode(rule, 1, "k", "high", 0.0, 0.0)
    twin.news2_max = 7
    _assert_same_vector(twin)
    for vital, value in (("respiratory_rate", 26.0), ("heart_rate", 131.0), ("spo2", 90.0)):
        twin.latest[vital] = Observation(value, at=3600.0)
    twin.assessment = assess(twin, TwinConfig(), at=3600.0)
    twin.news2_max = None  # scored, but no maximum kept: features() imputes the total
    _assert_same_vector(twin)
    assert feature_vector(twin)[FEATURE_NAMES.index("news2_max")] == twin.assessment.news2.total


def test_feature_vector_of_simulated_patients_with_wearables() -> None:
    from schemas.decode import Rejection, decode
    from schemas.export import CONTRACTS
    from stream.feeds.simulator import SimConfig, generate
    from stream.handlers import APPLIERS

    start = datetime(2026, 1, 1, tzinfo=UTC)
    config = SimConfig(patients=8, seed=5, start=start, wearables=True, hours=3.0)
    cfg = TwinConfig()
    twins: dict[str, TwinState] = {}
    compared = 0
    for msg in generate(config):
        event = decode(CONTRACTS[msg.kind], msg.value)
        assert not isinstance(event, Rejection)
        twin = twins.setdefault(msg.key.decode(), TwinState(msg.key.decode()))
        if APPLIERS[type(event)](twin, event, cfg, start.timestamp()) is not None:
            _assert_same_vector(twin)
            compared += bool(twin.signals)
    assert compared > 8 * 20
