"""stream.batching.ready_batches: a batch is what is ready, at most ``most``,
acked only once the caller comes back for the next one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from stream.batching import ready_batches

_END = object()


class FakeStream:
    """The part of a Faust stream that ready_batches uses: events() and ack()."""

    def __init__(self) -> None:
        self.enable_acks = True
        self.acked: list[Any] = []
        self.source: asyncio.Queue[Any] = asyncio.Queue()

    async def events(self) -> AsyncIterator[Any]:
        while True:
            item = await self.source.get()
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    async def ack(self, event: Any) -> bool:
        self.acked.append(event)
        return True

    def feed(self, *items: Any) -> None:
        for item in items:
            self.source.put_nowait(item)


async def test_what_is_ready_is_one_batch_of_at_most_most() -> None:
    stream = FakeStream()
    stream.feed(*range(10), _END)
    batches = [b async for b in ready_batches(stream, most=4)]
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert stream.acked == list(range(10))


async def test_events_arriving_during_a_batch_make_the_next_batch() -> None:
    stream = FakeStream()
    stream.feed("a")
    batches = ready_batches(stream, most=100)
    assert await anext(batches) == ["a"]  # not held back waiting for more
    stream.feed("b", "c", "d")  # while "a" is being processed
    await asyncio.sleep(0.01)
    assert await anext(batches) == ["b", "c", "d"]
    await batches.aclose()


async def test_a_batch_is_acked_only_when_the_next_is_asked_for() -> None:
    stream = FakeStream()
    stream.feed(1, 2)
    batches = ready_batches(stream, most=10)
    assert await anext(batches) == [1, 2]
    assert stream.enable_acks is False  # Faust must not ack on its own meanwhile
    assert stream.acked == []  # still being processed
    stream.feed(3)
    assert await anext(batches) == [3]
    assert stream.acked == [1, 2]
    await batches.aclose()
    assert stream.enable_acks is True  # restored
    assert stream.acked == [1, 2]  # an unfinished batch is not acked


async def test_no_more_than_most_events_are_read_ahead() -> None:
    stream = FakeStream()
    stream.feed(*range(20))
    batches = ready_batches(stream, most=3)
    assert await anext(batches) == [0, 1, 2]
    await asyncio.sleep(0.01)
    # 3 waiting in the batching queue, 1 held by its reader: the rest stays in the stream.
    assert stream.source.qsize() == 20 - 3 - 3 - 1
    await batches.aclose()


async def test_linger_waits_for_more_after_the_first_event() -> None:
    stream = FakeStream()
    stream.feed(1)

    async def later() -> None:
        for i in (2, 3):
            await asyncio.sleep(0.01)
            stream.feed(i)

    feeder = asyncio.ensure_future(later())
    batches = ready_batches(stream, most=3, linger_s=5.0)
    started = asyncio.get_running_loop().time()
    assert await anext(batches) == [1, 2, 3]
    # Full before the linger ran out: it did not wait the 5 s.
    assert asyncio.get_running_loop().time() - started < 2.0
    await feeder
    await batches.aclose()


async def test_linger_gives_up_after_its_time() -> None:
    stream = FakeStream()
    stream.feed(1)
    batches = ready_batches(stream, most=10, linger_s=0.05)
    started = asyncio.get_running_loop().time()
    assert await anext(batches) == [1]
    assert asyncio.get_running_loop().time() - started >= 0.05
    await batches.aclose()


async def test_the_streams_error_comes_after_what_was_read() -> None:
    stream = FakeStream()
    stream.feed(1, 2, RuntimeError("broker gone"))
    got: list[list[Any]] = []
    with pytest.raises(RuntimeError, match="broker gone"):
        async for batch in ready_batches(stream, most=10):
            got.append(batch)
    assert got == [[1, 2]]
    assert stream.acked == [1, 2]


async def test_most_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await anext(ready_batches(FakeStream(), most=0))
