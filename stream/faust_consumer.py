"""How the worker consumes through Faust: no long-poll stalls, no four tasks per message.

**Fetch wait.** faust-streaming creates its aiokafka consumer with
``fetch_max_wait_ms=1500``, fixed. aiokafka sends one fetch request at a time
to a broker, for the assigned partitions that have nothing buffered. Right
after a fetch, the partitions with data are buffered, so the next request
names only the idle ones (the worker subscribes to seven topics, of which a
live feed fills one or two) and the broker holds it for the full 1.5 s; new
records wait behind it. Measured with ``bench/latency.py`` at 2,000 vitals/s:
a raw aiokafka consumer of the same topic saw 3-10 ms from produce to
receive, the worker's agent 1.5-1.8 s. ``TWIN_FETCH_MAX_WAIT_MS`` (default
10) bounds that wait. Working through a backlog, short polls of the idle
partitions cost: one worker on the bench's preloaded input ran 20-25 %
slower with a 10 ms wait than with 100 ms or more. So the wait adapts: after a
fetch that returned at least :data:`BUSY_RECORDS` records (a backlog) it is
``TWIN_FETCH_MAX_WAIT_BUSY_MS`` (default 500), after a smaller one (a live
feed, caught up) ``TWIN_FETCH_MAX_WAIT_MS``. After a getmany that found
nothing in Faust's whole second (idle), it is the long wait again, with a
fetch minimum of one byte: the broker answers as soon as a record arrives in
any partition, which the idle request names all of. Polling every 10 ms, an
idle worker's consumer thread took 17-19 % of a core (each request and
response names the 56 partitions of seven topics, built and parsed in
aiokafka's Python protocol code), and it shares the GIL with the agent.

**Eager delivery.**

faust-streaming's consumer hands every fetched message to its topic's
channel with ``Service.wait_first(callback(message), suspend_flow.wait())``:
mode wraps the delivery, the flow event and the service's ``stopped`` and
``crashed`` events in four tasks and an ``asyncio.wait``, for every message,
although the delivery almost never suspends (it is a put into a queue with
room). That is about 10 % of a twinstream worker's CPU and most of the gap
between bare Faust and a raw aiokafka consumer (``../shared/PERF-NOTES.md``:
skipping it ran bare Faust 1.5-1.7x faster).

:class:`TwinConsumer` runs the first step of the first awaited coroutine at
once. If the coroutine finishes in that step, nothing was waited on: mode's
result is returned as mode would build it, and the other awaitables are
closed unstarted. If it suspends (the queue is full: backpressure), the
half-run coroutine is handed to mode's ``wait_first`` and resumed there, so
flow suspension, stop and crash interrupt it exactly as before. While flow is
suspended (a rebalance), or the consumer is stopping, mode's path is taken
from the start. ``TWIN_FAUST_EAGER_DELIVERY=false`` turns it off.

The same change would fit upstream in mode's ``Service.wait_first`` (an eager
first step, as Python 3.12's ``asyncio.eager_task_factory`` does).

**Batch delivery.** Faust turns every fetched record into a message, an event
and a trip through the channel queue, the stream's iterator, the take buffer
and an ack: about 45 us per record in a twinstream worker (44 of its 197 us,
``bench/results/profile.txt``), although the twin updater wants micro-batches
per partition anyway. For the topics named ``batch_topics`` the consumer
hands Faust one message per topic partition and fetch, at most ``batch_max``
records, whose value is a :class:`RecordBatch` of :class:`~stream.ports.Envelope`.
Its offset is the last record's, and the consumer notes the batch's first
offset against it as it hands it out: acking the message makes the whole
batch done, no earlier. Flow control, rebalances, generation checks and the
commit path stay Faust's. Other topics are delivered one message per record,
as Faust does.

**Commit bookkeeping.** What may be committed is kept as intervals
(:class:`_Gaps`), not Faust's interval tree and one int per offset: see
:meth:`TwinConsumer._new_offset`.
"""

from __future__ import annotations

