"""Contract tests: schemathesis generates requests from the app's own OpenAPI description
and checks every response against it (status codes, content types, bodies, no 5xx),
in-process over ASGI with in-memory ports. The SSE route is excluded (it never ends)."""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection

from stream.api import create_api
from stream.api.acks import MemoryAckPublisher
from stream.settings import Settings
from tests.agents.twinbuild import build_store

pytestmark = pytest.mark.agents

TOKEN = "contract-token"
_settings = Settings(api_token=TOKEN, partitions=4)
app = create_api(_settings, asyncio.run(build_store(_settings)), MemoryAckPublisher())

schema = schemathesis.openapi.from_asgi("/openapi.json", app)
schema = schema.exclude(path="/alerts/stream")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    # negative_data_rejection is left out: it counts a repeated scalar query parameter
    # (?region=a&region=b) as invalid, while Starlette reads the last value. Invalid
    # values themselves are rejected (422), as test_api.py checks route by route.
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        excluded_checks=[negative_data_rejection],
    )


def test_spec_declares_bearer_auth_and_every_route() -> None:
    spec = app.openapi()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {
        "/twins",
        "/twins/{patient_id}",
        "/twins/{patient_id}/vitals",
        "/twins/{patient_id}/what-if",
        "/alerts",
        "/alerts/stream",
        "/alerts/{alert_id}/ack",
        "/population",
        "/metrics",
        "/healthz",
        "/readyz",
    } <= set(spec["paths"])
