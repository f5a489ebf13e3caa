"""Wire contracts: pydantic v2 models of every message twinstream reads or writes.

No I/O lives here. JSON Schema files exported from these models sit in
``schemas/json/`` (``twinstream schemas export``).
"""

from schemas.alert import Alert, AlertSeverity, AlertStatus
from schemas.base import WireModel
from schemas.deadletter import DeadLetter, RejectReason
from schemas.vitals import Consciousness, VitalsEvent

__all__ = [
    "Alert",
    "AlertSeverity",
    "AlertStatus",
    "Consciousness",
    "DeadLetter",
    "RejectReason",
    "VitalsEvent",
    "WireModel",
]
