"""One measured run of twinstream worker processes, watched through the store's counters.

The workers are started with :func:`stream.cli.spawn_worker` on preloaded
topics; the bench polls ``<prefix>:{pN}:counters`` (the accounting the worker
commits atomically with its twins) every 0.1 s. Throughput is
``(expect - consumed at the first poll that saw any) / (time consumed
reached expect - time of that poll)``: first to last event, startup excluded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.env import (
    Children,
    Phase,
    cpu_seconds,
    log_events,
    read_rss_mb,
    redis_url,
    worker_metrics,
)
from bench.profile import Profiling

__all__ = ["TwinRun", "run_workers"]

PARTITIONS = 8


@dataclass
class TwinRun:
    expect: int
    consumed: int = 0
    eps: float = 0.0
    seconds: float = 0.0
    series: list[tuple[float, int]] = field(default_factory=list)
    commands: int = 0
    commandstats: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    rss_mb: list[float] = field(default_factory=list)
    rss_start_mb: float = 0.0
    log_events: list[dict[str, int]] = field(default_factory=list)
    redis_requests: int | None = None
    """Round trips the workers made to Redis (their own count; a pipeline is one)."""
    redis_commands: int | None = None
    """Commands the workers sent to Redis (a script call is one)."""
    mean_batch: float | None = None
    """Records per micro-batch, over all workers."""
    profile: dict[str, Any] = field(default_factory=dict)
    complete: bool = False

    def window_eps(self, lo: float = 0.25, hi: float = 0.9) -> float:
        """Rate between ``lo`` and ``hi`` of the expected count (steady state)."""
        a = next(((t, c) for t, c in self.series if c >= lo * self.expect), None)
        b = next(((t, c) for t, c in self.series if c >= hi * self.expect), None)
        if a is None or b is None or b[0] <= a[0]:
            return 0.0
        return (b[1] - a[1]) / (b[0] - a[0])

    def eps_until(self, count: int) -> float:
        """Rate from the first poll that saw any event to the first that saw ``count``
        (the rate over the input's first ``count`` events, e.g. those the naive peer
        consumes); 0 if the run never got there."""
        a = next(((t, c) for t, c in self.series if c > 0), None)
        b = next(((t, c) for t, c in self.series if c >= count), None)
        if a is None or b is None or b[0] <= a[0]:
            return 0.0
        return (b[1] - a[1]) / (b[0] - a[0])


def _counter_keys(prefix: str) -> list[str]:
    from stream.store import RedisTwinStore

    store = RedisTwinStore(redis_url(), PARTITIONS, prefix)  # for its key layout only
    return [store.key(p, "counters") for p in range(PARTITIONS)]


def consumed(r: redis.Redis, keys: list[str]) -> int:
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, "consumed")
    return sum(int(v) for v in pipe.execute() if v is not None)


def store_counters(prefix: str) -> dict[str, int]:
    """``RedisTwinStore.counters()`` of the run's prefix."""
    from stream.store import RedisTwinStore

    async def read() -> dict[str, int]:
        store = RedisTwinStore(redis_url(), PARTITIONS, prefix)
        try:
            return await store.counters()
        finally:
            await store.close()

    return asyncio.run(read())


_METRICS_PORT = 59400


def _worker_metrics(port: int) -> dict[str, float]:
    """Redis requests and batch sizes from a worker's metrics endpoint (empty if none)."""
    wanted = {
        "twinstream_worker_redis_requests_total": "redis_requests",
        "twinstream_worker_redis_commands_total": "redis_commands",
        "twinstream_worker_batch_size_count": "batches",
        "twinstream_worker_batch_size_sum": "batched_records",
    }
    values = worker_metrics(port)
    return {short: values[name] for name, short in wanted.items() if name in values}


def _service_pids() -> dict[str, int | None]:
    from stream.services import pid_of

    return {"redis": pid_of("redis"), "kafka": pid_of("kafka")}


