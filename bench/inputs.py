"""The bench's inputs, loaded into the input topics before anything is measured.

* the main mix: a replay of PhysioNet 2012 set-a (vitals, labs, profiles) plus
  simulated patients with wearables (profiles, bedside vitals, labs, batched
  wrist readings), from :mod:`stream.feeds` when present, else
  :mod:`bench.fallback_feeds`;
* 100,000 patients with one vitals message each (worker memory);
* wearables in the batched form (60 readings a message) and one reading a
  message (observations per second, batched vs single).

Sent with one aiokafka producer keyed by ``patient_id`` (murmur2, as Kafka's
default partitioner), acks awaited in chunks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

__all__ = ["main_mix", "one_vitals_each", "send", "wearables"]

log = logging.getLogger(__name__)

Message = tuple[str, bytes, bytes]  # (kind, key, value); kind: vitals|labs|wearables|profiles
_BASE = datetime(2026, 1, 1, tzinfo=UTC)


def main_mix(
    data_dir: Path, stays: int | None, patients: int, hours: float, notes: list[str]
) -> Iterator[Message]:
    """PhysioNet replay (if ``data_dir`` has set-a) then the simulator, as messages."""
    if (data_dir / "set-a").is_dir() and stays != 0:
        yield from _physionet(data_dir, stays, notes)
    else:
        notes.append(f"PhysioNet part skipped: no set-a/ under {data_dir}")
    yield from _simulated(patients, hours, notes)


def _physionet(data_dir: Path, stays: int | None, notes: list[str]) -> Iterator[Message]:
    try:
        from stream.feeds.physionet import ReplayOptions, replay_messages, stay_paths
    except ImportError:
        from bench.fallback_feeds import physionet_messages

        notes.append("PhysioNet: stream.feeds.physionet missing, bench/fallback_feeds used")
        yield from physionet_messages(data_dir, stays)
        return
    options = ReplayOptions(base=_BASE, kinds=frozenset({"vitals", "labs", "profiles"}))
    for msg in replay_messages(stay_paths(data_dir, stays), options):
        yield msg.kind, msg.key, msg.value


def _simulated(patients: int, hours: float, notes: list[str]) -> Iterator[Message]:
    try:
        from stream.feeds.simulator import SimConfig, generate
    except ImportError:
        from bench.fallback_feeds import simulated_messages

        notes.append("simulator: stream.feeds.simulator missing, bench/fallback_feeds used")
        yield from simulated_messages(patients, hours)
        return
    config = SimConfig(patients=patients, seed=7, start=_BASE, wearables=True, hours=hours)
    for msg in generate(config):
        yield msg.kind, msg.key, msg.value


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def one_vitals_each(patients: int) -> Iterator[Message]:
    """One normal vitals set for each of ``patients`` patients."""
    at = _iso(_BASE)
    for i in range(patients):
        pid = f"mem-{i:06d}"
        doc = {
            "event_id": f"{pid}:v1",
            "patient_id": pid,
            "observed_at": at,
            "source": "bench",
            "heart_rate": 60 + i % 40,
            "respiratory_rate": 16,
            "spo2": 97,
            "systolic_bp": 120,
            "diastolic_bp": 80,
            "temperature_c": 37.0,
            "consciousness": "A",
            "on_oxygen": False,
        }
        yield "vitals", pid.encode(), orjson.dumps(doc)


def wearables(messages: int, per_message: int, patients: int = 2000) -> Iterator[Message]:
    """``messages`` wearable messages, each with ``per_message`` one-second readings
    (batched form; ``per_message == 1`` sends the single-reading form)."""
    for n in range(messages):
        i = n % patients
        pid = f"wear-{i:05d}"
        start = _BASE + timedelta(seconds=(n // patients) * per_message)
        readings = [
            {
                "observed_at": _iso(start + timedelta(seconds=k)),
                "heart_rate": 60 + (n + k) % 30,
                "spo2": 95 + k % 4,
            }
            for k in range(per_message)
        ]
        doc: dict[str, Any] = {
            "event_id": f"{pid}:{n}",
            "patient_id": pid,
            "device_id": f"watch-{i}",
        }
        if per_message == 1:
            doc |= readings[0]
        else:
            doc |= {"observed_at": readings[-1]["observed_at"], "readings": readings}
        yield "wearables", pid.encode(), orjson.dumps(doc)


async def _send(
    bootstrap: str, topics: dict[str, str], messages: Iterable[Message]
) -> Counter[str]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    counts: Counter[str] = Counter()
    pending: list[Any] = []
    try:
        for kind, key, value in messages:
            topic = topics.get(kind)
            if topic is None:
                continue
            pending.append(await producer.send(topic, value, key=key))
            counts[kind] += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return counts


def send(bootstrap: str, topics: dict[str, str], messages: Iterable[Message]) -> Counter[str]:
    """Send ``messages`` (kind -> topic by ``topics``); return messages sent per kind."""
    started = time.monotonic()
    counts = asyncio.run(_send(bootstrap, topics, messages))
    log.info("loaded %d messages in %.1fs", sum(counts.values()), time.monotonic() - started)
    return counts