import asyncio
import types
from collections import defaultdict
from collections.abc import AsyncIterator, Coroutine, Generator, Iterable, Sequence
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage
from mode.services import WaitArgT, WaitResults
from mode.utils.times import Seconds

from stream import fast_protocol
from stream.ports import Envelope

__all__ = [
    "BUSY_RECORDS",
    "RecordBatch",
    "Resumed",
    "TwinConsumer",
    "TwinTransport",
    "install",
]


class RecordBatch(tuple[Envelope, ...]):
    """Consecutive records of one topic partition, delivered as one Faust message."""

    __slots__ = ()


class Resumed:
    """Awaiting this continues ``coro``, which has already yielded ``pending``.

    The task that awaits it waits on ``pending`` exactly as it would have if it
    had run ``coro``'s first step itself, then drives ``coro`` to its end;
    exceptions thrown in (cancellation) go to ``coro``.
    """

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # delivered to the coroutine (cancellation too)
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


_CoroutineType = types.CoroutineType


def _close_unstarted(items: tuple[WaitArgT, ...]) -> None:
    for item in items:
        # A plain coroutine is the common case: tested first, without iscoroutine's checks.
        if type(item) is _CoroutineType or asyncio.iscoroutine(item):
            item.close()


BUSY_RECORDS = 1000
"""Records from one fetch above which the consumer counts as working through a backlog."""


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # faust-streaming passes a fixed fetch_max_wait_ms=1500 and has no setting
        # for it; aiokafka reads this attribute when the consumer starts (asserted
        # by tests/unit/test_faust_consumer.py, so an aiokafka rename fails a test).
        consumer._fetch_max_wait_ms = cast(TwinTransport, transport).fetch_max_wait_ms
        consumer._fetch_min_bytes = cast(TwinTransport, transport).fetch_min_bytes
        return consumer

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,  # noqa: ASYNC109 (faust-streaming's signature)
        max_records: int | None = None,
    ) -> Any:
        records = await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )
        transport = cast(TwinTransport, self.consumer.transport)
        fetcher = getattr(consumer, "_fetcher", None)  # the one faust-streaming reads too
        if fetcher is not None:
            n = sum(map(len, records.values()))
            # Nothing for a whole getmany (Faust waits 1 s): idle. The long wait with a
            # minimum of one byte: the broker answers as soon as a record arrives.
            long_wait = n >= BUSY_RECORDS or n == 0
            fetcher._fetch_max_wait_ms = (
                transport.busy_fetch_max_wait_ms if long_wait else transport.fetch_max_wait_ms
            )
            # Working through a backlog, a fetch that finds less than the minimum
            # (the backlog just ran out) must not be held for the long wait.
            fetcher._fetch_min_bytes = 1 if long_wait else transport.fetch_min_bytes
        return records


