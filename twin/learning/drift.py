"""Sustained level shifts of one vital of one patient (resting HR up 20 bpm for hours).

River's ``drift.PageHinkley`` (a two-sided CUSUM against its running mean since
its last reset; its arithmetic, on its state kept as plain numbers) watches
every reading, anomalous ones included, with its thresholds in units of the
vital's clinical ``scale`` (``twin.learning.vitals``). Three additions turn
its alarm into a *sustained* change rather than a spike:

* **Clipping.** A reading enters the test at most ``clip`` scales away from the
  detector's running mean, so one reading adds at most ``clip - delta`` scales
  to the statistic and no single spike, however large, crosses ``threshold``.
* **Onset.** A change starts where the CUSUM statistic last sat at its minimum
  (the classical CUSUM change-point estimate). For each direction the time of
  that minimum and the running mean there (the level before the change) are
  kept; an alarm whose onset came before ``min_instances`` readings has no
  reliable level before it and is ignored.
* **Confirmation.** An alarm opens a *pending* change. PageHinkley resets on
  the next reading, so its running mean from then on is the level after the
  alarm. Once ``min_duration_s`` have passed since onset and at least
  ``min_post_readings`` readings followed the alarm, the change is confirmed
  if that level differs from the level before by at least ``min_shift`` scales
  in the alarm's direction *and* at least ``min_fraction`` of the readings
  since the alarm lie half that far beyond the level before; otherwise it is
  discarded (an excursion that ended) and the detector starts afresh.

A confirmed change is returned once, as a :class:`SustainedChange`; the
patient models then re-base the personal baseline on ``SustainedChange.level``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, Literal, Self

from twin.frozen import by_fields
from twin.learning.errors import LearnedStateError

__all__ = ["Direction", "DriftParams", "SustainedChange", "SustainedChangeDetector"]

Direction = Literal["up", "down"]

# PageHinkley's n, mean, sum_increase, sum_decrease, min_increase and
# max_decrease; the up and down onset times and levels; the count of readings
# since the alarm beyond the level before it; a flag byte.
_STATE = struct.Struct("<IdddddddddHB")
_MAX_BEYOND = 0xFFFF
_PENDING = struct.Struct("<dd")  # onset of the pending change, level before it
_DRIFT, _UP, _DOWN = 1, 2, 4


@dataclass(frozen=True, slots=True)
class DriftParams:
    """Settings of a :class:`SustainedChangeDetector`.

    ``delta``, ``threshold``, ``clip`` and ``min_shift`` are in units of
    ``scale``; ``alpha`` and ``min_instances`` are PageHinkley's own.
    """

    scale: float = 1.0
    delta: float = 0.5
    threshold: float = 10.0
    clip: float = 3.0
    min_instances: int = 12
    alpha: float = 1 - 0.0001
    min_duration_s: float = 3600.0
    min_post_readings: int = 3
    min_shift: float = 2.0
    min_fraction: float = 0.8

    def __post_init__(self) -> None:
        if not (self.scale > 0 and 0 <= self.delta < self.clip < self.threshold):
            raise ValueError("expected scale > 0 and 0 <= delta < clip < threshold")

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


@dataclass(frozen=True, slots=True)
class SustainedChange:
    """A confirmed change of level; ``magnitude = level - previous_level``."""

    direction: Direction
    magnitude: float
    level: float
    previous_level: float
    onset_at: float
    confirmed_at: float

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


class _PageHinkley:
    """The state of river's ``drift.PageHinkley`` (mode "both") as plain numbers:
    its running mean (``stats.Mean``: count and mean), the two CUSUM sums with
    their extremes, and the alarm. Its update is written out in
    :meth:`SustainedChangeDetector.update`, with river's arithmetic."""

    __slots__ = (
        "drift_detected",
        "max_decrease",
        "mean",
        "min_increase",
        "n",
        "sum_decrease",
        "sum_increase",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """River's ``PageHinkley._reset``."""
        self.drift_detected = False
        self.n = 0.0
        self.mean = 0.0
        self.sum_increase = 0.0
        self.sum_decrease = 0.0
        self.min_increase = math.inf
        self.max_decrease: float = -1.0  # river's int -1, as the annotated float


class SustainedChangeDetector:
    """PageHinkley with clipping, an onset estimate and a minimum duration.

    Examples
    --------
    Resting heart rate about 70 bpm, one reading every 5 minutes, then 90:

    >>> d = SustainedChangeDetector(DriftParams(scale=5.0))
    >>> t, changes = 0.0, []
    >>> for i in range(84):
    ...     change = d.update((70.0 if i < 48 else 90.0) + (i % 3 - 1), t)
    ...     changes += [change] if change else []
    ...     t += 300
    >>> [(c.direction, round(c.magnitude), (c.confirmed_at - c.onset_at) // 60) for c in changes]
    [('up', 20, 60.0)]
    """

    __slots__ = (
        "_beyond",
        "_down_level",
        "_down_onset",
        "_pending",
        "_pending_onset",
        "_ph",
        "_pre_level",
        "_up_level",
        "_up_onset",
        "params",
    )

    def __init__(self, params: DriftParams | None = None) -> None:
        self.params = params if params is not None else DriftParams()
        self._ph = _PageHinkley()
        self._up_onset = self._down_onset = 0.0
        self._up_level = self._down_level = 0.0
        self._pending = 0  # +1 up, -1 down, 0 none
        self._pending_onset = 0.0
        self._pre_level = 0.0
        self._beyond = 0  # readings since the alarm at least min_shift/2 beyond _pre_level

    @property
    def drift_detected(self) -> bool:
        """PageHinkley's raw alarm on the last reading (before confirmation)."""
        return bool(self._ph.drift_detected)

    @property
    def pending(self) -> Direction | None:
        """Direction of an alarm waiting for confirmation, if any."""
        return None if self._pending == 0 else ("up" if self._pending > 0 else "down")

    @property
    def level(self) -> float:
        """PageHinkley's running mean: the level since its last alarm."""
        return float(self._ph.mean)

    def update(self, value: float, at: float, scale: float | None = None) -> SustainedChange | None:
        """Feed one reading at event time ``at``; a change when one is confirmed.

        ``scale`` overrides ``params.scale`` for this reading: the patient
        models pass the larger of the vital's scale and the patient's own
        standard deviation, so a noisy patient needs a larger shift.
        """
        p = self.params
        s = p.scale if scale is None else scale
        ph = self._ph
        delta, threshold = p.delta * s, p.threshold * s
        x = value
        if ph.drift_detected:  # after an alarm PageHinkley resets first
            ph.reset()
        elif ph.n:
            ref, reach = ph.mean, p.clip * s
            # min(max(value, ref - reach), ref + reach), without the builtins' calls
            low, high = ref - reach, ref + reach
            clipped = low if low > value else value
            x = high if high < clipped else clipped
        # PageHinkley.update(x) after its reset, written out (river's stats.Mean
        # update with weight 1, then the two-sided test): the same arithmetic.
        ph.n += 1.0
        ph.mean += (1.0 / ph.n) * (x - ph.mean)
        dev = x - ph.mean
        ph.sum_increase = increase = p.alpha * ph.sum_increase + dev - delta
        ph.sum_decrease = decrease = p.alpha * ph.sum_decrease + dev + delta
        if increase < ph.min_increase:
            ph.min_increase = increase
        if decrease > ph.max_decrease:
            ph.max_decrease = decrease
        if ph.n >= p.min_instances:
            ph.drift_detected = (
                increase - ph.min_increase > threshold or ph.max_decrease - decrease > threshold
            )
        # The level before a change is only known once the running mean has
        # min_instances readings behind it; NaN until then, and an alarm with
        # an unknown level before it is ignored.
        known = ph.mean if ph.n >= p.min_instances else math.nan
        if increase == ph.min_increase:
            self._up_onset, self._up_level = at, known
        if decrease == ph.max_decrease:
            self._down_onset, self._down_level = at, known

        if ph.drift_detected:
            rising = ph.sum_increase - ph.min_increase >= ph.max_decrease - ph.sum_decrease
            sign = 1 if rising else -1
            before = self._up_level if rising else self._down_level
            if self._pending == 0 and not math.isnan(before):
                self._pending = sign
                self._pending_onset = self._up_onset if rising else self._down_onset
                self._pre_level = before
            elif self._pending and self._pending != sign:
                self._pending = 0  # the excursion went back: it was not sustained
            self._beyond = 0  # counted afresh with PageHinkley's mean after its reset
            return None
        if self._pending == 0:
            return None
        if (value - self._pre_level) * self._pending >= p.min_shift * s / 2:
            self._beyond = min(self._beyond + 1, _MAX_BEYOND)
        post = ph.n
        if at - self._pending_onset < p.min_duration_s or post < p.min_post_readings:
            return None
        sign, self._pending = self._pending, 0
        level = float(ph.mean)
        shift = level - self._pre_level
        if shift * sign < p.min_shift * s or self._beyond < p.min_fraction * post:
            # An excursion that ended: start afresh, lest its readings in the
            # running mean make the return to normal look like a change.
            ph.reset()
            return None
        direction: Direction = "up" if sign > 0 else "down"
        return SustainedChange(direction, shift, level, self._pre_level, self._pending_onset, at)

    def to_bytes(self) -> bytes:
        """The state: 79 bytes, 95 while a change is pending."""
        out = bytearray()
        self.pack_into(out)
        return bytes(out)

    @classmethod
    def from_bytes(cls, raw: bytes, params: DriftParams | None = None) -> Self:
        """Inverse of :meth:`to_bytes`; ``params`` must be those it was built with."""
        detector, end = cls.unpack_from(raw, 0, params)
        if end != len(raw):
            raise LearnedStateError(f"drift state: {len(raw) - end} trailing bytes")
        return detector

    def pack_into(self, out: bytearray) -> None:
        """Append the state to ``out`` (used by the patient codec)."""
        ph = self._ph
        flags = (
            (_DRIFT if ph.drift_detected else 0)
            | (_UP if self._pending > 0 else 0)
            | (_DOWN if self._pending < 0 else 0)
        )
        out += _STATE.pack(
            int(ph.n),
            ph.mean,
            ph.sum_increase,
            ph.sum_decrease,
            ph.min_increase,
            ph.max_decrease,
            self._up_onset,
            self._up_level,
            self._down_onset,
            self._down_level,
            self._beyond,
            flags,
        )
        if self._pending:
            out += _PENDING.pack(self._pending_onset, self._pre_level)

    @staticmethod
    def skip(buf: bytes | memoryview, offset: int) -> int:
        """The offset just after a detector packed at ``offset`` (without decoding it)."""
        end = offset + _STATE.size
        if end > len(buf):
            raise LearnedStateError(f"drift state truncated at byte {offset}")
        end += _PENDING.size if buf[end - 1] & (_UP | _DOWN) else 0
        if end > len(buf):
            raise LearnedStateError(f"drift state truncated at byte {offset}")
        return end

    @classmethod
    def unpack_from(
        cls, buf: bytes | memoryview, offset: int, params: DriftParams | None = None
    ) -> tuple[Self, int]:
        """Read a detector at ``offset``; returns it and the offset after it."""
        try:
            (
                n,
                mean,
                inc,
                dec,
                min_inc,
                max_dec,
                up_at,
                up_level,
                down_at,
                down_level,
                beyond,
                flags,
            ) = _STATE.unpack_from(buf, offset)
            offset += _STATE.size
            pending = 1 if flags & _UP else (-1 if flags & _DOWN else 0)
            onset, pre_level = _PENDING.unpack_from(buf, offset) if pending else (0.0, 0.0)
            offset += _PENDING.size if pending else 0
        except struct.error as exc:
            raise LearnedStateError(f"drift state truncated at byte {offset}") from exc
        if not math.isfinite(mean):
            raise LearnedStateError("drift state holds a non-finite running mean")
        detector = cls(params)
        ph = detector._ph
        ph.n, ph.mean = float(n), mean
        ph.sum_increase, ph.sum_decrease = inc, dec
        ph.min_increase, ph.max_decrease = min_inc, max_dec
        ph.drift_detected = bool(flags & _DRIFT)
        detector._up_onset, detector._up_level = up_at, up_level
        detector._down_onset, detector._down_level = down_at, down_level
        detector._beyond = beyond
        detector._pending, detector._pending_onset, detector._pre_level = pending, onset, pre_level
        return detector, offset
