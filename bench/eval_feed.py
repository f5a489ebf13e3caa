"""The evaluation's feed: the replay sent in event-time windows, each consumed before the next.

Why windows. The worker reads several topics, and Faust interleaves them by
fetch, not by event time: sent all at once, the small ``twin.outcomes`` topic
would be applied long before the vitals it ends (nothing learned, and scores
made after a stay's own label was learned). So the replay is cut every
``window_s`` of event time; a window is sent as fast as the broker takes it,
then the feed waits until the worker's committed ``consumed`` counter covers
everything sent. Outcomes are held back to the start of the next window, so
each stay's outcome is applied after every event of that stay: its label
reaches the model 0 to ``window_s`` (event time) after the end of the stay,
and no score of a stay is made after its own label was learned.

Inside a window the topics still interleave by fetch: a window longer than
the worker's lateness allowance lets a patient's labs run far enough ahead of
their vitals for the twin to treat those vitals as late (not scored), so the
evaluation keeps windows no longer than that allowance.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from stream.feeds.producer import FeedMessage, topic_for
from stream.kafka import kafka_client_options
from stream.settings import Settings
from stream.store import RedisTwinStore

__all__ = ["FeedLog", "WorkerStalled", "barrier_windows", "send_in_windows"]


class WorkerStalled(Exception):
    """The worker stopped consuming (or died) before the feed was through.

    Look at the worker's log (``<out>/logs/worker.log``) for the cause.
    """


def barrier_windows(
    messages: Iterable[FeedMessage], window_s: float
) -> Iterator[list[FeedMessage]]:
    """``messages`` (in event-time order) cut every ``window_s``; outcomes move one window on.

    >>> m = lambda kind, at: FeedMessage(kind, b"k", b"{}", at)
    >>> feed = [m("vitals", 0), m("vitals", 50), m("outcomes", 50), m("vitals", 120)]
    >>> [[(x.kind, x.at) for x in w] for w in barrier_windows(feed, 100.0)]
    [[('vitals', 0), ('vitals', 50)], [('outcomes', 50), ('vitals', 120)]]
    >>> [[x.kind for x in w] for w in barrier_windows([m("vitals", 0), m("outcomes", 0)], 100.0)]
    [['vitals'], ['outcomes']]
    """
    if window_s <= 0:
        raise ValueError("window_s must be positive")
    held: list[FeedMessage] = []  # outcomes of the current window, sent with the next
    current: list[FeedMessage] = []
    end: float | None = None
    for msg in messages:
        if end is None:
            end = msg.at + window_s
        if msg.at >= end:
            if current:
                yield current
            current, held = held, []
            while msg.at >= end:
                end += window_s
        (held if msg.kind == "outcomes" else current).append(msg)
    if current:
        yield current
    if held:
        yield held


@dataclass
class FeedLog:
    """What the feed sent and how long the worker took."""

    sent: Counter[str] = field(default_factory=Counter)
    windows: int = 0
    started: float = 0.0
    first_consumed_at: float | None = None
    finished: float = 0.0
    cpu_at_first: float | None = None

    @property
    def total(self) -> int:
        return sum(self.sent.values())


async def send_in_windows(
    settings: Settings,
    windows: Iterable[list[FeedMessage]],
    *,
    worker_alive: Callable[[], bool],
    worker_cpu: Callable[[], float],
    stall_s: float = 180.0,
    on_window: Callable[[FeedLog], None] | None = None,
) -> FeedLog:
    """Send each window, then wait until the worker has consumed all that was sent."""
    log = FeedLog()
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    producer = AIOKafkaProducer(
        **kafka_client_options(settings), acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    topics = {
        kind: topic_for(settings, kind) for kind in ("vitals", "labs", "profiles", "outcomes")
    }
    await producer.start()
    log.started = time.monotonic()
    try:
        for window in windows:
            futures = [await producer.send(topics[m.kind], m.value, key=m.key) for m in window]
            await producer.flush()
            await asyncio.gather(*futures)
            for m in window:
                log.sent[topics[m.kind]] += 1
            log.windows += 1
            await _wait_consumed(store, log, worker_alive, worker_cpu, stall_s)
            if on_window is not None:
                on_window(log)
    finally:
        await producer.stop()
        await store.close()
    log.finished = time.monotonic()
    return log


async def _wait_consumed(
    store: RedisTwinStore,
    log: FeedLog,
    worker_alive: Callable[[], bool],
    worker_cpu: Callable[[], float],
    stall_s: float,
) -> None:
    target = log.total
    last, last_change = -1, time.monotonic()
    while True:
        consumed = (await store.counters()).get("consumed", 0)
        now = time.monotonic()
        if consumed and log.first_consumed_at is None:
            log.first_consumed_at, log.cpu_at_first = now, worker_cpu()
        if consumed >= target:
            return
        if consumed != last:
            last, last_change = consumed, now
        if not worker_alive():
            raise WorkerStalled(f"the worker exited after consuming {consumed} of {target}")
        if now - last_change > stall_s:
            raise WorkerStalled(
                f"no progress for {stall_s:.0f} s at {consumed} of {target} consumed"
            )
        await asyncio.sleep(0.02)
