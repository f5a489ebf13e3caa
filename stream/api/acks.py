"""The port through which the API publishes alert acknowledgements.

An :class:`~schemas.acks.AlertAck` goes to ``settings.topic_alert_acks`` keyed
by the alert's ``patient_id``, so it lands in the partition of the twin whose
reminders it silences. :class:`KafkaAckPublisher` waits for the broker's ack
(``acks=all``); :class:`MemoryAckPublisher` keeps what it was given (tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from aiokafka import AIOKafkaProducer

from schemas.acks import AlertAck
from stream.kafka import kafka_client_options
from stream.settings import Settings

__all__ = ["AckPublisher", "KafkaAckPublisher", "MemoryAckPublisher"]

log = logging.getLogger(__name__)


class AckPublisher(Protocol):
    """Publishes acknowledgements; ``publish`` returns once they are durable."""

    async def start(self) -> None: ...

    async def publish(self, patient_id: str, ack: AlertAck) -> None: ...

    async def stop(self) -> None: ...


class MemoryAckPublisher:
    """Keeps published acks as ``(key, ack)`` pairs, in order."""

    def __init__(self) -> None:
        self.published: list[tuple[bytes, AlertAck]] = []

    async def start(self) -> None:
        return None

    async def publish(self, patient_id: str, ack: AlertAck) -> None:
        self.published.append((patient_id.encode(), ack))

    async def stop(self) -> None:
        return None


class KafkaAckPublisher:
    """Publishes to the acks topic with aiokafka (default murmur2 partitioner).

    Starting tolerates a broker that is down: the producer is (re)created on the
    next ``publish``, which raises while Kafka stays unreachable.
    """

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic_alert_acks
        self._options = kafka_client_options(settings)
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(**self._options, acks="all", enable_idempotence=True)
                try:
                    await producer.start()
                except Exception:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def start(self) -> None:
        try:
            await self._ensure()
        except Exception as exc:
            log.warning("acks producer not started (%s); will retry", type(exc).__name__)

    async def publish(self, patient_id: str, ack: AlertAck) -> None:
        producer = await self._ensure()
        await producer.send_and_wait(
            self.topic, ack.model_dump_json().encode(), key=patient_id.encode()
        )

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
