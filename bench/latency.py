"""Event-to-alert latency at a fixed offered load: a paced producer and an alert subscriber.

``produce``: ``--rate`` vitals events/s for ``--duration`` s over ``--patients``
patients. Each patient's SpO2 runs 97, 97, 88, 88, 97, 97, ... with every other
vital normal, so with ``TWIN_ALERT_HOLD_MINUTES=0`` and
``TWIN_ALERT_COOLDOWN_MINUTES=0`` every change of level opens (88: NEWS2 SpO2
subscore 3) or resolves (97) a NEWS2 alert: half of all events trigger one.
Patient ``i`` sends its events at ``(k * patients + i) / rate`` s. With
``--alerts staggered`` (the default) odd-numbered patients run the pattern one
event later than even-numbered ones, so the alerting events are spread evenly
over time: a steady offered load. With ``--alerts synchronized`` every patient
changes level on the same round, and at 2,000/s over 1,000 patients every
alert is triggered in the first half of each second (none in the second
half): alerting work arrives in half-second bursts at twice its mean rate.
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


def spo2_level(patient: int, k: int, staggered: bool) -> int:
    """SpO2 of ``patient``'s ``k``-th event (see the module docstring).

    >>> [spo2_level(0, k, True) for k in range(6)], [spo2_level(1, k, True) for k in range(6)]
    ([97, 97, 88, 88, 97, 97], [97, 88, 88, 97, 97, 88])
    >>> [spo2_level(1, k, False) for k in range(6)]
    [97, 97, 88, 88, 97, 97]
    """
    return _LEVELS[(k + (patient % 2 if staggered else 0)) % 4]


def level_changes(patient: int, events: int, staggered: bool) -> int:
    """Alerts ``patient``'s first ``events`` events trigger: its changes of level.

    >>> all(
    ...     level_changes(i, n, s)
    ...     == sum(spo2_level(i, k, s) != spo2_level(i, k - 1, s) for k in range(1, n))
    ...     for i in range(4) for n in range(12) for s in (True, False)
    ... )
    True
    """
    shift = patient % 2 if staggered else 0
    return max(0, (events - 1 + shift) // 2)


def _write(path: Path, doc: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.rename(path)


async def produce(args: argparse.Namespace) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=1)
    await producer.start()
    pids = [f"lat-{i:05d}" for i in range(args.patients)]
    staggered = args.alerts == "staggered"
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
                    "spo2": spo2_level(i, k, staggered),
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
    expected = sum(level_changes(i, n, staggered) for i, n in enumerate(seq))
    doc = {
        "sent": sent,
        "seconds": elapsed,
        "rate": sent / elapsed,
        "expected_alerts": expected,
        "alerts": args.alerts,
    }
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
    p.add_argument(
        "--alerts",
        choices=("staggered", "synchronized"),
        default="staggered",
        help="when patients change level: spread over time, or all on the same round",
    )
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
