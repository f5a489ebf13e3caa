"""The Redis backend of the twin store: one atomic Lua commit per micro-batch and partition.

Redis key layout (every key of a partition shares the hash tag ``{pN}`` so a
Redis Cluster can run the commit script in one slot)::

    <prefix>:{p3}:epoch          string  owner epoch
    <prefix>:{p3}:offsets        hash    topic -> last applied offset
    <prefix>:{p3}:outbox         list    alerts committed but not yet confirmed sent
    <prefix>:{p3}:outbox_acked   string  outputs ever acknowledged: the absolute position
                                         of the outbox's head (acks name a position, so a
                                         repeated ack trims nothing more)
    <prefix>:{p3}:patients       set     patient ids with a twin in this partition
    <prefix>:{p3}:lastvitals     zset    patient id -> event time of newest vitals
                                         (removed while a stale-data alert is open)
    <prefix>:{p3}:counters       hash    consumed, applied, duplicates, dead.<reason>, ...
                                         (moved in the same atomic step as the twins)
    <prefix>:{p3}:model:<name>   string  checkpoint of a partition's shared model
    <prefix>:model:<name>        string  checkpoint of a model shared by all partitions
    <prefix>:{p3}:twin:<patient> string  encoded twin

Model checkpoints are written every few seconds, not in the batch's atomic
step: after a crash a shared statistical model may have missed, or learned
twice, the last few seconds of examples; twins and offsets never do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import ResponseError
from redis.utils import HIREDIS_AVAILABLE

from stream import metrics
from stream.autopipeline import AutoPipeline
from stream.store import (
    BatchCommit,
    PartitionClaim,
    StaleEpochError,
    StoreError,
    StoreRolledBackError,
)

__all__ = ["RedisTwinStore"]


# KEYS: epoch, offsets, outbox, patients, lastvitals, counters, outbox_acked, twin keys...
# ARGV: epoch, n_offsets, (topic, offset)*, n_expected, (topic, offset)*, n_outbox, outbox*,
#       n_lastvitals, (patient_id, score or "-")*, n_counters, (name, increment)*,
#       (patient_id, twin)*
_COMMIT_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('STALE_EPOCH')
end
local n_off = tonumber(ARGV[2])
local i = 3 + 2 * n_off
local n_exp = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_exp do
  local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '-1')
  if cur < tonumber(ARGV[i + 1]) then
    return redis.error_reply('ROLLED_BACK')
  elseif cur > tonumber(ARGV[i + 1]) then
    return redis.error_reply('STALE_OFFSET')
  end
  i = i + 2
end
local rest = i
i = 3
for _ = 1, n_off do
  local cur = redis.call('HGET', KEYS[2], ARGV[i])
  if cur and tonumber(cur) >= tonumber(ARGV[i + 1]) then
    return redis.error_reply('STALE_OFFSET')
  end
  i = i + 2
end
i = 3
for _ = 1, n_off do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2
end
i = rest
local n_out = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_out do
  redis.call('RPUSH', KEYS[3], ARGV[i]); i = i + 1
end
local n_lv = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_lv do
  if ARGV[i + 1] == '-' then
    redis.call('ZREM', KEYS[5], ARGV[i])
  else
    redis.call('ZADD', KEYS[5], ARGV[i + 1], ARGV[i])
  end
  i = i + 2
end
local n_c = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_c do
  redis.call('HINCRBY', KEYS[6], ARGV[i], ARGV[i + 1]); i = i + 2
end
for k = 8, #KEYS do
  if ARGV[i + 1] == '1' then
    redis.call('SADD', KEYS[4], ARGV[i])
  end
  redis.call('SET', KEYS[k], ARGV[i + 2])
  i = i + 3
end
return tonumber(redis.call('GET', KEYS[7]) or '0') + redis.call('LLEN', KEYS[3])
"""

