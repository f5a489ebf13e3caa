"""No patient identifier or value reaches a log line, and with pseudonymisation on,
none reaches Redis or the alerts topic either.

Marker values are planted in valid, implausible, malformed and otherwise rejected
messages (so the dead-letter path and its warnings run); the real worker runs at
INFO and the real API server at INFO with its access log; then every log line,
every Redis key and value under the test's prefix and every alert is searched.
Dead letters keep the original bytes by design (``SECURITY.md``): only their
``error`` text is checked.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.cli import stop_process
from stream.handlers import pseudonymise
from stream.kafka import ensure_topics, kafka_client_options
from stream.settings import Settings
from stream.store import RedisTwinStore

pytestmark = pytest.mark.integration

MARKER_ID = "MARKER-PATIENT-7731"
MARKER_SOURCE = "MARKER-DEVICE-5519"
PSEUDONYM_KEY = "no-phi-test-key"
PSEUDONYM = pseudonymise(MARKER_ID, PSEUDONYM_KEY.encode())
TOKEN = "no-phi-test-token-8d1f"
# heart rate 173 and potassium 6.66 as they would print; the lookarounds keep
# timestamps (",173"), pids and ports from matching.
MARKER_VALUES = re.compile(r"(?<![\d,.:])173(?:\.0)?(?![\d])|6\.66")


def _at(minutes_ago: float) -> str:
    return datetime.fromtimestamp(time.time() - minutes_ago * 60, tz=UTC).isoformat()


def _records(settings: Settings) -> list[tuple[str, bytes, bytes]]:
    key = MARKER_ID.encode()
    vitals = {
        "event_id": "phi-1",
        "patient_id": MARKER_ID,
        "observed_at": _at(5),
        "source": MARKER_SOURCE,
        "heart_rate": 173,
        "respiratory_rate": 29,
        "spo2": 88,
        "systolic_bp": 88,
        "temperature_c": 39.4,
        "consciousness": "A",
        "on_oxygen": False,
    }
    lab = {
        "event_id": "phi-2",
        "patient_id": MARKER_ID,
        "observed_at": _at(4),
        "source": MARKER_SOURCE,
        "analyte": "potassium",
        "value": 6.66,
        "unit": "mmol/L",
    }
    fhir = {
        "resourceType": "Observation",
        "id": "phi-fhir-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{MARKER_ID}"},
        "effectiveDateTime": _at(3),
        "valueQuantity": {"value": 173, "unit": "/min", "system": "http://unitsofmeasure.org",
                          "code": "/min"},
    }  # fmt: skip
    v, lb = settings.topic_vitals, settings.topic_labs
    return [
        (v, key, orjson.dumps(vitals)),  # applied: opens a NEWS2 alert
        (lb, key, orjson.dumps(lab)),  # applied: critical potassium
        (settings.topic_fhir, key, orjson.dumps(fhir)),  # applied (or rejected: both fine)
        (v, key, orjson.dumps(vitals)),  # duplicate event id
        (v, key, orjson.dumps({**vitals, "event_id": "phi-3", "heart_rate": 1730})),  # implausible
        (v, key, orjson.dumps({**vitals, "event_id": "phi-4", "heart_rate": "173"})),  # wrong type
        (v, key, orjson.dumps({**vitals, "event_id": "phi-5", "name": MARKER_ID})),  # extra field
        (v, b"someone-else", orjson.dumps({**vitals, "event_id": "phi-6"})),  # key mismatch
        (lb, key, orjson.dumps({**lab, "event_id": "phi-7", "unit": "mg/furlong"})),  # bad unit
        (v, key, f'{{"patient_id": "{MARKER_ID}", "heart_rate": 173, '.encode()),  # malformed
    ]


def _leaks(text: str) -> list[str]:
    found = [m for m in (MARKER_ID, MARKER_SOURCE, TOKEN) if m in text]
    return found + [f"value {m.group()!r}" for m in MARKER_VALUES.finditer(text)]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m stream.cli ARGS`` in its own session, stdout and stderr to ``log``."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "stream.cli", *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_consumed(settings: Settings, want: int, proc: subprocess.Popen[bytes]) -> None:
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (await store.counters()).get("consumed", 0) >= want:
                return
            await asyncio.sleep(0.5)
    finally:
        await store.close()
    raise AssertionError(f"the worker did not consume {want} records (exit {proc.poll()})")


async def _topic_records(settings: Settings, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, **kafka_client_options(settings), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[bytes] = []
    try:
        for _ in range(6):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()
    return found


async def _redis_dump(settings: Settings) -> list[bytes]:
    """Every key under the test's prefix and every value in it."""
    client = aioredis.Redis.from_url(settings.redis_url)
    dump: list[bytes] = []
    try:
        async for key in client.scan_iter(match=f"{settings.key_prefix}:*"):
            dump.append(key)
            kind = (await client.type(key)).decode()
            if kind == "string":
                dump.append(await client.get(key) or b"")
            elif kind == "hash":
                dump.extend(b for kv in (await client.hgetall(key)).items() for b in kv)
            elif kind == "list":
                dump.extend(await client.lrange(key, 0, -1))
            elif kind == "set":
                dump.extend(await client.smembers(key))
            elif kind == "zset":
                dump.extend(await client.zrange(key, 0, -1))
    finally:
        await client.aclose()
    return dump


