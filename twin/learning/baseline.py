"""A personal baseline per patient and vital: what is normal for *this* patient.

The mean and variance are exponentially weighted, with exactly river's
``stats.EWMean`` / ``stats.EWVar`` update (``m = f*x + (1-f)*m`` on ``x`` and on
``x*x``, variance ``E[x^2] - m^2``) but a fading factor of ``max(f, 1/n)`` for
the ``n``-th taught reading. River starts its average at the first value and
fades from there, so with ``f = 0.02`` the first reading would still weigh 80 %
after twelve; equal weights until ``n = 1/f`` remove that start-up bias, and
from then on the update *is* river's (for ``f >= 0.5`` bit for bit from the
first reading, which the tests check). The state is three numbers, so it is
kept here rather than in river's Rust objects, whose state cannot be read.

A baseline is trusted after ``warmup`` taught readings. Once trusted, a reading
with ``|z| > anomaly_z`` is flagged anomalous and does not teach (river's
``anomaly.ThresholdFilter`` with ``protect_anomaly_detector=True``), so a
burst of artefacts cannot drag the baseline along. The price is that a real,
lasting shift would look anomalous forever; :meth:`PersonalBaseline.rebase`
is the way out, called when the drift detector (``twin.learning.drift``)
confirms a sustained change: the mean moves to the new level, the variance is
kept and the baseline re-learns quickly, as just after warm-up.

A run counter tracks consecutive trusted readings beyond ``deviation_k``
standard deviations on the same side; ``deviating`` holds from the
``deviation_n``-th, for a ``baseline_deviation`` alert.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, Self

from twin.frozen import by_fields
from twin.learning.errors import LearnedStateError

__all__ = ["BaselineParams", "BaselineReading", "PersonalBaseline", "ReadingFields"]

# mean, mean of squares, taught readings, signed run of readings beyond k SD.
_STATE = struct.Struct("<ddIh")
_RUN_LIMIT = 32767
_COUNT_LIMIT = 2**32 - 1


@dataclass(frozen=True, slots=True)
class BaselineParams:
    """Settings of a :class:`PersonalBaseline`; ``min_std`` is per vital."""

    fading_factor: float = 0.02
    warmup: int = 12
    anomaly_z: float = 4.0
    deviation_k: float = 3.0
    deviation_n: int = 3
    min_std: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.fading_factor <= 1.0:
            raise ValueError(f"fading_factor={self.fading_factor!r}: expected 0 < f <= 1")
        if self.warmup < 2 or self.deviation_n < 1:
            raise ValueError("warmup must be >= 2 and deviation_n >= 1")

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


@dataclass(frozen=True, slots=True)
class BaselineReading:
    """How one reading compares with the baseline as it was *before* the reading.

    ``z`` is None until the baseline is trusted; ``std`` is the standard
    deviation the z-score divides by (floored at ``min_std``).
    """

    z: float | None
    trusted: bool
    anomalous: bool
    deviating: bool
    mean: float
    std: float

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


ReadingFields = tuple[float | None, bool, bool, bool, float, float]
"""The fields of a :class:`BaselineReading`, in order."""


class PersonalBaseline:
    """Exponentially weighted mean and variance of one vital of one patient.

    Examples
    --------
    >>> b = PersonalBaseline(BaselineParams(warmup=4, min_std=1.0))
    >>> [b.update(x).trusted for x in (80, 82, 78, 80)]
    [False, False, False, False]
    >>> r = b.update(81)
    >>> r.trusted, round(r.z, 2), r.anomalous
    (True, 0.71, False)
    >>> r = b.update(120)  # far beyond 4 SD: flagged, and not learned
    >>> r.anomalous, b.mean == r.mean, round(b.mean, 2)
    (True, True, 80.2)
    """

    __slots__ = ("_mean", "_n", "_run", "_sq", "params")

    def __init__(self, params: BaselineParams | None = None) -> None:
        self.params = params if params is not None else BaselineParams()
        self._mean = 0.0
        self._sq = 0.0
        self._n = 0
        self._run = 0

    @property
    def n(self) -> int:
        """Readings taught so far (anomalous readings are not counted)."""
        return self._n

    @property
    def mean(self) -> float:
        """The personal mean (0.0 before any reading)."""
        return self._mean

    @property
    def variance(self) -> float:
        """The personal variance, as river's ``EWVar.get()`` (may round below 0)."""
        return self._sq - self._mean * self._mean

    @property
    def std(self) -> float:
        """Standard deviation used for z-scores: floored at ``params.min_std``."""
        return max(math.sqrt(max(self.variance, 0.0)), self.params.min_std)

    @property
    def trusted(self) -> bool:
        """Whether warm-up is over."""
        return self._n >= self.params.warmup

    @property
    def deviating(self) -> bool:
        """Whether the last ``deviation_n`` readings were all beyond ``deviation_k`` SD."""
        return abs(self._run) >= self.params.deviation_n

    def z(self, value: float) -> float | None:
        """The z-score of ``value`` without learning it; None until trusted.

        With a zero standard deviation (``min_std=0`` and identical readings)
        any other value is infinitely far: ``+-inf``.
        """
        if not self.trusted:
            return None
        std = self.std
        if std == 0.0:
            return 0.0 if value == self._mean else math.copysign(math.inf, value - self._mean)
        return (value - self._mean) / std

    def learn(self, value: float) -> None:
        """Teach ``value`` unconditionally (river's ``update``), bypassing the filter."""
        n = self._n + 1 if self._n < _COUNT_LIMIT else self._n
        f = self.params.fading_factor
        if 1.0 / n > f:  # max(f, 1/n), without the builtin's call
            f = 1.0 / n
        self._mean = f * value + (1.0 - f) * self._mean
        self._sq = f * (value * value) + (1.0 - f) * self._sq
        self._n = n

    def update(self, value: float) -> BaselineReading:
        """Score ``value`` against the baseline, then learn it unless anomalous."""
        return BaselineReading(*self.update_fields(value))

    def update_fields(self, value: float) -> ReadingFields:
        """:meth:`update`, returning the reading's fields as a plain tuple (the
        patient models' hot path copies them into their own signals)."""
        p = self.params
        # self.std inlined: max(sqrt(max(variance, 0)), min_std), ties keeping the first.
        mean = self._mean
        variance = self._sq - mean * mean
        std = math.sqrt(0.0 if variance < 0.0 else variance)
        if p.min_std > std:
            std = p.min_std
        if self._n < p.warmup:
            z: float | None = None
        elif std:
            z = (value - mean) / std
        else:
            z = 0.0 if value == mean else math.copysign(math.inf, value - mean)
        anomalous = z is not None and abs(z) > p.anomaly_z
        if not anomalous:
            self.learn(value)
        run = self._run
        if z is not None and z > p.deviation_k:
            run = min(run + 1, _RUN_LIMIT) if run > 0 else 1
        elif z is not None and z < -p.deviation_k:
            run = max(run - 1, -_RUN_LIMIT) if run < 0 else -1
        else:
            run = 0
        self._run = run
        return z, z is not None, anomalous, abs(run) >= p.deviation_n, mean, std

    def rebase(self, level: float) -> None:
        """Move the mean to ``level`` after a confirmed sustained change.

        The variance is kept; the deviation run restarts; a trusted baseline
        stays trusted but learns with weight ``1/(warmup+1)``, ``1/(warmup+2)``,
        ... until the fading factor takes over, so it settles on the new level
        within a few dozen readings.

        >>> b = PersonalBaseline(BaselineParams(warmup=3))
        >>> for x in (70, 72, 68, 70, 71):
        ...     _ = b.update(x)
        >>> std = b.std
        >>> b.rebase(95.0)
        >>> b.mean, b.n, math.isclose(b.std, std)
        (95.0, 3, True)
        """
        variance = max(self.variance, 0.0)
        self._mean = level
        self._sq = variance + level * level
        self._n = min(self._n, self.params.warmup)
        self._run = 0

    def to_bytes(self) -> bytes:
        """The state as 22 bytes (float64 mean and mean of squares, counters)."""
        return _STATE.pack(self._mean, self._sq, self._n, self._run)

    @classmethod
    def from_bytes(cls, raw: bytes, params: BaselineParams | None = None) -> Self:
        """Inverse of :meth:`to_bytes`; ``params`` must be those it was built with."""
        baseline, end = cls.unpack_from(raw, 0, params)
        if end != len(raw):
            raise LearnedStateError(f"baseline state: {len(raw) - end} trailing bytes")
        return baseline

    def pack_into(self, out: bytearray) -> None:
        """Append the state to ``out`` (used by the patient codec)."""
        out += _STATE.pack(self._mean, self._sq, self._n, self._run)

    @staticmethod
    def skip(buf: bytes | memoryview, offset: int) -> int:
        """The offset just after a baseline packed at ``offset`` (without decoding it)."""
        end = offset + _STATE.size
        if end > len(buf):
            raise LearnedStateError(f"baseline state truncated at byte {offset}")
        return end

    @classmethod
    def unpack_from(
        cls, buf: bytes | memoryview, offset: int, params: BaselineParams | None = None
    ) -> tuple[Self, int]:
        """Read a baseline at ``offset``; returns it and the offset after it."""
        try:
            mean, sq, n, run = _STATE.unpack_from(buf, offset)
        except struct.error as exc:
            raise LearnedStateError(f"baseline state truncated at byte {offset}") from exc
        baseline = cls(params)
        baseline._mean, baseline._sq, baseline._n, baseline._run = mean, sq, n, run
        return baseline, offset + _STATE.size
