"""FHIR R4 Observations on ``twin.fhir``, mapped by LOINC onto the twinstream contracts.

A message is one ``Observation`` or a ``Bundle`` whose entries are all
Observations. Each Observation becomes one :class:`~schemas.vitals.VitalsEvent`
(vital signs; the twin merges events of the same time) or one
:class:`~schemas.labs.LabEvent` (lab analytes, by the LOINC codes in
:data:`schemas.labs.LOINC_TO_ANALYTE`).

Parsing uses ``fhir.resources.R4B`` (FHIR 4.3.0): fhir.resources 8 defaults to
R5 and ships no plain R4 package, and R4B's Observation and Bundle are the
R4 (4.0.1) structures for every element read here.

Rules, each a :class:`~schemas.decode.Rejection` when broken:

- ``subject.reference`` must be ``Patient/<id>`` (optionally a full URL ending
  so); ``urn:uuid`` references are not resolved.
- The time is ``effectiveDateTime``, ``effectiveInstant`` or
  ``effectivePeriod.start`` and must carry a time and a UTC offset.
- ``status`` must be final, amended, corrected or preliminary: a cancelled or
  entered-in-error result must not move a twin.
- Values are ``valueQuantity`` JSON numbers without a comparator: ``<3 ng/L``
  is a censored value, not 3.
- A code twinstream does not map is ``unsupported_code``. In the
  blood-pressure panel (85354-9) components other than systolic and diastolic
  are ignored.
- A Bundle is all or nothing: one bad entry rejects the whole Bundle, with
  the entry's index in the error, so that a replay after a fix cannot apply
  half of it twice.

The event id is ``Observation/<id>``, else the first identifier
(``system|value``), else ``sha256:`` of the resource's canonical JSON, so a
redelivered message gets the same id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.quantity import Quantity
from pydantic import ValidationError

from schemas.deadletter import RejectReason
from schemas.decode import MAX_MESSAGE_BYTES, Rejection, describe_validation_error
from schemas.labs import LOINC_TO_ANALYTE, LabEvent, UnitConversion, normalise_unit
from schemas.vitals import VitalsEvent

__all__ = [
    "BP_PANEL_LOINC",
    "FHIR_SOURCE",
    "LOINC_SYSTEM",
    "MAX_BUNDLE_ENTRIES",
    "VITAL_LOINC",
    "decode_fhir",
]

LOINC_SYSTEM = "http://loinc.org"
FHIR_SOURCE = "fhir"
MAX_BUNDLE_ENTRIES = 1000
BP_PANEL_LOINC = "85354-9"

VITAL_LOINC: Mapping[str, str] = MappingProxyType(
    {
        "8867-4": "heart_rate",
        "9279-1": "respiratory_rate",
        "2708-6": "spo2",  # Oxygen saturation in Arterial blood
        "59408-5": "spo2",  # ... by Pulse oximetry
        "8480-6": "systolic_bp",
        "8462-4": "diastolic_bp",
        "8310-5": "temperature_c",
    }
)
"""LOINC code -> :class:`VitalsEvent` field (the FHIR vital-signs profile codes)."""

_SAME = UnitConversion()
_PER_MIN = {"/min": _SAME, "{beats}/min": _SAME, "beats/min": _SAME, "bpm": _SAME}
_MMHG = {"mm[Hg]": _SAME, "mmHg": _SAME}
# UCUM: [degF] = 5/9 K with the Fahrenheit zero, so degC = (degF - 32) * 5/9.
_FAHRENHEIT = UnitConversion(multiply=5.0, divide=9.0, add=-160.0 / 9.0)
_VITAL_UNITS: Mapping[str, Mapping[str, UnitConversion]] = {
    "heart_rate": _PER_MIN,
    "respiratory_rate": {"/min": _SAME, "{breaths}/min": _SAME, "breaths/min": _SAME},
    "spo2": {"%": _SAME},
    "systolic_bp": _MMHG,
    "diastolic_bp": _MMHG,
    "temperature_c": {
        "Cel": _SAME,
        "degC": _SAME,
        "\u00b0C": _SAME,
        "[degF]": _FAHRENHEIT,
        "degF": _FAHRENHEIT,
        "\u00b0F": _FAHRENHEIT,
    },
}
_VITAL_UNIT_INDEX = {
    name: {normalise_unit(unit): conv for unit, conv in units.items()}
    for name, units in _VITAL_UNITS.items()
}

_APPLIED_STATUS = frozenset({"final", "amended", "corrected", "preliminary"})
_PATIENT_REF = re.compile(
    r"^(?:[^/]+:/+[^\s]*/)?Patient/([A-Za-z0-9.\-]{1,64})(?:/_history/[A-Za-z0-9.\-]{1,64})?$"
)
_EVENT_ID_MAX = 200
_REFERENCE_MAX = 1024

FhirEvent = VitalsEvent | LabEvent
R = TypeVar("R", Observation, Bundle)


class _Reject(Exception):
    """Internal: stop mapping with a reason and a value-free message."""

    def __init__(self, reason: RejectReason, error: str) -> None:
        super().__init__(error)
        self.reason: RejectReason = reason
        self.error = error


def _describe_fhir_error(exc: ValidationError) -> str:
    # fhir.resources' messages can quote the input: keep locations and types only.
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'resource'}: {err['type']}" for err in errors[:5]
    ]
    if len(errors) > 5:
        parts.append(f"(+{len(errors) - 5} more)")
    return ("FHIR: " + "; ".join(parts))[:500]


def _patient_id(obs: Observation) -> str:
    reference = obs.subject.reference if obs.subject is not None else None
    match = None
    if isinstance(reference, str) and len(reference) <= _REFERENCE_MAX:  # bounds regex time
        match = _PATIENT_REF.match(reference)
    if match is None:
        raise _Reject("invalid", "subject.reference: must reference Patient/<id>")
    return match.group(1)


def _event_id(obs: Observation, raw: Mapping[str, Any]) -> str:
    if obs.id:
        return f"Observation/{obs.id}"
    for identifier in obs.identifier or ():
        if identifier.value:
            token = (
                f"{identifier.system}|{identifier.value}" if identifier.system else identifier.value
            )
            if len(token) <= _EVENT_ID_MAX:
                return token
            return "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    return "sha256:" + hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _observed_at(obs: Observation) -> datetime:
    period_start = obs.effectivePeriod.start if obs.effectivePeriod is not None else None
    for candidate in (obs.effectiveDateTime, obs.effectiveInstant, period_start):
        if candidate is None:
            continue
        # fhir.resources keeps partial dates ("2026-11") as str and dates as date.
        if isinstance(candidate, datetime) and candidate.utcoffset() is not None:
            return candidate
        raise _Reject("invalid", "effective[x]: must be a dateTime with a time and a UTC offset")
    raise _Reject(
        "invalid",
        "effective[x]: effectiveDateTime, effectiveInstant or effectivePeriod.start needed",
    )


def _loinc_codes(concept: CodeableConcept | None) -> list[str]:
    codings = concept.coding if concept is not None else None
    return [c.code for c in codings or () if c.system == LOINC_SYSTEM and c.code]


def _quantity(quantity: Quantity | None, raw_quantity: object, where: str) -> tuple[float, str]:
    """The value (as float) and unit (UCUM code, else display unit) of a Quantity."""
    if quantity is None or quantity.value is None:
        raise _Reject("invalid", f"{where}: value required (dataAbsentReason is not applied)")
    if quantity.comparator is not None:
        raise _Reject("invalid", f"{where}: censored values (comparator) are not applied")
    # fhir.resources accepts decimals written as JSON strings; the wire contract does not.
    raw_value = raw_quantity.get("value") if isinstance(raw_quantity, dict) else None
    if isinstance(raw_value, bool) or not isinstance(raw_value, int | float):
        raise _Reject("invalid", f"{where}: value must be a JSON number")
    unit = quantity.code if quantity.code is not None else quantity.unit
    return float(quantity.value), unit or ""


def _vital_value(name: str, value: float, unit: str, where: str) -> float:
    conversion = _VITAL_UNIT_INDEX[name].get(normalise_unit(unit))
    if conversion is None:
        accepted = ", ".join(_VITAL_UNITS[name])
        raise _Reject(
            "unknown_unit", f"{where}: unit not accepted for {name}; use one of: {accepted}"
        )
    return conversion.apply(value)


def _validated(model: type[FhirEvent], fields: dict[str, Any]) -> FhirEvent:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        reason, error = describe_validation_error(exc)
        raise _Reject(reason, error) from None


def _map_observation(obs: Observation, raw: Mapping[str, Any]) -> FhirEvent:
    codes = _loinc_codes(obs.code)
    code = next((c for c in codes if c in VITAL_LOINC or c in LOINC_TO_ANALYTE), None)
    if code is None and BP_PANEL_LOINC in codes:
        code = BP_PANEL_LOINC
    if code is None:
        raise _Reject("unsupported_code", "code: no LOINC code twinstream maps")
    if obs.status not in _APPLIED_STATUS:
        raise _Reject("invalid", "status: must be final, amended, corrected or preliminary")
    common: dict[str, Any] = {
        "event_id": _event_id(obs, raw),
        "patient_id": _patient_id(obs),
        "observed_at": _observed_at(obs),
        "source": FHIR_SOURCE,
    }
    if code in LOINC_TO_ANALYTE:
        value, unit = _quantity(obs.valueQuantity, raw.get("valueQuantity"), "valueQuantity")
        lab = {"analyte": LOINC_TO_ANALYTE[code], "loinc": code, "unit": unit, "value": value}
        return _validated(LabEvent, common | lab)
    vitals: dict[str, float] = {}
    if code == BP_PANEL_LOINC:
        raw_components = raw.get("component")
        for index, component in enumerate(obs.component or ()):
            name = next(
                (VITAL_LOINC[c] for c in _loinc_codes(component.code) if c in VITAL_LOINC), None
            )
            if name not in ("systolic_bp", "diastolic_bp") or component.valueQuantity is None:
                continue  # e.g. mean arterial pressure, or a dataAbsentReason component
            where = f"component[{index}]"
            raw_component = raw_components[index] if isinstance(raw_components, list) else None
            raw_quantity = (
                raw_component.get("valueQuantity") if isinstance(raw_component, dict) else None
            )
            value, unit = _quantity(component.valueQuantity, raw_quantity, where)
            vitals[name] = _vital_value(name, value, unit, where)
        if not vitals:
            raise _Reject(
                "invalid", "component: blood-pressure panel without 8480-6 or 8462-4 value"
            )
    else:
        name = VITAL_LOINC[code]
        value, unit = _quantity(obs.valueQuantity, raw.get("valueQuantity"), "valueQuantity")
        vitals[name] = _vital_value(name, value, unit, "valueQuantity")
    return _validated(VitalsEvent, common | vitals)


def _validate_fhir(model: type[R], data: dict[str, Any]) -> R:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _Reject("invalid", _describe_fhir_error(exc)) from None
    except RecursionError:
        raise _Reject("malformed_json", "JSON nested too deeply") from None
    except Exception as exc:  # fhir.resources can fail on odd input in undocumented ways
        raise _Reject("invalid", f"FHIR: validation failed ({type(exc).__name__})") from None


def _resources(data: dict[str, Any]) -> list[tuple[Observation, Mapping[str, Any]]]:
    """Validate ``data`` as FHIR and pair each Observation with its raw JSON object."""
    kind = data.get("resourceType")
    if kind == "Observation":
        return [(_validate_fhir(Observation, data), data)]
    if kind != "Bundle":
        raise _Reject("invalid", "resourceType: must be Observation or Bundle")
    raw_entries = data.get("entry")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise _Reject("invalid", "entry: a Bundle needs at least one entry")
    if len(raw_entries) > MAX_BUNDLE_ENTRIES:
        raise _Reject("invalid", f"entry: more than {MAX_BUNDLE_ENTRIES} entries")
    bundle = _validate_fhir(Bundle, data)
    pairs: list[tuple[Observation, Mapping[str, Any]]] = []
    for index, entry in enumerate(bundle.entry or ()):
        raw_resource = raw_entries[index].get("resource")
        if not isinstance(entry.resource, Observation) or not isinstance(raw_resource, dict):
            raise _Reject("invalid", f"entry[{index}]: only Observation resources are supported")
        pairs.append((entry.resource, raw_resource))
    return pairs


def _decode(raw: bytes) -> list[FhirEvent]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Reject("malformed_json", "not valid JSON") from None
    if not isinstance(data, dict):
        raise _Reject("malformed_json", "JSON value is not an object")
    pairs = _resources(data)
    events: list[FhirEvent] = []
    for index, (obs, raw_obs) in enumerate(pairs):
        try:
            events.append(_map_observation(obs, raw_obs))
        except _Reject as reject:
            if data.get("resourceType") == "Bundle":
                raise _Reject(reject.reason, f"entry[{index}]: {reject.error}"[:500]) from None
            raise
    return events


def decode_fhir(raw: bytes | None) -> list[VitalsEvent | LabEvent] | Rejection:
    """Decode a FHIR Observation or Bundle into contract events; never raises.

    >>> events = decode_fhir(b'{"resourceType": "Observation", "id": "hr1", "status": "final",'
    ...     b'"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},'
    ...     b'"subject": {"reference": "Patient/p1"},'
    ...     b'"effectiveDateTime": "2026-11-23T10:15:00Z",'
    ...     b'"valueQuantity": {"value": 92, "unit": "/min", "code": "/min"}}')
    >>> events[0].event_id, events[0].patient_id, events[0].heart_rate
    ('Observation/hr1', 'p1', 92.0)
    >>> decode_fhir(b'{"resourceType": "Patient"}')
    Rejection(reason='invalid', error='resourceType: must be Observation or Bundle')
    """
    if raw is None:
        return Rejection("malformed_json", "empty message (tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection("malformed_json", f"message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        return _decode(raw)
    except _Reject as reject:
        return Rejection(reject.reason, reject.error)
    except Exception as exc:  # last resort: a poison message must not stop the agent
        return Rejection("invalid", f"decoding failed ({type(exc).__name__})")
