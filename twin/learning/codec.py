"""All learned state of one patient, and its compact versioned encoding.

:class:`PatientModels` bundles, per vital, a personal baseline, a sustained
change detector and a forecaster; :meth:`PatientModels.observe` runs one
reading through all three and returns the :class:`VitalSignals` the alert
rules read.

Encoding (little-endian ``struct``, every float a float64 so decoding is
exact and the next output of a decoded model equals the original's)::

    byte 0      version (LEARNED_STATE_VERSION)
    byte 1      bitmask of the vitals present, bit i = VITAL_NAMES[i]
    then, per vital present, in VITAL_NAMES order:
      baseline    22 B   mean, mean of squares, readings taught, deviation run
      drift       79 B   PageHinkley's six numbers, onset time and level up and
                         down, a count, flags; +16 B while a change is pending
      forecaster  59 B   phase byte, HoltWinters level and trend (previous and
                         current), current step (start, sum, count), spacing

That is 160 bytes a vital once learning, 962 bytes for six (1058 in the rare
moment when all six have a change pending). Only numbers are stored (the
models hold river's PageHinkley and HoltWinters state as numbers too), so the
bytes do not depend on river's pickles. Parameters (:class:`LearningConfig`) are not stored and must
be the same on both sides. Decoding is lazy per vital (see
:meth:`PatientModels.decode`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, NamedTuple, Self

from twin.frozen import by_fields
from twin.learning.baseline import BaselineParams, PersonalBaseline
from twin.learning.drift import DriftParams, SustainedChange, SustainedChangeDetector
from twin.learning.errors import LearnedStateError, UnsupportedLearnedStateVersion
from twin.learning.forecast import DEFAULT_HORIZONS_S, ForecastParams, VitalForecaster
from twin.learning.vitals import VITAL_NAMES, vital_spec

__all__ = [
    "LEARNED_STATE_VERSION",
    "LearningConfig",
    "PatientModels",
    "VitalModels",
    "VitalSignals",
]

LEARNED_STATE_VERSION = 1
_HEADER = struct.Struct("<BB")


_VitalParams = tuple[BaselineParams, DriftParams, ForecastParams]


@dataclass(frozen=True, slots=True)
class LearningConfig:
    """Parameters of every patient's models; per-vital scales come from ``VITALS``."""

    baseline: BaselineParams = field(default_factory=BaselineParams)
    drift: DriftParams = field(default_factory=DriftParams)
    forecast: ForecastParams = field(default_factory=ForecastParams)
    horizons_s: tuple[int, ...] = DEFAULT_HORIZONS_S
    rebase_on_change: bool = True
    # Derived once: each vital's parameters (hashing the config per lookup costs µs).
    by_vital: Mapping[str, _VitalParams] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        by_vital = {}
        for name in VITAL_NAMES:
            spec = vital_spec(name)
            by_vital[name] = (
                replace(self.baseline, min_std=spec.min_std),
                replace(self.drift, scale=spec.scale),
                replace(self.forecast, low=spec.low, high=spec.high),
            )
        object.__setattr__(self, "by_vital", MappingProxyType(by_vital))

    def vital_params(self, vital: str) -> _VitalParams:
        """Baseline, drift and forecast parameters of ``vital``."""
        params = self.by_vital.get(vital)
        if params is None:
            raise KeyError(f"unknown vital {vital!r}; expected one of {', '.join(VITAL_NAMES)}")
        return params

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


DEFAULT_CONFIG = LearningConfig()


class VitalSignals(NamedTuple):
    """What one reading means for its patient.

    ``z``, ``mean`` and ``std`` compare the reading with the personal baseline
    as it was before it (``z`` is None during warm-up); ``drift_detected`` is
    the raw PageHinkley alarm, ``sustained_change`` a confirmed change (which
    re-based the baseline); ``forecast`` maps horizons in seconds to projected
    values, empty until the forecaster has two steps.

    A named tuple rather than a frozen dataclass: every reading makes one, and
    it is built four times faster.
    """

    vital: str
    value: float
    at: float
    z: float | None
    trusted: bool
    anomalous: bool
    deviating: bool
    mean: float
    std: float
    drift_detected: bool
    sustained_change: SustainedChange | None
    forecast: dict[int, float]


