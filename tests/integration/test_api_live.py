"""The API against a real worker, Kafka and Redis: twin state, live SSE alerts, acks."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import orjson
import pytest

from stream.cli import spawn_worker, stop_process
from stream.kafka import ensure_topics
from stream.settings import Settings
from tests.integration.apistack import (
    TOKEN,
    free_port,
    produce_ward,
    read_topic,
    spawn_api,
    wait_ready,
)
from twin.alerting import alert_id

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def sse_alerts(base: str, found: list[dict], connected: asyncio.Event) -> None:
    async with (
        httpx.AsyncClient(timeout=None) as client,
        client.stream("GET", f"{base}/alerts/stream", params={"token": TOKEN}) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith(": connected"):
                connected.set()
            if line.startswith("data: "):
                found.append(orjson.loads(line[6:]))


async def test_api_live(
    isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    for k, v in isolated_env.items():
        monkeypatch.setenv(k, v)
    settings = Settings()
    await ensure_topics(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = spawn_api(isolated_env, port, str(tmp_path / "api.log"))
    worker = spawn_worker(env=isolated_env, log_path=str(tmp_path / "worker.log"))
    alerts: list[dict] = []
    connected = asyncio.Event()
    sse = None
    try:
        await wait_ready(base, api)
        sse = asyncio.create_task(sse_alerts(base, alerts, connected))
        await asyncio.wait_for(connected.wait(), 10)
        await produce_ward(settings, patients=6, worse=(1,))
        want = alert_id("p-0001", "news2", 1)
        for _ in range(240):
            if any(a["alert_id"] == want and a["status"] == "open" for a in alerts):
                break
            await asyncio.sleep(0.5)
        logs = (tmp_path / "worker.log").read_text(errors="replace")[-2000:]
        opened = [a for a in alerts if a["alert_id"] == want]
        assert opened and opened[0]["status"] == "open", logs
        assert opened[0]["patient_id"] == "p-0001" and opened[0]["severity"] == "high"

        async with httpx.AsyncClient(base_url=base, headers=AUTH) as client:
            assert (await httpx.AsyncClient().get(f"{base}/twins/p-0001")).status_code == 401
            twin = (await client.get("/twins/p-0001")).json()
            assert twin["assessment"]["news2"]["total"] == 10
            assert twin["assessment"]["news2"]["band"] == "high"
            assert twin["profile"]["ward"] == "AMU-2"
            assert want in {a["alert_id"] for a in twin["open_alerts"]}
            top = (await client.get("/twins", params={"limit": 1})).json()
            assert top["items"][0]["patient_id"] == "p-0001"
            recent = (await client.get("/alerts", params={"status": "all"})).json()["recent"]
            assert want in {a["alert_id"] for a in recent}

            r = await client.post(f"/alerts/{want}/ack", json={"by": "rn-4411"})
            assert r.status_code == 202, r.text
            acks = await read_topic(settings, settings.topic_alert_acks, want=1)
            assert len(acks) == 1
            key, body = acks[0]
            assert key == b"p-0001"
            ack = orjson.loads(body)
            assert (ack["alert_id"], ack["by"]) == (want, "rn-4411")

            metrics = (await client.get("/metrics")).text
            assert 'twinstream_records_total{outcome="applied"}' in metrics
            assert (
                f'twinstream_consumer_lag{{partition="0",topic="{settings.topic_vitals}"}}'
                in metrics
            )
            assert (await client.get("/readyz")).json()["kafka"] == "ok"
    finally:
        if sse is not None:
            sse.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sse
        await asyncio.to_thread(stop_process, worker)
        await asyncio.to_thread(stop_process, api)
    access = (tmp_path / "api.log").read_text(errors="replace")
    assert "p-0001" not in access and TOKEN not in access
