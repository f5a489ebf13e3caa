"""Alerts from learned signals (twin.learned): what its shortcuts must keep."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.learned import _at_chart_precision
from twin.learning.vitals import VITALS
from twin.scores import _rounded, news2

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