_new_tuple = tuple.__new__  # builds a VitalSignals without its generated __new__


class VitalModels:
    """The baseline, change detector and forecaster of one vital of one patient."""

    __slots__ = ("baseline", "drift", "forecaster")

    def __init__(
        self,
        baseline: PersonalBaseline,
        drift: SustainedChangeDetector,
        forecaster: VitalForecaster,
    ) -> None:
        self.baseline = baseline
        self.drift = drift
        self.forecaster = forecaster

    def __reduce__(self) -> tuple[type[VitalModels], tuple[Any, ...]]:
        # Compiled (twin/_native.py), pickle would rebuild it without arguments;
        # bench/naive_peer.py pickles whole twins with their models.
        return VitalModels, (self.baseline, self.drift, self.forecaster)


class PatientModels:
    """Everything one patient's twin has learned, per vital.

    Examples
    --------
    >>> models = PatientModels()
    >>> for i in range(30):
    ...     s = models.observe("heart_rate", 72.0 + i % 5, at=300.0 * i)
    >>> s.trusted, s.anomalous, sorted(s.forecast)
    (True, False, [1800, 3600])
    >>> s = models.observe("heart_rate", 140.0, at=9000.0)
    >>> s.anomalous, round(s.z, 1)
    (True, 22.0)
    >>> raw = models.encode()
    >>> len(raw), PatientModels.decode(raw).encode() == raw
    (162, True)
    """

    __slots__ = ("_encoded", "_models", "_packed", "config")

    def __init__(self, config: LearningConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self._models: dict[str, VitalModels] = {}
        # Vitals decoded lazily: their bytes until first use, re-emitted as they were.
        self._packed: dict[str, bytes] = {}
        # The last encoding, until models are handed out again (a twin is encoded
        # after every batch that changed it, mostly by events that teach nothing).
        self._encoded: bytes | None = None

    @property
    def vitals(self) -> tuple[str, ...]:
        """The vitals observed so far, in codec order."""
        return tuple(name for name in VITAL_NAMES if name in self._models or name in self._packed)

    def models(self, vital: str) -> VitalModels:
        """The models of ``vital``, decoded or created empty on first use.

        They may be changed until the next :meth:`encode`; after it, ask again.
        """
        self._encoded = None  # the caller may change them
        models = self._models.get(vital)
        if models is not None:
            return models
        baseline_params, drift_params, forecast_params = self.config.vital_params(vital)
        packed = self._packed.pop(vital, None)
        if packed is None:
            models = VitalModels(
                PersonalBaseline(baseline_params),
                SustainedChangeDetector(drift_params),
                VitalForecaster(forecast_params),
            )
        else:
            baseline, offset = PersonalBaseline.unpack_from(packed, 0, baseline_params)
            detector, offset = SustainedChangeDetector.unpack_from(packed, offset, drift_params)
            forecaster, offset = VitalForecaster.unpack_from(packed, offset, forecast_params)
            models = VitalModels(baseline, detector, forecaster)
        self._models[vital] = models
        return models

    def observe(self, vital: str, value: float, at: float) -> VitalSignals:
        """Run one reading of ``vital`` at event time ``at`` through its models."""
        if not (math.isfinite(value) and math.isfinite(at)):
            raise ValueError(f"{vital}={value!r} at {at!r}: expected finite numbers")
        self._encoded = None
        m = self._models.get(vital) or self.models(vital)  # :meth:`models`, its usual case first
        drift, forecaster = m.drift, m.forecaster
        z, trusted, anomalous, deviating, mean, std = m.baseline.update_fields(value)
        scale: float | None = None
        if trusted:  # max(scale, std), ties keeping the first
            scale = drift.params.scale
            if std > scale:
                scale = std
        change = drift.update(value, at, scale)
        if change is not None and self.config.rebase_on_change:
            m.baseline.rebase(change.level)
        forecaster.update(value, at)
        # The named tuple built as a tuple, in field order: its generated __new__
        # is a Python call of 12 arguments (0.9 us a reading).
        return _new_tuple(
            VitalSignals,
            (
                vital,
                value,
                at,
                z,
                trusted,
                anomalous,
                deviating,
                mean,
                std,
                drift.drift_detected,
                change,
                forecaster.forecast(self.config.horizons_s),
            ),
        )

    def observe_many(self, values: Mapping[str, float | None], at: float) -> list[VitalSignals]:
        """Observe every vital of one vitals event that is not None, in codec order."""
        return [
            self.observe(name, value, at)
            for name in VITAL_NAMES
            if (value := values.get(name)) is not None
        ]

    def forecasts(self, horizons_s: Iterable[int] | None = None) -> dict[str, dict[int, float]]:
        """Forecasts of every vital that has one (for ``projected_news2_inputs``)."""
        horizons = tuple(horizons_s) if horizons_s is not None else self.config.horizons_s
        out = {name: self.models(name).forecaster.forecast(horizons) for name in self.vitals}
        return {name: forecast for name, forecast in out.items() if forecast}

    def encode(self) -> bytes:
        """The compact versioned encoding (see the module docstring)."""
        if self._encoded is not None:
            return self._encoded
        mask = 0
        out = bytearray(_HEADER.size)
        for bit, name in enumerate(VITAL_NAMES):
            m = self._models.get(name)
            if m is not None:
                m.baseline.pack_into(out)
                m.drift.pack_into(out)
                m.forecaster.pack_into(out)
            elif name in self._packed:
                out += self._packed[name]
            else:
                continue
            mask |= 1 << bit
        _HEADER.pack_into(out, 0, LEARNED_STATE_VERSION, mask)
        self._encoded = encoded = bytes(out)
        return encoded

    @classmethod
    def decode(cls, raw: bytes, config: LearningConfig = DEFAULT_CONFIG) -> Self:
        """Inverse of :meth:`encode`, with the ``config`` the models were built with.

        Each vital is decoded on first use (:meth:`models`, :meth:`observe`), so
        an event that carries one vital pays for one; the others are written
        back byte for byte by :meth:`encode`.

        >>> PatientModels.decode(b"\\x07\\x00")
        Traceback (most recent call last):
        ...
        twin.learning.errors.UnsupportedLearnedStateVersion: learned state version 7, this build \
reads version 1: upgrade the worker or drop the learned state
        """
        if len(raw) < _HEADER.size:
            raise LearnedStateError(f"learned state of {len(raw)} bytes has no header")
        version, mask = _HEADER.unpack_from(raw, 0)
        if version != LEARNED_STATE_VERSION:
            raise UnsupportedLearnedStateVersion(
                f"learned state version {version}, this build reads version "
                f"{LEARNED_STATE_VERSION}: upgrade the worker or drop the learned state"
            )
        if mask >> len(VITAL_NAMES):
            raise LearnedStateError(f"learned state names unknown vitals (mask {mask:#04x})")
        patient = cls(config)
        offset = _HEADER.size
        for bit, name in enumerate(VITAL_NAMES):
            if mask & (1 << bit):
                end = PersonalBaseline.skip(raw, offset)
                end = SustainedChangeDetector.skip(raw, end)
                end = VitalForecaster.skip(raw, end)
                patient._packed[name] = raw[offset:end]
                offset = end
        if offset != len(raw):
            raise LearnedStateError(f"learned state has {len(raw) - offset} trailing bytes")
        return patient
