"""The twin store port and its two backends, chosen by URL.

``memory://`` keeps everything in this process (tests, demos without Redis);
``redis://host:port/db`` keeps it in Redis. Both give the same guarantees:

* A partition is *claimed* on assignment, which bumps its epoch. A commit
  carrying an older epoch is rejected with :class:`StaleEpochError`, so a
  worker that lost its partition (a paused process waking up late) cannot
  overwrite the new owner's twins.
* :meth:`TwinStore.commit_batch` writes the changed twins, the partition's
  last applied offset per topic and the batch's pending alerts (the outbox)
  in one atomic step. Offsets only move forward.

The Redis backend and its key layout are in :mod:`stream.redis_store`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from stream.redis_store import RedisTwinStore

__all__ = [
    "BatchCommit",
    "MemoryTwinStore",
    "PartitionClaim",
    "RedisTwinStore",
    "StaleEpochError",
    "StoreError",
    "StoreRolledBackError",
    "TwinStore",
    "open_store",
]


class StoreError(Exception):
    """The twin store failed. Check that Redis is up and ``TWIN_REDIS_URL`` is right."""


class StaleEpochError(StoreError):
    """This worker no longer owns the partition: another worker claimed it since.

    Nothing was written. Drop the partition's in-memory twins; the new owner
    replays from the last committed offset.
    """


class StoreRolledBackError(StoreError):
    """The store lost writes it had acknowledged: a partition's applied offsets went back.

    Redis restarted from an older append-only file (a power loss under
    ``appendfsync everysec``) or failed over to a lagging replica. Its twins and
    offsets went back together, but Kafka's committed offsets did not, so the
    records in between would never be applied again. Nothing was written. The
    worker stops; when it starts again (any rebalance), it rewinds Kafka's
    committed offsets to the store's and applies those records again.
    """


@dataclass(frozen=True, slots=True)
class PartitionClaim:
    """What a worker learns when it takes a partition."""

    partition: int
    epoch: int
    offsets: Mapping[str, int]
    outbox: Sequence[bytes]
    outbox_start: int = 0
    """Absolute position of ``outbox[0]``: acknowledge them all with
    ``ack_outbox(partition, epoch, outbox_start + len(outbox))``."""


@dataclass(frozen=True, slots=True)
class BatchCommit:
    """One partition's micro-batch, as :meth:`TwinStore.commit_batch` writes it at once."""

    partition: int
    epoch: int
    """The claim's epoch: a newer claim fences this commit off (:class:`StaleEpochError`)."""
    twins: Mapping[str, bytes]
    """Encoded twins changed by the batch, by patient id."""
    offsets: Mapping[str, int]
    """The batch's last applied offset per topic; each must be past the stored one."""
    outbox: Sequence[bytes] = ()
    """Outputs to send once committed (alerts, dead letters), appended to the outbox."""
    last_vitals: Mapping[str, float | None] = field(default_factory=dict)
    """Newest vitals event time per patient for the stale-data index (None: drop)."""
    counters: Mapping[str, int] = field(default_factory=dict)
    """Increments of the partition's counters (consumed, applied, dead.<reason>, ...)."""
    expected_offsets: Mapping[str, int] = field(default_factory=dict)
    """The applied offsets the caller last saw (its claim plus its own commits). A
    stored offset below one of them means the store lost acknowledged writes
    (:class:`StoreRolledBackError`); above, that someone else committed
    (:class:`StaleEpochError`)."""
    new_ids: Collection[str] | None = None
    """Patients new to the partition (None: treat every twin as possibly new)."""


class TwinStore(Protocol):
    """Where twins live between batches."""

    async def claim_partition(self, partition: int) -> PartitionClaim: ...

    async def load_twins(self, partition: int, patient_ids: Sequence[str]) -> dict[str, bytes]: ...

    async def commit_batch(self, batch: BatchCommit) -> int:
        """Write ``batch`` atomically, or nothing; return the outbox's end (the
        absolute position after its last output)."""
        ...

    async def applied_offsets(self, partition: int) -> dict[str, int]: ...

    async def counters(self) -> dict[str, int]: ...

    async def get_blob(self, name: str, partition: int | None = None) -> bytes | None: ...

    async def set_blob(self, name: str, raw: bytes, partition: int | None = None) -> None: ...

    async def stale_candidates(self, partition: int, before: float, limit: int) -> list[str]: ...

    async def ack_outbox(self, partition: int, epoch: int, upto: int) -> None: ...

    async def get_twin(self, patient_id: str) -> bytes | None: ...

    async def patient_ids(self, partition: int) -> list[str]: ...

    async def close(self) -> None: ...


