"""Store-independent reads for readiness and consumer lag: Kafka metadata, end offsets,
and the applied offsets the worker commits to Redis.

Lag of an input partition = the topic's end offset - (last applied offset + 1),
where the last applied offset is field ``<topic>`` of the Redis hash
``<prefix>:{p<N>}:offsets`` (written atomically with the twins). A partition
the worker never applied from counts from offset 0.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.kafka import kafka_client_options
from stream.settings import Settings

__all__ = ["KafkaProbe", "RedisProbe", "consumer_lag"]


class KafkaProbe:
    """One group-less consumer, used only for metadata and end offsets."""

    def __init__(self, settings: Settings) -> None:
        self._options = kafka_client_options(settings)
        self._consumer: AIOKafkaConsumer | None = None

    async def _ensure(self, timeout_s: float) -> AIOKafkaConsumer:
        # aiokafka clients must be created inside the running loop.
        if self._consumer is None:
            consumer = AIOKafkaConsumer(**self._options, group_id=None, request_timeout_ms=10000)
            try:
                await asyncio.wait_for(consumer.start(), timeout_s)
            except BaseException:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                raise
            self._consumer = consumer
        return self._consumer

    async def start(self) -> None:
        with contextlib.suppress(Exception):  # Kafka down: /readyz says so; retried lazily
            await self._ensure(10.0)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def ready(self, timeout_s: float = 3.0) -> bool:
        """True when the cluster answers a metadata request in time."""
        try:
            consumer = await self._ensure(timeout_s)
            await asyncio.wait_for(consumer.topics(), timeout_s)
            return True
        except Exception:
            return False

    async def end_offsets(
        self, topics: tuple[str, ...], partitions: int
    ) -> dict[TopicPartition, int]:
        consumer = await self._ensure(10.0)
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        found = await asyncio.wait_for(consumer.end_offsets(tps), 10.0)
        return {tp: int(off) for tp, off in found.items()}


class RedisProbe:
    """A plain Redis client on the store's URL (no twin store needed)."""

    def __init__(self, url: str, prefix: str, password: str | None = None) -> None:
        self.prefix = prefix
        extra: dict[str, Any] = {"password": password} if password is not None else {}
        self.redis = aioredis.Redis.from_url(url, **extra, decode_responses=False)

    async def ready(self, timeout_s: float = 3.0) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), timeout_s))
        except Exception:
            return False

    async def applied_offsets(self, partitions: int) -> dict[TopicPartition, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in range(partitions):
                pipe.hgetall(f"{self.prefix}:{{p{p}}}:offsets")
            rows = cast(list[dict[bytes, bytes]], await pipe.execute())
        return {
            TopicPartition(topic.decode(), p): int(offset)
            for p, row in enumerate(rows)
            for topic, offset in row.items()
        }

    async def close(self) -> None:
        await self.redis.aclose()


async def consumer_lag(
    settings: Settings, kafka: KafkaProbe, redis: RedisProbe
) -> dict[TopicPartition, int]:
    """Records not yet applied, per input topic partition."""
    ends = await kafka.end_offsets(settings.input_topics(), settings.partitions)
    applied = await redis.applied_offsets(settings.partitions)
    return {tp: max(0, end - (applied.get(tp, -1) + 1)) for tp, end in ends.items()}
