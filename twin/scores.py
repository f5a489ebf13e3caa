"""Bedside early warning scores: NEWS2, qSOFA and MEWS, as pure functions.

Every function takes the vital signs as keyword arguments, each may be
``None``. A missing parameter is listed in ``missing`` and never scored as 0,
so a ``partial`` total is a lower bound, not a normal result.

Rounding convention: device values are rounded half-up to the precision the
charts are printed in before they are banded, so that no value falls between
two bands. Respiratory rate, SpO2, blood pressure and heart rate go to a
whole number and temperature to 0.1 degC (20.4/min scores as 20, 20.5 as 21;
38.05 degC as 38.1). Rounding is done on the decimal value as the float prints
(``repr``), so 38.05 rounds up although the binary float is just below it.

Non-finite or negative values, SpO2 above 100 and unknown ACVPU letters raise
``ValueError``: they are bad input for the dead-letter topic, not a score.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from twin.frozen import by_fields

__all__ = [
    "MEWS_PARAMETERS",
    "NEWS2_PARAMETERS",
    "QSOFA_CRITERIA",
    "MewsResult",
    "News2Result",
    "QsofaResult",
    "mews",
    "news2",
    "qsofa",
]

NEWS2_PARAMETERS: tuple[str, ...] = (
    "respiratory_rate",
    "spo2",
    "air_or_oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "temperature_c",
)
QSOFA_CRITERIA: tuple[str, ...] = ("respiratory_rate", "systolic_bp", "altered_mentation")
MEWS_PARAMETERS: tuple[str, ...] = (
    "systolic_bp",
    "heart_rate",
    "respiratory_rate",
    "temperature_c",
    "consciousness",
)

_ACVPU = frozenset("ACVPU")
_WHOLE = Decimal(1)
_TENTH = Decimal("0.1")
_EXACT_FRACTION = 2.0**52  # below it, every N + 0.5 is a float

# Bands: (inclusive upper bound, score) in ascending order, at the chart's
# precision; the last bound is infinite so every value lands in a band.
_Bands = tuple[tuple[Decimal | int, int], ...]
_INF = Decimal("Infinity")
_NEWS2_RR: _Bands = ((8, 3), (11, 1), (20, 0), (24, 2), (_INF, 3))
_NEWS2_SPO2_1: _Bands = ((91, 3), (93, 2), (95, 1), (_INF, 0))
_NEWS2_SPO2_2_LOW: _Bands = ((83, 3), (85, 2), (87, 1), (_INF, 0))  # only for values <= 92
_NEWS2_SPO2_2_ON_O2: _Bands = ((94, 1), (96, 2), (_INF, 3))  # only for values >= 93
_NEWS2_SBP: _Bands = ((90, 3), (100, 2), (110, 1), (219, 0), (_INF, 3))
_NEWS2_HR: _Bands = ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (_INF, 3))
_NEWS2_TEMP: _Bands = ((Decimal("35.0"), 3), (36, 1), (38, 0), (39, 1), (_INF, 2))
_MEWS_SBP: _Bands = ((70, 3), (80, 2), (100, 1), (199, 0), (_INF, 2))
_MEWS_HR: _Bands = ((40, 2), (50, 1), (100, 0), (110, 1), (129, 2), (_INF, 3))
_MEWS_RR: _Bands = ((8, 2), (14, 0), (20, 1), (29, 2), (_INF, 3))
_MEWS_TEMP: _Bands = ((Decimal("34.9"), 2), (Decimal("38.4"), 0), (_INF, 2))
_MEWS_AVPU = {"A": 0, "C": 1, "V": 1, "P": 2, "U": 3}

# RCP NEWS2 (2017) chart 4, "Clinical response to the NEWS trigger thresholds".
_RESPONSE_0 = "Minimum 12 hourly. Continue routine NEWS monitoring."
_RESPONSE_LOW = (
    "Minimum 4-6 hourly. Inform registered nurse, who must assess the patient. Registered "
    "nurse decides whether increased frequency of monitoring and/or escalation of care is required."
)
_RESPONSE_RED = (
    "Minimum 1 hourly. Registered nurse to inform medical team caring for the patient, "
    "who will review and decide whether escalation of care is necessary."
)
_RESPONSE_MEDIUM = (
    "Minimum 1 hourly. Urgent response threshold. Registered nurse to immediately inform the "
    "medical team caring for the patient. Registered nurse to request urgent assessment by a "
    "clinician or team with core competencies in the care of acutely ill patients. Provide "
    "clinical care in an environment with monitoring facilities."
)
_RESPONSE_HIGH = (
    "Continuous monitoring of vital signs. Emergency response threshold. Registered nurse to "
    "immediately inform the medical team caring for the patient - this should be at least at "
    "specialist registrar level. Emergency assessment by a team with critical care "
    "competencies, including practitioner(s) with advanced airway management skills. Consider "
    "transfer of care to a level 2 or 3 clinical care facility, ie higher-dependency unit or "
    "ICU. Clinical care in an environment with monitoring facilities."
)


@dataclass(frozen=True, slots=True)
class News2Result:
    """A NEWS2 score; ``total`` and ``band`` are lower bounds when ``partial``.

    Results are shared by the calls that score alike: read ``subscores``, do
    not change it.

    ``monitoring_interval_minutes`` schedules the next observation set: 720
    (minimum 12 hourly), 240 (minimum 4-6 hourly, taking the more frequent
    end), 60 (minimum 1 hourly), and 0 for continuous monitoring, which is a
    flag rather than a polling period.
    """

    total: int
    subscores: dict[str, int]
    missing: tuple[str, ...]
    partial: bool
    red_score: bool
    band: str
    response: str
    monitoring_interval_minutes: int

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


@dataclass(frozen=True, slots=True)
class QsofaResult:
    """A qSOFA score; a negative result is inconclusive when ``partial``.

    Results are shared by the calls that score alike: read ``criteria``, do
    not change it.
    """

    score: int
    criteria: dict[str, bool]
    missing: tuple[str, ...]
    partial: bool
    positive: bool

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


@dataclass(frozen=True, slots=True)
class MewsResult:
    """A MEWS score; ``total`` is a lower bound when ``partial``."""

    total: int
    subscores: dict[str, int]
    missing: tuple[str, ...]
    partial: bool

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


def _rounded(name: str, value: float, quantum: Decimal) -> Decimal | int:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r}: expected a finite, non-negative number")
    x = float(value)
    if quantum is _WHOLE and x < _EXACT_FRACTION:
        # To a whole number the printed decimal and the float round alike: N.5 is
        # a float, so repr(x) >= N.5 exactly when x >= N.5 (and x - floor(x) is
        # exact). Forecast values, never the same twice, skip Decimal this way.
        whole = math.floor(x)
        return whole + 1 if x - whole >= 0.5 else whole
    return Decimal(repr(x)).quantize(quantum, rounding=ROUND_HALF_UP)


def _band(value: Decimal | int, bands: _Bands) -> int:
    for upper, score in bands:
        if value <= upper:
            return score
    raise AssertionError("the last band is unbounded")  # pragma: no cover


@functools.lru_cache(maxsize=8192)
def _score(name: str, value: float | None, quantum: Decimal, bands: _Bands) -> int | None:
    # Cached: device values repeat (whole numbers mostly), and exact decimal
    # rounding is the costly part of scoring on the stream's hot path.
    return None if value is None else _band(_rounded(name, value, quantum), bands)


def _banded(name: str, quantum: Decimal, bands: _Bands) -> Callable[[float], int]:
    """``_score`` of one parameter and chart for a value that is not None, cached
    by the value alone (hashing the chart's bands on every lookup would cost as
    much as the lookup)."""

    @functools.lru_cache(maxsize=2048)
    def score(value: float) -> int:
        return _band(_rounded(name, value, quantum), bands)

    return score


def _whole_banded(name: str, bands: _Bands) -> Callable[[float], int]:
    """``_score`` of one parameter charted in whole numbers, from a table of every
    whole number up to the chart's last bound, without a cache.

    NEWS2 is also scored on forecast values (``news2.predicted``), never the same
    twice: half the calls missed the cache, at ~1 us a miss (the miss itself, then
    the rounding and the bands); ~0.45 us a call without it (hits took ~0.1 us).
    """
    top = int(bands[-2][0]) + 1  # every whole number above scores as this one
    table = [_band(whole, bands) for whole in range(top + 1)]

    def score(value: float) -> int:
        if not 0 <= value < _EXACT_FRACTION:  # also NaN: _rounded raises or handles it
            return _band(_rounded(name, value, _WHOLE), bands)
        # _rounded's half-up to a whole number, exact here (see there).
        whole = math.floor(value)
        if value - whole >= 0.5:
            whole += 1
        return table[whole] if whole < top else table[top]

    return score


_news2_rr = _whole_banded("respiratory_rate", _NEWS2_RR)
_news2_sbp = _whole_banded("systolic_bp", _NEWS2_SBP)
_news2_hr = _whole_banded("heart_rate", _NEWS2_HR)
_news2_temp = _banded("temperature_c", _TENTH, _NEWS2_TEMP)
# qSOFA's criteria (RR >= 22/min, SBP <= 100 mmHg), as 1 or 0, cached the same way.
_qsofa_rr = _banded("respiratory_rate", _WHOLE, ((21, 0), (_INF, 1)))
_qsofa_sbp = _banded("systolic_bp", _WHOLE, ((100, 1), (_INF, 0)))


def _acvpu(consciousness: str | None) -> str | None:
    if consciousness is not None and consciousness not in _ACVPU:
        raise ValueError(f"consciousness={consciousness!r}: expected one of A, C, V, P, U")
    return consciousness


@functools.lru_cache(maxsize=2048)
def _news2_spo2(spo2: float, on_oxygen: bool | None, scale: int) -> int | None:
    value = _rounded("spo2", spo2, _WHOLE)
    if spo2 > 100:
        raise ValueError(f"spo2={spo2!r}: expected a percentage between 0 and 100")
    if scale == 1:
        return _band(value, _NEWS2_SPO2_1)
    if value <= 92:
        return _band(value, _NEWS2_SPO2_2_LOW)
    if on_oxygen is None:
        return None  # 93% and above on scale 2 scores 0 on air but 1-3 on oxygen
    return _band(value, _NEWS2_SPO2_2_ON_O2) if on_oxygen else 0


_V = TypeVar("_V")


def _present_and_missing(
    names: Sequence[str], values: Sequence[_V | None]
) -> tuple[dict[str, _V], tuple[str, ...]]:
    """The named values that are there, and the names of those that are not (None).

    >>> _present_and_missing(("a", "b", "c"), (1, None, 0))
    ({'a': 1, 'c': 0}, ('b',))
    """
    present: dict[str, _V] = {}
    missing: list[str] = []
    for name, value in zip(names, values, strict=True):
        if value is None:
            missing.append(name)
        else:
            present[name] = value
    return present, tuple(missing)


def news2(
    *,
    respiratory_rate: float | None = None,
    spo2: float | None = None,
    on_oxygen: bool | None = None,
    systolic_bp: float | None = None,
    heart_rate: float | None = None,
    consciousness: str | None = None,
    temperature_c: float | None = None,
    spo2_scale: int = 1,
) -> News2Result:
    """National Early Warning Score 2.

    Royal College of Physicians. National Early Warning Score (NEWS) 2:
    Standardising the assessment of acute-illness severity in the NHS.
    Updated report of a working party. London: RCP, December 2017. Chart 1
    (scoring system), chart 3 (thresholds and triggers), chart 4 (response).

    Parameters
    ----------
    respiratory_rate, systolic_bp, heart_rate
        Breaths/min, mmHg, beats/min; rounded half-up to a whole number.
    spo2
        Peripheral oxygen saturation, %; rounded half-up to a whole number.
    on_oxygen
        Supplemental oxygen (scores 2) or air (0); ``None`` when unknown.
    consciousness
        ACVPU letter; new confusion (C), V, P and U all score 3.
    temperature_c
        Degrees Celsius; rounded half-up to 0.1.
    spo2_scale
        1, or 2 for hypercapnic respiratory failure (target 88-92%) as
        prescribed by a clinician. On scale 2, 93% and above scores 0 on air
        and 1-3 on oxygen; with ``on_oxygen=None`` it cannot be scored and
        ``"spo2"`` is listed as missing.

    Returns
    -------
    News2Result
        Band "low" (0, or 1-4), "low-medium" (a 3 in one parameter with a
        total under 5), "medium" (5-6) or "high" (7 or more).

    Examples
    --------
    >>> r = news2(respiratory_rate=22, spo2=95, on_oxygen=False, systolic_bp=105,
    ...           heart_rate=112, consciousness="A", temperature_c=38.4)
    >>> r.total, r.band, r.monitoring_interval_minutes
    (7, 'high', 0)
    >>> r.subscores["respiratory_rate"], r.subscores["heart_rate"]
    (2, 2)
    >>> r = news2(respiratory_rate=18, spo2=97, on_oxygen=False, systolic_bp=125,
    ...           heart_rate=80, consciousness="V", temperature_c=None)
    >>> r.total, r.red_score, r.band, r.missing
    (3, True, 'low-medium', ('temperature_c',))
    """
    if spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale={spo2_scale!r}: expected 1 or 2")
    # In NEWS2_PARAMETERS order (that of ``subscores`` and ``missing``).
    scored = (
        None if respiratory_rate is None else _news2_rr(respiratory_rate),
        None if spo2 is None else _news2_spo2(spo2, on_oxygen, spo2_scale),
        None if on_oxygen is None else (2 if on_oxygen else 0),
        None if systolic_bp is None else _news2_sbp(systolic_bp),
        None if heart_rate is None else _news2_hr(heart_rate),
        None if _acvpu(consciousness) is None else (0 if consciousness == "A" else 3),
        None if temperature_c is None else _news2_temp(temperature_c),
    )
    return _news2_result(scored)


@functools.lru_cache(maxsize=4096)
def _news2_result(scored: tuple[int | None, ...]) -> News2Result:
    # Cached by the subscores (a few hundred combinations in practice): the
    # result, frozen, is shared by the calls that score alike.
    subscores, missing = _present_and_missing(NEWS2_PARAMETERS, scored)
    total = sum(subscores.values())
    red_score = 3 in subscores.values()
    if total >= 7:
        band, response, interval = "high", _RESPONSE_HIGH, 0
    elif total >= 5:
        band, response, interval = "medium", _RESPONSE_MEDIUM, 60
    elif red_score:
        band, response, interval = "low-medium", _RESPONSE_RED, 60
    elif total >= 1:
        band, response, interval = "low", _RESPONSE_LOW, 240
    else:
        band, response, interval = "low", _RESPONSE_0, 720
    return News2Result(
        total, subscores, missing, bool(missing), red_score, band, response, interval
    )


def qsofa(
    *,
    respiratory_rate: float | None = None,
    systolic_bp: float | None = None,
    consciousness: str | None = None,
    gcs: float | None = None,
) -> QsofaResult:
    """Quick Sequential Organ Failure Assessment (qSOFA).

    Seymour CW et al. Assessment of clinical criteria for sepsis. JAMA
    2016;315(8):762-774. Singer M et al. The Third International Consensus
    Definitions for Sepsis and Septic Shock (Sepsis-3). JAMA 2016;315(8):801-810.

    One point each for respiratory rate >= 22/min, systolic BP <= 100 mmHg and
    altered mentation; ``positive`` when the score is 2 or more. Rates and
    pressures are rounded half-up to a whole number first. Mentation is
    altered when the ACVPU letter is not "A" or when GCS (3-15) is below 15;
    it is missing only when both are ``None``. Criteria are named as in
    ``QSOFA_CRITERIA``; ``criteria`` holds only those that could be assessed.

    Examples
    --------
    >>> r = qsofa(respiratory_rate=24, systolic_bp=98, consciousness="A")
    >>> r.score, r.positive, r.criteria["altered_mentation"]
    (2, True, False)
    >>> r = qsofa(respiratory_rate=21.4, systolic_bp=None, gcs=15)
    >>> r.score, r.positive, r.partial, r.missing
    (0, False, True, ('systolic_bp',))
    """
    _acvpu(consciousness)
    if gcs is not None and not (math.isfinite(gcs) and gcs == int(gcs) and 3 <= gcs <= 15):
        raise ValueError(f"gcs={gcs!r}: expected a whole number from 3 to 15")
    mentation: bool | None = None
    if consciousness is not None or gcs is not None:
        mentation = (consciousness not in (None, "A")) or (gcs is not None and gcs < 15)
    assessed = (
        None if respiratory_rate is None else _qsofa_rr(respiratory_rate) == 1,
        None if systolic_bp is None else _qsofa_sbp(systolic_bp) == 1,
        mentation,
    )
    return _qsofa_result(assessed)


@functools.lru_cache(maxsize=32)
def _qsofa_result(assessed: tuple[bool | None, ...]) -> QsofaResult:
    # Cached like _news2_result: 27 combinations.
    criteria, missing = _present_and_missing(QSOFA_CRITERIA, assessed)
    score = sum(criteria.values())
    return QsofaResult(score, criteria, missing, bool(missing), score >= 2)


def mews(
    *,
    systolic_bp: float | None = None,
    heart_rate: float | None = None,
    respiratory_rate: float | None = None,
    temperature_c: float | None = None,
    consciousness: str | None = None,
) -> MewsResult:
    """Modified Early Warning Score (MEWS).

    Subbe CP, Kruger M, Rutherford P, Gemmel L. Validation of a modified
    Early Warning Score in medical admissions. QJM 2001;94(10):521-526.

    After rounding (whole numbers; temperature to 0.1 degC) the bands are:
    SBP <=70: 3, 71-80: 2, 81-100: 1, 101-199: 0, >=200: 2; heart rate
    <=40: 2, 41-50: 1, 51-100: 0, 101-110: 1, 111-129: 2, >=130: 3;
    respiratory rate <=8 (the paper's "<9"): 2, 9-14: 0, 15-20: 1, 21-29: 2,
    >=30: 3; temperature <35.0: 2, 35.0-38.4: 0, >=38.5: 2; AVPU A: 0,
    V: 1, P: 2, U: 3. Where the published table leaves a gap (heart rate
    "<40" beside "41-50") the boundary value takes the higher score, so 40
    bpm scores 2. The paper predates ACVPU: new confusion ("C") is scored 1,
    like V, by local convention.

    Examples
    --------
    >>> r = mews(systolic_bp=95, heart_rate=115, respiratory_rate=22,
    ...          temperature_c=38.6, consciousness="A")
    >>> r.total, r.subscores["heart_rate"], r.partial
    (7, 2, False)
    """
    avpu = _acvpu(consciousness)
    scored: dict[str, int | None] = {
        "systolic_bp": _score("systolic_bp", systolic_bp, _WHOLE, _MEWS_SBP),
        "heart_rate": _score("heart_rate", heart_rate, _WHOLE, _MEWS_HR),
        "respiratory_rate": _score("respiratory_rate", respiratory_rate, _WHOLE, _MEWS_RR),
        "temperature_c": _score("temperature_c", temperature_c, _TENTH, _MEWS_TEMP),
        "consciousness": None if avpu is None else _MEWS_AVPU[avpu],
    }
    subscores = {name: score for name, score in scored.items() if score is not None}
    missing = tuple(name for name, score in scored.items() if score is None)
    return MewsResult(sum(subscores.values()), subscores, missing, bool(missing))
