"""``twinstream alerts forward`` against a flaky webhook: nothing lost, nothing repeated
beyond what the (alert_id, status) key identifies, across a webhook outage and a
forwarder killed with SIGKILL mid-way."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from stream.api.forwarder import dedup_key
from stream.kafka import ensure_topics, kafka_client_options
from stream.settings import Settings
from tests.integration.apistack import free_port

pytestmark = pytest.mark.integration


class Webhook:
    """Answers 503 until ``fail_until``, then accepts (slowly, so a kill lands mid-way)."""

    def __init__(self, fail_for_s: float) -> None:
        self.fail_until = time.monotonic() + fail_for_s
        self.accepted: list[tuple[str, dict]] = []
        self.refused = 0

    async def handle(self, request: web.Request) -> web.Response:
        if time.monotonic() < self.fail_until:
            self.refused += 1
            return web.Response(status=503)
        body = await request.json()
        await asyncio.sleep(0.05)
        self.accepted.append((request.headers["Idempotency-Key"], body))
        return web.Response(status=204)


def alerts(first: int, count: int) -> list[dict]:
    """Alerts with distinct keys, each sent twice (the worker's at-least-once), plus reminders."""
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).isoformat()
    out = []
    for i in range(first, first + count):
        status = ("open", "escalated", "reminder")[i % 3]
        alert = {
            "alert_id": f"a-{i // 3}", "patient_id": f"p-{i % 7:04d}", "kind": "deterioration",
            "severity": "high", "status": status, "rule": "news2", "observed_at": at,
            "emitted_at": f"2026-11-23T10:{i % 60:02d}:00+00:00", "details": {"n": i},
        }  # fmt: skip
        out += [alert, alert]
    return out


async def produce(settings: Settings, items: list[dict]) -> None:
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all")
    await producer.start()
    try:
        for a in items:
            await producer.send(
                settings.topic_alerts, orjson.dumps(a), key=a["patient_id"].encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


def spawn_forwarder(env: dict[str, str], url: str, log: str) -> subprocess.Popen[bytes]:
    code = "import sys; from stream.api.subscribers import main_alerts; sys.exit(main_alerts(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, "forward", "--url", url, "--group", "fwd-test"],
        env={**os.environ, **env},
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def wait_for(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def test_forwarder_survives_outage_and_kill(
    isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    for k, v in isolated_env.items():
        monkeypatch.setenv(k, v)
    settings = Settings()
    await ensure_topics(settings)
    hook = Webhook(fail_for_s=4.0)
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/hook"
    log = str(tmp_path / "forwarder.log")
    first, second = alerts(0, 60), alerts(60, 30)
    expected = {dedup_key(a) for a in first + second}
    fwd = None
    try:
        await produce(settings, first)
        fwd = spawn_forwarder(isolated_env, url, log)
        await wait_for(lambda: hook.refused > 0, 60, "forwarder never called the webhook")
        await wait_for(lambda: len(hook.accepted) >= 15, 60, "webhook never recovered")
        os.killpg(fwd.pid, signal.SIGKILL)  # mid-way, no chance to clean up
        fwd.wait()
        killed_at = len(hook.accepted)
        assert killed_at < len({dedup_key(a) for a in first})
        await produce(settings, second)
        fwd = spawn_forwarder(isolated_env, url, log)
        await wait_for(lambda: {k for k, _ in hook.accepted} >= expected, 90, "alerts lost")
        await asyncio.sleep(2.0)  # anything more would be a duplicate
    finally:
        if fwd is not None and fwd.poll() is None:
            os.killpg(fwd.pid, signal.SIGTERM)
            await asyncio.to_thread(fwd.wait, 20)
        await runner.cleanup()

    keys = [k for k, _ in hook.accepted]
    assert set(keys) == expected, (tmp_path / "forwarder.log").read_text()[-2000:]
    assert all(dedup_key(body) == k for k, body in hook.accepted)
    # Only the alert in flight when the forwarder was killed may come twice (accepted,
    # not yet committed); its Idempotency-Key lets the receiver drop it.
    assert len(keys) - len(set(keys)) <= 1
    assert hook.refused > 0 and fwd.returncode == 0
