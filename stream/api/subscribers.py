"""``twinstream alerts``: subscribers of the alerts topic.

* ``tail [--severity S ...] [--lines N] [--follow]``: a readable, coloured feed
  of the last alerts (per partition), then live ones with ``--follow``.
* ``forward --url URL [--group G] [--header 'Name: value' ...]``: POST each alert
  to a webhook, never losing one (see :mod:`stream.api.forwarder`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.text import Text

from stream.kafka import kafka_client_options
from stream.settings import Settings

__all__ = ["format_alert", "main_alerts", "tail"]

SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "green",
}


def format_alert(alert: dict[str, Any]) -> Text:
    """One alert as one line: time, severity, status, patient, rule, the gist.

    >>> a = {"observed_at": "2026-11-23T10:15:00+00:00", "severity": "high", "status": "open",
    ...      "patient_id": "p-1", "rule": "news2", "details": {"news2_total": 7, "band": "high"}}
    >>> format_alert(a).plain
    '2026-11-23 10:15:00  HIGH      open       p-1           news2                 NEWS2 7 (high)'
    """
    d = alert.get("details") or {}
    gist = []
    if "news2_total" in d:
        gist.append(f"NEWS2 {d['news2_total']} ({d.get('band')})")
    if "qsofa" in d:
        gist.append(f"qSOFA {d['qsofa']}")
    if "analyte" in d:
        gist.append(f"{d['analyte']} {d.get('value')} {d.get('unit', '')}".strip())
    if d.get("all_clear"):
        gist.append(f"all clear (was {d.get('was')})")
    if "open_minutes" in d:
        gist.append(f"open {d['open_minutes']} min")
    if "minutes_without_vitals" in d:
        gist.append(f"no vitals for {d['minutes_without_vitals']} min")
    severity = str(alert.get("severity", "?"))
    line = Text(str(alert.get("observed_at", ""))[:19].replace("T", " ") + "  ")
    line.append(f"{severity.upper():<8}", style=SEVERITY_STYLE.get(severity, ""))
    line.append(f"  {alert.get('status', ''):<9}  {alert.get('patient_id', ''):<12}  ")
    line.append(f"{alert.get('rule', ''):<20}  {'; '.join(gist)}".rstrip())
    return line


async def tail(
    settings: Settings,
    stop: asyncio.Event,
    *,
    lines: int = 20,
    follow: bool = False,
    severities: frozenset[str] = frozenset(),
    console: Console | None = None,
) -> int:
    """Print the last ``lines`` alerts of each partition, then new ones if ``follow``."""
    console = console or Console(highlight=False, soft_wrap=True)
    consumer = AIOKafkaConsumer(
        settings.topic_alerts, **kafka_client_options(settings), group_id=None
    )
    await consumer.start()
    shown = 0
    try:
        # Without a group, subscribing assigns every partition once metadata arrives.
        for _ in range(100):
            tps = sorted(consumer.assignment())
            if tps:
                break
            await asyncio.sleep(0.1)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(starts[tp], ends[tp] - lines))
        while not stop.is_set():
            if not follow and await _caught_up(consumer, ends):
                break
            batches = await consumer.getmany(timeout_ms=500)
            records = sorted((r for rs in batches.values() for r in rs), key=lambda r: r.timestamp)
            for rec in records:
                try:
                    alert = orjson.loads(rec.value or b"")
                except orjson.JSONDecodeError:
                    continue
                if severities and alert.get("severity") not in severities:
                    continue
                console.print(format_alert(alert))
                shown += 1
    finally:
        await consumer.stop()
    return shown


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinstream alerts", description=__doc__)
    sub = p.add_subparsers(dest="action", required=True)
    severities = ["info", "low", "medium", "high", "critical"]
    t = sub.add_parser("tail", help="print recent alerts; --follow for live ones")
    t.add_argument("--severity", action="append", choices=severities, help="repeatable")
    t.add_argument("--lines", "-n", type=int, default=20, help="recent alerts per partition")
    t.add_argument("--follow", "-f", action="store_true")
    f = sub.add_parser("forward", help="POST every alert to a webhook (at-least-once)")
    f.add_argument("--url", required=True)
    f.add_argument("--group", default="twinstream-forwarder", help="Kafka consumer group")
    f.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    f.add_argument("--severity", action="append", choices=severities, help="repeatable")
    f.add_argument("--from-latest", action="store_true", help="a new group skips old alerts")
    return p


def main_alerts(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``twinstream alerts``; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    severities = frozenset(args.severity or ())

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        if args.action == "tail":
            await tail(settings, stop, lines=args.lines, follow=args.follow, severities=severities)
            return 0
        from stream.api.forwarder import WebhookForwarder

        headers = dict(h.split(":", 1) for h in args.header)
        forwarder = WebhookForwarder(
            settings,
            args.url,
            group=args.group,
            headers={k.strip(): v.strip() for k, v in headers.items()},
            severities=severities,
            from_latest=args.from_latest,
        )
        await forwarder.run(stop)
        logging.getLogger(__name__).info(
            "forwarded %d alerts (%d repeats dropped)",
            forwarder.delivered,
            forwarder.skipped_duplicates,
        )
        return 0

    return asyncio.run(run())
