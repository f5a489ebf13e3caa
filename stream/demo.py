"""``twinstream demo``: the whole pipeline on one machine in one command.

Starts the local Kafka and Redis (unless already running), creates the
topics, starts a worker process, feeds it synthetic vitals and prints the
alerts it emits, live, until Ctrl-C or ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console

from stream.kafka import ensure_topics, kafka_client_options
from stream.settings import get_settings
from stream.simulate import simulate

__all__ = ["run_demo"]

_STYLE = {"open": "bold red", "escalated": "bold magenta", "resolved": "green"}


async def _print_alerts(console: Console, stop: asyncio.Event, counts: dict[str, int]) -> None:
    settings = get_settings()
    consumer = AIOKafkaConsumer(
        settings.topic_alerts,
        settings.topic_deadletter,
        **kafka_client_options(settings),
        group_id=None,
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for rec in records:
                    doc = orjson.loads(rec.value or b"{}")
                    if tp.topic == settings.topic_deadletter:
                        counts["dead_letters"] += 1
                        console.print(f"[yellow]dead letter[/] reason={doc.get('reason')}")
                        continue
                    counts["alerts"] += 1
                    style = _STYLE.get(doc.get("status", ""), "white")
                    details = doc.get("details", {})
                    console.print(
                        f"[{style}]{doc['status']:>9}[/] {doc['severity']:<6} "
                        f"{doc['patient_id']}  {doc['rule']}  "
                        f"NEWS2={details.get('news2_total')} "
                        f"red={','.join(details.get('parameters_scoring_3', []))}"
                    )
    finally:
        await consumer.stop()


async def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; return a process exit code."""
    from stream.cli import spawn_worker, stop_process
    from stream.services import status, up

    console = Console()
    settings = get_settings()
    was_running = {s.name for s in status() if s.running}
    console.print("[bold]twinstream demo[/]: starting Kafka and Redis (first run downloads jars)")
    await asyncio.to_thread(up)
    await ensure_topics(settings)
    log_path = Path.home() / ".local/state/twinstream/demo-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    worker = spawn_worker(log_path=str(log_path))
    console.print(f"worker started (pid {worker.pid}, log {log_path})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    counts = {"alerts": 0, "dead_letters": 0}
    printer = asyncio.create_task(_print_alerts(console, stop, counts))
    duration = args.duration if args.duration > 0 else 10**9
    console.print(f"feeding {args.patients} patients at {args.rate:g} msg/s; Ctrl-C to stop")
    started = time.monotonic()
    feed = asyncio.create_task(
        simulate(
            settings,
            patients=args.patients,
            rate=args.rate,
            duration=duration,
            malformed_every=500,
        )
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=duration)
    stop.set()
    feed.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await feed
    await asyncio.sleep(1.0)
    printer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await printer
    await asyncio.to_thread(stop_process, worker)
    elapsed = time.monotonic() - started
    console.print(
        f"[bold]done[/] after {elapsed:.0f}s: {counts['alerts']} alerts, "
        f"{counts['dead_letters']} dead letters"
    )
    if not args.keep_services:
        from stream.services import down

        started_here = {"kafka", "redis"} - was_running
        if started_here:
            await asyncio.to_thread(down, tuple(sorted(started_here)))
    return 0 if worker.returncode is not None else 1
