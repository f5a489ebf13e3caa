"""Alerts through the API on in-memory ports: the list, acknowledgements, the SSE
stream, plus the access log, the server entry and the doctests of stream's API modules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from stream.api.feed import AlertFeed
from tests.agents.twinbuild import ApiStack, api_stack, sample_alert
from twin.alerting import alert_id

pytestmark = pytest.mark.agents

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def stack() -> AsyncIterator[tuple[httpx.AsyncClient, ApiStack]]:
    async with api_stack(TOKEN) as found:
        yield found


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


def test_main_api_refuses_to_start_without_token(monkeypatch, capsys) -> None:
    from stream.api import main_api

    monkeypatch.delenv("TWIN_API_TOKEN", raising=False)
    assert main_api([]) == 2
    assert "--insecure-dev" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module",
    [
        "stream.api.population",
        "stream.api.metrics",
        "stream.api.forwarder",
        "stream.api.subscribers",
        "stream.metrics",
    ],
)
def test_doctests(module: str) -> None:
    # stream/ is outside the doctest paths of the default pytest run.
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
