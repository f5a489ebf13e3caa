"""Batch delivery on the real broker: a worker fed one Faust message per partition
and fetch (stream.faust_consumer) applies every record once and commits its
Kafka position to the end of each partition, no further and no less."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.cli import spawn_worker, stop_process
from stream.kafka import ensure_topics, kafka_client_options
from stream.settings import Settings
from stream.store import RedisTwinStore
from tests.integration.test_pipeline import reading
from twin.codec import decode_twin

pytestmark = pytest.mark.integration

PATIENTS = 12
READINGS = 40


async def _committed(settings: Settings, tps: list[TopicPartition]) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings),
        group_id=settings.consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        return {tp.partition: await consumer.committed(tp) for tp in tps}
    finally:
        await consumer.stop()


async def _end_offsets(settings: Settings, tps: list[TopicPartition]) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**kafka_client_options(settings), group_id=None)
    await consumer.start()
    try:
        return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def test_batches_are_applied_once_and_committed_to_the_end(
    isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    # Small batches: every partition gets several, so Faust's gap bookkeeping between
    # one batch's last offset and the next batch's runs, not just the first batch.
    env = {**isolated_env, "TWIN_BATCH_MAX": "7", "TWIN_FAUST_BATCH_DELIVERY": "true"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = Settings()
    assert settings.faust_batch_delivery
    await ensure_topics(settings)
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all")
    await producer.start()
    try:
        for i in range(READINGS):
            for pid in range(PATIENTS):
                msg = reading(pid, i)
                msg["event_id"] = f"bd-{pid}-{i}"
                await producer.send(
                    settings.topic_vitals, orjson.dumps(msg), key=msg["patient_id"].encode()
                )
        await producer.flush()
    finally:
        await producer.stop()
    tps = [TopicPartition(settings.topic_vitals, p) for p in range(settings.partitions)]
    ends = await _end_offsets(settings, tps)
    assert sum(ends.values()) == PATIENTS * READINGS

    worker = spawn_worker(env=env, log_path=str(tmp_path / "worker.log"))
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    committed: dict[int, int | None] = {}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            committed = await _committed(settings, tps)
            if all(committed[p] == ends[p] for p in ends if ends[p]):
                break
            await asyncio.sleep(1.0)
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert committed == {p: (ends[p] if ends[p] else None) for p in ends}, log[-3000:]
        for pid in range(PATIENTS):
            raw = await store.get_twin(f"p-{pid:04d}")
            assert raw is not None, f"no twin for p-{pid:04d}"
            assert decode_twin(raw).events_applied == READINGS
        for p, end in ends.items():
            applied = await store.applied_offsets(p)
            assert applied.get(settings.topic_vitals, -1) == end - 1, (p, applied)
    finally:
        await asyncio.to_thread(stop_process, worker)
        await store.close()
