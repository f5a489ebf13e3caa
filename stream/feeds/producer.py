"""Send feed messages to Kafka, paced in event time, with a progress display.

Every feed (simulator, PhysioNet replay, WFDB numerics, profile CSV) is a pure
generator of :class:`FeedMessage`; this module is the only place that talks to
the broker. Pacing: with ``speed`` S, a message whose release time is ``t``
seconds after the first message's is sent ``t / S`` wall seconds after it
(``speed=None``: as fast as possible); ``rate`` R additionally caps sending at
R messages per wall second. Messages are keyed by ``patient_id`` so that all of
a patient's events land on one partition, in order.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, get_args

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from stream.kafka import ensure_topics, kafka_client_options
from stream.settings import Settings

__all__ = [
    "FeedKind",
    "FeedMessage",
    "FeedProgress",
    "FeedRun",
    "Pacer",
    "produce",
    "run_feed",
    "topic_for",
]

FeedKind = Literal["vitals", "labs", "wearables", "profiles", "outcomes"]

_FLUSH_EVERY = 20_000  # messages between forced sends and delivery checks


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """One message of a feed, ready to send.

    ``at`` is the release time in event time (epoch seconds): when the source
    would have sent it. It is usually the message's ``observed_at``, but later
    for results that take time to arrive (a lab result is released after its
    turnaround, its ``observed_at`` being the specimen collection time).
    ``fault`` names a deliberately broken message (simulator only), else None.
    """

    kind: FeedKind
    key: bytes
    value: bytes
    at: float
    fault: str | None = None


def topic_for(settings: Settings, kind: FeedKind) -> str:
    """The topic a message of ``kind`` goes to.

    >>> topic_for(Settings(topic_labs="twin.labs"), "labs")
    'twin.labs'
    """
    topics: Mapping[FeedKind, str] = {
        "vitals": settings.topic_vitals,
        "labs": settings.topic_labs,
        "wearables": settings.topic_wearables,
        "profiles": settings.topic_profiles,
        "outcomes": settings.topic_outcomes,
    }
    return topics[kind]


class Pacer:
    """When to send each message: event-time speed-up and a messages-per-second cap.

    Pure: callers pass the wall clock. The first message defines both origins.

    >>> p = Pacer(speed=60.0, rate=None)
    >>> p.delay(at=1000.0, now=5.0), p.delay(at=1060.0, now=5.5)
    (0.0, 0.5)
    >>> p = Pacer(speed=None, rate=2.0)
    >>> [p.delay(at=0.0, now=0.0) for _ in range(3)]
    [0.0, 0.5, 1.0]
    """

    def __init__(self, *, speed: float | None, rate: float | None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for as fast as possible)")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for no cap)")
        self.speed = speed
        self.rate = rate
        self._origin: tuple[float, float] | None = None  # (event time, wall time)
        self._next_slot = float("-inf")

    def delay(self, *, at: float, now: float) -> float:
        """Seconds to wait from ``now`` before sending a message released at ``at``."""
        if self._origin is None:
            self._origin = (at, now)
        due = now
        if self.speed is not None:
            event0, wall0 = self._origin
            due = max(due, wall0 + (at - event0) / self.speed)
        if self.rate is not None:
            due = max(due, self._next_slot)
            self._next_slot = due + 1.0 / self.rate
        return due - now


class FeedProgress:
    """A rich progress line (events, events/s, event-time progress and ETA), or nothing.

    Disabled when stderr is not a terminal or ``quiet``; updates are throttled
    to about ten a second so the display never slows the feed.
    """

    def __init__(
        self,
        description: str,
        *,
        span_s: float | None = None,
        quiet: bool = False,
        console: Console | None = None,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = not quiet and self.console.is_terminal
        self.span_s = span_s
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[events]:>9,} events"),
            TextColumn("{task.fields[rate]:>8,.0f} events/s"),
            TextColumn("sim {task.fields[clock]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.enabled,
            transient=False,
        )
        self._task: TaskID = self._progress.add_task(
            description, total=span_s, events=0, rate=0.0, clock="-"
        )
        self._origin: float | None = None
        self._started = time.monotonic()
        self._last_refresh = 0.0

    def __enter__(self) -> FeedProgress:
        self._started = time.monotonic()
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def update(self, *, at: float, events: int, force: bool = False) -> None:
        """Record that ``events`` messages were sent, the latest released at ``at``."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_refresh < 0.1:
            return
        self._last_refresh = now
        if self._origin is None:
            self._origin = at
        elapsed_event = max(0.0, at - self._origin)
        hours, rest = divmod(int(elapsed_event), 3600)
        self._progress.update(
            self._task,
            completed=elapsed_event if self.span_s is not None else None,
            events=events,
            rate=events / max(now - self._started, 1e-6),
            clock=f"+{hours}h{rest // 60:02d}",
        )