def run_workers(
    children: Children,
    phase: Phase,
    consumer: str,
    expect: int,
    timeout: float,
    *,
    workers: int = 1,
    profile: Profiling | None = None,
) -> TwinRun:
    """Start ``workers`` workers on ``phase``'s topics; return once ``expect`` are consumed.

    With ``profile``, worker 0 is profiled from its first consumed record to the last.
    """
    from stream.cli import spawn_worker

    env = phase.env(consumer)
    r = redis.Redis.from_url(redis_url())
    keys = _counter_keys(env["TWIN_KEY_PREFIX"])
    run = TwinRun(expect)
    before = r.info("commandstats")
    total_before = int(r.info("stats")["total_commands_processed"])
    logs = children.logs
    procs = []
    for i in range(workers):
        log = logs / f"{phase.name}-{consumer}-{i}.log"
        env_i = env | {"TWIN_WORKER_METRICS_PORT": str(_METRICS_PORT + i)}
        if profile is not None and i == 0 and profile.argv:
            procs.append(children.spawn(log.stem, profile.argv, env_i))
        else:
            procs.append(children.track(spawn_worker(env_i, log_path=str(log))))
    pids = {f"worker{i}": p.pid for i, p in enumerate(procs)} | _service_pids()
    polls = 0
    first: tuple[float, int] | None = None
    cpu0: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            c = consumed(r, keys)
            polls += 1
            now = time.time()
            run.series.append((now, c))
            if first is None and c > 0:
                first = (now, c)
                cpu0 = {k: cpu_seconds(v) for k, v in pids.items()}
                run.rss_start_mb = read_rss_mb(procs[0].pid)
                if profile is not None:
                    profile.start(procs[0].pid, c)
            if c >= expect:
                run.complete = True
                break
            if all(p.poll() is not None for p in procs):
                break
            time.sleep(0.1)
        end = time.time()
        run.consumed = run.series[-1][1] if run.series else 0
        run.cpu_s = {k: cpu_seconds(v) - cpu0.get(k, 0.0) for k, v in pids.items()}
        run.rss_mb = [read_rss_mb(p.pid) for p in procs]
        if profile is not None and first is not None:
            run.profile = profile.stop(run.consumed)
        if first is not None:
            run.seconds = end - first[0]
            run.eps = (run.consumed - first[1]) / run.seconds if run.seconds > 0 else 0.0
        after = r.info("commandstats")
        total_after = int(r.info("stats")["total_commands_processed"])
        # Our own polling: one HGET per partition per poll, plus four INFO calls.
        run.commands = total_after - total_before - polls * PARTITIONS - 4
        run.commandstats = {
            k.removeprefix("cmdstat_"): int(v["calls"]) - int(before.get(k, {}).get("calls", 0))
            for k, v in after.items()
        }
        run.commandstats["hget"] = run.commandstats.get("hget", 0) - polls * PARTITIONS
        run.commandstats["info"] = run.commandstats.get("info", 0) - 4
        run.commandstats = {k: v for k, v in run.commandstats.items() if v > 0}
        scraped = [_worker_metrics(_METRICS_PORT + i) for i in range(workers)]
        if all("redis_requests" in m and "redis_commands" in m for m in scraped):
            run.redis_requests = int(sum(m["redis_requests"] for m in scraped))
            run.redis_commands = int(sum(m["redis_commands"] for m in scraped))
        batches = sum(m.get("batches", 0.0) for m in scraped)
        if batches:
            run.mean_batch = round(sum(m.get("batched_records", 0.0) for m in scraped) / batches, 1)
        return run
    finally:
        for proc in procs:
            children.stop(proc, grace=5.0)
        r.close()
        run.log_events = [
            log_events(logs / f"{phase.name}-{consumer}-{i}.log") for i in range(workers)
        ]


def check_twins(prefix: str, sample: int = 300) -> dict[str, Any]:
    """Counters balance, a sample of twins decodes, and their sizes in Redis."""
    from statistics import median

    from twin.codec import decode_twin

    counters = store_counters(prefix)
    dead = sum(v for k, v in counters.items() if k.startswith("dead."))
    accounted = (
        counters.get("applied", 0)
        + counters.get("duplicates", 0)
        + dead
        + counters.get("replay_skipped", 0)
    )
    r = redis.Redis.from_url(redis_url())
    keys = []
    for key in r.scan_iter(match=f"{prefix}:*:twin:*", count=1000):
        keys.append(key)
        if len(keys) >= sample * 4:
            break
    keys = keys[::4] or keys
    sizes: dict[str, list[int]] = {}
    failures = 0
    for key in keys[:sample]:
        raw = r.get(key)
        try:
            decode_twin(raw or b"")
        except Exception:
            failures += 1
        source = "physionet" if b":twin:physionet" in key else "simulated"
        sizes.setdefault(source, []).append(int(r.memory_usage(key, samples=0) or 0))
    r.close()
    every = [s for v in sizes.values() for s in v]
    return {
        "counters": counters,
        "balanced": counters.get("consumed", 0) == accounted,
        "dead_lettered": dead,
        "sampled_twins": len(keys[:sample]),
        "decode_failures": failures,
        "bytes": {
            "median": median(every) if every else 0,
            "max": max(every, default=0),
            **{f"median_{k}": median(v) for k, v in sizes.items()},
        },
    }
