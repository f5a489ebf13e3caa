"""Running a fault scenario: workers, a paced producer, the store's counters, the verdict.

A scenario starts worker processes, produces its feed at a fixed rate, injects
its faults while the stream flows, waits until the store has applied every
record and sent every output, then compares the end state with the oracle
(``tests/faults/oracle.py``) and records its figures (printed, and appended to
``bench/results/faults.jsonl``).

Every wait is on a condition with a deadline; the only fixed sleeps are the
fault durations themselves (how long a process stays stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from stream.cli import spawn_worker, stop_process
from stream.kafka import kafka_client_options
from stream.settings import Settings
from stream.store import RedisTwinStore
from tests.faults.feed import Feed
from tests.faults.oracle import OracleResult, alert_keys, compare_twins, read_topics, replay
from twin.codec import decode_twin
from twin.state import TwinState

__all__ = ["FaultRun", "Producer", "Workers"]

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "faults.jsonl"


_CLEANUP_S = 60.0
"""Longest a scenario's teardown waits for each clean-up step."""


class ScenarioError(AssertionError):
    """The scenario could not run as planned (a harness timing problem, not a verdict)."""


class Workers:
    """Worker processes by name, with their logs; an exit we did not cause fails the run."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: set[int] = set()
        self.starts: Counter[str] = Counter()
        self.supervise = False
        """Restart a worker that exits by itself (as systemd or Kubernetes would)."""
        self.exits: list[tuple[str, int]] = []

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        self.starts[name] += 1
        with self.log_path(name).open("a") as log:
            log.write(f"\n=== start #{self.starts[name]} at {time.time():.3f} ===\n")
        proc = spawn_worker({**self.env, **env}, str(self.log_path(name)))
        self.procs[name] = proc
        return proc

    def signal(self, name: str, sig: int) -> float:
        """Send ``sig``; return when (monotonic)."""
        proc = self.procs[name]
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.killed.add(proc.pid)
        at = time.monotonic()
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait(timeout=10)
        return at

    def check(self) -> None:
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None and proc.pid not in self.killed:
                if not self.supervise:
                    raise AssertionError(
                        f"worker {name} exited by itself (code {proc.returncode}):\n"
                        + self.tail(name)
                    )
                self.exits.append((name, proc.returncode))
                self.killed.add(proc.pid)
                self.start(name)

    def tail(self, name: str, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path(name).read_text(errors="replace")[-chars:]
        return "(no log)"

    def count_in_logs(self, needle: str) -> int:
        return sum(
            self.log_path(n).read_text(errors="replace").count(needle)
            for n in self.procs
            if self.log_path(n).exists()
        )

    def stop_all(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
            self.killed.add(proc.pid)
            stop_process(proc, timeout=15)


class Producer:
    """Produces a feed at a steady rate in the background; retries a chunk the broker refused."""

    def __init__(self, settings: Settings, feed: Feed, rate: float) -> None:
        self.settings = settings
        self.feed = feed
        self.rate = rate
        self.produced = 0
        self.resent = 0
        self.per_partition: Counter[int] = Counter()
        self.task: asyncio.Task[None] | None = None
        self.finished_at: float | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            **kafka_client_options(self.settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=60_000,
        )
        await producer.start()
        try:
            tick = 0.05
            per_tick = max(1, round(self.rate * tick))
            started = time.monotonic()
            msgs = self.feed.messages
            while self.produced < len(msgs):
                chunk = msgs[self.produced : self.produced + per_tick]
                while True:
                    try:
                        futures = [await producer.send(t, v, key=k) for t, k, v in chunk]
                        for meta in await asyncio.gather(*futures):
                            self.per_partition[meta.partition] += 1
                        break
                    except Exception:
                        # The broker is down: send the chunk again (a producer retry,
                        # which may duplicate records; the oracle reads what landed).
                        self.resent += len(chunk)
                        await asyncio.sleep(0.5)
                self.produced += len(chunk)
                due = started + (self.produced / per_tick) * tick
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            self.finished_at = time.monotonic()
        finally:
            await producer.stop()

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    async def wait_produced(self, n: int, deadline_s: float = 120.0) -> None:
        deadline = time.monotonic() + deadline_s
        while self.produced < n:
            if self.task is not None and self.task.done():
                self.task.result()
                break
            if time.monotonic() > deadline:
                raise ScenarioError(f"producer stuck at {self.produced}/{n}")
            await asyncio.sleep(0.02)

    async def finish(self) -> None:
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout=180)


@dataclass
class Recovery:
    """One fault's figures (seconds)."""

    fault: str
    outage_s: float
    """From the fault to every partition's ``consumed`` counter growing again."""
    recover_s: float
    """From the end of the fault (restart / SIGCONT) to the same moment."""


