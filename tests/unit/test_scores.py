"""NEWS2, qSOFA and MEWS against their published charts, boundary by boundary."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.scores import (
    MEWS_PARAMETERS,
    NEWS2_PARAMETERS,
    QSOFA_CRITERIA,
    News2Result,
    mews,
    news2,
    qsofa,
)

pytestmark = pytest.mark.unit

# A set of vitals that scores 0 on every NEWS2 parameter.
NORMAL: dict[str, Any] = {
    "respiratory_rate": 16,
    "spo2": 97,
    "on_oxygen": False,
    "systolic_bp": 120,
    "heart_rate": 70,
    "consciousness": "A",
    "temperature_c": 37.0,
}
NEWS2_ARGUMENT = {name: name for name in NEWS2_PARAMETERS} | {"air_or_oxygen": "on_oxygen"}


def news2_with(**changes: Any) -> News2Result:
    return news2(**(NORMAL | changes))


# RCP NEWS2 (2017) chart 1: both sides of every band boundary, plus the extremes.
NEWS2_BOUNDARIES = [
    *[("respiratory_rate", v, s) for v, s in [(0, 3), (8, 3), (9, 1), (11, 1), (12, 0)]],
    *[("respiratory_rate", v, s) for v, s in [(20, 0), (21, 2), (24, 2), (25, 3), (60, 3)]],
    *[("systolic_bp", v, s) for v, s in [(50, 3), (90, 3), (91, 2), (100, 2), (101, 1)]],
    *[("systolic_bp", v, s) for v, s in [(110, 1), (111, 0), (219, 0), (220, 3), (280, 3)]],
    *[("heart_rate", v, s) for v, s in [(20, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0)]],
    *[("heart_rate", v, s) for v, s in [(91, 1), (110, 1), (111, 2), (130, 2), (131, 3)]],
    *[("consciousness", v, s) for v, s in [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)]],
    *[("temperature_c", v, s) for v, s in [(30.0, 3), (35.0, 3), (35.1, 1), (36.0, 1)]],
    *[("temperature_c", v, s) for v, s in [(36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1)]],
    *[("temperature_c", v, s) for v, s in [(39.1, 2), (42.0, 2)]],
]


@pytest.mark.parametrize(("parameter", "value", "expected"), NEWS2_BOUNDARIES)
def test_news2_parameter_boundaries(parameter: str, value: Any, expected: int) -> None:
    result = news2(**{parameter: value})
    assert result.subscores == {parameter: expected}
    assert result.total == expected


SPO2_SCALE_1 = [(70, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]


@pytest.mark.parametrize("on_oxygen", [False, True])
@pytest.mark.parametrize(("spo2", "expected"), SPO2_SCALE_1)
def test_news2_spo2_scale_1_ignores_oxygen(spo2: float, expected: int, on_oxygen: bool) -> None:
    result = news2(spo2=spo2, on_oxygen=on_oxygen, spo2_scale=1)
    assert result.subscores == {"spo2": expected, "air_or_oxygen": 2 if on_oxygen else 0}


SPO2_SCALE_2 = [
    *[
        (v, o2, s)
        for v, s in [(70, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1)]
        for o2 in (False, True)
    ],
    *[(v, o2, 0) for v in (88, 92) for o2 in (False, True)],
    *[(v, False, 0) for v in (93, 95, 97, 100)],
    *[(v, True, s) for v, s in [(93, 1), (94, 1), (95, 2), (96, 2), (97, 3), (100, 3)]],
]


@pytest.mark.parametrize(("spo2", "on_oxygen", "expected"), SPO2_SCALE_2)
def test_news2_spo2_scale_2(spo2: float, on_oxygen: bool, expected: int) -> None:
    result = news2(spo2=spo2, on_oxygen=bool(on_oxygen), spo2_scale=2)
    assert result.subscores["spo2"] == expected


@pytest.mark.parametrize(("on_oxygen", "expected"), [(False, 0), (True, 2)])
def test_news2_air_or_oxygen(on_oxygen: bool, expected: int) -> None:
    assert news2(on_oxygen=on_oxygen).subscores == {"air_or_oxygen": expected}


def test_news2_scale_2_high_spo2_without_oxygen_status_is_not_scored() -> None:
    result = news2_with(spo2=95, on_oxygen=None, spo2_scale=2)
    assert result.missing == ("spo2", "air_or_oxygen")
    assert "spo2" not in result.subscores
    assert news2_with(spo2=90, on_oxygen=None, spo2_scale=2).subscores["spo2"] == 0


ROUNDING = [
    ("respiratory_rate", 20.4, 0),
    ("respiratory_rate", 20.5, 2),
    ("respiratory_rate", 20.6, 2),
    ("respiratory_rate", 8.49, 3),
    ("respiratory_rate", 8.5, 1),
    ("heart_rate", 90.49, 0),
    ("heart_rate", 90.5, 1),
    ("systolic_bp", 90.4, 3),
    ("systolic_bp", 90.5, 2),
    ("spo2", 95.49, 1),
    ("spo2", 95.5, 0),
    ("temperature_c", 35.04, 3),
    ("temperature_c", 35.05, 1),
    ("temperature_c", 38.04, 0),
    ("temperature_c", 38.05, 1),
    ("temperature_c", 39.049, 1),
    ("temperature_c", 39.05, 2),
]


@pytest.mark.parametrize(("parameter", "value", "expected"), ROUNDING)
def test_news2_rounds_half_up_to_chart_precision(
    parameter: str, value: float, expected: int
) -> None:
    kwargs: dict[str, Any] = {parameter: value}
    assert news2(**kwargs).subscores[parameter] == expected


FREQUENCY = {
    720: "Minimum 12 hourly",
    240: "Minimum 4-6 hourly",
    60: "Minimum 1 hourly",
    0: "Continuous monitoring",
}
# (changes from NORMAL, total, red score, band, monitoring interval in minutes)
AGGREGATES = [
    ({}, 0, False, "low", 720),
    ({"heart_rate": 91}, 1, False, "low", 240),
    ({"respiratory_rate": 21, "heart_rate": 111}, 4, False, "low", 240),
    ({"consciousness": "V"}, 3, True, "low-medium", 60),
    ({"systolic_bp": 90, "heart_rate": 91}, 4, True, "low-medium", 60),
    ({"consciousness": "C", "on_oxygen": True}, 5, True, "medium", 60),
    ({"respiratory_rate": 21, "heart_rate": 111, "temperature_c": 38.1}, 5, False, "medium", 60),
    ({"respiratory_rate": 21, "heart_rate": 111, "on_oxygen": True}, 6, False, "medium", 60),
    ({"respiratory_rate": 21, "heart_rate": 131, "spo2": 95}, 6, True, "medium", 60),
    ({"respiratory_rate": 25, "heart_rate": 111, "spo2": 92}, 7, True, "high", 0),
    ({"respiratory_rate": 24, "heart_rate": 130, "temperature_c": 39.1}, 6, False, "medium", 60),
    (
        {"respiratory_rate": 24, "heart_rate": 130, "temperature_c": 39.1, "spo2": 94},
        7,
        False,
        "high",
        0,
    ),
]


@pytest.mark.parametrize(("changes", "total", "red", "band", "interval"), AGGREGATES)
def test_news2_aggregate_bands(
    changes: dict[str, Any], total: int, red: bool, band: str, interval: int
) -> None:
    result = news2_with(**changes)
    assert (result.total, result.red_score, result.band) == (total, red, band)
    assert result.monitoring_interval_minutes == interval
    assert result.response.startswith(FREQUENCY[interval])
    assert not result.partial


def test_news2_response_text_follows_chart_4() -> None:
    assert "Continue routine NEWS monitoring" in news2_with().response
    assert "who will review and decide" in news2_with(consciousness="U").response
    assert "Urgent response threshold" in news2_with(consciousness="U", on_oxygen=True).response
    high = news2_with(consciousness="U", on_oxygen=True, heart_rate=111).response
    assert "Emergency response threshold" in high
    assert "specialist registrar" in high


@pytest.mark.parametrize("parameter", NEWS2_PARAMETERS)
def test_news2_missing_parameter_is_never_scored(parameter: str) -> None:
    abnormal = {"respiratory_rate": 30, "heart_rate": 140, "systolic_bp": 80}
    result = news2(**(NORMAL | abnormal | {NEWS2_ARGUMENT[parameter]: None}))
    assert parameter in result.missing
    assert parameter not in result.subscores
    assert result.partial
    assert result.total == sum(result.subscores.values())


def test_news2_with_nothing_measured_is_all_missing() -> None:
    result = news2()
    assert (result.total, result.subscores, result.partial) == (0, {}, True)
    assert result.missing == NEWS2_PARAMETERS


def test_results_are_frozen_with_slots() -> None:
    result = news2_with()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.total = 3  # type: ignore[misc]
    assert not hasattr(result, "__dict__")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"spo2_scale": 0},
        {"spo2_scale": 3},
        {"respiratory_rate": math.nan},
        {"heart_rate": math.inf},
        {"systolic_bp": -1.0},
        {"spo2": 100.5},
        {"temperature_c": -math.inf},
        {"consciousness": "X"},
        {"consciousness": "a"},
    ],
)
def test_news2_rejects_bad_input(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        news2(**kwargs)


def expected_band(total: int, red_score: bool) -> tuple[str, int]:
    if total >= 7:
        return "high", 0
    if total >= 5:
        return "medium", 60
    if red_score:
        return "low-medium", 60
    return "low", 240 if total else 720


def maybe(low: float, high: float) -> st.SearchStrategy[float | None]:
    return st.none() | st.floats(min_value=low, max_value=high, allow_nan=False)


@settings(max_examples=400)
@given(
    respiratory_rate=maybe(0, 80),
    spo2=maybe(50, 100),
    on_oxygen=st.none() | st.booleans(),
    systolic_bp=maybe(20, 300),
    heart_rate=maybe(0, 300),
    consciousness=st.none() | st.sampled_from("ACVPU"),
    temperature_c=maybe(25, 45),
    spo2_scale=st.sampled_from([1, 2]),
)
def test_news2_properties(**kwargs: Any) -> None:
    result = news2(**kwargs)
    assert result.total == sum(result.subscores.values())
    assert 0 <= result.total <= 20
    assert set(result.subscores).isdisjoint(result.missing)
    assert set(result.subscores) | set(result.missing) == set(NEWS2_PARAMETERS)
    assert result.partial == bool(result.missing)
    assert result.red_score == (3 in result.subscores.values())
    assert (result.band, result.monitoring_interval_minutes) == expected_band(
        result.total, result.red_score
    )


@settings(max_examples=400)
@given(
    respiratory_rate=maybe(0, 80),
    systolic_bp=maybe(20, 300),
    heart_rate=maybe(0, 300),
    temperature_c=maybe(25, 45),
)
def test_cached_scorers_follow_the_charts(**kwargs: Any) -> None:
    # The hot path's per-parameter caches give what the chart lookup and the
    # threshold comparisons on the rounded value give.
    from twin import scores as s

    whole, tenth = s._WHOLE, s._TENTH
    rr, sbp = kwargs["respiratory_rate"], kwargs["systolic_bp"]
    hr, temp = kwargs["heart_rate"], kwargs["temperature_c"]
    for cached, value, reference in (
        (s._news2_rr, rr, ("respiratory_rate", rr, whole, s._NEWS2_RR)),
        (s._news2_sbp, sbp, ("systolic_bp", sbp, whole, s._NEWS2_SBP)),
        (s._news2_hr, hr, ("heart_rate", hr, whole, s._NEWS2_HR)),
        (s._news2_temp, temp, ("temperature_c", temp, tenth, s._NEWS2_TEMP)),
    ):
        if value is not None:
            assert cached(value) == s._score(*reference)
    criteria = qsofa(respiratory_rate=rr, systolic_bp=sbp).criteria
    if rr is not None:
        assert criteria["respiratory_rate"] is (s._rounded("rr", rr, whole) >= 22)
    if sbp is not None:
        assert criteria["systolic_bp"] is (s._rounded("sbp", sbp, whole) <= 100)


def test_whole_number_tables_score_as_the_charts() -> None:
    # NEWS2's respiratory rate, systolic pressure and heart rate are scored from
    # tables, uncached; _score (Decimal-free rounding, then the bands) is the reference.
    # Every whole number and half of the charts' range, and the floats beside the halves.
    from twin import scores as s

    values: list[float] = [
        *(n + d for n in range(0, 302) for d in (0.0, 0.49999999999999994, 0.5, 0.75)),
        *(math.nextafter(n + 0.5, 0) for n in range(0, 302)),
        -0.0,
        2.0**52 - 0.5,
        2.0**52,
        10**20,
        7,
    ]
    for value in values:
        for table, reference in (
            (s._news2_rr, ("respiratory_rate", value, s._WHOLE, s._NEWS2_RR)),
            (s._news2_sbp, ("systolic_bp", value, s._WHOLE, s._NEWS2_SBP)),
            (s._news2_hr, ("heart_rate", value, s._WHOLE, s._NEWS2_HR)),
        ):
            assert table(value) == s._score(*reference), (reference[0], value)


@pytest.mark.parametrize("value", [-1.0, -1e-300, math.nan, math.inf, -math.inf, 1e300])
def test_whole_number_tables_reject_as_the_charts(value: float) -> None:
    from twin import scores as s

    with pytest.raises((ArithmeticError, ValueError)) as expected:
        s._score.__wrapped__("heart_rate", value, s._WHOLE, s._NEWS2_HR)
    with pytest.raises((ArithmeticError, ValueError)) as got:
        s._news2_hr(value)
    assert (type(got.value), str(got.value)) == (type(expected.value), str(expected.value))


@settings(max_examples=2000)
@given(
    st.floats(min_value=0, max_value=1e6)
    | st.integers(min_value=0, max_value=10**6).map(lambda n: n + 0.5)
    | st.integers(min_value=0, max_value=10**6).map(lambda n: math.nextafter(n + 0.5, 0))
)
def test_whole_number_rounding_is_half_up_on_the_printed_decimal(value: float) -> None:
    from decimal import ROUND_HALF_UP, Decimal

    from twin import scores as s

    printed = Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert s._rounded("x", value, s._WHOLE) == printed


QSOFA_CASES = [
    ({"respiratory_rate": 21}, "respiratory_rate", False),
    ({"respiratory_rate": 21.49}, "respiratory_rate", False),
    ({"respiratory_rate": 21.5}, "respiratory_rate", True),
    ({"respiratory_rate": 22}, "respiratory_rate", True),
    ({"systolic_bp": 100}, "systolic_bp", True),
    ({"systolic_bp": 100.49}, "systolic_bp", True),
    ({"systolic_bp": 100.5}, "systolic_bp", False),
    ({"systolic_bp": 101}, "systolic_bp", False),
    *[({"consciousness": c}, "altered_mentation", c != "A") for c in "ACVPU"],
    ({"gcs": 15}, "altered_mentation", False),
    ({"gcs": 14}, "altered_mentation", True),
    ({"consciousness": "A", "gcs": 14}, "altered_mentation", True),
]


@pytest.mark.parametrize(("kwargs", "criterion", "met"), QSOFA_CASES)
def test_qsofa_criteria_boundaries(kwargs: dict[str, Any], criterion: str, met: bool) -> None:
    result = qsofa(**kwargs)
    assert result.criteria == {criterion: met}
    assert result.score == int(met)
    assert result.partial
    assert criterion not in result.missing


@pytest.mark.parametrize(
    ("respiratory_rate", "systolic_bp", "consciousness", "score"),
    [(16, 120, "A", 0), (22, 120, "A", 1), (22, 100, "A", 2), (21, 100, "V", 2), (30, 80, "U", 3)],
)
def test_qsofa_score_and_positive(
    respiratory_rate: float, systolic_bp: float, consciousness: str, score: int
) -> None:
    result = qsofa(
        respiratory_rate=respiratory_rate, systolic_bp=systolic_bp, consciousness=consciousness
    )
    assert (result.score, result.positive, result.partial) == (score, score >= 2, False)


def test_qsofa_missing_everything() -> None:
    result = qsofa()
    assert (result.score, result.positive, result.criteria) == (0, False, {})
    assert result.missing == QSOFA_CRITERIA


@pytest.mark.parametrize(
    "kwargs", [{"gcs": 16}, {"gcs": 2}, {"gcs": 14.5}, {"gcs": math.nan}, {"consciousness": "Z"}]
)
def test_qsofa_rejects_bad_input(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        qsofa(**kwargs)


# Subbe et al., QJM 2001, table 1, with the boundary conventions in mews()'s docstring.
MEWS_BOUNDARIES = [
    *[("systolic_bp", v, s) for v, s in [(50, 3), (70, 3), (71, 2), (80, 2), (81, 1)]],
    *[("systolic_bp", v, s) for v, s in [(100, 1), (101, 0), (199, 0), (200, 2), (260, 2)]],
    *[("heart_rate", v, s) for v, s in [(20, 2), (40, 2), (41, 1), (50, 1), (51, 0), (100, 0)]],
    *[("heart_rate", v, s) for v, s in [(101, 1), (110, 1), (111, 2), (129, 2), (130, 3)]],
    *[("respiratory_rate", v, s) for v, s in [(0, 2), (8, 2), (8.5, 0), (9, 0), (14, 0)]],
    *[("respiratory_rate", v, s) for v, s in [(15, 1), (20, 1), (21, 2), (29, 2), (30, 3)]],
    *[("temperature_c", v, s) for v, s in [(30.0, 2), (34.9, 2), (34.95, 0), (35.0, 0)]],
    *[("temperature_c", v, s) for v, s in [(38.4, 0), (38.45, 2), (38.5, 2), (41.0, 2)]],
    *[("consciousness", v, s) for v, s in [("A", 0), ("C", 1), ("V", 1), ("P", 2), ("U", 3)]],
]


@pytest.mark.parametrize(("parameter", "value", "expected"), MEWS_BOUNDARIES)
def test_mews_parameter_boundaries(parameter: str, value: Any, expected: int) -> None:
    result = mews(**{parameter: value})
    assert result.subscores == {parameter: expected}
    assert result.total == expected
    assert set(result.missing) == set(MEWS_PARAMETERS) - {parameter}


def test_mews_complete_and_missing() -> None:
    full = mews(
        systolic_bp=75, heart_rate=135, respiratory_rate=31, temperature_c=39.0, consciousness="U"
    )
    assert (full.total, full.partial, full.missing) == (13, False, ())
    empty = mews()
    assert (empty.total, empty.subscores, empty.partial) == (0, {}, True)
    assert empty.missing == MEWS_PARAMETERS


@given(
    systolic_bp=maybe(20, 300),
    heart_rate=maybe(0, 300),
    respiratory_rate=maybe(0, 80),
    temperature_c=maybe(25, 45),
    consciousness=st.none() | st.sampled_from("ACVPU"),
)
def test_mews_properties(**kwargs: Any) -> None:
    result = mews(**kwargs)
    assert result.total == sum(result.subscores.values())
    assert 0 <= result.total <= 14
    assert set(result.subscores) | set(result.missing) == set(MEWS_PARAMETERS)
    assert result.partial == bool(result.missing)