async def _api_requests(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            await asyncio.sleep(0.3)
        assert (await client.get(f"/twins/{MARKER_ID}", headers=auth)).status_code == 404
        assert (await client.get(f"/twins/{MARKER_ID}")).status_code == 401
        assert (await client.get(f"/twins/{MARKER_ID}/vitals", headers=auth)).status_code == 404
        twin = await client.get(f"/twins/{PSEUDONYM}", headers=auth)
        assert twin.status_code == 200, twin.text[:500]
        assert MARKER_ID not in twin.text
        await client.post(
            f"/twins/{MARKER_ID}/what-if", headers=auth, json={"vitals": {"heart_rate": 173}}
        )
        await client.get(f"/twins?search={MARKER_ID}", headers=auth)
        await client.get(f"/no-such-route/{MARKER_ID}", headers=auth)
        # EventSource form: the token in the query string must not be logged either.
        async with client.stream("GET", f"/alerts/stream?token={TOKEN}") as sse:
            assert sse.status_code == 200


async def test_no_phi_in_worker_and_api_logs_redis_or_alerts(
    isolated_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**isolated_env, "TWIN_PSEUDONYM_KEY": PSEUDONYM_KEY, "TWIN_API_TOKEN": TOKEN}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    await ensure_topics(settings)
    records = _records(settings)
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all")
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()

    full_env = {**os.environ, **env}
    worker_log_path = tmp_path / "worker.log"
    worker = _spawn(["worker", "-l", "info"], full_env, worker_log_path)
    try:
        await _wait_consumed(settings, len(records), worker)
        await asyncio.sleep(2.0)  # let the outbox reach the alerts topic
    finally:
        await asyncio.to_thread(stop_process, worker)
    worker_log = worker_log_path.read_text(errors="replace")
    assert "[INFO]" in worker_log, worker_log[-2000:]  # INFO really was on
    assert _leaks(worker_log) == [], worker_log[-4000:]

    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    try:
        counters = await store.counters()
    finally:
        await store.close()
    dead = sum(n for name, n in counters.items() if name.startswith("dead."))
    assert dead >= 6, counters  # the rejected records really took the dead-letter path

    dead_letters = [
        orjson.loads(v) for v in await _topic_records(settings, settings.topic_deadletter)
    ]
    assert len(dead_letters) == dead
    for letter in dead_letters:
        assert _leaks(letter["error"]) == [], letter
    # By design a dead letter keeps the original bytes, identifiers and all.
    assert any(MARKER_ID.encode() in base64.b64decode(d["original_b64"]) for d in dead_letters)

    alerts = await _topic_records(settings, settings.topic_alerts)
    assert alerts, "expected alerts for the planted values"
    assert all(MARKER_ID.encode() not in raw for raw in alerts)
    assert any(PSEUDONYM.encode() in raw for raw in alerts)

    dump = await _redis_dump(settings)
    assert any(PSEUDONYM.encode() in item for item in dump)
    assert [item[:80] for item in dump if MARKER_ID.encode() in item] == []

    api_log = tmp_path / "api.log"
    port = _free_port()
    api = _spawn(["api", "--port", str(port), "--log-level", "info"], full_env, api_log)
    try:
        await _api_requests(port)
        await asyncio.sleep(0.5)
    finally:
        await asyncio.to_thread(stop_process, api)
    text = api_log.read_text(errors="replace")
    assert "GET /twins/{patient_id} 404" in text, text[-3000:]  # the template is logged
    assert "GET /alerts/stream 200" in text, text[-3000:]
    assert _leaks(text) == [], text[-4000:]
