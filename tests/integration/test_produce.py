"""stream.produce on the real broker: records sent with their cached partition land where
aiokafka's own ``send`` puts them, in order per key, and none is lost or doubled."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.produce import PartitionCache, send_keyed

pytestmark = pytest.mark.integration

PARTITIONS = 8


async def _topics(bootstrap: str, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


async def _read_all(
    bootstrap: str, topic: str, expected: int
) -> list[tuple[int, int, bytes | None, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[tuple[int, int, bytes | None, bytes]] = []
    try:
        while len(out) < expected:
            got = await consumer.getmany(timeout_ms=10_000)
            if not got:
                break
            for tp, records in got.items():
                out.extend((tp.partition, r.offset, r.key, r.value) for r in records)
        # Nothing beyond what was sent.
        extra = await consumer.getmany(timeout_ms=500)
        out.extend((tp.partition, r.offset, r.key, r.value) for tp, rs in extra.items() for r in rs)
    finally:
        await consumer.stop()
    return out


async def test_records_land_where_send_puts_them_in_order(
    isolated_env: dict[str, str],
) -> None:
    bootstrap = isolated_env["TWIN_KAFKA_BOOTSTRAP"]
    tag = uuid.uuid4().hex[:8]
    batched, probed = f"produce-{tag}.batched", f"produce-{tag}.probed"
    await _topics(bootstrap, batched, probed)
    # Small batches: the records of one call fill several of aiokafka's batches per
    # partition, and one record is larger than a batch.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=2048)
    await producer.start()
    try:
        keys = [f"p-{i:04d}".encode() for i in range(40)]
        items: list[tuple[bytes | None, bytes]] = []
        for seq in range(25):
            items.extend((k, b"%s|%d|" % (k, seq) + b"x" * 60) for k in keys)
        items.insert(500, (keys[3], b"%s|big|" % keys[3] + b"y" * 5000))
        items.extend((None, b"unkeyed|%d" % i) for i in range(5))
        cache = PartitionCache()
        await send_keyed(producer, batched, items, cache)
        # Where aiokafka's own send() puts each key, on a topic with as many partitions.
        where = {k: (await (await producer.send(probed, b"probe", key=k))).partition for k in keys}
    finally:
        await producer.stop()
    assert len(set(where.values())) > 1, "40 keys over 8 partitions should use several"

    records = await _read_all(bootstrap, batched, len(items))
    assert sorted(r[3] for r in records) == sorted(v for _, v in items), "each record once"
    for partition, _, key, _ in records:
        if key is not None:
            assert partition == where[key]
    # Per key, the records in the order they were given (offset order on their partition).
    for k in keys:
        got = [v for _, _, key, v in sorted(records, key=lambda r: (r[0], r[1])) if key == k]
        assert got == [v for key, v in items if key == k]
