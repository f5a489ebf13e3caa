"""A minimal synthetic vitals feed: stable patients and a few who deteriorate.

Deterministic for a seed. Values stay inside the contracts' plausibility
bounds; ``malformed_every`` injects a broken message now and then so the
dead-letter path is exercised on a live feed too.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaProducer

from stream.kafka import kafka_client_options
from stream.settings import Settings

__all__ = ["SimPatient", "simulate", "vitals_stream"]


@dataclass
class SimPatient:
    """One simulated patient with a personal baseline and an optional decline."""

    patient_id: str
    hr: float
    rr: float
    spo2: float
    sbp: float
    temp: float
    deteriorates_after_s: float | None

    def reading(self, rng: random.Random, elapsed_s: float) -> dict[str, float | str | bool]:
        decline = 0.0
        if self.deteriorates_after_s is not None and elapsed_s > self.deteriorates_after_s:
            decline = min(1.0, (elapsed_s - self.deteriorates_after_s) / 60.0)
        return {
            "heart_rate": round(self.hr + 50 * decline + rng.gauss(0, 3)),
            "respiratory_rate": round(self.rr + 12 * decline + rng.gauss(0, 1)),
            "spo2": round(min(100.0, self.spo2 - 8 * decline + rng.gauss(0, 0.7))),
            "systolic_bp": round(self.sbp - 35 * decline + rng.gauss(0, 4)),
            "diastolic_bp": round(0.62 * (self.sbp - 35 * decline) + rng.gauss(0, 3)),
            "temperature_c": round(self.temp + 1.8 * decline + rng.gauss(0, 0.1), 1),
            "consciousness": "A" if decline < 0.8 else "C",
            "on_oxygen": decline > 0.5,
        }


def _patients(n: int, rng: random.Random, deteriorating: float) -> list[SimPatient]:
    return [
        SimPatient(
            patient_id=f"sim-{i:05d}",
            hr=rng.uniform(62, 84),
            rr=rng.uniform(13, 17),
            spo2=rng.uniform(96, 99),
            sbp=rng.uniform(115, 135),
            temp=rng.uniform(36.4, 37.2),
            deteriorates_after_s=rng.uniform(5, 40) if rng.random() < deteriorating else None,
        )
        for i in range(n)
    ]


def vitals_stream(
    patients: int, *, seed: int = 7, deteriorating: float = 0.2, malformed_every: int = 0
) -> Iterator[tuple[bytes, bytes]]:
    """Endless (key, value) vitals messages, round-robin over the patients."""
    rng = random.Random(seed)
    cohort = _patients(patients, rng, deteriorating)
    start = time.time()
    seq = 0
    while True:
        for p in cohort:
            seq += 1
            if malformed_every and seq % malformed_every == 0:
                yield p.patient_id.encode(), b'{"event_id": "broken", "heart_rate": "fast"}'
                continue
            now = time.time()
            msg = {
                "event_id": f"sim:{seq:09d}",
                "patient_id": p.patient_id,
                "observed_at": datetime.fromtimestamp(now, tz=UTC).isoformat(),
                "source": "simulator",
                **p.reading(rng, now - start),
            }
            yield p.patient_id.encode(), orjson.dumps(msg)


async def simulate(
    settings: Settings,
    *,
    patients: int,
    rate: float,
    duration: float,
    seed: int = 7,
    malformed_every: int = 0,
) -> int:
    """Produce vitals at ``rate`` messages/s for ``duration`` seconds; return the count."""
    producer = AIOKafkaProducer(**kafka_client_options(settings), linger_ms=5, acks="all")
    await producer.start()
    sent = 0
    try:
        feed = vitals_stream(patients, seed=seed, malformed_every=malformed_every)
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < duration:
            due = int(elapsed * rate) + 1
            while sent < due:
                key, value = next(feed)
                await producer.send(settings.topic_vitals, value=value, key=key)
                sent += 1
            await asyncio.sleep(min(0.05, 1.0 / rate))
        await producer.flush()
    finally:
        await producer.stop()
    return sent
