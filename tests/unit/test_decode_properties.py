"""Property tests: whatever arrives, decoding classifies it exactly once and never raises."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas import LabEvent, Rejection, VitalsEvent, decode, decode_fhir
from schemas.deadletter import RejectReason
from schemas.export import CONTRACTS

pytestmark = pytest.mark.unit

REASONS = frozenset(get_args(RejectReason)) - {"processing_error"}
MODELS = list(CONTRACTS.values())
SECRET_TEXT = "Zq7-SECRET"
SECRET_NUMBER = 987654.125

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, -0.0, 5e-324, 2**63, -(2**63) - 1, 10**30])
    | st.text(max_size=40)
    | st.sampled_from(["", "2026-11-23T10:15:00Z", "2026-11-23T10:15:00", "80", "NaN"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=15,
)
# Flat values for dictionaries keyed like a contract: cheaper to generate than json_values.
field_values = (
    scalars
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=5), scalars, max_size=3)
)


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(min_value=1, max_value=5000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return (opener * depth + "1" + closer * depth).encode()


huge_strings = st.integers(min_value=0, max_value=1_200_000).map(lambda n: "x" * n)


def check(result: object, model: type[BaseModel]) -> None:
    """Exactly one of: a model instance, or a Rejection with a known reason and a message."""
    assert isinstance(result, model) != isinstance(result, Rejection)
    if isinstance(result, Rejection):
        assert result.reason in REASONS
        assert isinstance(result.error, str)
        assert 0 < len(result.error) <= 500
        assert "decoding failed" not in result.error  # the last-resort net never fired


def check_fhir(result: object) -> None:
    if isinstance(result, Rejection):
        check(result, VitalsEvent)
        return
    assert isinstance(result, list)
    assert result
    assert all(isinstance(event, VitalsEvent | LabEvent) for event in result)


def keyed_dicts(model: type[BaseModel], values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Objects with the model's own keys (some, all, or extra) and arbitrary values."""
    keys = st.sampled_from(sorted(model.model_fields)) | st.text(max_size=8)
    return st.dictionaries(keys, values, max_size=len(model.model_fields) + 2).map(
        lambda d: json.dumps(d).encode()
    )


# --- every contract ---------------------------------------------------------------------------
# Inputs that do not depend on the contract are fed to all of them in one example.


@SETTINGS
@given(raw=st.binary(max_size=2000))
def test_arbitrary_bytes(raw: bytes) -> None:
    for model in MODELS:
        check(decode(model, raw), model)


@SETTINGS
@given(value=json_values)
def test_arbitrary_json(value: Any) -> None:
    raw = json.dumps(value).encode()
    for model in MODELS:
        check(decode(model, raw), model)


@SETTINGS
@given(raw=deep_nesting() | huge_strings.map(lambda s: json.dumps({"event_id": s}).encode()))
def test_deep_and_huge_json(raw: bytes) -> None:
    for model in MODELS:
        check(decode(model, raw), model)


secrets = st.sampled_from(
    [
        SECRET_TEXT,
        SECRET_NUMBER,
        -SECRET_NUMBER,
        [SECRET_TEXT],
        {"v": SECRET_TEXT},
        f"{SECRET_TEXT}T10:15:00",
    ]
)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@SETTINGS
@given(data=st.data())
def test_right_keys_wrong_values(model: type[BaseModel], data: st.DataObject) -> None:
    """Contract keys with arbitrary values: classified once, and errors never quote a value."""
    result = decode(model, data.draw(keyed_dicts(model, secrets | field_values)))
    check(result, model)
    if isinstance(result, Rejection):
        assert "SECRET" not in result.error
        assert "987654" not in result.error


# --- FHIR -------------------------------------------------------------------------------------

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2026-11-23T10:15:00Z",
    "valueQuantity": {"value": 92, "unit": "/min", "system": "http://unitsofmeasure.org"},
}
FHIR_CODES = ["8867-4", "85354-9", "8310-5", "2823-3", "2345-7", "2744-1", "29463-7", ""]


@st.composite
def mutated_observation(draw: st.DrawFn) -> dict[str, Any]:
    """A valid-looking Observation with some fields replaced by arbitrary JSON."""
    obs: dict[str, Any] = json.loads(json.dumps(OBSERVATION))
    obs["code"]["coding"][0]["code"] = draw(st.sampled_from(FHIR_CODES))
    for key in draw(st.lists(st.sampled_from([*OBSERVATION, "component", "identifier"]))):
        obs[key] = draw(json_values)
    if draw(st.booleans()):
        obs["valueQuantity"] = {
            "value": draw(scalars),
            "code": draw(st.sampled_from(["/min", "Cel", "[degF]", "mmol/L", "mg/dL", ""])),
        }
    if draw(st.booleans()):
        obs["component"] = [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "valueQuantity": {"value": draw(scalars), "code": "mm[Hg]"},
            }
            for code in draw(st.lists(st.sampled_from(["8480-6", "8462-4", "8478-0"]), max_size=3))
        ]
    return obs


def as_bundle(resources: list[Any]) -> dict[str, Any]:
    entries = [{"resource": resource} for resource in resources]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


fhir_resources = mutated_observation() | st.lists(
    mutated_observation() | json_values, max_size=4
).map(as_bundle)


@SETTINGS
@given(raw=st.binary(max_size=2000) | deep_nesting())
def test_fhir_arbitrary_bytes(raw: bytes) -> None:
    check_fhir(decode_fhir(raw))


@SETTINGS
@given(value=json_values)
def test_fhir_arbitrary_json(value: Any) -> None:
    check_fhir(decode_fhir(json.dumps(value).encode()))


@SETTINGS
@given(resource=fhir_resources)
def test_fhir_mutated_resources(resource: dict[str, Any]) -> None:
    check_fhir(decode_fhir(json.dumps(resource).encode()))


@SETTINGS
@given(value=secrets)
def test_fhir_errors_never_quote_values(value: Any) -> None:
    for key in ("value", "code", "unit"):
        obs = json.loads(json.dumps(OBSERVATION))
        obs["valueQuantity"][key] = value
        result = decode_fhir(json.dumps(obs).encode())
        assert isinstance(result, Rejection)
        assert "SECRET" not in result.error
        assert "987654" not in result.error
