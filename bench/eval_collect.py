"""What the evaluation reads back after the run: every twin from Redis (with its
``MEMORY USAGE``) and the whole alerts topic from Kafka."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.kafka import kafka_client_options
from stream.settings import Settings
from stream.store import RedisTwinStore
from twin.codec import decode_twin
from twin.learning.risk import RiskModel
from twin.state import TwinState

__all__ = ["StoredTwin", "read_alerts", "read_risk_model", "read_twins", "wait_outbox_empty"]


@dataclass(frozen=True, slots=True)
class StoredTwin:
    """A decoded twin, the length of its encoding and Redis' ``MEMORY USAGE`` of its key."""

    twin: TwinState
    encoded_bytes: int
    redis_bytes: int


async def read_twins(settings: Settings, chunk: int = 500) -> dict[str, StoredTwin]:
    """Every twin of the run's key prefix, by patient id."""
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    out: dict[str, StoredTwin] = {}
    try:
        for partition in range(settings.partitions):
            pids = await store.patient_ids(partition)
            for i in range(0, len(pids), chunk):
                keys = [store.twin_key(partition, pid) for pid in pids[i : i + chunk]]
                async with store.redis.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.get(key)
                        pipe.memory_usage(key, samples=0)
                    replies = await pipe.execute()
                for pid, raw, used in zip(
                    pids[i : i + chunk], replies[0::2], replies[1::2], strict=True
                ):
                    if raw is not None:
                        out[pid] = StoredTwin(decode_twin(raw), len(raw), int(used or 0))
    finally:
        await store.close()
    return out


async def read_risk_model(settings: Settings) -> RiskModel | None:
    """The risk model as of the worker's last checkpoint, if any."""
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    try:
        raw = await store.get_blob("risk")
    finally:
        await store.close()
    return RiskModel.loads(raw) if raw else None


async def wait_outbox_empty(settings: Settings, timeout_s: float = 60.0) -> bool:
    """Wait until every partition's outbox is empty: all committed outputs were sent."""
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            async with store.redis.pipeline(transaction=False) as pipe:
                for p in range(settings.partitions):
                    pipe.llen(store.key(p, "outbox"))
                if not any(await pipe.execute()):
                    return True
            await asyncio.sleep(0.1)
        return False
    finally:
        await store.close()


async def read_alerts(settings: Settings) -> list[dict[str, Any]]:
    """Every message on the alerts topic, from the beginning to its current end."""
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic_alerts, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        alerts: list[dict[str, Any]] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                alerts.extend(orjson.loads(r.value) for r in records if r.value)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return alerts
    finally:
        await consumer.stop()
