"""stream.autopipeline on a real Redis: one round trip per loop turn, a reply (or an
error) per call."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from stream import metrics
from stream.autopipeline import AutoPipeline
from tests.conftest import Services

pytestmark = pytest.mark.integration


def _round_trips() -> float:
    return metrics.REDIS_REQUESTS._value.get()


@pytest.fixture
async def client(services: Services) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(services.redis_url)
    try:
        yield c
    finally:
        await c.aclose()


async def test_calls_of_one_turn_share_a_round_trip(client: aioredis.Redis) -> None:
    auto = AutoPipeline(client)
    key = f"t{uuid.uuid4().hex[:8]}:"
    await client.set(key + "a", b"1")
    await client.set(key + "s", b"text")
    before = _round_trips()
    results = await asyncio.gather(
        auto.execute("MGET", key + "a", key + "missing"),
        auto.execute("INCRBY", key + "s", 1),  # not an integer: this call fails alone
        auto.execute("SET", key + "b", b"2"),
        return_exceptions=True,
    )
    assert _round_trips() - before == 1
    assert results[0] == [b"1", None]
    assert isinstance(results[1], ResponseError)
    assert await client.get(key + "b") == b"2"
    # Calls in different turns go separately.
    before = _round_trips()
    await auto.execute("GET", key + "a")
    await auto.execute("GET", key + "b")
    assert _round_trips() - before == 2


async def test_a_script_redis_lacks_is_loaded_once(client: aioredis.Redis) -> None:
    auto = AutoPipeline(client)
    source = f"return ARGV[1] .. '-{uuid.uuid4().hex}'"  # never loaded before
    sha = hashlib.sha1(source.encode()).hexdigest()
    assert await auto.evalsha(source, sha, [], ["x"]) == f"x-{source[-33:-1]}".encode()
    assert (await client.script_exists(sha)) == [True]


async def test_a_failed_round_trip_fails_every_call_in_it() -> None:
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    auto = AutoPipeline(dead)
    try:
        results = await asyncio.gather(
            auto.execute("GET", "a"), auto.execute("GET", "b"), return_exceptions=True
        )
    finally:
        await dead.aclose()
    assert all(isinstance(r, RedisConnectionError | OSError) for r in results), results