class _Batches:
    """Open record batches per (topic, partition), sent when full or flushed.

    aiokafka's ``send()`` costs a future and a task callback per message; filling
    ``BatchBuilder`` objects directly roughly halves the cost of a message. The
    partition is chosen exactly as ``send()`` with a key would (murmur2 of the
    key, Kafka's default), so a patient's messages land where they always do.
    """

    def __init__(self, producer: AIOKafkaProducer, counts: Counter[str]) -> None:
        self.producer = producer
        self.counts = counts  # messages per topic, counted when their batch is submitted
        self.pending: list[asyncio.Future[object]] = []
        self._open: dict[tuple[str, int], tuple[BatchBuilder, int]] = {}
        self._partitions: dict[str, list[int]] = {}
        self._partitioner = DefaultPartitioner()

    async def add(self, topic: str, key: bytes, value: bytes) -> None:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = sorted(await self.producer.partitions_for(topic))
            self._partitions[topic] = partitions
        tp = (topic, self._partitioner(key, partitions, partitions))
        batch, n = self._open.get(tp) or (self.producer.create_batch(), 0)
        if batch.append(key=key, value=value, timestamp=None) is None:
            self._open[tp] = (batch, n)
            await self._submit(tp)
            batch, n = self.producer.create_batch(), 0
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError("message larger than the producer's max_batch_size")
        self._open[tp] = (batch, n + 1)

    async def _submit(self, tp: tuple[str, int]) -> None:
        batch, n = self._open.pop(tp)
        batch.close()
        self.pending.append(await self.producer.send_batch(batch, tp[0], partition=tp[1]))
        self.counts[tp[0]] += n

    async def flush(self) -> None:
        """Submit every open batch."""
        for tp in list(self._open):
            await self._submit(tp)

    async def delivered(self) -> None:
        """Wait until every submitted batch is acknowledged (raises the first error)."""
        pending, self.pending = self.pending, []
        await asyncio.gather(*pending)


async def produce(
    settings: Settings,
    messages: Iterable[FeedMessage],
    *,
    speed: float | None,
    rate: float | None = None,
    duration: float | None = None,
    counts: Counter[str] | None = None,
    progress: FeedProgress | None = None,
) -> Counter[str]:
    """Send ``messages`` in order, paced; return (and fill ``counts``) messages per topic.

    ``duration`` (wall seconds) stops the feed early. Open batches are sent
    before every pacing pause and every few thousand messages, and delivery is
    awaited then, so a broker error surfaces quickly and memory stays bounded.
    """
    counts = Counter() if counts is None else counts
    producer = AIOKafkaProducer(
        **kafka_client_options(settings), acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    batches = _Batches(producer, counts)
    pacer = Pacer(speed=speed, rate=rate)
    topics = {kind: topic_for(settings, kind) for kind in get_args(FeedKind)}
    loop = asyncio.get_running_loop()
    end = loop.time() + duration if duration else float("inf")
    added = 0
    last_at = 0.0
    try:
        for msg in messages:
            now = loop.time()
            wait = pacer.delay(at=msg.at, now=now)
            if now + wait >= end:
                await batches.flush()
                await asyncio.sleep(max(0.0, end - now))
                break
            if wait > 0.002:  # smaller debts are paid by the next pause
                await batches.flush()
                await asyncio.sleep(wait)
            await batches.add(topics[msg.kind], msg.key, msg.value)
            added += 1
            last_at = msg.at
            if added % _FLUSH_EVERY == 0:
                await batches.flush()
                await batches.delivered()
            if progress is not None:
                progress.update(at=msg.at, events=added)
        await batches.flush()
        await batches.delivered()
    finally:
        if progress is not None and added:
            progress.update(at=last_at, events=added, force=True)
        await producer.stop()
    return counts


@dataclass(slots=True)
class FeedRun:
    """The outcome of :func:`run_feed`."""

    counts: Counter[str]
    elapsed_s: float
    interrupted: bool

    @property
    def total(self) -> int:
        """Messages sent, all topics."""
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line: totals, throughput and messages per topic (no patient data).

        >>> FeedRun(Counter({"twin.vitals": 90, "twin.labs": 10}), 2.0, False).summary()
        'sent 100 messages in 2.0 s (50 events/s): twin.labs=10 twin.vitals=90'
        """
        per_topic = " ".join(f"{t}={n}" for t, n in sorted(self.counts.items()))
        rate = self.total / self.elapsed_s if self.elapsed_s > 0 else 0.0
        head = "interrupted after" if self.interrupted else "sent"
        return (
            f"{head} {self.total} messages in {self.elapsed_s:.1f} s ({rate:.0f} events/s): "
            f"{per_topic or 'nothing'}"
        )


def run_feed(
    settings: Settings,
    messages: Iterable[FeedMessage],
    *,
    description: str,
    speed: float | None,
    rate: float | None = None,
    duration: float | None = None,
    span_s: float | None = None,
    quiet: bool = False,
) -> FeedRun:
    """Create the topics, send the feed, and return what was sent (Ctrl-C stops cleanly)."""
    counts: Counter[str] = Counter()
    started = time.monotonic()

    async def run() -> None:
        nonlocal started
        await ensure_topics(settings)
        started = time.monotonic()  # throughput counts sending, not topic creation
        with FeedProgress(description, span_s=span_s, quiet=quiet) as progress:
            await produce(
                settings,
                messages,
                speed=speed,
                rate=rate,
                duration=duration,
                counts=counts,
                progress=progress,
            )

    interrupted = False
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        interrupted = True
        print(file=sys.stderr)
    return FeedRun(counts, time.monotonic() - started, interrupted)
