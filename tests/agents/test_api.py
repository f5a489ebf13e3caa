"""The HTTP API on in-memory ports: a memory store filled by the real core, an in-memory
ack publisher, and the ASGI app driven in-process by httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from schemas.alert import Alert
from stream.api import create_api
from stream.api.acks import MemoryAckPublisher
from stream.api.feed import AlertFeed
from stream.settings import Settings
from stream.store import MemoryTwinStore
from tests.agents.twinbuild import T0, build_store
from twin.alerting import alert_id

pytestmark = pytest.mark.agents

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Stack:
    def __init__(self, store: MemoryTwinStore, acks: MemoryAckPublisher, feed: AlertFeed) -> None:
        self.store, self.acks, self.feed = store, acks, feed


@pytest.fixture
async def stack() -> AsyncIterator[tuple[httpx.AsyncClient, Stack]]:
    settings = Settings(api_token=TOKEN, partitions=4)
    store = await build_store(settings)
    acks, feed = MemoryAckPublisher(), AlertFeed(capacity=50)
    app = create_api(settings, store, acks, feed=feed)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client, Stack(store, acks, feed)


def sample_alert(pid: str = "p-high", status: str = "open", severity: str = "high") -> Alert:
    at = datetime.fromtimestamp(T0, tz=UTC)
    return Alert(
        alert_id=alert_id(pid, "news2", 1), patient_id=pid, kind="deterioration",
        severity=severity, status=status, rule="news2", observed_at=at, emitted_at=at,
    )  # fmt: skip


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
    assert twin["profile"]["ward"] == "A" and twin["learned"] is None
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


async def test_alerts_open_and_recent(stack) -> None:
    client, st = stack
    st.feed.publish(sample_alert("p-med", "resolved", "info"))
    st.feed.publish(sample_alert("p-high", "open", "high"))
    r = (await client.get("/alerts", headers=AUTH)).json()
    assert r["open"][0]["patient_id"] == "p-high" and r["open"][0]["severity"] == "high"
    assert {a["rule"] for a in r["open"]} == {"news2", "qsofa"}
    assert [a["status"] for a in r["recent"]] == ["open"]
    high = (await client.get("/alerts", headers=AUTH, params={"severity": "high"})).json()
    assert {a["severity"] for a in high["open"] + high["recent"]} == {"high"}
    resolved = (await client.get("/alerts", headers=AUTH, params={"status": "resolved"})).json()
    assert resolved["open"] == [] and [a["patient_id"] for a in resolved["recent"]] == ["p-med"]
    every = (await client.get("/alerts", headers=AUTH, params={"status": "all"})).json()
    assert len(every["recent"]) == 2 and every["recent"][0]["status"] == "open"  # newest first


async def test_ack_publishes_keyed_by_patient(stack) -> None:
    client, st = stack
    aid = alert_id("p-med", "news2", 1)  # open on the twin, not in the ring buffer
    r = await client.post(f"/alerts/{aid}/ack", headers=AUTH, json={"by": "rn-4411"})
    assert r.status_code == 202 and r.json()["patient_id"] == "p-med"
    key, ack = st.acks.published[-1]
    assert key == b"p-med" and (ack.alert_id, ack.by) == (aid, "rn-4411")
    st.feed.publish(sample_alert("p-low0", "resolved", "info"))  # known from the buffer only
    r = await client.post(
        f"/alerts/{alert_id('p-low0', 'news2', 1)}/ack", headers=AUTH, json={"by": "x"}
    )
    assert r.status_code == 202 and st.acks.published[-1][0] == b"p-low0"
    assert (
        await client.post("/alerts/nope/ack", headers=AUTH, json={"by": "x"})
    ).status_code == 404
    assert (await client.post(f"/alerts/{aid}/ack", headers=AUTH, json={})).status_code == 422
    assert len(st.acks.published) == 2


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


async def _sse(client: httpx.AsyncClient, feed: AlertFeed, headers: dict[str, str], **params):
    task = asyncio.create_task(client.get("/alerts/stream", headers=headers, params=params))
    for _ in range(200):
        if feed.subscribers:
            break
        await asyncio.sleep(0.01)
    return task


def frames(text: str) -> list[dict[str, str]]:
    out = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if fields:
            out.append(fields)
    return out


async def test_sse_delivers_live_alerts_with_query_token(stack) -> None:
    client, st = stack
    task = await _sse(client, st.feed, {}, token=TOKEN, limit=2, severity="high")
    st.feed.publish(sample_alert("p-med", "open", "medium"))  # filtered out
    st.feed.publish(sample_alert("p-high", "open", "high"))
    st.feed.publish(sample_alert("p-high", "reminder", "high"))
    r = await asyncio.wait_for(task, 10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    got = frames(r.text)
    assert [f["event"] for f in got] == ["alert", "alert"]
    assert [orjson.loads(f["data"])["status"] for f in got] == ["open", "reminder"]
    assert [f["id"] for f in got] == ["2", "3"]


async def test_sse_replays_after_last_event_id(stack) -> None:
    client, st = stack
    for status in ("open", "escalated", "resolved"):
        st.feed.publish(sample_alert(status=status))
    r = await client.get(
        "/alerts/stream", headers={**AUTH, "Last-Event-ID": "1"}, params={"limit": 2}
    )
    assert [orjson.loads(f["data"])["status"] for f in frames(r.text)] == ["escalated", "resolved"]


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


async def test_access_log_has_route_templates_not_ids(
    stack, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = stack
    with caplog.at_level("INFO", logger="twinstream.api.access"):
        await client.get("/twins/p-high", headers=AUTH)
        await client.get("/alerts/stream", params={"token": "wrong"})
    info = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert info[0].startswith("GET /twins/{patient_id} 200")
    assert info[1].startswith("GET /alerts/stream 401")
    assert not any("p-high" in m or "wrong" in m for m in info)


def test_population_counts_predicted_deteriorations() -> None:
    from stream.api.population import TwinRollupRow, rollup

    rows = [TwinRollupRow("A", "n", "low", 720, deteriorating_next_hour=i < 2) for i in range(6)]
    view = rollup(rows, min_group=5)
    assert (view.predicted_deteriorations_next_hour, view.forecasts) == (2, "available")
    none = rollup([TwinRollupRow("A", "n", "low", 720)], min_group=5)
    assert none.predicted_deteriorations_next_hour is None and "not available" in none.forecasts
