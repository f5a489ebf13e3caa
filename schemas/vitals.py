"""Bedside vital signs on ``twin.vitals`` (contract fixed by issue #2).

Example::

    {"event_id": "monitor-7:000123", "patient_id": "p-0001",
     "observed_at": "2026-11-23T10:15:00Z", "source": "monitor-7",
     "heart_rate": 92, "respiratory_rate": 18, "spo2": 95,
     "systolic_bp": 118, "diastolic_bp": 76, "temperature_c": 37.2,
     "consciousness": "A", "on_oxygen": false}
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import EventId, PatientId, SourceName, WireModel, plausible

__all__ = ["PLAUSIBLE_VITALS", "VITAL_FIELDS", "Consciousness", "VitalsEvent"]

Consciousness = Literal["A", "C", "V", "P", "U"]
"""ACVPU: Alert, new Confusion, responds to Voice, to Pain, Unresponsive."""

# Physiological plausibility bounds (inclusive). A value outside is a device
# or transcription error, not a patient state: it is dead-lettered, never clamped.
PLAUSIBLE_VITALS: dict[str, tuple[float, float, str]] = {
    "heart_rate": (0, 300, "bpm"),
    "respiratory_rate": (0, 80, "/min"),
    "spo2": (0, 100, "%"),
    "systolic_bp": (20, 300, "mmHg"),
    "diastolic_bp": (5, 200, "mmHg"),
    "temperature_c": (25, 45, "degC"),
}

VITAL_FIELDS: tuple[str, ...] = (*PLAUSIBLE_VITALS, "consciousness", "on_oxygen")
# Import-time guard: a new measurement field must be added to VitalsEvent._not_empty too.
if VITAL_FIELDS != (
    "heart_rate",
    "respiratory_rate",
    "spo2",
    "systolic_bp",
    "diastolic_bp",
    "temperature_c",
    "consciousness",
    "on_oxygen",
):  # pragma: no cover
    raise RuntimeError("VitalsEvent._not_empty must check every field of VITAL_FIELDS")

_HeartRate = Annotated[float, plausible("heart_rate", PLAUSIBLE_VITALS["heart_rate"])]
_RespiratoryRate = Annotated[
    float, plausible("respiratory_rate", PLAUSIBLE_VITALS["respiratory_rate"])
]
_SpO2 = Annotated[float, plausible("spo2", PLAUSIBLE_VITALS["spo2"])]
_SystolicBP = Annotated[float, plausible("systolic_bp", PLAUSIBLE_VITALS["systolic_bp"])]
_DiastolicBP = Annotated[float, plausible("diastolic_bp", PLAUSIBLE_VITALS["diastolic_bp"])]
_TemperatureC = Annotated[float, plausible("temperature_c", PLAUSIBLE_VITALS["temperature_c"])]


class VitalsEvent(WireModel):
    """One set of bedside observations for one patient at one event time."""

    event_id: EventId
    patient_id: PatientId
    observed_at: AwareDatetime = Field(description="Event time, ISO 8601 with offset.")
    source: SourceName | None = None
    heart_rate: _HeartRate | None = Field(None, description="Pulse, beats per minute (bpm).")
    respiratory_rate: _RespiratoryRate | None = Field(None, description="Breaths per minute.")
    spo2: _SpO2 | None = Field(None, description="Peripheral oxygen saturation, %.")
    systolic_bp: _SystolicBP | None = Field(None, description="Systolic blood pressure, mmHg.")
    diastolic_bp: _DiastolicBP | None = Field(None, description="Diastolic blood pressure, mmHg.")
    temperature_c: _TemperatureC | None = Field(
        None, description="Body temperature, degrees Celsius."
    )
    consciousness: Consciousness | None = Field(None, description="ACVPU level.")
    on_oxygen: bool | None = Field(None, description="Receiving supplemental oxygen.")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        # Written out, not a loop over VITAL_FIELDS: one short-circuit test per message.
        fields = self.__dict__
        if (
            fields["heart_rate"] is None
            and fields["respiratory_rate"] is None
            and fields["spo2"] is None
            and fields["systolic_bp"] is None
            and fields["diastolic_bp"] is None
            and fields["temperature_c"] is None
            and fields["consciousness"] is None
            and fields["on_oxygen"] is None
        ):
            raise ValueError("at least one measurement is required")
        return self
