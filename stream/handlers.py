"""Which contract each input topic carries, and which core function applies it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from schemas.acks import AlertAck
from schemas.alert import Alert
from schemas.decode import Rejection, decode
from schemas.fhir import decode_fhir
from schemas.labs import LabEvent
from schemas.profiles import PatientProfile
from schemas.vitals import VitalsEvent
from schemas.wearables import WearableEvent
from stream.settings import Settings
from twin.apply import apply_ack, apply_lab, apply_profile, apply_vitals, apply_wearable
from twin.config import TwinConfig
from twin.state import TwinState

__all__ = ["APPLIERS", "Decoded", "TopicDecoder", "decoders_for"]

_PATIENT_KEY = re.compile(rb"^[A-Za-z0-9._:@-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded record: events, each with the patient whose twin it changes."""

    events: list[tuple[str, BaseModel]]


TopicDecoder = Callable[[bytes | None, bytes | None], Decoded | Rejection]
Applier = Callable[[TwinState, Any, TwinConfig, float], list[Alert] | None]

APPLIERS: dict[type[BaseModel], Applier] = {
    VitalsEvent: apply_vitals,
    LabEvent: apply_lab,
    WearableEvent: apply_wearable,
    PatientProfile: apply_profile,
    AlertAck: apply_ack,
}


def _keyed(key: bytes | None, events: list[tuple[str, BaseModel]]) -> Decoded | Rejection:
    # Twins are partitioned by patient: a record keyed otherwise would split a
    # twin across partitions (and workers), so it is refused, not guessed at.
    for pid, _ in events:
        if key is None or key != pid.encode():
            return Rejection("invalid", "record key must be the patient_id of every event in it")
    return Decoded(events)


def _model(model: type[BaseModel]) -> TopicDecoder:
    def run(key: bytes | None, value: bytes | None) -> Decoded | Rejection:
        item = decode(model, value)
        if isinstance(item, Rejection):
            return item
        return _keyed(key, [(item.patient_id, item)])  # type: ignore[attr-defined]

    return run


def _fhir(key: bytes | None, value: bytes | None) -> Decoded | Rejection:
    items = decode_fhir(value)
    if isinstance(items, Rejection):
        return items
    return _keyed(key, [(e.patient_id, e) for e in items])


def _ack(key: bytes | None, value: bytes | None) -> Decoded | Rejection:
    # Acks carry no patient id: they are keyed by the alert's patient_id.
    item = decode(AlertAck, value)
    if isinstance(item, Rejection):
        return item
    if key is None or not _PATIENT_KEY.match(key):
        return Rejection("invalid", "alert ack must be keyed by the alert's patient_id")
    return Decoded([(key.decode(), item)])


def decoders_for(settings: Settings) -> dict[str, TopicDecoder]:
    """Input topic name -> decoder."""
    return {
        settings.topic_vitals: _model(VitalsEvent),
        settings.topic_labs: _model(LabEvent),
        settings.topic_wearables: _model(WearableEvent),
        settings.topic_profiles: _model(PatientProfile),
        settings.topic_fhir: _fhir,
        settings.topic_alert_acks: _ack,
    }
