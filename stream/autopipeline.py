"""Redis commands issued in the same turn of the event loop, sent as one pipeline.

The updater applies a batch's partitions concurrently, and each ends in the
same requests: an MGET of its cold twins, its commit script, later its outbox
ack. Sent one by one that is a round trip per partition and step; through
:class:`AutoPipeline` the calls that become ready together go out as one
non-transactional pipeline (what ioredis calls auto-pipelining). Each call
still gets its own reply or its own error; Redis runs a pipeline's commands
in order and each script atomically, so what a call does is unchanged, only
how many round trips carry the calls.

Every round trip and every command is counted (``stream.metrics``), so the
bench can report both.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from stream import metrics

__all__ = ["AutoPipeline"]


class AutoPipeline:
    """Coalesces the commands awaited in one loop turn into one round trip."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def execute(self, *args: Any) -> Any:
        """Run one command (``"MGET", key, ...``); its reply, or its error raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            # After the callbacks already due in this turn (the other partitions
            # resuming): the commands they issue meanwhile join this round trip.
            loop.call_soon(self._send_pending)
        self._pending.append((args, future))
        return await future

    async def evalsha(self, source: Any, sha: str, keys: list[Any], args: list[Any]) -> Any:
        """Run a script by its SHA1, loading it once if Redis does not have it."""
        command = ("EVALSHA", sha, len(keys), *keys, *args)
        try:
            return await self.execute(*command)
        except NoScriptError:
            await self.execute("SCRIPT", "LOAD", source)
            return await self.execute(*command)

    def _send_pending(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)  # a reference, until it is done
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for args, _ in batch:
                    pipe.execute_command(*args)
                metrics.observe_redis_request(commands=len(batch))
                replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the round trip failed: so did every call in it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue  # its caller was cancelled meanwhile
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
