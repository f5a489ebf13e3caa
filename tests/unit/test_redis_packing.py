"""The store's Redis connections pack small commands with hiredis: same bytes as redis-py's."""

from __future__ import annotations

import os

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError
from redis.utils import HIREDIS_AVAILABLE

from stream.redis_store import HIREDIS_PACK_MOST_ARGS, RedisTwinStore, c_packing, join_pack

pytestmark = pytest.mark.skipif(not HIREDIS_AVAILABLE, reason="hiredis is not installed")


def _commit_args(twins: int) -> list[object]:
    """An EVALSHA shaped like a batch commit: keys, offsets, floats, alerts, twin blobs."""
    keys = [f"ts:{{p3}}:k{i}" for i in range(7 + twins)]
    args: list[object] = ["EVALSHA", "a" * 40, len(keys), *keys, 7, 1, "twin.vitals", 12345]
    args += [2, b'{"alert_id": "x"}', "1766000000.25", 1766000000.125, -0.0, 3.0e-7]
    for i in range(twins):
        args += [f"p{i}", "0", os.urandom(300 + 97 * i % 4000)]
    return args


@pytest.mark.parametrize("twins", [0, 2, 20, 64, 70, 400])
def test_the_c_packer_writes_what_redis_py_writes(twins: int) -> None:
    args = _commit_args(twins)
    plain, fast = Connection(), c_packing(Connection)()
    packed = fast.pack_command(*args)
    assert b"".join(packed) == b"".join(plain.pack_command(*args))
    assert len(packed) == 1  # one buffer: hiredis, or join_pack for large commands
    # Pipelines pack through pack_command too.
    commands = [(*args,), ("GET", "k"), ("ZRANGEBYSCORE", "z", "-inf", 1.5, "LIMIT", 0, 10)]
    assert b"".join(fast.pack_commands(commands)) == b"".join(plain.pack_commands(commands))


def test_the_c_packer_rejects_what_redis_py_rejects() -> None:
    with pytest.raises(DataError):
        c_packing(Connection)().pack_command("SET", "k", None)
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", None)


def test_each_connection_kind_keeps_its_own_behaviour() -> None:
    for base in (Connection, SSLConnection, UnixDomainSocketConnection):
        packing = c_packing(base)
        assert issubclass(packing, base) and packing is not base
        assert c_packing(base) is packing  # one class per base
        assert c_packing(packing) is packing  # not wrapped twice


def test_the_store_connects_with_the_c_packer() -> None:
    store = RedisTwinStore("redis://127.0.0.1:1/0", partitions=2)  # no connection is made
    assert store.redis.connection_pool.connection_class is c_packing(Connection)
    tls = RedisTwinStore("rediss://127.0.0.1:1/0", partitions=2)
    assert issubclass(tls.redis.connection_pool.connection_class, SSLConnection)


def test_large_commands_with_other_argument_types_go_to_redis_pys_packer() -> None:
    # join_pack knows bytes, str, int and float; a memoryview (which redis-py
    # accepts) sends the command to redis-py's own packer, in its chunks.
    args = [*_commit_args(HIREDIS_PACK_MOST_ARGS), memoryview(b"blob")]
    assert join_pack(args, "utf-8", "strict") is None
    packed = c_packing(Connection)().pack_command(*args)
    assert len(packed) > 1
    assert b"".join(packed) == b"".join(Connection().pack_command(*args))
    # A command name with a space is split by redis-py: not join_pack's to pack.
    big = ["CONFIG SET", *(["x"] * HIREDIS_PACK_MOST_ARGS)]
    assert join_pack(big, "utf-8", "strict") is None
    assert b"".join(c_packing(Connection)().pack_command(*big)) == b"".join(
        Connection().pack_command(*big)
    )
