"""Short-horizon forecasts of one vital of one patient (+30 and +60 minutes).

River's ``time_series.HoltWinters`` with an additive trend and no season
(its arithmetic, on its state kept as plain numbers: no river objects per
vital) learns one *step* per burst of readings; vitals arrive irregularly (a monitor
every minute, a nurse every four hours), so time is handled around it:

* **Steps.** A reading less than ``min_step_s`` after the current step's first
  reading (or older than it) joins that step: the step's value becomes the mean
  of its readings, re-learned by undoing the step's update (HoltWinters keeps
  the previous level and trend) and learning the mean instead. Otherwise the
  reading opens a new step.
* **Time to steps.** The trend is per step; the mean spacing of steps is an
  exponentially weighted average of the gaps between them, and a horizon of
  ``H`` seconds is ``H / spacing`` steps. After a gap longer than ``max_gap_s``
  the model is stale and starts afresh (two steps to re-initialise).
* **Damped trend.** HoltWinters' forecast is ``level + h * trend``, evaluated
  here at a fractional ``h``. With ``trend_damping_s = tau`` the trend is damped
  in time, ``h = tau * (1 - exp(-H / tau)) / spacing`` (a trend fitted on the
  last few minutes is not extrapolated at full slope for an hour); ``None``
  keeps river's linear forecast.

Readings are clamped to ``[low, high]`` before learning and forecasts after.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypedDict, cast

from twin.frozen import by_fields
from twin.learning.errors import LearnedStateError

__all__ = [
    "DEFAULT_HORIZONS_S",
    "NEWS2_FORECAST_VITALS",
    "ForecastParams",
    "News2Inputs",
    "VitalForecaster",
    "overlay_forecasts",
    "projected_news2_inputs",
]

DEFAULT_HORIZONS_S: tuple[int, ...] = (1800, 3600)

# The learning phase of the HoltWinters model decides what follows the byte:
# 0 nothing; 1 the first value; 2 the first two values (just initialised);
# 3 level and trend, previous and current. Phases 1-3 then carry the current
# step (start time, sum, count of readings) and the mean spacing of steps.
_PHASE = struct.Struct("<B")
_VALUES = (struct.Struct("<"), struct.Struct("<d"), struct.Struct("<dd"), struct.Struct("<dddd"))
_STEP = struct.Struct("<ddHd")
# Phase 3 (how every forecaster that has seen three steps is stored) in one go.
_LEARNING = struct.Struct("<B" + _VALUES[3].format[1:] + _STEP.format[1:])
# Phases 1 and 2 (the first minutes of a twin) in one go too.
_EARLY = tuple(struct.Struct("<B" + _VALUES[p].format[1:] + _STEP.format[1:]) for p in (1, 2))
_MAX_COUNT = 0xFFFF


@dataclass(frozen=True, slots=True)
class ForecastParams:
    """Settings of a :class:`VitalForecaster`; ``low``/``high`` are per vital."""

    alpha: float = 0.3
    beta: float = 0.1
    low: float = -math.inf
    high: float = math.inf
    min_step_s: float = 60.0
    max_gap_s: float = 6 * 3600.0
    interval_fading: float = 0.1
    trend_damping_s: float | None = 3600.0

    def __post_init__(self) -> None:
        if not (0 < self.alpha <= 1 and 0 < self.beta <= 1):
            raise ValueError("alpha and beta must be in (0, 1]")
        if not 0 < self.min_step_s < self.max_gap_s:
            raise ValueError("expected 0 < min_step_s < max_gap_s")

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


def _mean2(a: float, b: float) -> float:
    """``statistics.mean((a, b))`` for finite floats, without its exact fractions.

    ``a + b`` is rounded once, and halving a binary float is exact (barring
    underflow to subnormals or overflow, which clamped vitals never reach), so
    ``(a + b) / 2`` is the correctly rounded mean that ``statistics.mean``
    computes with fractions, at a hundredth of the cost (0.06 against 6.3 us):
    on a monitor's feed (a reading every 0.5 s) statistics.mean ran for 5 vitals
    twice per event for a minute after each new model's first step. ``or 0.0``:
    the mean of two negative zeros is a positive one there (fractions have no
    signed zero). tests/unit/test_learning.py checks the two agree to the bit.

    >>> _mean2(0.1, 0.2), _mean2(97.0, 88.0), _mean2(-0.0, -0.0)
    (0.15000000000000002, 92.5, 0.0)
    """
    return (a + b) / 2 or 0.0


class VitalForecaster:
    """HoltWinters (level + trend) over irregular readings, forecast in seconds.

    Examples
    --------
    Respiratory rate climbing 1/min every 10 minutes:

    >>> f = VitalForecaster(ForecastParams(low=4.0, high=60.0))
    >>> for i in range(12):
    ...     f.update(16.0 + i, at=600.0 * i)
    >>> {h: round(v, 1) for h, v in f.forecast().items()}
    {1800: 29.5, 3600: 31.0}
    >>> round(f.slope_per_hour, 1)
    6.2
    """

    __slots__ = (
        "_count",
        "_first0",
        "_first1",
        "_interval",
        "_level0",
        "_level1",
        "_phase",
        "_step_at",
        "_sum",
        "_trend0",
        "_trend1",
        "params",
    )

    def __init__(self, params: ForecastParams | None = None) -> None:
        self.params = params if params is not None else ForecastParams()
        # HoltWinters' state as plain numbers (see _PHASE): the first two values
        # until initialised, then its two levels and trends, current last.
        self._phase = 0
        self._first0 = self._first1 = 0.0
        self._level0 = self._level1 = self._trend0 = self._trend1 = 0.0
        self._step_at = 0.0
        self._sum = 0.0
        self._count = 0  # readings in the current step; 0 before the first
        self._interval = 0.0  # mean spacing of steps, s; 0 until known

    @property
    def ready(self) -> bool:
        """Whether a forecast can be made (two steps seen since the last restart)."""
        return self._phase >= 2 and self._interval > 0

    @property
    def level(self) -> float | None:
        """The smoothed current level, or None before two steps."""
        return float(self._level1) if self._phase >= 2 else None

    @property
    def slope_per_hour(self) -> float | None:
        """The undamped trend in units per hour, or None when not ready."""
        return float(self._trend1) * 3600.0 / self._interval if self.ready else None

    def update(self, value: float, at: float) -> None:
        """Learn one reading taken at event time ``at``."""
        p = self.params
        # min(max(value, low), high), without the builtins' calls
        y = p.low if p.low > value else value
        if p.high < y:
            y = p.high
        if self._count and at - self._step_at < p.min_step_s:
            if self._count < _MAX_COUNT:
                self._count += 1
                self._sum += y
                self._relearn(self._sum / self._count)
            return
        if self._count:
            gap = at - self._step_at
            if gap > p.max_gap_s:
                self._phase = 0  # a new model
            elif self._interval:
                f = p.interval_fading
                self._interval = f * gap + (1.0 - f) * self._interval
            else:
                self._interval = gap
        self._step_at, self._sum, self._count = at, y, 1
        self._learn(y)

    def _learn(self, y: float) -> None:
        """River's ``HoltWinters.learn_one(y)`` with an additive trend and no season:
        the first value is kept; the second initialises the level to the mean of
        the two and the trend to their difference (river: ``statistics.mean``, here
        :func:`_mean2`, the same float); then ``AdditiveLevel.update`` and
        ``Trend.update``, the same arithmetic."""
        phase = self._phase
        if phase >= 2:
            self._level0, self._trend0 = self._level1, self._trend1
            self._step(y)
        elif phase == 1:
            self._first1 = y
            # Once per model start, and again for each further reading of that step
            # (_relearn): a monitor sending every few seconds re-initialises here
            # for a whole minute.
            self._level1 = _mean2(self._first0, y)
            # statistics.mean of one value: the value, but never a negative zero.
            self._trend1 = (y - self._first0) or 0.0
            self._phase = 2
        else:
            self._first0 = y
            self._phase = 1

    def _step(self, y: float) -> None:
        """The current level and trend from the previous ones and ``y``."""
        p = self.params
        alpha, beta = p.alpha, p.beta
        self._level1 = level = alpha * y + (1 - alpha) * (self._level0 + self._trend0)
        self._trend1 = beta * (level - self._level0) + (1 - beta) * self._trend0
        self._phase = 3

    def _relearn(self, y: float) -> None:
        """Replace the current step's value by ``y`` (HoltWinters keeps one step back)."""
        phase = self._phase
        if phase == 3:
            self._step(y)
        elif phase == 2:  # this step initialised the model: initialise again
            self._phase = 1
            self._learn(y)
        else:
            self._first0 = y

    def forecast(self, horizons_s: Iterable[int] = DEFAULT_HORIZONS_S) -> dict[int, float]:
        """Projected values ``horizon`` seconds after the current step; {} if not ready."""
        if self._phase < 2 or not self._interval > 0:  # not self.ready, without its call
            return {}
        p = self.params
        level, trend = self._level1, self._trend1
        tau = p.trend_damping_s
        out: dict[int, float] = {}
        low, high = p.low, p.high
        for horizon in horizons_s:
            reach = horizon if tau is None else tau * -math.expm1(-horizon / tau)
            y = level + reach / self._interval * trend
            # min(max(y, low), high), ties keeping the first, without the builtins
            if low > y:
                y = low
            if high < y:
                y = high
            out[horizon] = float(y)
        return out

    def to_bytes(self) -> bytes:
        """The state: 59 bytes once learning (1 byte before any reading)."""
        out = bytearray()
        self.pack_into(out)
        return bytes(out)

    @classmethod
    def from_bytes(cls, raw: bytes, params: ForecastParams | None = None) -> Self:
        """Inverse of :meth:`to_bytes`; ``params`` must be those it was built with."""
        forecaster, end = cls.unpack_from(raw, 0, params)
        if end != len(raw):
            raise LearnedStateError(f"forecaster state: {len(raw) - end} trailing bytes")
        return forecaster

    def pack_into(self, out: bytearray) -> None:
        """Append the state to ``out`` (used by the patient codec)."""
        phase = self._phase
        if phase == 3:
            out += _LEARNING.pack(
                3,
                self._level0,
                self._level1,
                self._trend0,
                self._trend1,
                self._step_at,
                self._sum,
                self._count,
                self._interval,
            )
            return
        if phase == 1:
            out += _EARLY[0].pack(
                1, self._first0, self._step_at, self._sum, self._count, self._interval
            )
        elif phase == 2:
            out += _EARLY[1].pack(
                2, self._first0, self._first1, self._step_at, self._sum, self._count, self._interval
            )
        else:
            out += _PHASE.pack(phase)

    @staticmethod
    def skip(buf: bytes | memoryview, offset: int) -> int:
        """The offset just after a forecaster packed at ``offset`` (without decoding it)."""
        if offset >= len(buf) or buf[offset] >= len(_VALUES):
            raise LearnedStateError(f"forecaster state truncated or corrupt at byte {offset}")
        phase = buf[offset]
        end = offset + 1 + _VALUES[phase].size + (_STEP.size if phase else 0)
        if end > len(buf):
            raise LearnedStateError(f"forecaster state truncated at byte {offset}")
        return end

    @classmethod
    def unpack_from(
        cls, buf: bytes | memoryview, offset: int, params: ForecastParams | None = None
    ) -> tuple[Self, int]:
        """Read a forecaster at ``offset``; returns it and the offset after it."""
        forecaster = cls(params)
        try:
            (phase,) = _PHASE.unpack_from(buf, offset)
            if phase >= len(_VALUES):
                raise LearnedStateError(f"forecaster state: unknown phase {phase}")
            values = _VALUES[phase].unpack_from(buf, offset + 1)
            offset += 1 + _VALUES[phase].size
            if phase:
                step = _STEP.unpack_from(buf, offset)
                offset += _STEP.size
                forecaster._step_at, forecaster._sum, forecaster._count, forecaster._interval = step
        except struct.error as exc:
            raise LearnedStateError(f"forecaster state truncated at byte {offset}") from exc
        if phase == 3:
            level0, level1, trend0, trend1 = values
            forecaster._level0, forecaster._level1 = level0, level1
            forecaster._trend0, forecaster._trend1 = trend0, trend1
            forecaster._phase = 3
        else:
            for value in values:  # replaying the first values rebuilds phases 1 and 2
                forecaster._learn(value)
        return forecaster, offset