# KEYS: epoch, outbox, outbox_acked. ARGV: epoch, upto (absolute position)
_ACK_OUTBOX_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2]) - tonumber(redis.call('GET', KEYS[3]) or '0')
if n <= 0 then return 0 end
redis.call('LTRIM', KEYS[2], n, -1)
redis.call('SET', KEYS[3], ARGV[2])
return 1
"""


HIREDIS_PACK_MOST_ARGS = 200
"""Commands of up to this many arguments are packed by hiredis (see :func:`c_packing`)."""


def join_pack(args: Sequence[Any], encoding: str, errors: str) -> list[bytes] | None:
    """``args`` as one RESP array in one buffer, as redis-py packs them; None if an
    argument is of a type redis-py's encoder converts some other way (or refuses),
    or the command name has a space (redis-py splits it).

    >>> join_pack(["SET", "k", b"v", 7, 0.5], "utf-8", "strict")
    [b'*5\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\nv\\r\\n$1\\r\\n7\\r\\n$3\\r\\n0.5\\r\\n']
    >>> join_pack(["SET", "k", True], "utf-8", "strict") is None
    True
    """
    if not args or (type(args[0]) is str and " " in args[0]):
        return None
    out = [b"*%d\r\n" % len(args)]
    add = out.append
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            data = arg
        elif kind is str:
            data = arg.encode(encoding, errors)
        elif kind is int:  # not bool: redis-py refuses it
            data = b"%d" % arg
        elif kind is float:
            data = repr(arg).encode()
        else:
            return None
        add(b"$%d\r\n" % len(data))
        add(data)
        add(b"\r\n")
    return [b"".join(out)]


_C_PACKING: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def c_packing(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """``base`` packing its commands of up to :data:`HIREDIS_PACK_MOST_ARGS` arguments
    with hiredis's C packer, as redis-py's own synchronous connections do.

    redis-py's asyncio connections pack every command in Python, re-joining the
    command's buffer for each argument until it passes 6,000 bytes. A live feed's
    commit (a few twins and alerts, ~40 arguments) took 41 us to pack, hiredis 13 us:
    about 5 % of a live worker's main thread (py-spy). Past a few hundred KB (a
    backlog's commit of hundreds of twins) hiredis became slower than Python's
    chunked packing (900 arguments, 450 KB: 1,042 against 540 us), so large
    commands are not given to it. Without hiredis, ``base`` itself.

    redis-py 8.2 packs its asyncio commands with hiredis too, large ones included.
    Large commands here go to :func:`join_pack`, which writes the same bytes
    2-4x faster than redis-py's Python packer (``_pack_command_python``, which
    older versions' ``pack_command`` is) and at most as slow as hiredis (timed on
    commit-shaped commands of 10-500 twins of 1.3 KB: 31 against 113 and 34 us
    for 10, 534 against 2,100 and 1,162 us for 250); arguments it does not
    know go to redis-py's packer.
    """
    if not HIREDIS_AVAILABLE or base in _C_PACKING.values():
        return base
    if base in _C_PACKING:
        return _C_PACKING[base]
    packer = HiredisRespSerializer()  # type: ignore[no-untyped-call,unused-ignore]
    python_packer = getattr(base, "_pack_command_python", None)

    class CPacking(base):  # type: ignore[valid-type,misc]
        def pack_command(self, *args: Any) -> list[bytes]:
            if len(args) <= HIREDIS_PACK_MOST_ARGS:
                return cast(list[bytes], packer.pack(*args))
            encoder = self.encoder
            joined = join_pack(args, encoder.encoding, encoder.encoding_errors)
            if joined is not None:
                return joined
            if python_packer is not None:
                return cast(list[bytes], python_packer(self, *args))
            return cast(list[bytes], super().pack_command(*args))

    CPacking.__name__ = CPacking.__qualname__ = f"CPacking{base.__name__}"
    _C_PACKING[base] = CPacking
    return CPacking


class _CountingRedis(aioredis.Redis):
    """A client that counts its requests (``metrics.observe_redis_request``): every
    command and script call is one round trip; pipelines are counted where executed."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        metrics.observe_redis_request()
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


