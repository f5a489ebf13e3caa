"""The updater's defences against a store that lost acknowledged writes, in memory:
a commit or a mid-stream re-claim that finds the applied offsets gone back stops
the batch (it must not apply records past a gap), and after a rebalance the
consumer is sent back to the first record the store lacks."""

from __future__ import annotations

import copy

import orjson
import pytest

from stream.ports import Envelope
from stream.settings import Settings
from stream.store import MemoryTwinStore, StoreRolledBackError
from stream.updater import TwinUpdater
from tests.faults.oracle import ListSink

pytestmark = pytest.mark.faults

VITALS = "twin.vitals"


def record(offset: int) -> Envelope:
    body = {"event_id": f"p1:{offset}", "patient_id": "p1",
            "observed_at": f"2026-01-01T00:{offset:02d}:00+00:00", "heart_rate": 80}  # fmt: skip
    return Envelope(VITALS, 0, offset, b"p1", orjson.dumps(body))


async def rolled_back_store() -> tuple[TwinUpdater, MemoryTwinStore]:
    store = MemoryTwinStore(1)
    updater = TwinUpdater(Settings(), store, ListSink())
    await updater.process([record(0), record(1)])
    older = copy.deepcopy(store._parts[0])
    await updater.process([record(2), record(3)])
    store._parts[0] = older  # Redis restarted from an AOF without the last commit
    return updater, store


async def test_commit_on_a_rolled_back_store_stops() -> None:
    updater, store = await rolled_back_store()
    with pytest.raises(StoreRolledBackError):
        await updater.process([record(4)])
    assert await store.applied_offsets(0) == {VITALS: 1}, "nothing past the gap was written"


async def test_reclaim_mid_stream_on_a_rolled_back_store_stops() -> None:
    updater, store = await rolled_back_store()
    updater.on_revoked([0])  # forget the partition: the next batch re-claims it
    updater.assigned = None
    with pytest.raises(StoreRolledBackError):
        await updater.process([record(4)])
    assert await store.applied_offsets(0) == {VITALS: 1}


async def test_after_a_rebalance_the_consumer_goes_back_to_the_store() -> None:
    updater, store = await rolled_back_store()
    await updater.on_assigned([0])  # a rebalance: claims again, accepts the store as it is
    # Kafka had committed 4 (records 0-3 done); the store only has 0-1.
    assert await updater.rewind_targets({(VITALS, 0): 4}) == {(VITALS, 0): 2}
    assert await updater.rewind_targets({(VITALS, 0): 2}) == {}
    assert await updater.rewind_targets({(VITALS, 0): None}) == {}
    # Records 2-3 come again and are applied, not skipped.
    await updater.process([record(2), record(3), record(4)])
    assert await store.applied_offsets(0) == {VITALS: 4}
    assert (await store.counters())["applied"] == 5
