"""The outbox contract, the same on both stores: acks name a position, so an ack
that reaches the store twice, or after the next batch committed, trims nothing
that has not been sent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from stream.store import BatchCommit, MemoryTwinStore, RedisTwinStore, TwinStore
from tests.conftest import Services

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[TwinStore]:
    if request.param == "memory":
        yield MemoryTwinStore(4)
        return
    services: Services = request.getfixturevalue("services")
    redis_store = RedisTwinStore(services.redis_url, 4, f"t{uuid.uuid4().hex[:8]}")
    try:
        yield redis_store
    finally:
        await redis_store.close()


async def test_a_repeated_or_late_ack_trims_only_what_it_names(store: TwinStore) -> None:
    claim = await store.claim_partition(2)
    assert (claim.outbox, claim.outbox_start) == ([], 0)
    end1 = await store.commit_batch(BatchCommit(2, claim.epoch, {}, {"v": 0}, [b"a1", b"a2"]))
    end2 = await store.commit_batch(BatchCommit(2, claim.epoch, {}, {"v": 1}, [b"b1"]))
    assert (end1, end2) == (2, 3)
    # Batch 1's ack arrives twice (a retry after a timeout), after batch 2 committed.
    await store.ack_outbox(2, claim.epoch, end1)
    await store.ack_outbox(2, claim.epoch, end1)
    again = await store.claim_partition(2)
    assert again.outbox == [b"b1"] and again.outbox_start == 2
    # An ack under the superseded epoch is ignored; under the new one it trims.
    await store.ack_outbox(2, claim.epoch, end2)
    assert (await store.claim_partition(2)).outbox == [b"b1"]
    latest = await store.claim_partition(2)
    await store.ack_outbox(2, latest.epoch, latest.outbox_start + len(latest.outbox))
    final = await store.claim_partition(2)
    assert (final.outbox, final.outbox_start) == ([], 3)
    # Positions keep counting after the outbox empties.
    assert await store.commit_batch(BatchCommit(2, final.epoch, {}, {"v": 2}, [b"c1"])) == 4
