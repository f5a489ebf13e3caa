"""Which contract each input topic carries, and which core function applies it."""

from __future__ import annotations

import functools
import hashlib
import hmac
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
from schemas.outcomes import OutcomeEvent
from schemas.profiles import PatientProfile
from schemas.vitals import VitalsEvent
from schemas.wearables import WearableEvent
from stream.settings import Settings
from twin.apply import (
    apply_ack,
    apply_lab,
    apply_outcome,
    apply_profile,
    apply_vitals,
    apply_wearable,
)
from twin.config import TwinConfig
from twin.state import TwinState

__all__ = ["APPLIERS", "Decoded", "TopicDecoder", "decoders_for", "pseudonymise", "pseudonymiser"]

_PATIENT_KEY = re.compile(rb"^[A-Za-z0-9._:@-]{1,128}$")


@dataclass(slots=True)
class Decoded:
    """A decoded record: events, each with the patient whose twin it changes.

    Read it, do not change it. Not ``frozen`` (one is built per record): a frozen
    dataclass sets its field through ``object.__setattr__``, twice the cost.
    """

    events: list[tuple[str, BaseModel]]


TopicDecoder = Callable[[bytes | None, bytes | None], Decoded | Rejection]
Applier = Callable[[TwinState, Any, TwinConfig, float], list[Alert] | None]

APPLIERS: dict[type[BaseModel], Applier] = {
    VitalsEvent: apply_vitals,
    LabEvent: apply_lab,
    WearableEvent: apply_wearable,
    PatientProfile: apply_profile,
    AlertAck: apply_ack,
    OutcomeEvent: apply_outcome,
}


Pseudonymiser = Callable[[str], str] | None


def pseudonymise(patient_id: str, key: bytes) -> str:
    """A keyed, one-way pseudonym for ``patient_id`` (HMAC-SHA256, 128 bits, hex).

    >>> pseudonymise("p-0001", b"k") == pseudonymise("p-0001", b"k") != pseudonymise("p-0001", b"j")
    True
    >>> pseudonymise("p-0001", b"k")[:3]
    'ps-'
    """
    return "ps-" + hmac.new(key, patient_id.encode(), hashlib.sha256).hexdigest()[:32]


def _keyed(
    key: bytes | None, events: list[BaseModel], pseudo: Pseudonymiser
) -> Decoded | Rejection:
    # Twins are partitioned by patient: a record keyed otherwise would split a
    # twin across partitions (and workers), so it is refused, not guessed at.
    out: list[tuple[str, BaseModel]] = []
    for event in events:
        pid: str = event.patient_id  # type: ignore[attr-defined]
        if key is None or key != pid.encode():
            return Rejection("invalid", "record key must be the patient_id of every event in it")
        if pseudo is not None:
            pid = pseudo(pid)
            event = event.model_copy(update={"patient_id": pid})
        out.append((pid, event))
    return Decoded(out)


def _model(model: type[BaseModel], pseudo: Pseudonymiser) -> TopicDecoder:
    def run(key: bytes | None, value: bytes | None) -> Decoded | Rejection:
        item = decode(model, value)
        if isinstance(item, Rejection):
            return item
        return _keyed(key, [item], pseudo)

    return run


def _fhir(pseudo: Pseudonymiser) -> TopicDecoder:
    def run(key: bytes | None, value: bytes | None) -> Decoded | Rejection:
        items = decode_fhir(value)
        if isinstance(items, Rejection):
            return items
        return _keyed(key, list(items), pseudo)

    return run


def _ack(key: bytes | None, value: bytes | None) -> Decoded | Rejection:
    # Acks carry no patient id: they are keyed by the alert's patient_id, which
    # is already the pseudonym when pseudonymisation is on (alerts carry it).
    item = decode(AlertAck, value)
    if isinstance(item, Rejection):
        return item
    if key is None or not _PATIENT_KEY.match(key):
        return Rejection("invalid", "alert ack must be keyed by the alert's patient_id")
    return Decoded([(key.decode(), item)])


def pseudonymiser(settings: Settings) -> Pseudonymiser:
    """``patient_id -> pseudonym`` with ``TWIN_PSEUDONYM_KEY``; None without it."""
    secret = settings.pseudonym_key
    if secret is None:
        return None
    return functools.partial(pseudonymise, key=secret.get_secret_value().encode())


def decoders_for(settings: Settings) -> dict[str, TopicDecoder]:
    """Input topic name -> decoder.

    With ``TWIN_PSEUDONYM_KEY`` set, every patient id is replaced by its keyed
    pseudonym right after validation, before anything is stored, logged or
    emitted; twinstream never stores the mapping back.
    """
    pseudo = pseudonymiser(settings)
    return {
        settings.topic_vitals: _model(VitalsEvent, pseudo),
        settings.topic_labs: _model(LabEvent, pseudo),
        settings.topic_wearables: _model(WearableEvent, pseudo),
        settings.topic_profiles: _model(PatientProfile, pseudo),
        settings.topic_fhir: _fhir(pseudo),
        settings.topic_outcomes: _model(OutcomeEvent, pseudo),
        settings.topic_alert_acks: _ack,
    }
