"""Event-to-alert latency at a fixed offered load: a paced producer and an alert subscriber.

``produce``: ``--rate`` vitals events/s for ``--duration`` s over ``--patients``
patients. Each patient's SpO2 runs 97, 97, 88, 88, 97, 97, ... with every other
vital normal, so with ``TWIN_ALERT_HOLD_MINUTES=0`` and
``TWIN_ALERT_COOLDOWN_MINUTES=0`` every change of level opens (88: NEWS2 SpO2
subscore 3) or resolves (97) a NEWS2 alert: half of all events trigger one.
The event's ``observed_at`` is the wall time at which it was handed to the
producer (microseconds), and the alert carries the triggering event's time as
its ``observed_at``: latency = time the subscriber received the alert minus
the alert's ``observed_at``.

``subscribe``: reads the alerts topic from the start, drops repeats of
(``alert_id``, ``status``), records latencies until ``--until`` (wall time)
or until nothing arrived for 5 s after the first alert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

_LEVELS = (97, 97, 88, 88)


def _write(path: Path, doc: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.rename(path)


async def produce(args: argparse.Namespace) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=1)
    await producer.start()
    pids = [f"lat-{i:05d}" for i in range(args.patients)]
    seq = [0] * args.patients
    sent = 0
    pending = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        while (now := loop.time()) - start < args.duration:
            due = int((now - start) * args.rate) + 1
            while sent < due:
                i = sent % args.patients
                pid = pids[i]
                k = seq[i]
                seq[i] += 1
                doc = {
                    "event_id": f"{pid}:{k}",
                    "patient_id": pid,
                    "observed_at": datetime.now(UTC).isoformat(),
                    "source": "bench-latency",
                    "heart_rate": 75,
                    "respiratory_rate": 16,
                    "spo2": _LEVELS[k % 4],
                    "systolic_bp": 122,
                    "diastolic_bp": 78,
                    "temperature_c": 37.0,
                    "consciousness": "A",
                    "on_oxygen": False,
                }
                pending.append(await producer.send(args.topic, orjson.dumps(doc), key=pid.encode()))
                sent += 1
            if len(pending) > 2000:
                await asyncio.gather(*pending)
                pending.clear()
            await asyncio.sleep(max(0.0, start + (sent / args.rate) - loop.time()))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    elapsed = loop.time() - start
    # Alerts expected: every change of level after the first (k = 2, 4, 6, ... per patient).
    expected = sum(max(0, (n - 1) // 2) for n in seq)
    doc = {"sent": sent, "seconds": elapsed, "rate": sent / elapsed, "expected_alerts": expected}
    _write(args.out, doc)


async def subscribe(args: argparse.Namespace) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: set[tuple[str, str]] = set()
    latencies: list[float] = []
    received_at: list[float] = []
    # The alert record's timestamp: when the worker's producer took the alert (its
    # CreateTime, ms). It splits each latency into the way in (produce, fetch,
    # process, commit) and the way out (the alert's produce, fetch).
    created_at: list[float] = []
    repeats = 0
    last = time.monotonic()
    ready = args.out.with_suffix(".ready")
    try:
        while time.time() < args.until:
            batches = await consumer.getmany(timeout_ms=100)
            if not ready.exists() and consumer.assignment():
                ready.write_text("ready")
            received = time.time()
            for records in batches.values():
                for rec in records:
                    alert = orjson.loads(rec.value)
                    key = (alert["alert_id"], alert["status"])
                    if key in seen:
                        repeats += 1
                        continue
                    seen.add(key)
                    at = datetime.fromisoformat(alert["observed_at"]).timestamp()
                    latencies.append((received - at) * 1000.0)
                    received_at.append(received)
                    created_at.append(rec.timestamp / 1000.0)
                    last = time.monotonic()
            if latencies and time.monotonic() - last > 5.0:
                break
    finally:
        await consumer.stop()
    doc = {
        "latencies_ms": latencies,
        "received_at": received_at,
        "created_at": created_at,
        "repeats": repeats,
    }
    _write(args.out, doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--patients", type=int, default=1000)
    s = sub.add_parser("subscribe")
    s.add_argument("--group", required=True)
    s.add_argument("--until", type=float, required=True, help="wall time to stop at")
    for q in (p, s):
        q.add_argument("--bootstrap", required=True)
        q.add_argument("--topic", required=True)
        q.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(produce(args) if args.cmd == "produce" else subscribe(args))


if __name__ == "__main__":
    main()
