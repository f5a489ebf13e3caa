"""The HTTP API on in-memory ports: a memory store filled by the real core, an in-memory
ack publisher, and the ASGI app driven in-process by httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from stream.api import create_api
from stream.api.acks import MemoryAckPublisher
from stream.settings import Settings
from stream.store import MemoryTwinStore
from tests.agents.twinbuild import ApiStack, api_stack
from twin.alerting import alert_id

pytestmark = pytest.mark.agents

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def stack() -> AsyncIterator[tuple[httpx.AsyncClient, ApiStack]]:
    async with api_stack(TOKEN) as found:
        yield found


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/twins/p-high"),
        ("GET", "/twins"),
        ("GET", "/alerts"),
        ("GET", "/alerts/stream"),
        ("GET", "/population"),
        ("GET", "/metrics"),
        ("POST", "/twins/p-high/what-if"),
        ("POST", "/alerts/x/ack"),
    ],
)
async def test_auth_required(stack, method: str, path: str) -> None:
    client, _ = stack
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = await client.request(method, path, headers=headers, json={})
        assert r.status_code == 401, (path, headers)
        assert r.headers["www-authenticate"] == "Bearer"
    if path != "/alerts/stream":  # the query-string token is accepted on the SSE route only
        r = await client.request(method, path, params={"token": TOKEN}, json={})
        assert r.status_code == 401


async def test_health_is_public_and_dashboard_shell_served(stack) -> None:
    client, _ = stack
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["kafka"] == "not used"
    page = await client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()


async def test_get_twin(stack) -> None:
    client, _ = stack
    r = await client.get("/twins/p-high", headers=AUTH)
    assert r.status_code == 200
    twin = r.json()
    news2 = twin["assessment"]["news2"]
    assert (news2["total"], news2["band"], news2["monitoring_interval_minutes"]) == (8, "high", 0)
    assert news2["subscores"]["spo2"] == 3 and news2["missing"] == []
    assert twin["assessment"]["qsofa"]["positive"] is True
    assert twin["latest"]["spo2"] == {
        "value": 90.0,
        "at": "2027-01-15T08:50:00Z",
        "grade": "bedside",
    }
    hr = twin["windows"]["heart_rate"]
    assert hr["h6"]["n"] == 6 and hr["h1"]["n"] <= hr["h6"]["n"]
    assert [p["total"] for p in twin["news2_history"]][-1] == 8
    rules = {a["rule"]: a for a in twin["open_alerts"]}
    assert rules["news2"]["alert_id"] == alert_id("p-high", "news2", 1)
    assert rules["news2"]["severity"] == "high" and rules["news2"]["status"] == "open"
    assert twin["profile"]["ward"] == "A"
    learned = twin["learned"]
    assert learned["baselines"]["heart_rate"]["trusted"] is False  # still warming up
    assert {f["horizon_minutes"] for f in learned["forecasts"]["heart_rate"]} == {30, 60}
    assert (await client.get("/twins/p-nobody", headers=AUTH)).status_code == 404
    none = (await client.get("/twins/p-none", headers=AUTH)).json()
    assert none["assessment"] is None and none["latest"] == {}


async def test_list_sorted_filtered_paginated(stack) -> None:
    client, _ = stack
    r = (await client.get("/twins", headers=AUTH, params={"limit": 4})).json()
    assert r["total"] == 10
    assert [i["patient_id"] for i in r["items"][:3]] == ["p-high", "p-med", "p-red"]
    seen = [i["patient_id"] for i in r["items"]]
    while r["next_cursor"]:
        r = (
            await client.get(
                "/twins", headers=AUTH, params={"limit": 4, "cursor": r["next_cursor"]}
            )
        ).json()
        seen += [i["patient_id"] for i in r["items"]]
    assert len(seen) == len(set(seen)) == 10
    assert seen[-1] == "p-none"  # no vitals: sorted last
    high = (await client.get("/twins", headers=AUTH, params={"band": "high"})).json()
    assert [i["patient_id"] for i in high["items"]] == ["p-high"]
    ward_b = (await client.get("/twins", headers=AUTH, params={"ward": "B"})).json()
    assert {i["ward"] for i in ward_b["items"]} == {"B"} and ward_b["total"] == 4
    south = await client.get("/twins", headers=AUTH, params={"region": "south", "band": "low"})
    assert south.json()["total"] == 3
    assert (await client.get("/twins", headers=AUTH, params={"band": "bad"})).status_code == 422


async def test_population_suppresses_small_groups(stack) -> None:
    client, _ = stack
    pop = (await client.get("/population", headers=AUTH)).json()
    assert pop["twins"] == 10 and pop["min_group"] == 5
    wards = {w["name"]: w for w in pop["wards"]}
    assert wards["A"]["total"] == 6
    assert wards["A"]["bands"]["high"] == "<5" and wards["A"]["bands"]["unknown"] == 0
    assert wards["B"]["total"] == "<5" and set(wards["B"]["bands"].values()) == {"<5"}
    assert pop["bands"]["low"] == 6 and pop["bands"]["high"] == "<5"
    # 1 continuous (p-high), p-med hourly, p-red hourly, 6 twelve-hourly.
    assert pop["observations_per_hour"] == round(1 + 1 + 6 / 12, 2)
    assert pop["continuous_monitoring"] == "<5"
    # Learned forecasts: a count once twins carry learned state, else null with the reason.
    predicted = pop["predicted_deteriorations_next_hour"]
    assert (predicted is None) == ("not available" in pop["forecasts"])


async def test_what_if_scores_without_touching_the_twin(stack) -> None:
    client, st = stack
    before = await st.store.get_twin("p-low0")
    r = await client.post(
        "/twins/p-low0/what-if",
        headers=AUTH,
        json={"spo2": 88, "on_oxygen": True, "systolic_bp": 95},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["before"]["news2"]["total"] == 0
    assert body["after"]["news2"]["total"] == 3 + 2 + 2 and body["after"]["news2"]["band"] == "high"
    assert [(a["rule"], a["status"], a["severity"]) for a in body["alerts"]] == [
        ("news2", "open", "high")
    ]
    lab = await client.post(
        "/twins/p-low0/what-if", headers=AUTH,
        json={"labs": [{"analyte": "potassium", "value": 7.1, "unit": "mmol/L"}]},
    )  # fmt: skip
    assert [a["rule"] for a in lab.json()["alerts"]] == ["lab.critical.potassium"]
    bad = await client.post(
        "/twins/p-low0/what-if", headers=AUTH,
        json={"labs": [{"analyte": "potassium", "value": 7.1, "unit": "furlongs"}]},
    )  # fmt: skip
    assert bad.status_code == 422
    assert (
        await client.post("/twins/p-low0/what-if", headers=AUTH, json={"spo2": 101})
    ).status_code == 422
    assert (
        await client.post("/twins/nobody/what-if", headers=AUTH, json={"spo2": 90})
    ).status_code == 404
    assert await st.store.get_twin("p-low0") == before


async def test_metrics_from_store_counters(stack) -> None:
    client, _ = stack
    text = (await client.get("/metrics", headers=AUTH)).text
    assert 'twinstream_records_total{outcome="applied"} 10.0' in text
    assert 'twinstream_dead_letters_total{reason="invalid"}' in text


def test_refuses_to_build_without_token() -> None:
    with pytest.raises(ValueError, match="TWIN_API_TOKEN"):
        create_api(Settings(api_token=None), MemoryTwinStore(1), MemoryAckPublisher())
    create_api(Settings(api_token=None), MemoryTwinStore(1), MemoryAckPublisher(), insecure=True)


async def test_vitals_buckets(stack) -> None:
    client, _ = stack
    series = (await client.get("/twins/p-high/vitals", headers=AUTH)).json()
    rr = series["respiratory_rate"]
    assert sum(p["n"] for p in rr) == 6 and rr[-1]["max"] == 26.0 and rr[0]["min"] == 16.0
    assert [p["at"] for p in rr] == sorted(p["at"] for p in rr)


def test_population_counts_predicted_deteriorations() -> None:
    from stream.api.population import TwinRollupRow, rollup

    rows = [TwinRollupRow("A", "n", "low", 720, deteriorating_next_hour=i < 2) for i in range(6)]
    view = rollup(rows, min_group=5)
    assert (view.predicted_deteriorations_next_hour, view.forecasts) == (2, "available")
    none = rollup([TwinRollupRow("A", "n", "low", 720)], min_group=5)
    assert none.predicted_deteriorations_next_hour is None and "not available" in none.forecasts