class RedisTwinStore:
    """Twins in Redis, one atomic Lua commit per micro-batch and partition."""

    def __init__(
        self, url: str, partitions: int, prefix: str = "ts", password: str | None = None
    ) -> None:
        self.partitions = partitions
        self.prefix = prefix
        # Timeouts turn a stalled Redis (SIGSTOP, network partition) into errors
        # that the updater retries, instead of a forever-hung agent.
        extra: dict[str, Any] = {"password": password} if password is not None else {}
        self.redis = _CountingRedis.from_url(
            url,
            **extra,
            decode_responses=False,
            socket_timeout=5.0,
            socket_connect_timeout=3.0,
            health_check_interval=10,
        )
        pool = self.redis.connection_pool
        pool.connection_class = c_packing(pool.connection_class)  # before any connection
        self._commit = self.redis.register_script(_COMMIT_LUA)
        self._ack = self.redis.register_script(_ACK_OUTBOX_LUA)
        # The batch's hot path (cold-twin loads, commits, outbox acks) of all
        # partitions, one round trip per step (stream.autopipeline).
        self._auto = AutoPipeline(self.redis)

    def key(self, partition: int, name: str) -> str:
        """The key ``name`` of ``partition``, with the partition's hash tag."""
        return f"{self.prefix}:{{p{partition}}}:{name}"

    def twin_key(self, partition: int, patient_id: str) -> str:
        return self.key(partition, f"twin:{patient_id}")

    async def claim_partition(self, partition: int) -> PartitionClaim:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.key(partition, "epoch"))
            pipe.hgetall(self.key(partition, "offsets"))
            pipe.lrange(self.key(partition, "outbox"), 0, -1)
            pipe.get(self.key(partition, "outbox_acked"))
            metrics.observe_redis_request(commands=4)
            epoch, offsets, outbox, acked = await pipe.execute()
        return PartitionClaim(
            partition,
            int(epoch),
            {k.decode(): int(v) for k, v in offsets.items()},
            list(outbox),
            int(acked or 0),
        )

    async def load_twins(self, partition: int, patient_ids: Sequence[str]) -> dict[str, bytes]:
        if not patient_ids:
            return {}
        keys = [self.twin_key(partition, p) for p in patient_ids]
        values = cast(list[bytes | None], await self._auto.execute("MGET", *keys))
        return {p: v for p, v in zip(patient_ids, values, strict=True) if v is not None}

    async def commit_batch(self, batch: BatchCommit) -> int:
        """Commit one batch in one Lua script; return the outbox's end (absolute position)."""
        partition = batch.partition
        names = ("epoch", "offsets", "outbox", "patients", "lastvitals", "counters", "outbox_acked")
        keys = [self.key(partition, n) for n in names]
        args: list[str | int | float | bytes] = [batch.epoch, len(batch.offsets)]
        for topic, offset in batch.offsets.items():
            args += [topic, offset]
        args.append(len(batch.expected_offsets))
        for topic, offset in batch.expected_offsets.items():
            args += [topic, offset]
        args.append(len(batch.outbox))
        args.extend(batch.outbox)
        args.append(len(batch.last_vitals))
        for pid, at in batch.last_vitals.items():
            args += [pid, "-" if at is None else repr(float(at))]
        counters = {k: v for k, v in batch.counters.items() if v}
        args.append(len(counters))
        for name, n in counters.items():
            args += [name, n]
        new_ids = batch.new_ids
        for pid, raw in batch.twins.items():
            keys.append(self.twin_key(partition, pid))
            # Only a new twin joins the partition's patient set (saves a command per twin).
            args += [pid, "1" if new_ids is None or pid in new_ids else "0", raw]
        try:
            script = self._commit
            return int(await self._auto.evalsha(script.script, script.sha, keys, args))
        except ResponseError as exc:
            if "ROLLED_BACK" in str(exc):
                raise StoreRolledBackError(f"partition {partition}: {exc}") from exc
            if "STALE_" in str(exc):
                raise StaleEpochError(f"partition {partition}: {exc}") from exc
            raise StoreError(str(exc)) from exc

    def _blob_key(self, name: str, partition: int | None) -> str:
        if partition is None:
            return f"{self.prefix}:model:{name}"
        return self.key(partition, f"model:{name}")

    async def applied_offsets(self, partition: int) -> dict[str, int]:
        """The partition's last applied offset per topic (read only, no claim)."""
        raw = cast(dict[bytes, bytes], await self.redis.hgetall(self.key(partition, "offsets")))
        return {k.decode(): int(v) for k, v in raw.items()}

    async def get_blob(self, name: str, partition: int | None = None) -> bytes | None:
        return cast(bytes | None, await self.redis.get(self._blob_key(name, partition)))

    async def set_blob(self, name: str, raw: bytes, partition: int | None = None) -> None:
        await self.redis.set(self._blob_key(name, partition), raw)

    async def counters(self) -> dict[str, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in range(self.partitions):
                pipe.hgetall(self.key(p, "counters"))
            metrics.observe_redis_request(commands=self.partitions)
            rows = await pipe.execute()
        total: dict[str, int] = {}
        for row in rows:
            for name, n in row.items():
                total[name.decode()] = total.get(name.decode(), 0) + int(n)
        return total

    async def stale_candidates(self, partition: int, before: float, limit: int) -> list[str]:
        key = self.key(partition, "lastvitals")
        found = await self.redis.zrangebyscore(key, "-inf", before, start=0, num=limit)
        return [m.decode() for m in cast(list[bytes], found)]

    async def ack_outbox(self, partition: int, epoch: int, upto: int) -> None:
        """The outputs before absolute position ``upto`` were sent: drop them (once)."""
        names = ("epoch", "outbox", "outbox_acked")
        keys = [self.key(partition, n) for n in names]
        await self._auto.evalsha(self._ack.script, self._ack.sha, keys, [epoch, upto])

    async def get_twin(self, patient_id: str) -> bytes | None:
        keys = [self.twin_key(p, patient_id) for p in range(self.partitions)]
        values = cast(list[bytes | None], await self.redis.mget(keys))
        return next((v for v in values if v is not None), None)

    async def patient_ids(self, partition: int) -> list[str]:
        members = cast(set[bytes], await self.redis.smembers(self.key(partition, "patients")))
        return sorted(m.decode() for m in members)

    async def close(self) -> None:
        await self.redis.aclose()
