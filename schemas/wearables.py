"""Consumer wearable readings on ``twin.wearables``, one at a time or batched.

Single reading (measurements at the top level, at least one present)::

    {"event_id": "watch-9:5521", "patient_id": "p-0001",
     "observed_at": "2026-11-23T10:15:00Z", "device_id": "watch-9",
     "heart_rate": 71, "spo2": 97, "steps": 12, "skin_temperature_c": 33.1,
     "hrv_rmssd_ms": 42.0, "sleep_stage": "awake"}

Batched (a device uploads e.g. one minute of readings in one message; the
top-level measurements are then absent and ``observed_at`` is the batch's
event time, by convention that of its latest reading)::

    {"event_id": "watch-9:5522", "patient_id": "p-0001",
     "observed_at": "2026-11-23T10:16:00Z", "device_id": "watch-9",
     "readings": [{"observed_at": "2026-11-23T10:15:01Z", "heart_rate": 72},
                  {"observed_at": "2026-11-23T10:15:02Z", "heart_rate": 73}]}

Consumers should not branch on the form: :meth:`WearableEvent.iter_readings`
yields :class:`WearableReading` objects for both, in time order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import EventId, PatientId, SourceName, WireModel, plausible
from schemas.vitals import PLAUSIBLE_VITALS

__all__ = [
    "MAX_READINGS",
    "PLAUSIBLE_WEARABLE",
    "WEARABLE_FIELDS",
    "SleepStage",
    "WearableEvent",
    "WearableReading",
]

SleepStage = Literal["awake", "light", "deep", "rem"]

MAX_READINGS = 600
"""Most readings in one batch (a minute at 10 Hz)."""

# Plausibility bounds (inclusive); outside means device error, dead-lettered.
PLAUSIBLE_WEARABLE: dict[str, tuple[float, float, str]] = {
    "heart_rate": PLAUSIBLE_VITALS["heart_rate"],
    "spo2": PLAUSIBLE_VITALS["spo2"],
    "steps": (0, 100_000, "steps"),
    # Wrist skin runs several degrees below core temperature, more in the cold.
    "skin_temperature_c": (10, 45, "degC"),
    # RMSSD at rest is ~10-150 ms; beyond 500 ms is ectopy or artefact.
    "hrv_rmssd_ms": (0, 500, "ms"),
}

WEARABLE_FIELDS: tuple[str, ...] = (*PLAUSIBLE_WEARABLE, "sleep_stage")

_HeartRate = Annotated[float, plausible("heart_rate", PLAUSIBLE_WEARABLE["heart_rate"])]
_SpO2 = Annotated[float, plausible("spo2", PLAUSIBLE_WEARABLE["spo2"])]
_Steps = Annotated[int, Field(ge=0), plausible("steps", PLAUSIBLE_WEARABLE["steps"])]
_SkinTemperatureC = Annotated[
    float, plausible("skin_temperature_c", PLAUSIBLE_WEARABLE["skin_temperature_c"])
]
_HrvRmssdMs = Annotated[float, plausible("hrv_rmssd_ms", PLAUSIBLE_WEARABLE["hrv_rmssd_ms"])]


def _has_measurement(fields: dict[str, object]) -> bool:
    """Whether a model's field values (its ``__dict__``) hold any measurement."""
    # Written out, not a loop over WEARABLE_FIELDS: it runs for every reading
    # of every batch.
    return not (
        fields["heart_rate"] is None
        and fields["spo2"] is None
        and fields["steps"] is None
        and fields["skin_temperature_c"] is None
        and fields["hrv_rmssd_ms"] is None
        and fields["sleep_stage"] is None
    )


class _Measurements(WireModel):
    """The measurement fields shared by a single event and a batched reading."""

    heart_rate: _HeartRate | None = Field(None, description="Pulse, beats per minute (bpm).")
    spo2: _SpO2 | None = Field(None, description="Peripheral oxygen saturation, %.")
    steps: _Steps | None = Field(
        None, description="Steps counted in the interval ending at observed_at."
    )
    skin_temperature_c: _SkinTemperatureC | None = Field(
        None, description="Skin temperature, degrees C."
    )
    hrv_rmssd_ms: _HrvRmssdMs | None = Field(
        None, description="Heart-rate variability, RMSSD of successive RR intervals, ms."
    )
    sleep_stage: SleepStage | None = Field(None, description="Device-estimated sleep stage.")


# Import-time guard: a new measurement field must be added to _has_measurement too.
_CHECKED = ("heart_rate", "spo2", "steps", "skin_temperature_c", "hrv_rmssd_ms", "sleep_stage")
if WEARABLE_FIELDS != _CHECKED or tuple(_Measurements.model_fields) != _CHECKED:  # pragma: no cover
    raise RuntimeError("_has_measurement must check every field of WEARABLE_FIELDS")


class WearableReading(_Measurements):
    """One timestamped reading inside a batched :class:`WearableEvent`."""

    observed_at: AwareDatetime = Field(description="Event time of this reading, with offset.")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        # pydantic-core calls this once per reading: the heart rate, nearly always
        # there, settles it without a further call, and the model's __dict__ is
        # read once (attribute access on a model is slow: BaseModel has __getattr__).
        fields = self.__dict__
        if fields["heart_rate"] is None and not _has_measurement(fields):
            raise ValueError("at least one measurement is required")
        return self


class WearableEvent(_Measurements):
    """A wearable message: one reading at the top level, or a batch in ``readings``.

    >>> ev = WearableEvent.model_validate_json('{"event_id": "e", "patient_id": "p",'
    ...     '"observed_at": "2026-11-23T10:16:00Z", "device_id": "w",'
    ...     '"readings": [{"observed_at": "2026-11-23T10:15:02Z", "heart_rate": 73},'
    ...     '{"observed_at": "2026-11-23T10:15:01Z", "heart_rate": 72}]}')
    >>> [r.heart_rate for r in ev.iter_readings()]
    [72.0, 73.0]
    """

    event_id: EventId
    patient_id: PatientId
    observed_at: AwareDatetime = Field(description="Event time (of the latest reading if batched).")
    device_id: SourceName
    readings: list[WearableReading] | None = Field(
        None,
        min_length=1,
        max_length=MAX_READINGS,
        description="Batched form: the readings; top-level measurements must then be absent.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        fields = self.__dict__
        if fields["readings"] is not None:
            if _has_measurement(fields):
                raise ValueError("measurements go either at the top level or in readings, not both")
        elif not _has_measurement(fields):
            raise ValueError("at least one measurement is required")
        return self

    @property
    def is_batch(self) -> bool:
        """True for the batched form."""
        return self.readings is not None

    def iter_readings(self) -> Iterator[WearableReading]:
        """The readings in time order; a single event yields one reading."""
        if self.readings is not None:
            yield from sorted(self.readings, key=lambda reading: reading.observed_at)
            return
        yield WearableReading.model_construct(
            observed_at=self.observed_at,
            **{name: getattr(self, name) for name in WEARABLE_FIELDS},
        )
