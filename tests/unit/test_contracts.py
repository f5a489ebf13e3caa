"""Wire contracts: valid and invalid examples, lab unit conversions, value-free errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from schemas import (
    ANALYTES,
    AlertAck,
    LabEvent,
    OutcomeEvent,
    PatientProfile,
    Rejection,
    VitalsEvent,
    WearableEvent,
    analyte_for_loinc,
    decode,
)
from schemas.labs import ANALYTE_ALIASES, LOINC_TO_ANALYTE, normalise_unit, to_canonical
from schemas.wearables import MAX_READINGS

pytestmark = pytest.mark.unit

T0 = "2026-11-23T10:15:00Z"

VALID: dict[type[BaseModel], dict[str, Any]] = {
    VitalsEvent: {
        "event_id": "monitor-7:1",
        "patient_id": "p-0001",
        "observed_at": T0,
        "source": "monitor-7",
        "heart_rate": 92,
        "respiratory_rate": 18,
        "spo2": 95,
        "systolic_bp": 118,
        "diastolic_bp": 76,
        "temperature_c": 37.2,
        "consciousness": "A",
        "on_oxygen": False,
    },
    LabEvent: {
        "event_id": "lis-3:1",
        "patient_id": "p-0001",
        "observed_at": T0,
        "source": "lis-3",
        "loinc": "2823-3",
        "analyte": "potassium",
        "value": 6.8,
        "unit": "mmol/L",
    },
    WearableEvent: {
        "event_id": "watch-9:1",
        "patient_id": "p-0001",
        "observed_at": T0,
        "device_id": "watch-9",
        "heart_rate": 71,
        "spo2": 97,
        "steps": 12,
        "skin_temperature_c": 33.1,
        "hrv_rmssd_ms": 42.0,
        "sleep_stage": "awake",
    },
    PatientProfile: {
        "patient_id": "p-0001",
        "age": 71,
        "sex": "female",
        "ward": "AMU-2",
        "region": "north",
        "spo2_scale": 2,
        "conditions": ["copd", "t2dm"],
        "updated_at": T0,
    },
    OutcomeEvent: {
        "patient_id": "p-0001",
        "outcome": "in_hospital_death",
        "value": 0,
        "observed_at": T0,
    },
    AlertAck: {"alert_id": "p-0001:news2-high:3", "by": "rn-4411", "at": T0},
}
MODELS = list(VALID)
REQUIRED = {
    VitalsEvent: "observed_at",
    LabEvent: "unit",
    WearableEvent: "device_id",
    PatientProfile: "patient_id",
    OutcomeEvent: "outcome",
    AlertAck: "by",
}
TIME_FIELD = {
    VitalsEvent: "observed_at",
    LabEvent: "observed_at",
    WearableEvent: "observed_at",
    PatientProfile: "updated_at",
    OutcomeEvent: "observed_at",
    AlertAck: "at",
}
NUMBER_FIELD = {
    VitalsEvent: "heart_rate",
    LabEvent: "value",
    WearableEvent: "heart_rate",
    PatientProfile: "age",
    OutcomeEvent: "value",
}


def run(model: type[BaseModel], payload: dict[str, Any]) -> BaseModel | Rejection:
    return decode(model, json.dumps(payload).encode())


def rejected(model: type[BaseModel], payload: dict[str, Any]) -> Rejection:
    result = run(model, payload)
    assert isinstance(result, Rejection), result
    return result


def lab(**changes: Any) -> LabEvent:
    result = run(LabEvent, {**VALID[LabEvent], **changes})
    assert isinstance(result, LabEvent), result
    return result


# --- every contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_valid_example_decodes(model: type[BaseModel]) -> None:
    assert isinstance(run(model, VALID[model]), model)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_missing_required_field_is_invalid(model: type[BaseModel]) -> None:
    payload = {k: v for k, v in VALID[model].items() if k != REQUIRED[model]}
    rejection = rejected(model, payload)
    assert rejection.reason == "invalid"
    assert REQUIRED[model] in rejection.error


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_extra_field_is_invalid(model: type[BaseModel]) -> None:
    rejection = rejected(model, {**VALID[model], "surprise": 1})
    assert rejection.reason == "invalid"
    assert "extra_forbidden" in rejection.error


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_naive_datetime_is_invalid(model: type[BaseModel]) -> None:
    rejection = rejected(model, {**VALID[model], TIME_FIELD[model]: "2026-11-23T10:15:00"})
    assert rejection.reason == "invalid"
    assert "timezone_aware" in rejection.error


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_wrong_json_shapes_are_malformed(model: type[BaseModel]) -> None:
    for raw in (b"", b"{", b"not json", b"[]", b"42", b'"text"', b"null"):
        result = decode(model, raw)
        assert isinstance(result, Rejection)
        assert result.reason == "malformed_json"
    assert decode(model, None) == Rejection("malformed_json", "empty message (tombstone)")


@pytest.mark.parametrize("model", list(NUMBER_FIELD), ids=lambda m: m.__name__)
@pytest.mark.parametrize("bad", ["80", True, [80], {"v": 80}], ids=repr)
def test_numbers_are_never_coerced(model: type[BaseModel], bad: Any) -> None:
    rejection = rejected(model, {**VALID[model], NUMBER_FIELD[model]: bad})
    assert rejection.reason == "invalid"


@pytest.mark.parametrize("model", [LabEvent, OutcomeEvent], ids=lambda m: m.__name__)
def test_required_number_cannot_be_null(model: type[BaseModel]) -> None:
    assert rejected(model, {**VALID[model], NUMBER_FIELD[model]: None}).reason == "invalid"


@pytest.mark.parametrize("model", list(NUMBER_FIELD), ids=lambda m: m.__name__)
@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_nan_and_infinity_are_invalid(model: type[BaseModel], token: bytes) -> None:
    field = NUMBER_FIELD[model]
    raw = json.dumps({**VALID[model], field: 0}).replace(f'"{field}": 0', f'"{field}": 0PLACE')
    result = decode(model, raw.replace("0PLACE", token.decode()).encode())
    assert isinstance(result, Rejection)
    assert result.reason == "invalid"
    assert field in result.error


# --- values never leak into errors ------------------------------------------------------------

LEAKS = [
    (VitalsEvent, {"heart_rate": 987}, "987", "implausible"),
    (VitalsEvent, {"patient_id": "Jane Doe"}, "Jane", "invalid"),
    (VitalsEvent, {"heart_rate": "80bpm"}, "80bpm", "invalid"),
    (VitalsEvent, {"consciousness": "Zzz-secret"}, "Zzz", "invalid"),
    (LabEvent, {"value": 68.4}, "68.4", "implausible"),
    (LabEvent, {"unit": "g/furlong"}, "furlong", "unknown_unit"),
    (LabEvent, {"analyte": "unobtainium"}, "unobtainium", "invalid"),
    (LabEvent, {"loinc": "2951-2"}, "2951", "invalid"),
    (WearableEvent, {"spo2": 123.4}, "123.4", "implausible"),
    (WearableEvent, {"sleep_stage": "napping"}, "napping", "invalid"),
    (PatientProfile, {"age": 187}, "187", "implausible"),
    (PatientProfile, {"ward": "W" * 65}, "WWWW", "invalid"),
    (OutcomeEvent, {"outcome": "Died at Home"}, "Home", "invalid"),
    (AlertAck, {"at": "yesterday-ish"}, "yesterday", "invalid"),
]


@pytest.mark.parametrize(("model", "changes", "secret", "reason"), LEAKS)
def test_rejection_error_never_contains_the_value(
    model: type[BaseModel], changes: dict[str, Any], secret: str, reason: str
) -> None:
    rejection = rejected(model, {**VALID[model], **changes})
    assert rejection.reason == reason
    assert secret not in rejection.error
    assert rejection.error  # but it says something


# --- vitals -----------------------------------------------------------------------------------


def test_vitals_without_any_measurement_is_invalid() -> None:
    base = {k: VALID[VitalsEvent][k] for k in ("event_id", "patient_id", "observed_at")}
    rejection = rejected(VitalsEvent, base)
    assert rejection.reason == "invalid"
    assert "at least one measurement" in rejection.error


@pytest.mark.parametrize(
    ("field", "value"),
    [("heart_rate", -1), ("spo2", 101), ("systolic_bp", 400), ("temperature_c", 12)],
)
def test_vitals_implausible(field: str, value: float) -> None:
    rejection = rejected(VitalsEvent, {**VALID[VitalsEvent], field: value})
    assert rejection.reason == "implausible"
    assert field in rejection.error


# --- labs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected"),
    [
        ("glucose", 180, "mg/dL", 9.991),
        ("glucose", 5.5, "mmol/L", 5.5),
        ("creatinine", 88.42, "\u00b5mol/L", 1.0),  # micro sign
        ("creatinine", 88.42, "\u03bcmol/L", 1.0),  # Greek mu
        ("creatinine", 176.84, "umol/L", 2.0),
        ("creatinine", 1.1, "mg/dl", 1.1),
        ("haemoglobin", 120, "g/L", 12.0),
        ("haemoglobin", 8.0, "mmol/L", 12.888),
        ("bilirubin", 34.2, "umol/L", 2.0),
        ("hba1c", 48, "mmol/mol", 6.543),
        ("hba1c", 6.5, "%", 6.5),
        ("troponin_t", 0.05, "ug/L", 50.0),
        ("troponin_i", 0.05, "ng/mL", 50.0),
        ("troponin", 14, "pg/mL", 14.0),
        ("lactate", 18.016, "mg/dL", 2.0),
        ("potassium", 4.1, "mEq/L", 4.1),
        ("sodium", 139, "meq/L", 139.0),
        ("bicarbonate", 24, "mmol/L", 24.0),
        ("white_cell_count", 7.5, "K/uL", 7.5),
        ("white_cell_count", 7.5, "10*9/L", 7.5),
        ("platelets", 250, "10^3/uL", 250.0),
        ("platelets", 250, "/nL", 250.0),
        ("ph", 7.41, "", 7.41),
        ("ph", 7.41, "1", 7.41),
        ("ph", 7.41, "pH", 7.41),
    ],
)
def test_lab_unit_conversion(analyte: str, value: float, unit: str, expected: float) -> None:
    event = lab(analyte=analyte, value=value, unit=unit, loinc=None)
    assert event.value == value  # kept as sent
    assert event.unit == unit
    assert event.value_canonical == pytest.approx(expected, abs=1e-3)
    assert event.unit_canonical == ANALYTES[event.analyte].unit
    assert event.canonical() == (analyte, event.value_canonical, event.unit_canonical)


def test_lab_value_and_canonical_survive_a_json_round_trip() -> None:
    event = lab(analyte="glucose", value=180, unit="mg/dL", loinc="2345-7")
    again = decode(LabEvent, event.model_dump_json().encode())
    assert again == event
    assert "value_canonical" not in event.model_dump()  # derived, never on the wire


@pytest.mark.parametrize(
    ("analyte", "unit"),
    [
        ("glucose", "g/furlong"),
        ("glucose", "mg/L"),
        ("creatinine", "mmol/L"),
        ("ph", "mmol/L"),
        ("troponin", "ng/dL"),
        ("hba1c", "mmol/L"),
        ("potassium", "mg/dL"),
    ],
)
def test_unknown_unit_is_rejected_not_guessed(analyte: str, unit: str) -> None:
    rejection = rejected(
        LabEvent, {**VALID[LabEvent], "analyte": analyte, "unit": unit, "loinc": None}
    )
    assert rejection.reason == "unknown_unit"
    assert rejection.error.startswith("unit: unit not accepted for")


def test_loinc_mismatch_is_invalid() -> None:
    rejection = rejected(LabEvent, {**VALID[LabEvent], "loinc": "2345-7"})  # glucose code
    assert rejection.reason == "invalid"
    assert rejection.error.startswith("loinc:")


@pytest.mark.parametrize("loinc", ["2823", "abc-1", "2823-33", ""])
def test_malformed_loinc_is_invalid(loinc: str) -> None:
    assert rejected(LabEvent, {**VALID[LabEvent], "loinc": loinc}).reason == "invalid"


def test_generic_troponin_accepts_either_assay_code() -> None:
    assert lab(analyte="troponin", loinc="89579-7", value=20, unit="ng/L").analyte == "troponin"
    assert lab(analyte="troponin", loinc="67151-1", value=20, unit="ng/L").analyte == "troponin"
    rejection = rejected(
        LabEvent, {**VALID[LabEvent], "analyte": "troponin_i", "loinc": "67151-1", "unit": "ng/L"}
    )
    assert rejection.reason == "invalid"


@pytest.mark.parametrize(("alias", "canonical"), sorted(ANALYTE_ALIASES.items()))
def test_analyte_aliases_decode_to_the_canonical_name(alias: str, canonical: str) -> None:
    spec = ANALYTES[canonical]  # type: ignore[index]
    value = (spec.low + spec.high) / 2
    event = lab(analyte=alias, value=value, unit=spec.unit, loinc=None)
    assert event.analyte == canonical


@pytest.mark.parametrize(
    ("analyte", "value", "unit"),
    [
        ("potassium", 0.4, "mmol/L"),
        ("potassium", 15.1, "mmol/L"),
        ("sodium", 250, "mmol/L"),
        ("glucose", 3000, "mg/dL"),  # 166 mmol/L
        ("ph", 8.2, ""),
        ("ph", 6.2, ""),
        ("haemoglobin", 300, "g/L"),  # 30 g/dL
        ("hba1c", 400, "mmol/mol"),
        ("troponin", -1, "ng/L"),
    ],
)
def test_lab_plausibility_is_checked_in_canonical_units(
    analyte: str, value: float, unit: str
) -> None:
    changes = {"analyte": analyte, "value": value, "unit": unit, "loinc": None}
    rejection = rejected(LabEvent, {**VALID[LabEvent], **changes})
    assert rejection.reason == "implausible"
    assert rejection.error.startswith(f"value: {analyte} outside plausible range")


def test_analyte_table_is_consistent() -> None:
    for name, spec in ANALYTES.items():
        assert spec.loinc, name
        assert spec.low < spec.high, name
        assert to_canonical(name, 1.0, spec.unit) == 1.0, name  # canonical unit is identity
        assert len({normalise_unit(u) for u in spec.units}) == len(spec.units), name
    for code, name in LOINC_TO_ANALYTE.items():
        assert analyte_for_loinc(code) == name
        assert code in ANALYTES[name].loinc
    assert analyte_for_loinc("89579-7") == "troponin_i"
    assert analyte_for_loinc("67151-1") == "troponin_t"
    assert analyte_for_loinc("8867-4") is None  # heart rate is a vital sign, not a lab


# --- wearables --------------------------------------------------------------------------------

WEARABLE_HEAD = {k: VALID[WearableEvent][k] for k in ("event_id", "patient_id", "observed_at")}
WEARABLE_HEAD["device_id"] = "watch-9"


def reading(second: int, **measurements: Any) -> dict[str, Any]:
    return {"observed_at": f"2026-11-23T10:15:{second:02d}Z", **measurements}


def test_wearable_single_reading_iterates_as_one() -> None:
    event = run(WearableEvent, {**WEARABLE_HEAD, "steps": 0})
    assert isinstance(event, WearableEvent)
    assert not event.is_batch
    (only,) = event.iter_readings()
    assert only.steps == 0
    assert only.observed_at == event.observed_at


def test_wearable_batch_iterates_in_time_order() -> None:
    readings = [reading(3, heart_rate=73), reading(1, heart_rate=71), reading(2, sleep_stage="rem")]
    event = run(WearableEvent, {**WEARABLE_HEAD, "readings": readings})
    assert isinstance(event, WearableEvent)
    assert event.is_batch
    assert [r.observed_at.second for r in event.iter_readings()] == [1, 2, 3]


@pytest.mark.parametrize(
    "changes",
    [
        {},  # no measurement at all
        {"heart_rate": 70, "readings": [reading(1, heart_rate=71)]},  # both forms
        {"readings": []},
        {"readings": [reading(1)]},  # a reading without measurement
        {"readings": [reading(i % 60, heart_rate=70) for i in range(MAX_READINGS + 1)]},
        {"readings": [{"heart_rate": 70}]},  # reading without time
        {"steps": 1.5},
        {"steps": -1},
        {"steps": "12"},
        {"sleep_stage": "nap"},
    ],
    ids=lambda c: ",".join(c) or "empty",
)
def test_wearable_invalid(changes: dict[str, Any]) -> None:
    assert rejected(WearableEvent, {**WEARABLE_HEAD, **changes}).reason == "invalid"


def test_wearable_batch_of_maximum_size_decodes() -> None:
    readings = [reading(i % 60, heart_rate=60 + i % 40) for i in range(MAX_READINGS)]
    assert isinstance(run(WearableEvent, {**WEARABLE_HEAD, "readings": readings}), WearableEvent)


@pytest.mark.parametrize(
    "changes",
    [
        {"steps": 1_000_000},
        {"skin_temperature_c": 60},
        {"hrv_rmssd_ms": 900},
        {"readings": [reading(1, spo2=140)]},
    ],
    ids=lambda c: ",".join(c),
)
def test_wearable_implausible(changes: dict[str, Any]) -> None:
    assert rejected(WearableEvent, {**WEARABLE_HEAD, **changes}).reason == "implausible"


# --- profiles, outcomes, acks -----------------------------------------------------------------


def test_profile_defaults() -> None:
    profile = run(PatientProfile, {"patient_id": "p-0001"})
    assert isinstance(profile, PatientProfile)
    assert (profile.sex, profile.spo2_scale, profile.conditions, profile.age) == (
        "unknown",
        1,
        [],
        None,
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"spo2_scale": 3},
        {"spo2_scale": True},
        {"spo2_scale": 1.0},
        {"spo2_scale": "2"},
        {"sex": "F"},
        {"age": 71.5},
        {"conditions": ["c"] * 51},
        {"conditions": [""]},
        {"ward": ""},
    ],
    ids=repr,
)
def test_profile_invalid(changes: dict[str, Any]) -> None:
    assert rejected(PatientProfile, {**VALID[PatientProfile], **changes}).reason == "invalid"


@pytest.mark.parametrize("age", [-1, 131])
def test_profile_implausible_age(age: int) -> None:
    assert rejected(PatientProfile, {**VALID[PatientProfile], "age": age}).reason == "implausible"


def test_profile_latest_updated_at_wins() -> None:
    def profile(updated_at: str | None) -> PatientProfile:
        return PatientProfile.model_validate_json(
            json.dumps({"patient_id": "p1", "updated_at": updated_at})
        )

    old, new, undated = profile(T0), profile("2026-11-24T00:00:00+01:00"), profile(None)
    assert new.supersedes(old)
    assert not old.supersedes(new)
    assert not old.supersedes(old)
    assert old.supersedes(undated)
    assert not undated.supersedes(old)
    assert undated.supersedes(undated)


@pytest.mark.parametrize(
    "changes",
    [{"outcome": "InHospitalDeath"}, {"outcome": ""}, {"outcome": "x" * 65}, {"value": "1"}],
    ids=repr,
)
def test_outcome_invalid(changes: dict[str, Any]) -> None:
    assert rejected(OutcomeEvent, {**VALID[OutcomeEvent], **changes}).reason == "invalid"


@pytest.mark.parametrize(
    "changes", [{"alert_id": ""}, {"by": ""}, {"at": 1700000000}, {"by": 7}], ids=repr
)
def test_ack_invalid(changes: dict[str, Any]) -> None:
    assert rejected(AlertAck, {**VALID[AlertAck], **changes}).reason == "invalid"
