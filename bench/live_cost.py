"""What one event of the latency feed costs in the twin updater, without Kafka or Redis.

Run from the repository root::

    .venv/bin/python -m bench.live_cost [--rounds 40] [--batch 16 64 256]

The latency phases (``bench.latency``) feed 1,000 patients, each with a full
vitals set every half second at 2,000 events/s, half of the events opening or
resolving a NEWS2 alert. This replays the same events (built with
``bench.latency.event_json``) through :class:`stream.updater.TwinUpdater` with
the in-memory store (``stream.store.MemoryTwinStore``) and a sink that only
counts: decoding, applying, learning, alerts, twin encoding and the commit
bookkeeping, in batches of ``--batch`` events spread over 8 partitions, as a
live worker gets them. The first quarter of the rounds warms the twins up and
is not timed. Printed per event, in CPU time of the process, for each batch
size, best of ``--repeats``; and, with ``--split``, the share of the time
spent encoding twins (``twin.codec.encode_twin``, timed around each call).
Writes ``bench/results/live_cost.json``.

``--encode-every K`` encodes a twin at only every K-th change and commits its
last encoding in between: an upper bound of what write-behind commits (a
twin written to the store at most every K of its events) could save here. It
leaves out what write-behind would add (tracking dirty twins and the offsets
they are stored at, replaying the unflushed span after a failure). In this
feed a patient's twin changes twice a second, so K = 4 is a flush every 2 s.

A worker's main thread spends more than this per event (Kafka, Redis, the
event loop): compare with ``latency_run.worker_cpu_us_per_event`` of
``bench.run``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stream.updater as updater_module
from bench.latency import event_json, spo2_level
from stream import gcpolicy
from stream.ports import Envelope
from stream.settings import Settings
from stream.store import MemoryTwinStore
from stream.updater import TwinUpdater
from twin.codec import encode_twin as plain

PATIENTS = 1000
PARTITIONS = 8
RATE = 2000.0
OUT = Path(__file__).resolve().parent / "results" / "live_cost.json"


class _CountingSink:
    def __init__(self) -> None:
        self.sent = 0

    async def send(self, topic: str, items: Any) -> None:
        self.sent += len(items)


def batches(rounds: int, size: int, start: float) -> Iterator[list[Envelope]]:
    """The latency feed's events, ``rounds`` per patient, in batches of ``size``."""
    pids = [f"lat-{i:05d}" for i in range(PATIENTS)]
    offsets = [0] * PARTITIONS
    batch: list[Envelope] = []
    n = 0
    for k in range(rounds):
        for i, pid in enumerate(pids):
            at = datetime.fromtimestamp(start + n / RATE, UTC).isoformat()
            n += 1
            p = i % PARTITIONS
            value = event_json(pid, k, spo2_level(i, k, True), at)
            batch.append(Envelope("twin.vitals", p, offsets[p], pid.encode(), value))
            offsets[p] += 1
            if len(batch) == size:
                yield batch
                batch = []


def _every(k: int, encode: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """``encode``, run for a twin's first and then every ``k``-th change only; the
    changes in between return its last encoding (see ``--encode-every``)."""
    changes: dict[str, int] = {}
    last: dict[str, bytes] = {}

    def sometimes(state: Any) -> bytes:
        pid = state.patient_id
        n = changes[pid] = changes.get(pid, -1) + 1
        if n % k == 0:
            last[pid] = encode(state)
        return last[pid]

    return sometimes


async def _run(rounds: int, size: int, split: bool, every: int = 1) -> dict[str, float]:
    settings = Settings(alert_hold_minutes=0, alert_cooldown_minutes=0, partitions=PARTITIONS)
    sink = _CountingSink()
    updater = TwinUpdater(settings, MemoryTwinStore(PARTITIONS), sink)
    todo = list(batches(rounds, size, time.time() - 3600))
    warm = len(todo) // 4
    for batch in todo[:warm]:
        with gcpolicy.paused():
            await updater.process(batch)
    encoding = [0.0]

    def timed(state: Any) -> bytes:
        began = time.process_time()
        try:
            return plain(state)
        finally:
            encoding[0] += time.process_time() - began

    encode = timed if split else plain
    updater_module.__dict__["encode_twin"] = encode if every == 1 else _every(every, encode)
    began = time.process_time()
    try:
        for batch in todo[warm:]:
            with gcpolicy.paused():
                await updater.process(batch)
    finally:
        updater_module.__dict__["encode_twin"] = plain
    spent = time.process_time() - began
    events = sum(len(b) for b in todo[warm:])
    return {
        "us_per_event": 1e6 * spent / events,
        "encode_share": encoding[0] / spent if split else float("nan"),
        "events": events,
        "alerts": sink.sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="events per patient")
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--split", action="store_true", help="time twin encoding apart")
    parser.add_argument(
        "--encode-every",
        type=int,
        default=1,
        metavar="K",
        help="encode a twin at every K-th change only (write-behind's most)",
    )
    args = parser.parse_args()
    if args.encode_every < 1:
        parser.error("--encode-every must be 1 or more")
    results: dict[str, Any] = {
        "rounds": args.rounds,
        "patients": PATIENTS,
        "encode_every": args.encode_every,
        "by_batch": {},
    }
    for size in args.batch:
        runs = [
            asyncio.run(_run(args.rounds, size, args.split, args.encode_every))
            for _ in range(args.repeats)
        ]
        best = min(runs, key=lambda r: r["us_per_event"])
        results["by_batch"][str(size)] = best
        share = "" if not args.split else f", encoding twins {100 * best['encode_share']:.0f} %"
        print(
            f"batch {size:4d} events ({size / PARTITIONS:.0f} per partition): "
            f"{best['us_per_event']:.1f} us/event (best of {args.repeats}){share}; "
            f"{best['alerts']} alerts for {best['events']} events",
            flush=True,
        )
    OUT.parent.mkdir(exist_ok=True)
    every = args.encode_every
    out = OUT if every == 1 else OUT.with_name(f"live_cost_every{every}.json")
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
