"""``twinstream demo``: the whole pipeline on one machine in one command.

Starts the local Kafka and Redis (unless already running), creates the
topics, starts a worker process, feeds it synthetic vitals and prints the
alerts it emits, live, until Ctrl-C or ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console

from stream.feeds.producer import produce
from stream.feeds.simulator import SimConfig, generate, inject_faults
from stream.kafka import ensure_topics, kafka_client_options
from stream.settings import get_settings

__all__ = ["run_demo"]

_STYLE = {"open": "bold red", "escalated": "bold magenta", "resolved": "green", "reminder": "dim"}


def _describe(alert: dict[str, Any]) -> str:
    """One line on what an alert is about (the demo's patients are synthetic)."""
    d = alert.get("details", {})
    rule = str(alert["rule"])
    if alert["status"] == "reminder":
        return f"{rule} still open after {d.get('open_minutes')} min, unacknowledged"
    if alert["status"] == "resolved":
        return f"{rule} all clear"
    if rule == "news2":
        red = ", ".join(d.get("parameters_scoring_3", [])) or "none"
        return f"NEWS2 {d.get('news2_total')} ({d.get('band')}); scoring 3: {red}"
    if rule == "qsofa":
        met = [k for k, v in d.get("criteria", {}).items() if v]
        return f"qSOFA {d.get('qsofa')} ({', '.join(met)})"
    if rule.startswith("lab."):
        value = d.get("value", d.get("lactate", d.get("creatinine_mg_dl")))
        return f"{rule} {d.get('analyte', '')} {value} {d.get('unit', '')}".strip()
    return str(rule)


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
    reminded: dict[str, float] = {}
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
                    if doc["status"] == "reminder":
                        # Reminders repeat at the chart's monitoring frequency, which at
                        # demo speed is every few seconds: show each alert's at most every 30 s.
                        now = time.monotonic()
                        if now - reminded.get(doc["alert_id"], -1e9) < 30:
                            continue
                        reminded[doc["alert_id"]] = now
                    style = _STYLE.get(doc.get("status", ""), "dim")
                    console.print(
                        f"[{style}]{doc['status']:>9}[/] {doc['severity']:<6} "
                        f"{doc['patient_id']}  {_describe(doc)}"
                    )
    finally:
        await consumer.stop()


async def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; return a process exit code."""
    from stream.cli import spawn_worker, stop_process
    from stream.services import status, up

    console = Console()
    settings = get_settings()
    # The broker is brand new: its first seconds of leader elections make
    # aiokafka log transient retries that would drown the alerts.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
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
    # A demo cohort with more deteriorating patients than a real ward, sped up
    # (10 simulated minutes per second) and starting half a day ago, so that
    # deteriorations show within a minute or two of wall time.
    # A fresh cohort each run (new seed, new ids): twins and Kafka data of
    # earlier runs stay, and re-sent event ids would be dropped as duplicates.
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    config = SimConfig(
        patients=args.patients,
        seed=seed,
        prefix=f"demo{seed}",
        start=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12),
        scenarios={"sepsis": 0.15, "respiratory": 0.1, "haemorrhage": 0.05},
    )
    feed = asyncio.create_task(
        produce(
            settings,
            inject_faults(generate(config), 500),
            speed=args.speed,
            rate=args.rate,
            duration=duration,
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