class _Gaps:
    """One partition's offsets that no message of their own acknowledges (Faust's gaps).

    ``pending``: the offset of each message handed out and not yet acked ->
    the first offset it stands for; they are done when it is acked. With batch
    delivery, a batch message stands for its records (registered by
    :meth:`TwinConsumer.getmany`); for other topics, Faust's gaps (offsets with
    no record: compaction, transaction markers) end at the message after them.
    ``ready``: done offsets, merged [begin, end) intervals, that wait for the
    run before them. Revoking a partition drops its ``_Gaps`` (Faust pops
    ``_gap[tp]``).
    """

    __slots__ = ("pending", "ready")

    def __init__(self) -> None:
        self.pending: dict[int, int] = {}
        self.ready: list[tuple[int, int]] = []


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` ([begin, end) intervals) sorted, with overlapping and touching ones joined.

    >>> _merged([(5, 6), (1, 3), (3, 4), (2, 3), (8, 9)])
    [(1, 4), (5, 6), (8, 9)]
    """
    spans.sort()
    out = [spans[0]]
    for begin, end in spans[1:]:
        last_begin, last_end = out[-1]
        if begin <= last_end:
            if end > last_end:
                out[-1] = (last_begin, end)
        else:
            out.append((begin, end))
    return out


class TwinConsumer(faust_aiokafka.Consumer):
    """faust-streaming's aiokafka consumer with a short fetch wait and, when the
    transport says so, an eager first step in ``wait_first``."""

    transport: TwinTransport

    eager_hits = 0
    """Calls that finished in their first step (no task created); for tests and benches."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_first(
        self,
        *coros: WaitArgT,
        timeout: Seconds | None = None,  # noqa: ASYNC109 (mode's signature)
    ) -> WaitResults:
        mode_timeout = cast(Seconds, timeout)  # mode's own default is None too
        first = coros[0] if coros else None
        if (
            not self.transport.eager_delivery
            or not asyncio.iscoroutine(first)
            or self.suspend_flow.is_set()
            or self._stopped.is_set()
            or self._crashed.is_set()
        ):
            return await super().wait_first(*coros, timeout=mode_timeout)
        try:
            pending = first.send(None)
        except StopIteration as done:
            _close_unstarted(coros[1:])
            TwinConsumer.eager_hits += 1
            return WaitResults([first], [done.value], False)
        except BaseException:
            _close_unstarted(coros[1:])
            raise
        resumed = Resumed(first, pending)
        results = await super().wait_first(resumed, *coros[1:], timeout=mode_timeout)
        winners = [first if item is resumed else item for item in results.done]
        return WaitResults(winners, results.results, results.stopped)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109
        """Faust's ``Consumer.getmany`` with the records of ``batch_topics`` as
        one :class:`RecordBatch` message per topic partition (and ``batch_max``)."""
        batch_topics = self.transport.batch_topics
        if not batch_topics:
            async for item in super().getmany(timeout):
                yield item
            return
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            # As Faust's getmany: a rebalance stopped the flow; go back to committed.
            try:
                await self.perform_seek()
            except Exception as exc:
                self.log.warning("exception performing seek when flow not active %r", exc)
            return
        batched: dict[TP, Any] = {}
        single: dict[TP, Any] = {}
        for tp, recs in records.items():
            if (
                active_partitions is None
                or tp in active_partitions
                or tp in self._buffered_partitions
            ):
                (batched if tp.topic in batch_topics else single)[tp] = recs
                self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
        size = self.transport.batch_max
        for tp, recs in batched.items():
            pending = cast(_Gaps, self._gap[tp]).pending
            for start in range(0, len(recs), size):
                if not self._flowing(generation_id):
                    return
                chunk = recs[start : start + size]
                # The batch's records up to its message's offset: done with it.
                pending[chunk[-1].offset] = chunk[0].offset
                yield tp, self._batch_message(tp, chunk)
        to_message = self._to_message
        for tp, record in self.scheduler.iterate(single):
            if not self._flowing(generation_id):
                return
            yield tp, to_message(tp, record)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Faust's gaps are intervaltree trees; ours are lists (see _Gaps). Faust only
        # creates them on first use and drops them when a partition is revoked.
        self._gap = defaultdict(_Gaps)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Offsets ``offset_from`` to ``offset_to`` (the next message's), both included,
        are done when the message at ``offset_to`` is acked.

        Faust keeps gaps in an interval tree, rebuilt for every gap (with batch
        delivery, every batch message leaves one: about 5 % of a live worker's CPU,
        py-spy), and counts a gap done once any later offset is acked. Here a gap
        is done when its own message is acked: the same when acks come in order,
        as the agent acks them.
        """
        committed = self._committed_offset[tp]
        start = offset_from if committed is None else max(offset_from, committed + 1)
        if start <= offset_to:
            # A batch message's own records are registered as it is handed out
            # (getmany): exact, where Faust's gap begins after its read offset (which
            # after a seek is the committed offset, and which it skips when 0).
            cast(_Gaps, self._gap[tp]).pending.setdefault(offset_to, start)

    def _new_offset(self, tp: TP) -> int | None:
        """The next offset to commit for ``tp``: the end of the first run of done
        offsets (acked messages with their gaps), if that run follows the committed
        offset (Faust's rule, worked out on intervals instead of one int per
        offset: 7.7 % of a live worker's main thread at 1,300 events/s with Faust's
        walk and tree, py-spy). Done offsets after a hole wait in ``_Gaps.ready``.
        """
        acked = self._acked[tp]
        if not acked:
            return None
        gaps = cast(_Gaps, self._gap[tp])
        pending = gaps.pending
        done = gaps.ready
        for o in acked:
            done.append((pending.pop(o, o), o + 1))
        self._acked_index[tp].difference_update(acked)
        acked.clear()
        runs = _merged(done)
        committed = self._committed_offset[tp]
        first = runs[0][0]
        # Not after the committed offset (Faust's test), nor after a message handed
        # out and not yet acked (no committed offset yet, or acks out of order).
        if (committed and first - committed > 1) or any(o < first for o in pending):
            gaps.ready = runs
            return None
        gaps.ready = runs[1:]
        end = runs[0][1]
        for o in [o for o in pending if o < end]:  # re-read before a seek back
            del pending[o]
        return end

    def _flowing(self, generation_id: int) -> bool:
        # Faust's getmany stops handing out messages as soon as either changes.
        return self.flow_active and self.app.consumer_generation_id == generation_id

    def _batch_message(self, tp: TP, records: Sequence[Any]) -> Message:
        last = records[-1]
        timestamp = last.timestamp
        return ConsumerMessage(
            tp.topic,
            tp.partition,
            last.offset,
            cast(float, None if timestamp is None else timestamp / 1000.0),  # as Faust does
            last.timestamp_type,
            last.headers,
            None,
            cast(bytes, RecordBatch(_envelopes(tp, records))),  # Faust's raw codec keeps it
            None,
            0,
            sum(r.serialized_value_size for r in records),
            tp,
            generation_id=self.app.consumer_generation_id,
        )


def _envelopes(tp: TP, records: Iterable[Any]) -> Iterable[Envelope]:
    topic, partition = tp.topic, tp.partition
    return (
        Envelope(
            topic,
            partition,
            r.offset,
            r.key,
            r.value,
            None if r.timestamp is None else r.timestamp / 1000.0,
        )
        for r in records
    )


class TwinTransport(faust_aiokafka.Transport):
    """faust-streaming's aiokafka transport, consuming with :class:`TwinConsumer`."""

    Consumer = TwinConsumer

    def __init__(
        self,
        url: Any,
        app: faust.App,
        *,
        eager_delivery: bool,
        fetch_max_wait_ms: int,
        busy_fetch_max_wait_ms: int,
        fetch_min_bytes: int = 1,
        batch_topics: Iterable[str] = (),
        batch_max: int = 500,
    ) -> None:
        super().__init__(url, app)
        self.fetch_min_bytes = fetch_min_bytes
        self.eager_delivery = eager_delivery
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.busy_fetch_max_wait_ms = busy_fetch_max_wait_ms
        self.batch_topics = frozenset(batch_topics)
        self.batch_max = batch_max


def install(
    app: faust.App,
    *,
    eager_delivery: bool = True,
    fetch_max_wait_ms: int = 10,
    busy_fetch_max_wait_ms: int = 500,
    fetch_min_bytes: int = 1,
    batch_topics: Iterable[str] = (),
    batch_max: int = 500,
    fast_fetch_decode: bool = True,
) -> None:
    """Make ``app`` consume through :class:`TwinTransport` (before it starts).

    ``App.transport`` is a settable property of faust-streaming's App; the
    consumer is created from it when the app first needs one. Records of
    ``batch_topics`` reach their agent as :class:`RecordBatch` values of at
    most ``batch_max`` records; only an agent that expects them may subscribe.
    ``fast_fetch_decode``: aiokafka's fetch requests encoded and responses decoded
    by generated code (:mod:`stream.fast_protocol`; process-wide, and kept once
    installed).
    """
    if fast_fetch_decode:
        fast_protocol.install()
    app.transport = TwinTransport(
        app.conf.broker_consumer,
        app,
        eager_delivery=eager_delivery,
        fetch_max_wait_ms=fetch_max_wait_ms,
        busy_fetch_max_wait_ms=busy_fetch_max_wait_ms,
        fetch_min_bytes=fetch_min_bytes,
        batch_topics=batch_topics,
        batch_max=batch_max,
    )