class CounterWatch:
    """Samples each partition's stored ``consumed`` counter every 0.1 s."""

    def __init__(self, settings: Settings, check: Callable[[], None]) -> None:
        self.settings = settings
        self.check = check
        # Short timeouts and no retries: a stopped Redis must not stall the watch.
        self.redis = aioredis.Redis.from_url(
            settings.redis_url,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            **({"password": pw} if (pw := settings.redis_password_value()) else {}),
        )
        self.samples: list[tuple[float, dict[int, int]]] = []
        self.task: asyncio.Task[None] | None = None

    def key(self, p: int, name: str) -> str:
        return f"{self.settings.key_prefix}:{{p{p}}}:{name}"

    async def read(self, name: str = "consumed") -> dict[int, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in range(self.settings.partitions):
                pipe.hget(self.key(p, "counters"), name)
            rows = await pipe.execute()
        return {p: int(v or 0) for p, v in enumerate(rows)}

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                self.samples.append((time.monotonic(), await self.read()))
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.redis.aclose()

    def total(self) -> int:
        return sum(self.samples[-1][1].values()) if self.samples else 0

    async def wait(self, what: str, cond: Callable[[], bool], deadline_s: float) -> None:
        deadline = time.monotonic() + deadline_s
        while not cond():
            self.check()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {deadline_s:.0f}s waiting for {what}")
            await asyncio.sleep(0.05)

    async def recovery(
        self,
        fault: str,
        at: float,
        ended: float,
        producer: Producer,
        produced_at_fault: Counter[int],
        deadline_s: float = 120.0,
        settle: float = 0.5,
        since_end: bool = False,
    ) -> Recovery:
        """Wait until every partition that has new input shows ``consumed`` growing again.

        The baseline is the highest value seen until ``settle`` s after the fault,
        so a commit already on its way to Redis when the fault hit does not count;
        with ``since_end`` (the store itself went back), the first value read after
        the fault ended.
        """
        if since_end:
            await self.wait("a sample after the fault", lambda: self.samples[-1][0] > ended, 60)
            before = [next(s for t, s in self.samples if t > ended)]
        else:
            await asyncio.sleep(max(0.0, at + settle - time.monotonic()))
            before = [s for t, s in self.samples if t <= at + settle]
        base = {p: max((s[p] for s in before), default=0) for p in range(self.settings.partitions)}

        def grown() -> bool:
            if not self.samples or self.samples[-1][0] <= (ended if since_end else at + settle):
                return False
            now = self.samples[-1][1]
            # A partition that got no input since the fault has nothing to resume.
            fed = [p for p in base if producer.per_partition[p] > produced_at_fault[p]]
            return bool(fed) and all(now[p] > base[p] for p in fed)

        await self.wait(f"consumption to resume after {fault}", grown, deadline_s)
        t = self.samples[-1][0]
        return Recovery(fault, round(t - at, 2), round(t - ended, 2))


@dataclass
class Verdict:
    """The comparison with the oracle, and the figures."""

    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class FaultRun:
    """One scenario's topics, key prefix, workers, producer and counter watch."""

    def __init__(self, name: str, env: dict[str, str], settings: Settings, log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.settings = settings
        self.workers = Workers(env, log_dir)
        self.watch = CounterWatch(settings, self.workers.check)
        self.store = RedisTwinStore(
            settings.redis_url,
            settings.partitions,
            settings.key_prefix,
            password=settings.redis_password_value(),
        )
        self.recoveries: list[Recovery] = []
        self.started = time.monotonic()
        self.first_commit_s: float | None = None
        """From the scenario's start (its first worker spawned) to the first commit."""

    async def close(self) -> None:
        await asyncio.to_thread(self.workers.stop_all)
        # Clean-up only, after the scenario's checks: bounded, so a broker or Redis
        # that stopped answering after a fault cannot hold the suite. Once (CI,
        # 2026-11-25) the rollback scenario passed and its teardown then waited
        # 300 s on the event loop until pytest-timeout failed it.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drop_data(), _CLEANUP_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.watch.close(), _CLEANUP_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.store.close(), _CLEANUP_S)

    async def drop_data(self) -> None:
        """Delete this run's topics and Redis keys: a broker with fewer partitions
        restarts faster (the Kafka scenario), and the suite leaves nothing behind."""
        s = self.settings
        admin = AIOKafkaAdminClient(**kafka_client_options(s))
        await admin.start()
        try:
            mine = [
                t
                for t in await admin.list_topics()
                if t.startswith((f"{s.key_prefix}.", f"{s.consumer_group}-"))
            ]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()
        keys = [k async for k in self.watch.redis.scan_iter(match=f"{s.key_prefix}:*", count=1000)]
        for i in range(0, len(keys), 500):
            await self.watch.redis.unlink(*keys[i : i + 500])

    def produce(self, feed: Feed, rate: float) -> Producer:
        producer = Producer(self.settings, feed, rate)
        producer.start()
        return producer

    async def wait_consuming(self, deadline_s: float = 90.0) -> None:
        await self.watch.wait("the first commit", lambda: self.watch.total() > 0, deadline_s)
        self.first_commit_s = round(time.monotonic() - self.started, 1)

    async def measure(
        self,
        fault: str,
        at: float,
        ended: float,
        producer: Producer,
        snapshot: Counter[int],
        since_end: bool = False,
    ) -> Recovery:
        rec = await self.watch.recovery(fault, at, ended, producer, snapshot, since_end=since_end)
        print(f"  [{self.name}] {fault}: events flowing again {rec.outage_s:.1f}s after the fault")
        self.recoveries.append(rec)
        return rec

    async def wait_caught_up(self, oracle: OracleResult, deadline_s: float = 120.0) -> None:
        """Until every partition's stored offsets reach the end of its input and outboxes are empty."""
        r = self.watch.redis
        pending: list[str] = []

        async def check() -> bool:
            pending.clear()
            for p, topics in oracle.last_offsets.items():
                stored = await r.hgetall(self.watch.key(p, "offsets"))
                for topic, last in topics.items():
                    if int(stored.get(topic.encode(), -1)) < last:
                        pending.append(f"p{p}/{topic}")
                if await r.llen(self.watch.key(p, "outbox")):
                    pending.append(f"p{p} outbox")
            return not pending

        deadline = time.monotonic() + deadline_s
        while True:
            self.workers.check()
            with contextlib.suppress(Exception):
                if await check():
                    return
            if time.monotonic() > deadline:
                tails = "\n".join(self.workers.tail(n, 1500) for n in self.workers.procs)
                raise AssertionError(f"not caught up after {deadline_s:.0f}s: {pending}\n{tails}")
            await asyncio.sleep(0.2)

    async def group(self) -> list[set[int]]:
        """The input partitions of each member of the worker group (empty while rebalancing)."""
        admin = AIOKafkaAdminClient(**kafka_client_options(self.settings))
        await admin.start()
        try:
            (response,) = await admin.describe_consumer_groups([self.settings.consumer_group])
        finally:
            await admin.close()
        _error, _gid, state, _ptype, _proto, members, *_ = response.groups[0]
        if state != "Stable":
            return []
        inputs = set(self.settings.input_topics())
        owned = []
        for *_ids, assignment in members:
            decoded = ConsumerProtocolMemberAssignment.decode(assignment)
            owned.append({tp.partition for tp in decoded.partitions() if tp.topic in inputs})
        return owned

    async def wait_group(self, members: int, deadline_s: float = 60.0) -> list[set[int]]:
        """Until the group is stable with ``members`` members, each owning input partitions."""
        owned: list[set[int]] = []
        deadline = time.monotonic() + deadline_s
        while True:
            self.workers.check()
            with contextlib.suppress(Exception):
                owned = await self.group()
            if len(owned) == members and all(owned):
                return owned
            if time.monotonic() > deadline:
                raise AssertionError(f"group not stable with {members} members: {owned}")
            await asyncio.sleep(0.3)

    async def complete(self, feed: Feed, producer: Producer) -> Verdict:
        """Wait for the feed to be produced and applied; compare with the oracle."""
        await producer.finish()
        oracle = await self.oracle()
        await self.wait_caught_up(oracle)
        return await self.verdict(feed, oracle, producer)

    async def stored_twins(self) -> dict[str, TwinState]:
        twins: dict[str, TwinState] = {}
        for p in range(self.settings.partitions):
            pids = await self.store.patient_ids(p)
            for pid, raw in (await self.store.load_twins(p, pids)).items():
                twins[pid] = decode_twin(raw)
        return twins

    async def oracle(self) -> OracleResult:
        return await replay(
            self.settings, await read_topics(self.settings, self.settings.input_topics())
        )

    async def verdict(self, feed: Feed, oracle: OracleResult, producer: Producer) -> Verdict:
        """Compare the store and the output topics with the oracle and the injected feed."""
        s = self.settings
        v = Verdict()
        twin_diffs = compare_twins(await self.stored_twins(), oracle.twins, s)
        v.problems += [f"twin {d}" for d in twin_diffs[:25]]

        outputs = await read_topics(s, (s.topic_alerts, s.topic_deadletter))
        alerts = [orjson.loads(r.value or b"") for r in outputs if r.topic == s.topic_alerts]
        dead = [orjson.loads(r.value or b"") for r in outputs if r.topic == s.topic_deadletter]
        got_keys, want_keys = alert_keys(alerts), alert_keys(oracle.alerts)
        if set(got_keys) != set(want_keys):
            v.problems.append(
                f"alerts: missing {sorted(set(want_keys) - set(got_keys))[:5]},"
                f" unexpected {sorted(set(got_keys) - set(want_keys))[:5]}"
            )
        pairs = {(a, st) for a, st, _ in got_keys}
        if pairs != {(a, st) for a, st, _ in want_keys}:
            v.problems.append("alerts: the set of (alert_id, status) differs from the oracle")

        def letter(d: dict[str, Any]) -> tuple[str, int, int, str]:
            return (d["source_topic"], d["partition"], d["offset"], d["reason"])

        if {letter(d) for d in dead} != {letter(d) for d in oracle.dead_letters}:
            v.problems.append("dead letters differ from the oracle")

        counters = await self.store.counters()
        want = dict(oracle.counters)
        replayed = counters.get("replay_skipped", 0)
        for name in sorted(set(counters) | set(want)):
            if name in ("consumed", "replay_skipped"):
                continue
            if counters.get(name, 0) != want.get(name, 0):
                v.problems.append(f"counter {name}: {counters.get(name, 0)} != {want.get(name, 0)}")
        if counters.get("consumed", 0) != want.get("consumed", 0) + replayed:
            v.problems.append(
                f"counter consumed {counters.get('consumed')} != {want.get('consumed')} + {replayed}"
            )
        done = sum(n for k, n in counters.items() if k.startswith("dead.")) + replayed
        done += counters.get("applied", 0) + counters.get("duplicates", 0)
        if counters.get("consumed", 0) != done:
            v.problems.append(f"counters do not balance: {counters}")
        if producer.resent == 0:
            # Nothing was produced twice: the oracle must have seen exactly the injected feed.
            for name, n in feed.injected.items():
                if name != "reordered" and oracle.counters.get(name, 0) != n:
                    v.problems.append(
                        f"oracle {name} {oracle.counters.get(name, 0)} != injected {n}"
                    )

        dead_injected = sum(n for k, n in feed.injected.items() if k.startswith("dead."))
        v.figures = {
            "scenario": self.name,
            "records": oracle.records,
            "patients": len(oracle.twins),
            "alerts_expected": len(want_keys),
            "alerts_delivered": len(got_keys),
            "duplicate_alerts_delivered": len(got_keys) - len(set(got_keys)),
            "dead_letters_injected": dead_injected,
            "dead_letters_delivered": len(dead),
            "events_replayed": replayed,
            "producer_resent": producer.resent,
            "worker_starts": sum(self.workers.starts.values()),
            "worker_self_exits": len(self.workers.exits),
            "first_commit_s": self.first_commit_s,
            "recoveries": [rec.__dict__ for rec in self.recoveries],
            "max_outage_s": max((rec.outage_s for rec in self.recoveries), default=None),
            "twin_diffs": len(twin_diffs),
            "result": "equal" if not v.problems else "DIFFERENT",
            "wall_s": round(time.monotonic() - self.started, 1),
        }
        return v

    def record(self, verdict: Verdict, **extra: Any) -> None:
        figures = {**verdict.figures, **extra, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        print(f"\n[{self.name}] " + json.dumps(figures, default=str))
        for problem in verdict.problems[:30]:
            print(f"  [{self.name}] {problem}")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a") as out:
            out.write(json.dumps(figures, default=str) + "\n")