class News2Inputs(TypedDict):
    """Keyword arguments for ``twin.scores.news2``: ``news2(**inputs)``."""

    respiratory_rate: float | None
    spo2: float | None
    on_oxygen: bool | None
    systolic_bp: float | None
    heart_rate: float | None
    consciousness: str | None
    temperature_c: float | None
    spo2_scale: int


NEWS2_FORECAST_VITALS = frozenset(
    ("heart_rate", "respiratory_rate", "spo2", "systolic_bp", "temperature_c")
)
"""The vitals NEWS2 scores that a :class:`VitalForecaster` may forecast."""


def overlay_forecasts(
    carried: Mapping[str, Any],
    forecasts: Mapping[str, Mapping[int, float]],
    horizon_s: int,
    precision: Callable[[str, float], float] | None = None,
) -> dict[str, Any]:
    """``carried`` (NEWS2's inputs now) with each NEWS2 vital that has a forecast at
    ``horizon_s`` replaced by it, passed through ``precision`` when given (the
    worker rounds forecasts as the chart bands them before scoring).

    >>> overlay_forecasts({"spo2": 95.0, "heart_rate": 96.0}, {"heart_rate": {3600: 118.4}}, 3600)
    {'spo2': 95.0, 'heart_rate': 118.4}
    """
    out = dict(carried)
    for vital, forecast in forecasts.items():
        value = forecast.get(horizon_s)
        if value is not None and vital in NEWS2_FORECAST_VITALS:
            out[vital] = value if precision is None else precision(vital, value)
    return out


