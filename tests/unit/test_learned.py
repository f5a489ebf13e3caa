"""Alerts from learned signals (twin.learned): what its shortcuts must keep."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.config import TwinConfig
from twin.learned import _BAND_RANK, _HORIZONS_S, _at_chart_precision, _projected_rise
from twin.learning.forecast import projected_news2_inputs
from twin.learning.vitals import VITALS
from twin.scores import News2Result, _rounded, news2
from twin.state import Observation, Profile, TwinState

pytestmark = pytest.mark.unit

_SCORED = ("respiratory_rate", "spo2", "systolic_bp", "heart_rate", "temperature_c")


def _chart_value(vital: str, value: float) -> Decimal | int:
    """The value NEWS2 bands: ``value`` rounded as twin.scores rounds it."""
    return _rounded(vital, value, Decimal("0.1") if vital == "temperature_c" else Decimal(1))


def _scored_alike(vital: str, value: float) -> bool:
    rounded = _at_chart_precision(vital, value)
    if _chart_value(vital, rounded) != _chart_value(vital, value):
        return False
    for on_oxygen, scale in ((False, 1), (True, 1), (None, 2), (False, 2), (True, 2)):
        kwargs = {"on_oxygen": on_oxygen, "spo2_scale": scale}
        if news2(**{vital: value}, **kwargs) != news2(**{vital: rounded}, **kwargs):
            return False
    return True


def _halves(vital: str) -> list[float]:
    """Every rounding point of ``vital``'s forecast range, with its float neighbours."""
    spec = VITALS[vital]
    unit = Decimal("0.1") if vital == "temperature_c" else Decimal(1)
    low = Decimal(repr(spec.low))
    n = int((Decimal(repr(spec.high)) - low) / unit)
    points = [float(low + unit * i + unit / 2) for i in range(n)]
    return [
        x
        for p in points
        for x in (p, math.nextafter(p, -math.inf), math.nextafter(p, math.inf))
        if spec.low <= x <= spec.high
    ] + [spec.low, spec.high]


@pytest.mark.parametrize("vital", _SCORED)
def test_forecasts_at_chart_precision_score_alike_at_every_rounding_point(vital: str) -> None:
    for value in _halves(vital):
        assert _scored_alike(vital, value), (vital, value)


@given(st.data())
def test_forecasts_at_chart_precision_score_alike(data: st.DataObject) -> None:
    vital = data.draw(st.sampled_from(_SCORED))
    spec = VITALS[vital]
    value = data.draw(st.floats(spec.low, spec.high))
    assert _scored_alike(vital, value)


def _reference_projected_rise(
    state: TwinState, at: float, current: News2Result, forecasts: dict[str, dict[int, float]]
) -> dict[str, Any] | None:
    """What _projected_rise computes, the plain way: projected_news2_inputs, then news2."""
    since = at - TwinConfig().fresh_s
    oxygen = state.value("on_oxygen", fresh_since=since)
    level = state.value("consciousness", fresh_since=since)
    for horizon in _HORIZONS_S:
        inputs = projected_news2_inputs(
            forecasts,
            horizon,
            latest={k: v for k in _SCORED if (v := state.number(k, fresh_since=since)) is not None},
            on_oxygen=oxygen if isinstance(oxygen, bool) else None,
            consciousness=level if isinstance(level, str) else None,
            spo2_scale=state.profile.spo2_scale if state.profile else 1,
        )
        projected = news2(**inputs)
        if projected.band in ("medium", "high") and (
            _BAND_RANK[projected.band] > _BAND_RANK[current.band]
        ):
            return {
                "lead_time_minutes": horizon // 60,
                "projected_news2": projected.total,
                "projected_band": projected.band,
                "projected_values": {
                    k: round(v, 1) for k, v in inputs.items() if isinstance(v, float)
                },
                "current_news2": current.total,
                "current_band": current.band,
                "source": "per-vital Holt forecasts scored with RCP NEWS2 (2017)",
            }
    return None


def _in_range(vital: str) -> st.SearchStrategy[float]:
    return st.floats(VITALS[vital].low, VITALS[vital].high)


@given(
    latest=st.fixed_dictionaries(
        {},
        optional={
            **{vital: _in_range(vital) for vital in _SCORED},
            "on_oxygen": st.booleans(),
            "consciousness": st.sampled_from("ACVPU"),
        },
    ),
    stale=st.sets(st.sampled_from(_SCORED)),
    forecasts=st.dictionaries(
        st.sampled_from([*_SCORED, "diastolic_bp"]),
        st.dictionaries(st.sampled_from([1800, 3600, 600]), _in_range("heart_rate")),
    ),
    spo2_scale=st.sampled_from([None, 1, 2]),
    band=st.sampled_from(sorted(_BAND_RANK)),
)
def test_projected_rise_is_projected_news2_inputs_scored_by_news2(
    latest: dict[str, Any],
    stale: set[str],
    forecasts: dict[str, dict[int, float]],
    spo2_scale: int | None,
    band: str,
) -> None:
    at = 10_000.0
    state = TwinState("p")
    for name, value in latest.items():
        state.latest[name] = Observation(value, at - (7200.0 if name in stale else 60.0))
    if spo2_scale is not None:
        state.profile = Profile(spo2_scale=spo2_scale)
    # Forecasts within each vital's bounds, as the forecaster clamps them.
    forecasts = {
        vital: {h: min(max(v, VITALS[vital].low), VITALS[vital].high) for h, v in f.items()}
        for vital, f in forecasts.items()
    }
    current = News2Result(2, {}, (), False, False, band, "", 0)
    assert _projected_rise(state, TwinConfig(), at, current, forecasts) == (
        _reference_projected_rise(state, at, current, forecasts)
    )
