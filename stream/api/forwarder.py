"""Forward alerts to a webhook without losing any: ``twinstream alerts forward --url ...``.

Delivery is at-least-once end to end, with duplicates dropped here:

* A Kafka consumer group with **manual commits**: a record's offset is committed
  only after the webhook answered 2xx, so a forwarder that dies (or a webhook
  that is down for hours) resumes from the first alert not yet accepted.
* Each POST is retried with exponential backoff (0.5 s doubling to 30 s, with
  jitter) until it is accepted; while it waits, nothing behind it is committed.
* Repeats of (``alert_id``, ``status``) are dropped before POSTing (the worker
  sends at-least-once); reminders share an ``alert_id`` and status, so their key
  also carries ``details.reminder`` or, failing that, ``emitted_at``. The key
  goes out as the ``Idempotency-Key`` header: the one redelivery a crash between
  "accepted" and "committed" can cause is recognisable by the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError

from stream.kafka import kafka_client_options
from stream.settings import Settings

__all__ = ["SeenKeys", "WebhookForwarder", "dedup_key"]

log = logging.getLogger(__name__)


def dedup_key(alert: Mapping[str, Any]) -> str:
    """The identity of one alert delivery.

    >>> dedup_key({"alert_id": "a1", "status": "open"})
    'a1:open'
    >>> dedup_key({"alert_id": "a1", "status": "reminder", "emitted_at": "T", "details": {}})
    'a1:reminder:T'
    """
    key = f"{alert['alert_id']}:{alert['status']}"
    if alert["status"] == "reminder":
        details = alert.get("details") or {}
        key += f":{details.get('reminder') or alert.get('emitted_at')}"
    return key


class SeenKeys:
    """The last ``capacity`` delivery keys, oldest forgotten first."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: str) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)


class WebhookForwarder:
    """Consumes the alerts topic in ``group`` and POSTs each new alert to ``url``."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        *,
        group: str = "twinstream-forwarder",
        headers: Mapping[str, str] | None = None,
        severities: frozenset[str] = frozenset(),
        timeout_s: float = 10.0,
        max_backoff_s: float = 30.0,
        from_latest: bool = False,
    ) -> None:
        self.settings = settings
        self.url = url
        self.group = group
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.severities = severities
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self.from_latest = from_latest
        self.seen = SeenKeys()
        self.delivered = 0
        self.skipped_duplicates = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Forward until ``stop`` is set; commits only what the webhook accepted."""
        consumer = AIOKafkaConsumer(
            self.settings.topic_alerts,
            **kafka_client_options(self.settings),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="latest" if self.from_latest else "earliest",
            # A webhook outage blocks this loop for as long as it lasts: stay in the group.
            max_poll_interval_ms=24 * 3600 * 1000,
        )
        await consumer.start()
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=500, max_records=100)
                    for tp, records in batches.items():
                        for rec in records:
                            if not await self._forward(client, rec.value, stop):
                                return  # stopping: this record stays uncommitted
                            await self._commit(consumer, tp, rec.offset + 1)
        finally:
            await consumer.stop()

    async def _forward(
        self, client: httpx.AsyncClient, value: bytes | None, stop: asyncio.Event
    ) -> bool:
        """Deliver one record unless it is a repeat or filtered; False if stopped first."""
        try:
            alert = orjson.loads(value or b"")
            key = dedup_key(alert)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.error("alerts topic: a record that is not an alert was skipped")
            return True
        if self.severities and alert.get("severity") not in self.severities:
            return True
        if key in self.seen:
            self.skipped_duplicates += 1
            return True
        if not await self._post(client, value or b"", key, stop):
            return False
        self.seen.add(key)
        self.delivered += 1
        return True

    async def _post(
        self, client: httpx.AsyncClient, body: bytes, key: str, stop: asyncio.Event
    ) -> bool:
        delay = 0.5
        while not stop.is_set():
            try:
                r = await client.post(
                    self.url, content=body, headers={**self.headers, "Idempotency-Key": key}
                )
                if 200 <= r.status_code < 300:
                    return True
                log.warning("webhook answered %d; retrying in %.1fs", r.status_code, delay)
            except httpx.HTTPError as exc:
                log.warning(
                    "webhook unreachable (%s); retrying in %.1fs", type(exc).__name__, delay
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.max_backoff_s)
        return False

    @staticmethod
    async def _commit(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
        except CommitFailedError:
            # The group rebalanced: the partition's new owner resumes from the last commit
            # and sends this alert again with the same Idempotency-Key.
            log.warning("commit failed after a rebalance; the next owner may resend one alert")