@dataclass
class _MemPartition:
    epoch: int = 0
    offsets: dict[str, int] = field(default_factory=dict)
    outbox: list[bytes] = field(default_factory=list)
    outbox_acked: int = 0
    twins: dict[str, bytes] = field(default_factory=dict)
    last_vitals: dict[str, float] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)


class MemoryTwinStore:
    """An in-process store with the same contract as Redis (not a mock)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._parts: dict[int, _MemPartition] = {}
        self._blobs: dict[tuple[int | None, str], bytes] = {}

    def _part(self, partition: int) -> _MemPartition:
        return self._parts.setdefault(partition, _MemPartition())

    async def claim_partition(self, partition: int) -> PartitionClaim:
        part = self._part(partition)
        part.epoch += 1
        return PartitionClaim(
            partition, part.epoch, dict(part.offsets), list(part.outbox), part.outbox_acked
        )

    async def load_twins(self, partition: int, patient_ids: Sequence[str]) -> dict[str, bytes]:
        twins = self._part(partition).twins
        return {pid: twins[pid] for pid in patient_ids if pid in twins}

    async def commit_batch(self, batch: BatchCommit) -> int:
        partition = batch.partition
        part = self._part(partition)
        if part.epoch != batch.epoch:
            raise StaleEpochError(f"partition {partition}: epoch {batch.epoch} != {part.epoch}")
        for topic, offset in batch.expected_offsets.items():
            if part.offsets.get(topic, -1) < offset:
                raise StoreRolledBackError(f"partition {partition}: offset of {topic} went back")
            if part.offsets.get(topic, -1) > offset:
                raise StaleEpochError(f"partition {partition}: offset of {topic} moved on")
        for topic, offset in batch.offsets.items():
            if offset <= part.offsets.get(topic, -1):
                raise StaleEpochError(f"partition {partition}: offset of {topic} went back")
        part.twins.update(batch.twins)
        part.offsets.update(batch.offsets)
        part.outbox.extend(batch.outbox)
        for pid, at in batch.last_vitals.items():
            if at is None:
                part.last_vitals.pop(pid, None)
            else:
                part.last_vitals[pid] = at
        for name, n in batch.counters.items():
            part.counters[name] = part.counters.get(name, 0) + n
        return part.outbox_acked + len(part.outbox)

    async def applied_offsets(self, partition: int) -> dict[str, int]:
        return dict(self._part(partition).offsets)

    async def get_blob(self, name: str, partition: int | None = None) -> bytes | None:
        return self._blobs.get((partition, name))

    async def set_blob(self, name: str, raw: bytes, partition: int | None = None) -> None:
        self._blobs[(partition, name)] = raw

    async def counters(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for part in self._parts.values():
            for name, n in part.counters.items():
                total[name] = total.get(name, 0) + n
        return total

    async def stale_candidates(self, partition: int, before: float, limit: int) -> list[str]:
        lv = self._part(partition).last_vitals
        return sorted((p for p, at in lv.items() if at <= before), key=lv.__getitem__)[:limit]

    async def ack_outbox(self, partition: int, epoch: int, upto: int) -> None:
        part = self._part(partition)
        if part.epoch == epoch and upto > part.outbox_acked:
            del part.outbox[: upto - part.outbox_acked]
            part.outbox_acked = upto

    async def get_twin(self, patient_id: str) -> bytes | None:
        for part in self._parts.values():
            if patient_id in part.twins:
                return part.twins[patient_id]
        return None

    async def patient_ids(self, partition: int) -> list[str]:
        return sorted(self._part(partition).twins)

    async def close(self) -> None:
        return None


def open_store(
    url: str, partitions: int, prefix: str = "ts", password: str | None = None
) -> TwinStore:
    """Open the store named by ``url`` (``memory://`` or ``redis://...``); a
    ``password`` (from ``TWIN_REDIS_PASSWORD``) overrides one in the URL."""
    if url.startswith("memory://"):
        return MemoryTwinStore(partitions)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from stream.redis_store import RedisTwinStore

        return RedisTwinStore(url, partitions, prefix, password)
    raise StoreError(
        f"unsupported store URL scheme in {url.split('://')[0]!r}: use memory:// or redis://"
    )


def __getattr__(name: str) -> Any:
    # ``stream.store.RedisTwinStore``: the Redis backend lives in stream.redis_store,
    # which imports this module; imported on first use, either module can come first.
    if name == "RedisTwinStore":
        from stream.redis_store import RedisTwinStore

        return RedisTwinStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