def projected_news2_inputs(
    forecasts: Mapping[str, Mapping[int, float]],
    horizon_s: int,
    *,
    latest: Mapping[str, float] | None = None,
    on_oxygen: bool | None = None,
    consciousness: str | None = None,
    spo2_scale: int = 1,
) -> News2Inputs:
    """NEWS2 inputs ``horizon_s`` ahead: forecast vitals, else the latest, else None.

    A vital without a forecast at ``horizon_s`` carries its ``latest`` value
    forward; one with neither is None, so ``news2`` reports it missing and the
    projected score is a lower bound (``partial``), never a silent normal.
    Oxygen, consciousness and the SpO2 scale are not forecast: pass the
    current ones.

    Examples
    --------
    >>> from twin.scores import news2
    >>> inputs = projected_news2_inputs(
    ...     {"heart_rate": {3600: 118.4}, "respiratory_rate": {3600: 23.6}},
    ...     3600,
    ...     latest={"spo2": 95.0, "systolic_bp": 104.0, "heart_rate": 96.0},
    ...     on_oxygen=False,
    ...     consciousness="A",
    ... )
    >>> inputs["heart_rate"], inputs["temperature_c"]
    (118.4, None)
    >>> r = news2(**inputs)
    >>> r.total, r.band, r.partial
    (6, 'medium', True)
    """
    carried = latest if latest is not None else {}
    now: News2Inputs = {
        "respiratory_rate": carried.get("respiratory_rate"),
        "spo2": carried.get("spo2"),
        "on_oxygen": on_oxygen,
        "systolic_bp": carried.get("systolic_bp"),
        "heart_rate": carried.get("heart_rate"),
        "consciousness": consciousness,
        "temperature_c": carried.get("temperature_c"),
        "spo2_scale": spo2_scale,
    }
    return cast(News2Inputs, overlay_forecasts(now, forecasts, horizon_s))
