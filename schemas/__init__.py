"""Wire contracts: pydantic v2 models of every message twinstream reads or writes.

No I/O lives here. JSON Schema files exported from these models sit in
``schemas/json/`` (``python -m schemas.export``; ``--check`` in CI).
"""

from schemas.acks import AlertAck
from schemas.alert import Alert, AlertSeverity, AlertStatus
from schemas.base import WireModel
from schemas.deadletter import DeadLetter, RejectReason
from schemas.decode import Rejection, decode
from schemas.fhir import decode_fhir
from schemas.labs import ANALYTES, AnalyteName, LabEvent, analyte_for_loinc
from schemas.outcomes import OutcomeEvent
from schemas.profiles import PatientProfile, Sex, Spo2Scale
from schemas.vitals import Consciousness, VitalsEvent
from schemas.wearables import SleepStage, WearableEvent, WearableReading

__all__ = [
    "ANALYTES",
    "Alert",
    "AlertAck",
    "AlertSeverity",
    "AlertStatus",
    "AnalyteName",
    "Consciousness",
    "DeadLetter",
    "LabEvent",
    "OutcomeEvent",
    "PatientProfile",
    "RejectReason",
    "Rejection",
    "Sex",
    "SleepStage",
    "Spo2Scale",
    "VitalsEvent",
    "WearableEvent",
    "WearableReading",
    "WireModel",
    "analyte_for_loinc",
    "decode",
    "decode_fhir",
]
