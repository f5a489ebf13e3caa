"""Live alerts for the API: a bounded ring buffer and a fan-out to SSE subscribers.

:class:`AlertFeed` numbers each alert it is given (the SSE event id), keeps
the last ``capacity`` and hands every new one to each subscriber's queue. A
slow subscriber whose queue is full loses its oldest pending alert rather
than stalling the others; it can catch up from the ring buffer with
``Last-Event-ID``. :func:`consume_alerts` feeds the feed from the alerts topic
(no consumer group: every API process sees every alert from the moment it
starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterator

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from schemas.alert import Alert
from stream.kafka import kafka_client_options
from stream.settings import Settings

__all__ = ["AlertFeed", "consume_alerts"]

log = logging.getLogger(__name__)


class AlertFeed:
    """Recent alerts, numbered from 1, and their live subscribers."""

    def __init__(self, capacity: int = 1000, queue_size: int = 256) -> None:
        self._ring: deque[tuple[int, Alert]] = deque(maxlen=capacity)
        self._subscribers: set[asyncio.Queue[tuple[int, Alert]]] = set()
        self._queue_size = queue_size
        self._seq = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, alert: Alert) -> int:
        """Add ``alert``; return its sequence number."""
        self._seq += 1
        item = (self._seq, alert)
        self._ring.append(item)
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # drop the oldest for this slow subscriber only
            queue.put_nowait(item)
        return self._seq

    def recent(self, after: int = 0) -> list[tuple[int, Alert]]:
        """Buffered alerts with a sequence number above ``after``, oldest first."""
        return [item for item in self._ring if item[0] > after]

    def find(self, alert_id: str) -> Alert | None:
        """The newest buffered alert with this id."""
        return next((a for _, a in reversed(self._ring) if a.alert_id == alert_id), None)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[tuple[int, Alert]]]:
        """A queue of every alert published while the context is open."""
        queue: asyncio.Queue[tuple[int, Alert]] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)


async def consume_alerts(settings: Settings, feed: AlertFeed, ready: asyncio.Event) -> None:
    """Read the alerts topic from its end into ``feed`` until cancelled; reconnect on errors."""
    delay = 0.5
    while True:
        consumer = AIOKafkaConsumer(
            settings.topic_alerts,
            **kafka_client_options(settings),
            group_id=None,
            auto_offset_reset="latest",
        )
        try:
            await consumer.start()
            # Pin the position to the end now, so alerts sent after `ready` are seen.
            await consumer.seek_to_end()
            for tp in consumer.assignment():
                await consumer.position(tp)
            ready.set()
            delay = 0.5
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for rec in records:
                        try:
                            feed.publish(Alert.model_validate_json(rec.value or b""))
                        except ValidationError:
                            log.warning("alerts topic: undecodable record skipped")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("alert consumer: %s; reconnecting in %.1fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
