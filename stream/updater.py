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

Sending runs in the background while the next batches are applied (waiting
for the broker's ack between batches would leave the worker idle and grow the
batches, and with them the latency); a partition has at most
:data:`SENDS_IN_FLIGHT` batches' outputs in flight, so a slow broker still
slows consumption. Outputs of a partition are sent in commit order (the
producer keeps a partition's order) and their outbox acks follow that order:
a batch's ack waits for the previous batch's, since an ack trims the stored
outbox up to a position.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from schemas.alert import Alert
from schemas.deadletter import DeadLetter, RejectReason
from schemas.decode import Rejection
from schemas.outcomes import OutcomeEvent
from stream import metrics
from stream.handlers import APPLIERS, Decoded, decoders_for, pseudonymiser
from stream.ports import Envelope, OutputSink
from stream.settings import Settings
from stream.store import BatchCommit, StaleEpochError, StoreRolledBackError, TwinStore
from twin.apply import check_stale
from twin.codec import CodecError, decode_twin, encode_twin
from twin.learning.anomaly import PopulationAnomalyModel
from twin.learning.risk import RiskModel
from twin.population import PartitionModels
from twin.state import TwinState

__all__ = ["TwinUpdater", "UpdaterCounters"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_ALERT_TAG = b"A"
_DEAD_TAG = b"D"

SENDS_IN_FLIGHT = 4
"""Batches of one partition whose outputs may be on their way to the broker at once.

One was measured to hold the next batch's commit behind the broker's ack (p95
69 ms at 2,000 events/s, ``bench/latency.py``), adding to every alert's latency."""


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
    alerts_committed: int = 0
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
    models: PartitionModels | None = None
    watermark: float = float("-inf")
    """Newest vitals event time applied in this partition: the stream's clock."""
    last_stale_scan: float = float("-inf")


# Counter names in the store; any other key of a batch's counts is a dead-letter reason.
_COUNTER_NAMES = {
    "consumed": "consumed",
    "applied": "applied",
    "duplicates": "duplicates",
    "replay_skipped": "replay_skipped",
    "alerts": "alerts",
}


def _encode_alert(alert: Alert) -> bytes:
    return _ALERT_TAG + alert.patient_id.encode() + b"\n" + alert.model_dump_json().encode()


class TwinUpdater:
    """Owns the twins of the partitions this worker is assigned."""

    def __init__(self, settings: Settings, store: TwinStore, sink: OutputSink) -> None:
        self.settings = settings
        self.store = store
        self.sink = sink
        self.counters = UpdaterCounters()
        self._parts: dict[int, _Partition] = {}
        self._seen: dict[int, dict[str, int]] = {}
        """Per partition, the store's applied offsets as last seen: they never go back
        unless the store lost acknowledged writes."""
        self.config = settings.twin_config()
        self._hot_per_partition = max(1, settings.hot_twins // settings.partitions)
        self._rng = random.Random(0)  # which twins leave memory changes no result
        self.risk: RiskModel | None = None
        self._last_checkpoint = time.monotonic()
        self.assigned: set[int] | None = None
        """Partitions Kafka assigned us (None: not tracked, as in tests without Faust)."""
        self._decoders = decoders_for(settings)
        self._pseudonym = pseudonymiser(settings)
        self._sending: dict[int, list[asyncio.Task[None]]] = {}
        """Per partition, the sends of its committed outboxes not yet acknowledged,
        oldest first."""

    # -- partition lifecycle -------------------------------------------------
    def on_revoked(self, partitions: Iterable[int]) -> None:
        """Forget revoked partitions; their twins are already committed."""
        for p in partitions:
            self._parts.pop(p, None)
            if self.assigned is not None:
                self.assigned.discard(p)

    async def on_assigned(self, partitions: Iterable[int]) -> None:
        """Claim every assigned partition at once, fencing off any previous owner.

        Never raises (Faust would crash the app): a partition whose claim fails
        here is claimed lazily by its first batch.
        """
        self.assigned = set(partitions)
        for p in list(self._parts):
            self._parts.pop(p)
        for p in sorted(self.assigned):
            try:
                await self._claim(p, assigning=True)
            except Exception as exc:
                self._parts.pop(p, None)
                log.warning("partition %d: claim on assignment failed (%s)", p, type(exc).__name__)

    async def rewind_targets(
        self, committed: Mapping[tuple[str, int], int | None]
    ) -> dict[tuple[str, int], int]:
        """Where the consumer must restart so that no record the store lacks is skipped.

        ``committed``: Kafka's committed offset (the next record to read) of each
        assigned (topic, partition). Every consumed record's offset reaches the
        store before Faust commits it to Kafka, so a committed offset past the
        store's applied offset + 1 means the store lost acknowledged writes
        (:class:`StoreRolledBackError`); the records in between must be read again.
        Returns those (topic, partition) with the store's applied offset + 1.
        """
        targets: dict[tuple[str, int], int] = {}
        for p in sorted({p for _, p in committed}):
            applied = await self._retrying(p, partial(self.store.applied_offsets, p))
            self._seen[p] = dict(applied)
            for (topic, partition), offset in committed.items():
                want = applied.get(topic, -1) + 1
                if partition == p and offset is not None and offset > want:
                    targets[(topic, p)] = want
        return targets

    async def _claim(self, partition: int, *, assigning: bool = False) -> _Partition:
        part = self._parts.get(partition)
        if part is not None:
            return part
        claim = await self.store.claim_partition(partition)
        seen = self._seen.get(partition, {})
        if any(claim.offsets.get(t, -1) < o for t, o in seen.items()):
            # The store lost writes since we last read it. On assignment that is
            # repaired (the app rewinds Kafka to the store's offsets before
            # consuming); mid-stream our consumer position is past them: stop.
            if not assigning:
                raise StoreRolledBackError(f"partition {partition}: applied offsets went back")
            log.error("partition %d: the store's applied offsets went back", partition)
        self._seen[partition] = dict(claim.offsets)
        part = _Partition(claim.epoch, dict(claim.offsets))
        part.models = await self._load_models(partition)
        self._parts[partition] = part
        if claim.outbox:
            # Outputs committed by a previous owner that may never have been sent.
            await self._send_outbox(list(claim.outbox))
            end = claim.outbox_start + len(claim.outbox)
            await self.store.ack_outbox(partition, claim.epoch, end)
        return part

    # -- the batch -----------------------------------------------------------
    def chunks(self, records: Sequence[Envelope], most_new: int) -> Iterator[Sequence[Envelope]]:
        """Consecutive slices of ``records`` to :meth:`process` one after another, each
        bringing at most ``most_new`` twins into memory: patients whose twin is not in
        memory when the slice is cut (evaluated lazily, after the previous slice).

        A twin a batch touches stays in memory until the batch commits, so the twins
        it loads or creates bound a batch's memory, not its records. A backlog of
        known patients goes in large batches, each twin encoded and committed once
        per batch however many of its events the batch holds (a full bench input in
        slices of 4,000 records encoded 0.74 twins per event; in 16,000, 0.39). New
        patients still come at most ``most_new`` per batch.

        >>> from stream.settings import Settings
        >>> from stream.store import MemoryTwinStore
        >>> u = TwinUpdater(Settings(partitions=1), MemoryTwinStore(1), None)
        >>> recs = [Envelope("t", 0, i, f"p{i // 2 % 3}".encode(), b"{}") for i in range(7)]
        >>> [len(c) for c in u.chunks(recs, 2)]
        [4, 3]
        >>> u._parts[0] = _Partition(0, {}, {"p0": TwinState("p0"), "p1": TwinState("p1")})
        >>> [len(c) for c in u.chunks(recs, 1)]
        [7]
        """
        start, n = 0, len(records)
        while start < n:
            new: set[bytes] = set()
            end = start
            while end < n:
                rec = records[end]
                key = rec.key
                if key is not None and key not in new and not self._in_memory(rec.partition, key):
                    if len(new) >= most_new:
                        break
                    new.add(key)
                end += 1
            yield records[start:end]
            start = end

    def _in_memory(self, partition: int, key: bytes) -> bool:
        part = self._parts.get(partition)
        if part is None:
            return False
        pid = key.decode("utf-8", "replace")
        if self._pseudonym is not None:
            pid = self._pseudonym(pid)
        return pid in part.twins

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
        began = time.perf_counter()
        by_partition: dict[int, list[Envelope]] = defaultdict(list)
        per_topic: Counter[str] = Counter()
        oldest = float("inf")
        for rec in records:
            by_partition[rec.partition].append(rec)
            per_topic[rec.topic] += 1
            stamp = rec.timestamp
            if stamp is not None and stamp < oldest:
                oldest = stamp
        metrics.observe_batch(len(records))
        if oldest != float("inf"):
            metrics.observe_record_wait(time.time() - oldest)
        for topic, n in per_topic.items():
            metrics.observe_records_in(topic, n)
        # Partitions are independent (own twins, offsets, epoch, outbox): their
        # commits and sends overlap instead of queueing one round trip after another.
        results = await asyncio.gather(
            *(self._process_partition(p, recs) for p, recs in by_partition.items()),
            return_exceptions=True,
        )
        # Raise only once every partition has finished, as the sequential loop did:
        # a partition must not be left mid-step when the agent stops the worker.
        for result in results:
            if isinstance(result, BaseException):
                raise result
        metrics.observe_batch_seconds(time.perf_counter() - began)
        self.counters.batches += 1
        try:
            await self.checkpoint_models()
        except Exception as exc:  # a missed checkpoint is retried next batch
            log.warning("model checkpoint failed (%s)", type(exc).__name__)

    async def _process_partition(self, partition: int, records: list[Envelope]) -> None:
        epoch, end, outbox = await self._retrying(
            partition, partial(self._apply, partition, records)
        )
        sending = self._sending.setdefault(partition, [])
        while sending and sending[0].done():
            sending.pop(0)
        if len(sending) >= SENDS_IN_FLIGHT:
            # A slow or absent broker slows consumption instead of piling outputs
            # up in memory.
            await asyncio.wait([sending.pop(0)])
        if outbox:
            previous = sending[-1] if sending else None
            sending.append(
                asyncio.ensure_future(self._send_then_ack(partition, epoch, end, outbox, previous))
            )

    async def _send_then_ack(
        self,
        partition: int,
        epoch: int,
        end: int,
        outbox: list[bytes],
        previous: asyncio.Task[None] | None,
    ) -> None:
        await self._retrying(partition, partial(self._send_outbox, outbox))
        if previous is not None:
            # Acks in commit order: this one trims the stored outbox up to ``end``,
            # which covers the previous batch's outputs too.
            await asyncio.wait([previous])
        # Up to the position this batch's outputs ended at, under the epoch they were
        # committed in. A position, not a count: an ack that reached Redis twice (a
        # retry after a timeout) or late (after the next batch committed) trims
        # nothing it should not. After a claim (by us again, or another worker) the
        # claim has sent the stored outbox, and this ack is a no-op.
        await self._retrying(partition, partial(self.store.ack_outbox, partition, epoch, end))

    async def drain(
        self, partitions: Iterable[int] | None = None, wait_s: float | None = None
    ) -> bool:
        """Wait until the outputs of every committed batch (of ``partitions``) are sent;
        False if ``wait_s`` seconds passed first. Unsent outputs are never lost: they
        stay in the store's outbox, and whoever claims the partition next sends them."""
        wanted = None if partitions is None else set(partitions)
        tasks = [t for p, ts in self._sending.items() if wanted is None or p in wanted for t in ts]
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=wait_s)
        return not pending

    async def _retrying(self, partition: int, step: Callable[[], Awaitable[T]]) -> T:
        delay = 0.1
        while True:
            try:
                return await step()
            except (asyncio.CancelledError, StoreRolledBackError):
                raise  # a rolled-back store needs the consumer rewound: not a retry
            except Exception as exc:
                self.counters.retries += 1
                log.warning(
                    "partition %d: %s; retrying in %.1fs", partition, type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _apply(self, partition: int, records: list[Envelope]) -> tuple[int, int, list[bytes]]:
        """Apply and commit one partition's records; return the epoch they were
        committed under, the stored outbox's end after the commit, and the outbox
        to send."""
        try:
            return await self._apply_and_commit(partition, records)
        except Exception:
            # In-memory twins may hold uncommitted changes: forget them all.
            self._parts.pop(partition, None)
            raise

    async def _apply_and_commit(
        self, partition: int, records: list[Envelope]
    ) -> tuple[int, int, list[bytes]]:
        part = await self._claim(partition)
        now = time.time()
        cfg = self.config
        counts: Counter[str] = Counter()
        outbox: list[bytes] = []
        offsets: dict[str, int] = {}
        changed: dict[str, TwinState] = {}
        created: set[str] = set()
        last_vitals: dict[str, float | None] = {}
        decoded: list[tuple[Envelope, Decoded | Rejection]] = []
        for rec in records:
            if rec.offset <= part.offsets.get(rec.topic, -1):
                counts["replay_skipped"] += 1
                continue
            offsets[rec.topic] = rec.offset
            decoder = self._decoders.get(rec.topic)
            if decoder is None:
                decoded.append((rec, Rejection("invalid", "not an input topic")))
            else:
                decoded.append((rec, decoder(rec.key, rec.value)))
        unreadable: dict[str, str] = {}
        if offsets:
            wanted = {pid for _, d in decoded if isinstance(d, Decoded) for pid, _ in d.events}
            unreadable = await self._load_twins(partition, part, wanted)
        for rec, item in decoded:
            if isinstance(item, Decoded) and unreadable:
                stuck = next((unreadable[pid] for pid, _ in item.events if pid in unreadable), None)
                if stuck is not None:
                    # The stored twin stays as it is (a worker that reads it, or a
                    # rebuild, takes over); the event waits in the dead-letter topic.
                    item = Rejection("twin_unreadable", stuck)
            if isinstance(item, Rejection):
                counts[item.reason] += 1
                outbox.append(self._dead_letter(rec, item.reason, item.error))
                continue
            applied = False
            try:
                for pid, event in item.events:
                    twin = part.twins.get(pid)
                    if twin is None:
                        twin = part.twins[pid] = TwinState(pid)
                        created.add(pid)
                    vitals_before = twin.last_vitals_at
                    alerts = APPLIERS[type(event)](twin, event, cfg, now)
                    if alerts is None:
                        continue  # duplicate event id: nothing changed
                    if part.models is not None:
                        if isinstance(event, OutcomeEvent):
                            part.models.on_outcome(twin, event)
                        elif twin.signals:
                            part.models.after_vitals(twin)
                    applied = True
                    changed[pid] = twin
                    if twin.last_vitals_at != vitals_before and twin.last_vitals_at is not None:
                        last_vitals[pid] = twin.last_vitals_at
                        part.watermark = max(part.watermark, twin.last_vitals_at)
                    if alerts:  # most records alert nothing: no generator for them
                        outbox.extend(_encode_alert(a) for a in alerts)
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
            counts["applied" if applied else "duplicates"] += 1
        if part.watermark - part.last_stale_scan >= self.settings.stale_scan_seconds:
            await self._stale_scan(partition, part, now, changed, outbox, last_vitals)
        counts["consumed"] = len(records)
        counts["alerts"] = sum(1 for o in outbox if o[:1] == _ALERT_TAG)
        # A batch of replays only changes no twin, but its records are consumed too:
        # commit their counts, or the store never sees a replay after a restart.
        end = 0
        if offsets or changed or counts["replay_skipped"]:
            try:
                end = await self.store.commit_batch(
                    BatchCommit(
                        partition,
                        part.epoch,
                        {pid: encode_twin(t) for pid, t in changed.items()},
                        offsets,
                        outbox,
                        last_vitals,
                        {_COUNTER_NAMES.get(k, f"dead.{k}"): v for k, v in counts.items()},
                        expected_offsets=part.offsets,
                        new_ids=created,
                    )
                )
            except StaleEpochError:
                # Another claim superseded ours: drop our view, send nothing.
                self._parts.pop(partition, None)
                if self.assigned is not None and partition in self.assigned:
                    # Still ours per Kafka (e.g. re-assigned to us in a rebalance that
                    # raced this batch): retry, which re-claims and re-applies from Redis.
                    raise
                self.counters.consumed += len(records)
                self.counters.replay_skipped += counts["replay_skipped"]
                self.counters.handed_over += len(decoded)
                log.warning("partition %d: claimed by another worker; batch left to it", partition)
                return part.epoch, 0, []
            part.offsets.update(offsets)
            self._seen.setdefault(partition, {}).update(offsets)
            self._evict(part, changed)
        self.counters.consumed += counts.pop("consumed")
        self.counters.alerts_committed += counts.pop("alerts")
        self.counters.applied += counts.pop("applied", 0)
        self.counters.duplicates += counts.pop("duplicates", 0)
        self.counters.replay_skipped += counts.pop("replay_skipped", 0)
        self.counters.dead_lettered.update(counts)
        return part.epoch, end, outbox

    def _evict(self, part: _Partition, changed: dict[str, TwinState]) -> None:
        """Keep at most ``hot_twins_per_partition`` twins in memory: they are all
        committed, and reloaded from the store on their next event.

        The ones over go at random, sparing this batch's twins while others can
        go. Monitors and wearables report on a cycle; when a partition's patients
        are more than fit, least-recently-used eviction drops every twin just
        before its next event and misses every time. Random eviction keeps a
        share of them hot (simulated with 1.4x the capacity on a cycle: 47 % of
        events found their twin, against none with LRU; with 20 % of patients
        reporting five times as often, 79 % against 82 %).
        """
        twins = part.twins
        excess = len(twins) - self._hot_per_partition
        if excess <= 0:
            return
        others = [pid for pid in twins if pid not in changed]
        doomed = self._rng.sample(others, min(excess, len(others)))
        if len(doomed) < excess:  # a batch of more new twins than fit
            doomed.extend(itertools.islice(changed, excess - len(doomed)))
        for pid in doomed:
            del twins[pid]

    async def _stale_scan(
        self,
        partition: int,
        part: _Partition,
        now: float,
        changed: dict[str, TwinState],
        outbox: list[bytes],
        last_vitals: dict[str, float | None],
    ) -> None:
        """Open stale-data alerts for twins silent for ``stale_after`` of stream event time."""
        part.last_stale_scan = part.watermark
        cutoff = part.watermark - self.config.stale_after_s
        pids = [
            p
            for p in await self.store.stale_candidates(partition, cutoff, limit=1000)
            if p not in last_vitals
        ]
        unreadable = await self._load_twins(partition, part, set(pids))
        for pid in pids:
            twin = part.twins.get(pid)
            if twin is None:
                if pid in unreadable:
                    last_vitals[pid] = None  # out of the index: not read again every scan
                continue
            alerts = check_stale(twin, self.config, part.watermark, now)
            last_vitals[pid] = None  # out of the index until vitals come back
            changed[pid] = twin
            outbox.extend(_encode_alert(a) for a in alerts)

    async def _load_models(self, partition: int) -> PartitionModels:
        """The partition's anomaly model and the process's risk model, from checkpoints."""
        if self.risk is None:
            raw = await self.store.get_blob("risk")
            self.risk = RiskModel.loads(raw) if raw else RiskModel()
        raw = await self.store.get_blob("anomaly", partition)
        anomaly = PopulationAnomalyModel.loads(raw) if raw else PopulationAnomalyModel()
        anomaly.prepare()  # at claim time, not inside the first batch
        return PartitionModels(self.risk, anomaly, every_s=self.settings.risk_every_minutes * 60)

    async def checkpoint_models(self, force: bool = False) -> None:
        """Write the shared models' checkpoints, at most every ``checkpoint_seconds``."""
        now = time.monotonic()
        if not force and now - self._last_checkpoint < self.settings.checkpoint_seconds:
            return
        self._last_checkpoint = now
        for partition, part in list(self._parts.items()):
            if part.models is not None:
                await self.store.set_blob("anomaly", part.models.anomaly.dumps(), partition)
        if self.risk is not None:
            await self.store.set_blob("risk", self.risk.dumps())

    async def _load_twins(
        self, partition: int, part: _Partition, wanted: set[str]
    ) -> dict[str, str]:
        """Load the ``wanted`` twins not in memory; return those stored in a form this
        worker cannot read (patient id -> why), which stay out of memory untouched."""
        twins = part.twins
        missing = sorted(pid for pid in wanted if pid not in twins)
        unreadable: dict[str, str] = {}
        if missing:
            for pid, raw in (await self.store.load_twins(partition, missing)).items():
                try:
                    part.twins[pid] = decode_twin(raw)
                except CodecError as exc:
                    unreadable[pid] = str(exc)  # a version or a format, never a value
        if unreadable:
            log.warning(
                "partition %d: %d stored twin(s) unreadable by this worker (%s); their"
                " events go to the dead-letter topic",
                partition,
                len(unreadable),
                "; ".join(sorted(set(unreadable.values()))),
            )
        return unreadable

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
            metrics.observe_records_out(self.settings.topic_alerts, len(alerts))
            metrics.observe_alerts_sent((body for _, body in alerts), time.time())
        if dead:
            await self.sink.send(self.settings.topic_deadletter, dead)
            metrics.observe_records_out(self.settings.topic_deadletter, len(dead))
