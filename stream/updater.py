"""The twin updater: applies micro-batches of records to in-memory twins and
commits them to the store exactly once per record.

Per partition and batch: records at or below the partition's applied offset
are skipped (a replay changes nothing); each record is decoded, applied to its
twin by the pure core or dead-lettered; then the changed twins, the new
offsets and the batch's outputs (alerts and dead letters, the *outbox*) are
committed to the store in one atomic step. Only after that are the outputs
sent, and only after the broker has them is the outbox cleared. A crash at any
point therefore loses nothing: uncommitted records are replayed, committed
but unsent outputs are resent from the outbox (at-least-once, with stable ids).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel

from schemas.alert import Alert
from schemas.deadletter import DeadLetter, RejectReason
from schemas.decode import Rejection, decode
from schemas.vitals import VitalsEvent
from stream.ports import Envelope, OutputSink
from stream.settings import Settings
from stream.store import StaleEpochError, TwinStore
from twin.apply import apply_vitals
from twin.codec import decode_twin, encode_twin
from twin.state import TwinState

__all__ = ["TwinUpdater", "UpdaterCounters"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Applier = Callable[[TwinState, Any, float], list[Alert]]

_ALERT_TAG = b"A"
_DEAD_TAG = b"D"


@dataclass
class UpdaterCounters:
    """Every consumed record ends in exactly one of: applied, dead-lettered,
    duplicate, or replay-skipped (already applied before a restart)."""

    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    replay_skipped: int = 0
    handed_over: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    alerts_sent: int = 0
    batches: int = 0
    retries: int = 0

    def balanced(self) -> bool:
        """consumed == applied + dead-lettered + duplicates + replay-skipped + handed-over.

        *handed over*: records of a batch whose commit was fenced off because
        another worker had claimed the partition; that worker applies them.
        """
        done = self.applied + sum(self.dead_lettered.values()) + self.duplicates
        return self.consumed == done + self.replay_skipped + self.handed_over


@dataclass
class _Partition:
    epoch: int
    offsets: dict[str, int]
    twins: dict[str, TwinState] = field(default_factory=dict)


class TwinUpdater:
    """Owns the twins of the partitions this worker is assigned."""

    def __init__(self, settings: Settings, store: TwinStore, sink: OutputSink) -> None:
        self.settings = settings
        self.store = store
        self.sink = sink
        self.counters = UpdaterCounters()
        self._parts: dict[int, _Partition] = {}
        lateness_s = settings.lateness_minutes * 60
        fresh_s = settings.vitals_fresh_minutes * 60
        self._handlers: dict[str, tuple[type[BaseModel], Applier]] = {
            settings.topic_vitals: (
                VitalsEvent,
                lambda s, e, now: apply_vitals(
                    s, e, now=now, lateness_s=lateness_s, fresh_s=fresh_s
                ),
            ),
        }

    # -- partition lifecycle -------------------------------------------------
    def on_revoked(self, partitions: Iterable[int]) -> None:
        """Forget revoked partitions; their twins are already committed."""
        for p in partitions:
            self._parts.pop(p, None)

    async def _claim(self, partition: int) -> _Partition:
        part = self._parts.get(partition)
        if part is not None:
            return part
        claim = await self.store.claim_partition(partition)
        part = _Partition(claim.epoch, dict(claim.offsets))
        self._parts[partition] = part
        if claim.outbox:
            # Outputs committed by a previous owner that may never have been sent.
            await self._send_outbox(list(claim.outbox))
            await self.store.ack_outbox(partition, claim.epoch, len(claim.outbox))
        return part

    # -- the batch -----------------------------------------------------------
    async def process(self, records: Sequence[Envelope]) -> None:
        """Apply ``records`` (any partitions, offset order within each), retrying
        each partition with backoff until it is committed.

        Faust acks a batch as soon as the agent moves on, even if it raised, so
        the agent must not move on before the batch is committed. While the
        store or the broker is unavailable the agent waits here, the consumer's
        buffers fill and Faust stops fetching: consumption pauses, the position
        is kept. A partition whose commit failed is dropped from memory and
        re-claimed, so a retry never applies an event twice.
        """
        by_partition: dict[int, list[Envelope]] = defaultdict(list)
        for rec in records:
            by_partition[rec.partition].append(rec)
        for partition, recs in by_partition.items():
            outbox = await self._retrying(partition, partial(self._apply, partition, recs))
            if outbox:
                await self._retrying(partition, partial(self._flush, partition, outbox))
        self.counters.batches += 1

    async def _retrying(self, partition: int, step: Callable[[], Awaitable[T]]) -> T:
        delay = 0.1
        while True:
            try:
                return await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters.retries += 1
                log.warning(
                    "partition %d: %s; retrying in %.1fs", partition, type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _apply(self, partition: int, records: list[Envelope]) -> list[bytes]:
        """Apply and commit one partition's records; return the outbox to send."""
        try:
            return await self._apply_and_commit(partition, records)
        except Exception:
            # In-memory twins may hold uncommitted changes: forget them all.
            self._parts.pop(partition, None)
            raise

    async def _apply_and_commit(self, partition: int, records: list[Envelope]) -> list[bytes]:
        part = await self._claim(partition)
        now = time.time()
        counts: Counter[str] = Counter()
        outbox: list[bytes] = []
        offsets: dict[str, int] = {}
        changed: dict[str, TwinState] = {}
        decoded: list[tuple[Envelope, BaseModel | Rejection]] = []
        for rec in records:
            if rec.offset <= part.offsets.get(rec.topic, -1):
                counts["replay_skipped"] += 1
                continue
            offsets[rec.topic] = rec.offset
            handler = self._handlers.get(rec.topic)
            if handler is None:
                decoded.append((rec, Rejection("invalid", f"no handler for topic {rec.topic}")))
            else:
                decoded.append((rec, decode(handler[0], rec.value)))
        if offsets:
            await self._load_twins(partition, part, decoded)
        for rec, item in decoded:
            if isinstance(item, Rejection):
                counts[item.reason] += 1
                outbox.append(self._dead_letter(rec, item.reason, item.error))
                continue
            pid: str = item.patient_id  # type: ignore[attr-defined]
            twin = part.twins.get(pid)
            if twin is None:
                twin = part.twins[pid] = TwinState(pid)
            try:
                alerts = self._handlers[rec.topic][1](twin, item, now)
            except Exception as exc:
                log.warning(
                    "processing error on %s[%d]@%d: %s",
                    rec.topic,
                    partition,
                    rec.offset,
                    type(exc).__name__,
                )
                counts["processing_error"] += 1
                outbox.append(self._dead_letter(rec, "processing_error", type(exc).__name__))
                continue
            changed[pid] = twin
            counts["applied"] += 1
            outbox.extend(
                _ALERT_TAG + a.patient_id.encode() + b"\n" + a.model_dump_json().encode()
                for a in alerts
            )
        if offsets:
            try:
                await self.store.commit_batch(
                    partition,
                    part.epoch,
                    {pid: encode_twin(t) for pid, t in changed.items()},
                    offsets,
                    outbox,
                )
            except StaleEpochError:
                # Another worker owns this partition now: drop our view, send nothing.
                self._parts.pop(partition, None)
                self.counters.consumed += len(records)
                self.counters.replay_skipped += counts["replay_skipped"]
                self.counters.handed_over += len(decoded)
                log.warning("partition %d: claimed by another worker; batch left to it", partition)
                return []
            part.offsets.update(offsets)
        self.counters.consumed += len(records)
        self.counters.applied += counts.pop("applied", 0)
        self.counters.replay_skipped += counts.pop("replay_skipped", 0)
        self.counters.dead_lettered.update(counts)
        return outbox

    async def _flush(self, partition: int, outbox: list[bytes]) -> None:
        await self._send_outbox(outbox)
        part = self._parts.get(partition)
        if part is not None:
            await self.store.ack_outbox(partition, part.epoch, len(outbox))

    async def _load_twins(
        self,
        partition: int,
        part: _Partition,
        decoded: list[tuple[Envelope, BaseModel | Rejection]],
    ) -> None:
        missing = sorted(
            {
                item.patient_id  # type: ignore[attr-defined]
                for _, item in decoded
                if not isinstance(item, Rejection) and item.patient_id not in part.twins  # type: ignore[attr-defined]
            }
        )
        if missing:
            for pid, raw in (await self.store.load_twins(partition, missing)).items():
                part.twins[pid] = decode_twin(raw)

    @staticmethod
    def _dead_letter(rec: Envelope, reason: RejectReason, error: str) -> bytes:
        letter = DeadLetter(
            reason=reason,
            error=error,
            source_topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            received_at=datetime.now(tz=UTC),
            original_b64=base64.b64encode(rec.value or b"").decode(),
        )
        return _DEAD_TAG + letter.model_dump_json().encode()

    async def _send_outbox(self, outbox: list[bytes]) -> None:
        alerts: list[tuple[bytes | None, bytes]] = []
        dead: list[tuple[bytes | None, bytes]] = []
        for item in outbox:
            if item[:1] == _ALERT_TAG:
                key, _, body = item[1:].partition(b"\n")
                alerts.append((key, body))
            else:
                dead.append((None, item[1:]))
        if alerts:
            await self.sink.send(self.settings.topic_alerts, alerts)
            self.counters.alerts_sent += len(alerts)
        if dead:
            await self.sink.send(self.settings.topic_deadletter, dead)
