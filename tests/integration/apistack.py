"""Helpers for the API's integration tests: a real API process, a ward's worth of
deteriorating vitals, and reading the acks topic."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.kafka import kafka_client_options
from stream.settings import Settings

__all__ = ["TOKEN", "free_port", "produce_ward", "read_topic", "spawn_api", "wait_ready"]

TOKEN = "integration-token-7f3a"
NORMAL: dict[str, object] = {
    "heart_rate": 78,
    "respiratory_rate": 16,
    "spo2": 97,
    "systolic_bp": 124,
    "diastolic_bp": 80,
    "temperature_c": 37.0,
    "consciousness": "A",
    "on_oxygen": False,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_api(env: dict[str, str], port: int, log_path: str) -> subprocess.Popen[bytes]:
    """``twinstream api`` as a child process (main_api), with the test's token."""
    code = "import sys; from stream.api.server import main_api; sys.exit(main_api(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port), "--log-level", "info"],
        env={**os.environ, **env, "TWIN_API_TOKEN": TOKEN},
        stdout=open(log_path, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Until ``/readyz`` says Redis, Kafka and the alert feed are ready."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"API exited with {proc.returncode}")
            try:
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise TimeoutError("API not ready")


# From the 4th reading on: NEWS2 10 (high), 5 (medium), 3 in one parameter (low-medium).
CHANGES: dict[str, dict[str, object]] = {
    "high": {"spo2": 88, "respiratory_rate": 25, "systolic_bp": 95, "heart_rate": 112},
    "medium": {"respiratory_rate": 22, "heart_rate": 112, "temperature_c": 38.5},
    "red": {"spo2": 91},
}


def reading(pid: str, k: int, t0: float, level: str | None) -> dict[str, object]:
    values = dict(NORMAL)
    if level and k >= 3:
        values.update(CHANGES[level])
    at = datetime.fromtimestamp(t0 + k * 600, tz=UTC).isoformat()
    return {"event_id": f"{pid}:{k}", "patient_id": pid, "observed_at": at, **values}


async def produce_ward(
    settings: Settings,
    patients: int = 12,
    worse: tuple[int, ...] = (1,),
    readings: int = 6,
    medium: tuple[int, ...] = (),
    red: tuple[int, ...] = (),
) -> list[str]:
    """Profiles and vitals for ``p-0000``...; patients in ``worse`` deteriorate to NEWS2 10,
    in ``medium`` to 5, in ``red`` to a single parameter scoring 3."""
    levels = {**dict.fromkeys(red, "red"), **dict.fromkeys(medium, "medium")}
    levels.update(dict.fromkeys(worse, "high"))
    t0 = time.time() - readings * 600
    ids = [f"p-{i:04d}" for i in range(patients)]
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all")
    await producer.start()
    try:
        for i, pid in enumerate(ids):
            profile = {"patient_id": pid, "age": 60 + i, "ward": f"AMU-{1 + i % 2}",
                       "region": "north"}  # fmt: skip
            await producer.send(settings.topic_profiles, orjson.dumps(profile), key=pid.encode())
        await producer.flush()
        for k in range(readings):
            for i, pid in enumerate(ids):
                msg = reading(pid, k, t0, levels.get(i))
                await producer.send(settings.topic_vitals, orjson.dumps(msg), key=pid.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return ids


async def read_topic(
    settings: Settings, topic: str, want: int, timeout_s: float = 30
) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of the first ``want`` records of ``topic`` (or all found in time)."""
    consumer = AIOKafkaConsumer(
        topic, **kafka_client_options(settings), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend((r.key, r.value or b"") for r in records)
    finally:
        await consumer.stop()
    return out
