"""Producing a batch's outputs: one record batch per partition, not one send per record.

The worker sends each committed batch's alerts together. Through Faust's
``Producer.send`` every alert went through aiokafka's ``send`` on its own: a
produce signal, a metadata wait, the partitions listed and the key hashed
(murmur2, in Python), a future, a message appended to the accumulator; about
3 % of a worker's CPU on the full bench input, whose replayed ICU stays raise
one alert per four events (``bench/results/profile.txt``, the
``FaustSink.send`` stacks). :func:`send_keyed` hashes each key once per
process (the partition of a patient's key does not change while the topic's
partition count does not), fills one aiokafka ``BatchBuilder`` per partition
in the records' order and hands each to ``send_batch``. The records land on
the partitions ``send`` would have chosen (the producer's own partitioner
chooses them; tests/integration/test_produce.py checks it against ``send``),
in the same order per partition, and are acknowledged as before: the call
returns once the broker has every batch.

Records without a key (dead letters) take the producer's ``send``, whose
partitioner spreads them; so does a record too large for an empty batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

__all__ = ["PartitionCache", "send_keyed"]


class PartitionCache:
    """Partitions of record keys, per topic, for one producer's partitioner.

    Forgotten all at once when a topic's partitions change (a topic grown with
    ``kafka-topics --alter``), or when ``most`` keys are held (patients come and go).
    """

    def __init__(self, most: int = 100_000) -> None:
        self.most = most
        self._by_topic: dict[str, tuple[tuple[int, ...], dict[bytes, int]]] = {}

    def partition(
        self, producer: AIOKafkaProducer, topic: str, partitions: tuple[int, ...], key: bytes
    ) -> int:
        """The partition ``producer.send(topic, value, key=key)`` would choose."""
        known, keys = self._by_topic.get(topic, ((), {}))
        if known != partitions or len(keys) >= self.most:
            keys = {}
            self._by_topic[topic] = (partitions, keys)
        found = keys.get(key)
        if found is None:
            # aiokafka's own choice (metadata and partitioner, as send() does); for a
            # keyed record its default partitioner reads only the key and the count.
            found = keys[key] = producer._partition(topic, None, None, None, key, None)
        return found


async def send_keyed(
    producer: AIOKafkaProducer,
    topic: str,
    items: Sequence[tuple[bytes | None, bytes]],
    cache: PartitionCache,
) -> None:
    """Produce ``items`` (key, value) to ``topic``; return once the broker has them all.

    Raises what aiokafka raises for a record it could not deliver.
    """
    # Waits for the topic's metadata, as send() does before it partitions.
    partitions = tuple(sorted(await producer.partitions_for(topic)))
    pending: list[asyncio.Future[Any]] = []
    batches: dict[int, Any] = {}
    for key, value in items:
        if key is None:
            pending.append(await producer.send(topic, value))
            continue
        partition = cache.partition(producer, topic, partitions, key)
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is not None:
            continue
        # Full: this partition's batch goes now, the record starts the next one.
        pending.append(await producer.send_batch(batch, topic, partition=partition))
        batch = batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            # Larger than an empty batch: on its own, after what came before it.
            del batches[partition]
            pending.append(await producer.send(topic, value, key=key, partition=partition))
    for partition, batch in batches.items():
        if batch.record_count():
            pending.append(await producer.send_batch(batch, topic, partition=partition))
    if pending:
        await asyncio.gather(*pending)
