"""Learned state of the twins: personal baselines, drift, forecasts, population models.

Pure code (river and the standard library), no I/O. Per patient:
:class:`~twin.learning.codec.PatientModels` (baselines, sustained change
detectors and forecasters for every vital, about 160 bytes a vital encoded).
Per partition: :class:`~twin.learning.anomaly.PopulationAnomalyModel` and
:class:`~twin.learning.risk.RiskModel`, checkpointed with ``dumps``/``loads``.
"""

from __future__ import annotations

from twin import _native

__path__ = _native.extend_path(__path__, "twin.learning")

# The submodules below, compiled or not (twin/_native.py).
from twin.learning.anomaly import PopulationAnomalyModel
from twin.learning.baseline import BaselineParams, BaselineReading, PersonalBaseline
from twin.learning.codec import LearningConfig, PatientModels, VitalModels, VitalSignals
from twin.learning.drift import DriftParams, SustainedChange, SustainedChangeDetector
from twin.learning.errors import LearnedStateError, UnsupportedLearnedStateVersion
from twin.learning.forecast import ForecastParams, VitalForecaster, projected_news2_inputs
from twin.learning.risk import PendingLabels, RiskModel, TwinSummary, features

__all__ = [
    "BaselineParams",
    "BaselineReading",
    "DriftParams",
    "ForecastParams",
    "LearnedStateError",
    "LearningConfig",
    "PatientModels",
    "PendingLabels",
    "PersonalBaseline",
    "PopulationAnomalyModel",
    "RiskModel",
    "SustainedChange",
    "SustainedChangeDetector",
    "TwinSummary",
    "UnsupportedLearnedStateVersion",
    "VitalForecaster",
    "VitalModels",
    "VitalSignals",
    "features",
    "projected_news2_inputs",
]
