"""How the worker consumes (stream.faust_consumer): a short fetch wait, and eager
delivery with the same results as mode's wait_first, without its tasks."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Iterator
from typing import Any

import aiokafka
import faust
import pytest

from stream.faust_consumer import Resumed, TwinConsumer, TwinTransport, install


@pytest.fixture(autouse=True)
def _close_thread_loops(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close the event loops a test made and left unstarted.

    A Faust consumer builds its thread's loop (mode's ``ServiceThread``) when it is
    built, and closes it only when the thread stops; these tests never start it, and
    the loop's sockets would warn as unclosed at a later test's ``gc.collect()``.
    """
    made: list[asyncio.AbstractEventLoop] = []
    new_event_loop = asyncio.new_event_loop

    def tracked() -> asyncio.AbstractEventLoop:
        loop = new_event_loop()
        made.append(loop)
        return loop

    monkeypatch.setattr(asyncio, "new_event_loop", tracked)
    yield
    for loop in made:
        if not loop.is_running() and not loop.is_closed():
            loop.close()


@pytest.fixture
async def consumer() -> TwinConsumer:
    # Built inside the running loop, as in a worker (mode binds services to a loop).
    app = faust.App("eager-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    install(app)
    assert isinstance(app.transport, TwinTransport)
    made = app.consumer  # built from the transport; nothing connects until started
    assert isinstance(made, TwinConsumer)
    return made


async def _value(x: int) -> int:
    return x * 2


async def _waits_for(event: asyncio.Event, log: list[str]) -> str:
    try:
        await event.wait()
        log.append("woke")
        return "late"
    except asyncio.CancelledError:
        log.append("cancelled")
        raise


async def test_the_worker_consumer_gets_the_short_fetch_wait() -> None:
    app = faust.App("fetch-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    install(app, fetch_max_wait_ms=7, fetch_min_bytes=2048)
    consumer = app.consumer
    worker = consumer._thread._create_worker_consumer(app.transport)
    plain = aiokafka.AIOKafkaConsumer(fetch_max_wait_ms=123, fetch_min_bytes=321)
    try:
        assert worker._fetch_max_wait_ms == 7
        assert worker._fetch_min_bytes == 2048
        # The attributes are the ones aiokafka hands its fetcher on start().
        assert plain._fetch_max_wait_ms == 123
        assert plain._fetch_min_bytes == 321
    finally:
        await worker.stop()
        await plain.stop()


async def test_eager_delivery_can_be_turned_off() -> None:
    app = faust.App("off-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    install(app, eager_delivery=False)
    consumer = app.consumer
    hits = TwinConsumer.eager_hits
    results = await consumer.wait_first(_value(2), consumer.suspend_flow.wait())
    assert results.results == [4] and TwinConsumer.eager_hits == hits


async def test_a_coroutine_that_does_not_suspend_finishes_without_a_task(
    consumer: TwinConsumer,
) -> None:
    hits = TwinConsumer.eager_hits
    first = _value(21)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unawaited second coroutine would warn
        results = await consumer.wait_first(first, consumer.suspend_flow.wait())
        gc.collect()
    assert results.done == [first]
    assert results.results == [42]
    assert results.stopped is False
    assert TwinConsumer.eager_hits == hits + 1


async def test_a_suspended_coroutine_is_resumed_and_reported_as_itself(
    consumer: TwinConsumer,
) -> None:
    event = asyncio.Event()
    log: list[str] = []
    first = _waits_for(event, log)
    hits = TwinConsumer.eager_hits
    asyncio.get_running_loop().call_later(0.05, event.set)
    results = await consumer.wait_first(first, consumer.suspend_flow.wait())
    assert results.done == [first]
    assert results.results == ["late"]
    assert log == ["woke"]
    assert TwinConsumer.eager_hits == hits


async def test_suspending_flow_interrupts_a_blocked_delivery(consumer: TwinConsumer) -> None:
    log: list[str] = []
    blocked = _waits_for(asyncio.Event(), log)  # never set: a full queue
    flow = consumer.suspend_flow.wait()
    asyncio.get_running_loop().call_later(0.05, consumer.suspend_flow.set)
    results = await consumer.wait_first(blocked, flow)
    assert results.done == [flow]
    await asyncio.sleep(0)  # let the cancellation reach the coroutine
    assert log == ["cancelled"]


async def test_while_flow_is_suspended_mode_path_is_taken(consumer: TwinConsumer) -> None:
    consumer.suspend_flow.set()
    hits = TwinConsumer.eager_hits
    results = await consumer.wait_first(_value(1), consumer.suspend_flow.wait())
    assert TwinConsumer.eager_hits == hits
    assert results.stopped is False and results.done  # mode's own result


async def test_errors_propagate_before_and_after_suspending(consumer: TwinConsumer) -> None:
    async def fails_now() -> None:
        raise ValueError("now")

    async def fails_later() -> None:
        await asyncio.sleep(0.01)
        raise KeyError("later")

    with pytest.raises(ValueError, match="now"):
        await consumer.wait_first(fails_now(), consumer.suspend_flow.wait())
    with pytest.raises(KeyError, match="later"):
        await consumer.wait_first(fails_later(), consumer.suspend_flow.wait())


async def test_resumed_delivers_what_its_awaiter_sends_and_throws() -> None:
    async def twice(q: asyncio.Queue[int]) -> int:
        return await q.get() + await q.get()

    q: asyncio.Queue[int] = asyncio.Queue()
    coro = twice(q)
    pending = coro.send(None)  # blocks on the empty queue
    task: asyncio.Task[Any] = asyncio.ensure_future(Resumed(coro, pending))
    q.put_nowait(2)
    q.put_nowait(3)
    assert await task == 5

    coro = twice(q)
    pending = coro.send(None)
    task = asyncio.ensure_future(Resumed(coro, pending))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_fetch_wait_follows_the_backlog(monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.transport.drivers import aiokafka as faust_aiokafka

    from stream.faust_consumer import BUSY_RECORDS

    app = faust.App("adaptive-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    install(app, fetch_max_wait_ms=10, busy_fetch_max_wait_ms=500, fetch_min_bytes=4096)
    thread = app.consumer._thread
    sizes = iter([BUSY_RECORDS, 3, BUSY_RECORDS + 1, 0, 1])

    async def fetched(*_: Any, **__: Any) -> dict[str, list[int]]:
        # Stands in for aiokafka's records (only the sizes are read).
        return {"tp": list(range(next(sizes)))}

    monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "_fetch_records", fetched)

    class Fetcher:
        _fetch_max_wait_ms = 10
        _fetch_min_bytes = 4096

    class Consumer:
        _fetcher = Fetcher()

    waits = []
    for _ in range(5):
        await thread._fetch_records(Consumer(), set())
        waits.append((Consumer._fetcher._fetch_max_wait_ms, Consumer._fetcher._fetch_min_bytes))
    # Live: hold a fetch until 4 KiB or 10 ms; backlog and idle: never hold for data
    # (the 500 ms only bounds a fetch of partitions that have none).
    assert waits == [(500, 1), (10, 4096), (500, 1), (500, 1), (10, 4096)]


def _record(topic: str, partition: int, offset: int) -> Any:
    from aiokafka.structs import ConsumerRecord

    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=1_700_000_000_000 + offset,
        timestamp_type=0,
        key=b"k%d" % offset,
        value=b"v%d" % offset,
        checksum=None,
        serialized_key_size=2,
        serialized_value_size=3,
        headers=(),
    )


async def test_batch_topics_arrive_as_one_message_per_partition_and_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from faust.types import TP

    from stream.faust_consumer import RecordBatch
    from stream.ports import Envelope

    app = faust.App("batch-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    install(app, batch_topics=["vitals"], batch_max=4)
    consumer = app.consumer
    vitals0, vitals1, other = TP("vitals", 0), TP("vitals", 1), TP("acks", 0)
    records = {
        vitals0: [_record("vitals", 0, o) for o in range(10, 20)],
        other: [_record("acks", 0, o) for o in range(2)],
        vitals1: [_record("vitals", 1, 5)],
    }

    async def next_records(_timeout: float) -> Any:
        return records, None

    monkeypatch.setattr(consumer, "_wait_next_records", next_records)
    monkeypatch.setattr(consumer, "highwater", lambda tp: 100)  # needs a started thread
    got = [(tp, m) async for tp, m in consumer.getmany(timeout=1.0)]

    batches = [(tp, m) for tp, m in got if isinstance(m.value, RecordBatch)]
    # 10 records of vitals-0 in chunks of at most 4, each message at its last offset.
    assert [(tp, m.offset, len(m.value)) for tp, m in batches] == [
        (vitals0, 13, 4),
        (vitals0, 17, 4),
        (vitals0, 19, 2),
        (vitals1, 5, 1),
    ]
    delivered = [env for _, m in batches for env in m.value]
    assert [e.offset for e in delivered if e.partition == 0] == list(range(10, 20))
    assert delivered[0] == Envelope("vitals", 0, 10, b"k10", b"v10")
    assert batches[0][1].timestamp == pytest.approx(1_700_000_000.013)
    # Other topics: one message per record, as Faust delivers them.
    singles = [(tp, m.offset, m.value) for tp, m in got if tp == other]
    assert singles == [(other, 0, b"v0"), (other, 1, b"v1")]


async def test_without_batch_topics_every_record_is_its_own_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from faust.types import TP

    app = faust.App("nobatch-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    install(app)
    consumer = app.consumer
    vitals0 = TP("vitals", 0)

    async def next_records(_timeout: float) -> Any:
        return {vitals0: [_record("vitals", 0, o) for o in range(3)]}, None

    monkeypatch.setattr(consumer, "_wait_next_records", next_records)
    monkeypatch.setattr(consumer, "highwater", lambda tp: 100)  # needs a started thread
    got = [(tp, m.offset, m.value) async for tp, m in consumer.getmany(timeout=1.0)]
    assert got == [(vitals0, 0, b"v0"), (vitals0, 1, b"v1"), (vitals0, 2, b"v2")]


def faust_aiokafka_consumer() -> type:
    from faust.transport.drivers import aiokafka as faust_aiokafka

    return faust_aiokafka.Consumer


class _CommitSim:
    """One partition's batch messages, acks and commits, kept by TwinConsumer's
    bookkeeping and by Faust's (interval tree, offset lists) side by side."""

    def __init__(self, consumer: TwinConsumer, case: int, start: int | None, first: int) -> None:
        from faust.types import TP
        from intervaltree import IntervalTree

        self.consumer, self.case, self.tp = consumer, case, TP("vitals", case)
        self.states = {
            "ours": (consumer._gap.default_factory(), [], set()),
            "faust": (IntervalTree(), [], set()),
        }
        self.committed = {"ours": start or None, "faust": start or None}  # as perform_seek
        self.read: int | None = start or None  # perform_seek's read offset: the committed one
        self.first_record = self.offset = first
        self.delivered: dict[int, int] = {}  # message offset -> its first record
        self.unacked: list[int] = []
        self.acked_records: set[int] = set(range(first))
        self.checked = 0

    async def _step(self, name: str, call: str, *args: int) -> None:
        consumer, tp = self.consumer, self.tp
        gap, acked, index = self.states[name]
        consumer._gap[tp], consumer._acked[tp], consumer._acked_index[tp] = gap, acked, index
        consumer._committed_offset[tp] = self.committed[name]
        impl = TwinConsumer if name == "ours" else faust_aiokafka_consumer()
        if call == "gap":
            await impl._add_gap(consumer, tp, *args)
            return
        result = impl._new_offset(consumer, tp)
        if result is not None and consumer._should_commit(tp, result):
            self.committed[name] = result

    async def deliver(self, step: int) -> None:
        """A batch message: records up to ``offset``, as Faust's getmany loop hands it out."""
        self.offset += step
        first = max(self.delivered) + 1 if self.delivered else self.first_record
        self.delivered[self.offset] = first
        self.states["ours"][0].pending[self.offset] = first  # as TwinConsumer.getmany does
        read = self.read
        if self.offset - (read or 0) > 1 and read:  # Faust's condition (its getmany loop)
            for name in self.states:
                await self._step(name, "gap", read + 1, self.offset)
        self.unacked.append(self.offset)
        self.read = self.offset

    def ack(self, o: int) -> None:
        self.unacked.remove(o)
        self.acked_records.update(range(self.delivered[o], o + 1))
        for _gap, acked, index in self.states.values():
            if o not in index:  # as Faust's ack()
                index.add(o)
                acked.append(o)

    async def commit(self, in_order: bool) -> None:
        before = self.committed["ours"] or 0
        await self._step("ours", "commit")
        await self._step("faust", "commit")
        ours = self.committed["ours"] or 0
        assert ours >= before, self.case
        assert all(o in self.acked_records for o in range(ours)), self.case  # none unacked
        if in_order:
            records = range(self.first_record, self.offset + 2)
            truth = min(o for o in records if o not in self.acked_records)
            assert ours == (truth if truth > self.first_record else before), self.case
            assert ours >= (self.committed["faust"] or 0), self.case
        self.checked += 1


@pytest.mark.parametrize("in_order", [True, False])
async def test_commits_reach_what_is_acked_without_faust_s_offset_lists(
    consumer: TwinConsumer, in_order: bool
) -> None:
    """Batch messages delivered as Faust's getmany loop delivers them (after a seek
    to the committed offset; each message standing for the records since the
    previous one), acked, committed now and then. Acked in order (as the agent
    acks), each commit reaches the first record not acked yet, and never lags
    Faust's own bookkeeping. In any order, nothing is committed past a record
    whose message is not acked (Faust would: it counts a gap done once any later
    offset is acked), commits never go back, and once all are acked everything is."""
    import random

    rng = random.Random(5)
    checked = 0
    for case in range(300):
        start = rng.choice([None, 0, 2, 7])  # committed offset: the next to read
        sim = _CommitSim(consumer, case, start, start if start else rng.choice([0, 3]))
        for _ in range(rng.randrange(3, 30)):
            move = rng.random()
            if move < 0.5:
                await sim.deliver(rng.randrange(0 if not sim.delivered else 1, 6))
            elif move < 0.8 and sim.unacked:  # one is acked: the oldest, or any
                sim.ack(sim.unacked[0 if in_order else rng.randrange(len(sim.unacked))])
            else:
                await sim.commit(in_order)
        for o in list(sim.unacked):
            sim.ack(o)
        await sim.commit(in_order)
        if sim.delivered:  # all acked: all committed
            assert sim.committed["ours"] == max(sim.delivered) + 1, case
        checked += sim.checked
    assert checked > 1000
