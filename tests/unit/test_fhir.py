"""FHIR R4 Observations and Bundles mapped onto VitalsEvent / LabEvent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import ANALYTES, LabEvent, Rejection, VitalsEvent, decode_fhir
from schemas.fhir import VITAL_LOINC
from schemas.labs import LOINC_TO_ANALYTE

pytestmark = pytest.mark.unit

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def concept(code: str, system: str = LOINC) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def quantity(value: Any, unit: str | None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value}
    if unit is not None:
        q |= {"unit": unit, "system": UCUM, "code": unit}
    return q


def observation(
    code: str = "8867-4", value: Any = 92, unit: str | None = "/min", **changes: Any
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": concept(code),
        "subject": {"reference": "Patient/p-0001"},
        "effectiveDateTime": "2026-11-23T10:15:00+01:00",
        "valueQuantity": quantity(value, unit),
    }
    obs.update(changes)
    return {k: v for k, v in obs.items() if v is not None}


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{i}", "resource": r} for i, r in enumerate(resources)],
    }


def decoded(resource: dict[str, Any]) -> list[VitalsEvent | LabEvent]:
    result = decode_fhir(json.dumps(resource).encode())
    assert not isinstance(result, Rejection), result
    return result


def rejected(resource: dict[str, Any]) -> Rejection:
    result = decode_fhir(json.dumps(resource).encode())
    assert isinstance(result, Rejection), result
    return result


def one_vitals(resource: dict[str, Any]) -> VitalsEvent:
    (event,) = decoded(resource)
    assert isinstance(event, VitalsEvent)
    return event


# --- vital signs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "field", "value", "unit"),
    [
        ("8867-4", "heart_rate", 92, "/min"),
        ("8867-4", "heart_rate", 92, "{beats}/min"),
        ("9279-1", "respiratory_rate", 18, "/min"),
        ("2708-6", "spo2", 95, "%"),
        ("59408-5", "spo2", 91.5, "%"),
        ("8480-6", "systolic_bp", 118, "mm[Hg]"),
        ("8462-4", "diastolic_bp", 76, "mm[Hg]"),
        ("8310-5", "temperature_c", 37.2, "Cel"),
    ],
)
def test_each_vital_code(code: str, field: str, value: float, unit: str) -> None:
    event = one_vitals(observation(code, value, unit))
    assert getattr(event, field) == pytest.approx(value)
    assert event.patient_id == "p-0001"
    assert event.event_id == "Observation/obs-1"
    assert event.observed_at == datetime(2026, 11, 23, 9, 15, tzinfo=UTC)
    assert event.source == "fhir"
    others = set(VITAL_LOINC.values()) - {field}
    assert all(getattr(event, other) is None for other in others)


@pytest.mark.parametrize(("fahrenheit", "celsius"), [(98.6, 37.0), (104, 40.0), (95, 35.0)])
def test_fahrenheit_is_converted_by_ucum_code(fahrenheit: float, celsius: float) -> None:
    event = one_vitals(observation("8310-5", fahrenheit, "[degF]"))
    assert event.temperature_c == pytest.approx(celsius)


def test_fahrenheit_out_of_range_after_conversion_is_implausible() -> None:
    # 40 degF is 4.4 degC: plausible as a Celsius number, so convert before checking.
    assert rejected(observation("8310-5", 40, "[degF]")).reason == "implausible"


def test_blood_pressure_panel_components() -> None:
    panel = observation(
        "85354-9",
        valueQuantity=None,
        component=[
            {"code": concept("8480-6"), "valueQuantity": quantity(131, "mm[Hg]")},
            {"code": concept("8462-4"), "valueQuantity": quantity(84, "mm[Hg]")},
            {"code": concept("8478-0"), "valueQuantity": quantity(100, "mm[Hg]")},  # MAP: ignored
        ],
    )
    event = one_vitals(panel)
    assert (event.systolic_bp, event.diastolic_bp) == (131.0, 84.0)


def test_blood_pressure_panel_without_values_is_invalid() -> None:
    panel = observation(
        "85354-9",
        valueQuantity=None,
        component=[
            {
                "code": concept("8480-6"),
                "dataAbsentReason": {"coding": [{"code": "not-performed"}]},
            }
        ],
    )
    assert rejected(panel).reason == "invalid"


def test_blood_pressure_component_in_wrong_unit() -> None:
    panel = observation(
        "85354-9",
        valueQuantity=None,
        component=[{"code": concept("8480-6"), "valueQuantity": quantity(17.5, "kPa")}],
    )
    rejection = rejected(panel)
    assert rejection.reason == "unknown_unit"
    assert rejection.error.startswith("component[0]:")


# --- labs -------------------------------------------------------------------------------------


def mid_value(analyte: str) -> float:
    spec = ANALYTES[analyte]  # type: ignore[index]
    return round((spec.low + spec.high) / 2, 3)


@pytest.mark.parametrize("code", sorted(LOINC_TO_ANALYTE))
def test_each_lab_loinc(code: str) -> None:
    analyte = LOINC_TO_ANALYTE[code]
    unit = ANALYTES[analyte].unit
    (event,) = decoded(observation(code, mid_value(analyte), unit))
    assert isinstance(event, LabEvent)
    assert (event.analyte, event.loinc, event.unit) == (analyte, code, unit)
    assert event.value_canonical == pytest.approx(mid_value(analyte))


def test_lab_with_conversion_keeps_the_value_as_sent() -> None:
    (event,) = decoded(observation("2345-7", 180, "mg/dL"))
    assert isinstance(event, LabEvent)
    assert (event.value, event.unit) == (180.0, "mg/dL")
    assert event.value_canonical == pytest.approx(9.991, abs=1e-3)


def test_ph_without_unit() -> None:
    (event,) = decoded(observation("2744-1", 7.31, None))
    assert isinstance(event, LabEvent)
    assert event.canonical() == ("ph", 7.31, "pH")


def test_lab_unknown_unit() -> None:
    assert rejected(observation("2823-3", 6.8, "mg/dL")).reason == "unknown_unit"


def test_lab_display_unit_used_when_no_code() -> None:
    obs = observation("2823-3", valueQuantity={"value": 6.8, "unit": "mmol/L"})
    (event,) = decoded(obs)
    assert isinstance(event, LabEvent)
    assert event.unit == "mmol/L"


# --- bundles ----------------------------------------------------------------------------------


def test_bundle_of_observations_in_entry_order() -> None:
    events = decoded(
        bundle(
            observation("8867-4", 92, "/min", id="a"),
            observation("2823-3", 6.8, "mmol/L", id="b"),
            observation("8310-5", 100.4, "[degF]", id="c"),
        )
    )
    assert [e.event_id for e in events] == ["Observation/a", "Observation/b", "Observation/c"]
    assert isinstance(events[1], LabEvent)
    assert isinstance(events[2], VitalsEvent)
    assert events[2].temperature_c == pytest.approx(38.0)


def test_bundle_with_one_bad_entry_is_rejected_whole() -> None:
    rejection = rejected(
        bundle(observation(id="a"), observation("8867-4", 987, "/min", id="b"), observation(id="c"))
    )
    assert rejection.reason == "implausible"
    assert rejection.error.startswith("entry[1]:")
    assert "987" not in rejection.error


def test_bundle_with_unsupported_code_entry() -> None:
    rejection = rejected(bundle(observation(), observation("29463-7", 70, "kg")))  # body weight
    assert rejection.reason == "unsupported_code"
    assert rejection.error.startswith("entry[1]:")


def test_bundle_with_non_observation_entry() -> None:
    patient = {"resourceType": "Patient", "id": "p-0001"}
    rejection = rejected(bundle(observation(), patient))
    assert rejection.reason == "invalid"
    assert rejection.error == "entry[1]: only Observation resources are supported"


@pytest.mark.parametrize("entries", [[], None])
def test_empty_bundle_is_invalid(entries: list[Any] | None) -> None:
    resource: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    if entries is not None:
        resource["entry"] = entries
    assert rejected(resource).reason == "invalid"


# --- identity and time ------------------------------------------------------------------------


def test_event_id_from_identifier_then_hash() -> None:
    ident = [{"system": "urn:lis", "value": "acc-77"}]
    assert one_vitals(observation(id=None, identifier=ident)).event_id == "urn:lis|acc-77"
    hashed = one_vitals(observation(id=None)).event_id
    assert hashed.startswith("sha256:")
    assert one_vitals(observation(id=None)).event_id == hashed  # deterministic
    assert one_vitals(observation(id=None, value=93)).event_id != hashed


def test_key_order_does_not_change_the_hash() -> None:
    obs = observation(id=None)
    reordered = dict(reversed(list(obs.items())))
    assert one_vitals(obs).event_id == one_vitals(reordered).event_id


@pytest.mark.parametrize(
    "reference",
    ["Patient/p-0001", "https://fhir.example.org/r4/Patient/p-0001", "Patient/p-0001/_history/2"],
)
def test_patient_reference_forms(reference: str) -> None:
    assert one_vitals(observation(subject={"reference": reference})).patient_id == "p-0001"


@pytest.mark.parametrize(
    "subject",
    [None, {"display": "Jane Doe"}, {"reference": "Group/g1"}, {"reference": "urn:uuid:1234"}],
    ids=repr,
)
def test_missing_or_non_patient_subject_is_invalid(subject: dict[str, Any] | None) -> None:
    rejection = rejected(observation(subject=subject))
    assert rejection.reason == "invalid"
    assert rejection.error.startswith("subject.reference")
    assert "Jane" not in rejection.error


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"effectiveDateTime": None, "effectiveInstant": "2026-11-23T09:15:00Z"},
            datetime(2026, 11, 23, 9, 15, tzinfo=UTC),
        ),
        (
            {"effectiveDateTime": None, "effectivePeriod": {"start": "2026-11-23T09:00:00Z"}},
            datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        ),
    ],
)
def test_other_effective_times(changes: dict[str, Any], expected: datetime) -> None:
    assert one_vitals(observation(**changes)).observed_at == expected


@pytest.mark.parametrize("effective", [None, "2026-11-23", "2026-11", "2026"], ids=repr)
def test_effective_time_must_have_time_and_offset(effective: str | None) -> None:
    rejection = rejected(observation(effectiveDateTime=effective))
    assert rejection.reason == "invalid"
    assert rejection.error.startswith("effective[x]")


def test_effective_time_without_offset_is_invalid_fhir() -> None:
    assert rejected(observation(effectiveDateTime="2026-11-23T10:15:00")).reason == "invalid"


# --- rejections -------------------------------------------------------------------------------


def test_unsupported_code() -> None:
    rejection = rejected(observation("29463-7", 70, "kg"))
    assert rejection == Rejection("unsupported_code", "code: no LOINC code twinstream maps")


def test_mapped_code_in_another_system_is_unsupported() -> None:
    obs = observation()
    obs["code"] = concept("8867-4", system="http://snomed.info/sct")
    assert rejected(obs).reason == "unsupported_code"


@pytest.mark.parametrize("kind", ["Patient", "Observations", "", None, 7])
def test_invalid_resource_type(kind: Any) -> None:
    obs = observation()
    obs["resourceType"] = kind
    assert rejected(obs).reason == "invalid"


def test_invalid_fhir_structure_names_no_values() -> None:
    obs = observation()
    obs["code"] = "heart rate Jane"  # must be a CodeableConcept
    rejection = rejected(obs)
    assert rejection.reason == "invalid"
    assert rejection.error.startswith("FHIR: code")
    assert "Jane" not in rejection.error


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "registered", None], ids=repr)
def test_status_not_applied(status: str | None) -> None:
    assert rejected(observation(status=status)).reason == "invalid"


@pytest.mark.parametrize(
    "value_quantity",
    [
        {"value": 3, "comparator": "<", "unit": "/min", "code": "/min"},
        {"value": "92", "unit": "/min", "code": "/min"},
        {"unit": "/min", "code": "/min"},
    ],
    ids=["comparator", "string-number", "no-value"],
)
def test_value_quantity_rules(value_quantity: dict[str, Any]) -> None:
    assert rejected(observation(valueQuantity=value_quantity)).reason == "invalid"


def test_no_value_quantity_is_invalid() -> None:
    absent = {"coding": [{"code": "asked-unknown"}]}
    rejection = rejected(observation(valueQuantity=None, dataAbsentReason=absent))
    assert rejection.reason == "invalid"


def test_vital_unknown_unit() -> None:
    rejection = rejected(observation("8867-4", 92, "Hz"))
    assert rejection.reason == "unknown_unit"
    assert "Hz" not in rejection.error


def test_implausible_vital_names_no_value() -> None:
    rejection = rejected(observation("8867-4", 987, "/min"))
    assert rejection.reason == "implausible"
    assert "987" not in rejection.error


@pytest.mark.parametrize(
    "raw", [b"not json", b"{", b"[]", b'"Observation"', b"", b"\xff\xfe", b'{"a": NaN}']
)
def test_not_a_json_object_is_malformed(raw: bytes) -> None:
    result = decode_fhir(raw)
    assert isinstance(result, Rejection)
    assert result.reason == "malformed_json"


def test_tombstone_and_oversized() -> None:
    assert decode_fhir(None) == Rejection("malformed_json", "empty message (tombstone)")
    huge = decode_fhir(b" " * 1_000_001)
    assert isinstance(huge, Rejection)
    assert huge.reason == "malformed_json"
