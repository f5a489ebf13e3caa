"""Issue #3 acceptance: 10,000 mixed messages, ~5 % bad, on the real Kafka and Redis.

Afterwards the stored counters balance exactly (consumed = applied +
dead-lettered + duplicates), every dead letter is on the dead-letter topic
with its reason and source offset, and every twin has applied exactly the
valid, non-duplicate events sent for it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.cli import spawn_worker, stop_process
from stream.kafka import ensure_topics, kafka_client_options
from stream.settings import Settings
from stream.store import RedisTwinStore
from twin.codec import decode_twin

pytestmark = pytest.mark.integration

TOTAL = 10_000
PATIENTS = 200
T0 = time.time() - 24 * 3600


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def build_feed(settings: Settings, seed: int = 11):
    """(topic, key, value) messages plus what the worker must make of them."""
    rng = random.Random(seed)
    msgs: list[tuple[str, bytes, bytes]] = []
    expect = Counter()
    applied_per_patient: Counter[str] = Counter()
    for p in range(PATIENTS):
        pid = f"mx-{p:04d}"
        profile = {"patient_id": pid, "age": 40 + p % 50, "sex": "female", "ward": f"W{p % 5}",
                   "spo2_scale": 2 if p % 17 == 0 else 1}  # fmt: skip
        msgs.append((settings.topic_profiles, pid.encode(), orjson.dumps(profile)))
        expect["applied"] += 1
    seq = 0
    while len(msgs) < TOTAL:
        seq += 1
        p = rng.randrange(PATIENTS)
        pid = f"mx-{p:04d}"
        at = T0 + seq * 5
        kind = rng.random()
        bad = rng.random()
        if bad < 0.017:
            msgs.append((settings.topic_vitals, pid.encode(), b'{"event_id": "x", "patient_id": '))
            expect["dead.malformed_json"] += 1
            continue
        if bad < 0.034:
            body = {"event_id": f"bad-{seq}", "patient_id": pid, "observed_at": _iso(at),
                    "heart_rate": 450}  # fmt: skip
            msgs.append((settings.topic_vitals, pid.encode(), orjson.dumps(body)))
            expect["dead.implausible"] += 1
            continue
        if kind < 0.5:
            topic = settings.topic_vitals
            body = {"event_id": f"v-{seq}", "patient_id": pid, "observed_at": _iso(at),
                    "heart_rate": rng.randint(55, 120), "spo2": rng.randint(90, 100),
                    "respiratory_rate": rng.randint(10, 26), "systolic_bp": rng.randint(90, 160),
                    "temperature_c": round(rng.uniform(36, 39), 1), "consciousness": "A",
                    "on_oxygen": False}  # fmt: skip
        elif kind < 0.7:
            topic = settings.topic_labs
            analyte, unit, lo, hi = rng.choice(
                [("potassium", "mmol/L", 3.0, 6.0), ("glucose", "mg/dL", 70, 250),
                 ("creatinine", "umol/L", 50, 200), ("lactate", "mmol/L", 0.5, 5.0)]
            )  # fmt: skip
            body = {"event_id": f"l-{seq}", "patient_id": pid, "observed_at": _iso(at),
                    "analyte": analyte, "value": round(rng.uniform(lo, hi), 2), "unit": unit}  # fmt: skip
        elif kind < 0.85:
            topic = settings.topic_wearables
            body = {"event_id": f"w-{seq}", "patient_id": pid, "observed_at": _iso(at),
                    "device_id": f"watch-{p}",
                    "readings": [{"observed_at": _iso(at + i * 60), "heart_rate": rng.randint(60, 90),
                                  "steps": rng.randint(0, 40)} for i in range(5)]}  # fmt: skip
        else:
            topic = settings.topic_fhir
            body = {"resourceType": "Observation", "id": f"fh-{seq}", "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": _iso(at),
                    "valueQuantity": {"value": rng.randint(55, 120), "unit": "/min",
                                      "code": "/min"}}  # fmt: skip
        raw = orjson.dumps(body)
        msgs.append((topic, pid.encode(), raw))
        expect["applied"] += 1
        applied_per_patient[pid] += 1
        if bad < 0.05 and len(msgs) < TOTAL:
            msgs.append((topic, pid.encode(), raw))  # a producer retry: same event id
            expect["duplicates"] += 1
    assert len(msgs) == TOTAL
    return msgs, expect, applied_per_patient


async def test_ten_thousand_mixed_messages_are_all_accounted_for(
    isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    for k, v in isolated_env.items():
        monkeypatch.setenv(k, v)
    settings = Settings()
    await ensure_topics(settings)
    msgs, expect, per_patient = build_feed(settings)
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all", linger_ms=5)
    await producer.start()
    try:
        for topic, key, value in msgs:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()

    worker = spawn_worker(env=isolated_env, log_path=str(tmp_path / "worker.log"))
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    try:
        deadline = time.monotonic() + 180
        counters: dict[str, int] = {}
        while time.monotonic() < deadline and worker.poll() is None:
            counters = await store.counters()
            if counters.get("consumed", 0) >= TOTAL:
                break
            await asyncio.sleep(0.5)
        log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
        assert counters.get("consumed") == TOTAL, (counters, log)
        counters.pop("alerts", None)
        assert counters == {"consumed": TOTAL, **expect}, log
        dead_total = sum(v for k, v in expect.items() if k.startswith("dead."))
        assert expect["applied"] + expect["duplicates"] + dead_total == TOTAL

        for pid, n in per_patient.items():
            twin = decode_twin(await store.get_twin(pid) or b"")
            assert twin.events_applied == n, pid
            assert twin.profile is not None
    finally:
        await store.close()
        await asyncio.to_thread(stop_process, worker)

    consumer = AIOKafkaConsumer(
        settings.topic_deadletter, **kafka_client_options(settings),
        group_id=None, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    letters: list[dict] = []
    try:
        end = time.monotonic() + 30
        while len(letters) < dead_total and time.monotonic() < end:
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                letters.extend(orjson.loads(r.value) for r in recs)
    finally:
        await consumer.stop()
    assert len(letters) == dead_total
    reasons = Counter(f"dead.{d['reason']}" for d in letters)
    assert reasons == {k: v for k, v in expect.items() if k.startswith("dead.")}
    assert len({(d["source_topic"], d["partition"], d["offset"]) for d in letters}) == dead_total
    assert all(d["original_b64"] and d["source_topic"] == settings.topic_vitals for d in letters)
    assert not any("450" in d["error"] for d in letters)
