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
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


_EVENT = (
    '{"event_id":"%s:%d","patient_id":"%s","observed_at":"%s","source":"bench-latency",'
    '"heart_rate":75,"respiratory_rate":16,"spo2":%d,"systolic_bp":122,"diastolic_bp":78,'
    '"temperature_c":37.0,"consciousness":"A","on_oxygen":false}'
)


def event_json(patient_id: str, k: int, spo2: int, observed_at: str) -> bytes:
    """The feed's vitals event: every vital normal but ``spo2``.

    >>> orjson.loads(event_json("lat-00001", 3, 88, "2026-01-01T00:00:00+00:00"))["spo2"]
    88
    """
    return (_EVENT % (patient_id, k, patient_id, observed_at, spo2)).encode()


def produce(args: argparse.Namespace) -> None:
    # librdkafka's client (confluent-kafka): it batches and sends on a C thread.
    # The load generator shares this 2-core machine with the worker, Kafka and
    # Redis; with aiokafka it used 26-28 % of a core at 2,000 events/s (sampled
    # from /proc in a quick run), CPU the worker under test then competed for.
    from confluent_kafka import KafkaException, Producer

    failed: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "acks": "all",
            "linger.ms": 1,
            # The Java client's partitioner (murmur2), as aiokafka's and the feeds':
            # each patient's events land on the partition the rest of twinstream uses.
            "partitioner": "murmur2_random",
            "on_delivery": delivered,
            "delivery.report.only.error": True,
        }
    )
    pids = [f"lat-{i:05d}" for i in range(args.patients)]
    keys = [pid.encode() for pid in pids]
    staggered = args.alerts == "staggered"
    seq = [0] * args.patients
    sent = 0
    start = time.monotonic()
    while (now := time.monotonic()) - start < args.duration:
        due = int((now - start) * args.rate) + 1
        while sent < due:
            i = sent % args.patients
            pid = pids[i]
            k = seq[i]
            seq[i] += 1
            now_iso = datetime.now(UTC).isoformat()
            producer.produce(
                args.topic, event_json(pid, k, spo2_level(i, k, staggered), now_iso), keys[i]
            )
            sent += 1
        producer.poll(0)  # delivery reports (of failures only)
        # Wakes at most every millisecond (the producer's linger): at 2,000/s two
        # events go out per wake-up, each stamped when it is handed to the producer.
        time.sleep(max(0.001, start + sent / args.rate - time.monotonic()))
    elapsed = time.monotonic() - start
    if producer.flush(60) or failed:
        raise KafkaException(f"{len(failed)} events not delivered ({failed[:3]})")
    expected = sum(level_changes(i, n, staggered) for i, n in enumerate(seq))
    doc = {
        "sent": sent,
        "seconds": elapsed,
        "rate": sent / elapsed,
        "expected_alerts": expected,
        "alerts": args.alerts,
        "cpu_s": time.process_time(),  # all threads, librdkafka's included
    }
    _write(args.out, doc)


def subscribe(args: argparse.Namespace) -> None:
    from confluent_kafka import Consumer

    ready = args.out.with_suffix(".ready")

    def assigned(_consumer: Any, partitions: list[Any]) -> None:
        if partitions:
            ready.write_text("ready")

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic], on_assign=assigned)
    seen: set[tuple[str, str]] = set()
    latencies: list[float] = []
    received_at: list[float] = []
    # The alert record's timestamp: when the worker's producer took the alert (its
    # CreateTime, ms). It splits each latency into the way in (produce, fetch,
    # process, commit) and the way out (the alert's produce, fetch).
    created_at: list[float] = []
    repeats = 0
    last = time.monotonic()
    try:
        while time.time() < args.until:
            # consume() waits until it has num_messages or the timeout passed: wait for
            # one record, then take what else is there without waiting.
            first = consumer.poll(0.1)
            if first is None:
                records = []
            else:
                records = [first, *consumer.consume(num_messages=10_000, timeout=0)]
            received = time.time()
            for rec in records:
                if rec.error() is not None:
                    continue  # informational (e.g. a partition's end); nothing to count
                alert = orjson.loads(rec.value())
                key = (alert["alert_id"], alert["status"])
                if key in seen:
                    repeats += 1
                    continue
                seen.add(key)
                at = datetime.fromisoformat(alert["observed_at"]).timestamp()
                latencies.append((received - at) * 1000.0)
                received_at.append(received)
                created_at.append(rec.timestamp()[1] / 1000.0)
                last = time.monotonic()
            if latencies and time.monotonic() - last > 5.0:
                break
    finally:
        consumer.close()
    doc = {
        "latencies_ms": latencies,
        "received_at": received_at,
        "created_at": created_at,
        "repeats": repeats,
        "cpu_s": time.process_time(),
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
    (produce if args.cmd == "produce" else subscribe)(args)


if __name__ == "__main__":
    main()
