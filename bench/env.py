"""The bench's world: its own Kafka and Redis, fresh names per run, child processes.

Ports and state dir default to ``TWIN_LOCAL_KAFKA_PORT=59192``,
``TWIN_LOCAL_REDIS_PORT=56479``, ``TWIN_STATE_DIR=/tmp/tsstate-bench`` unless
the caller set them. Every measured phase gets its own topics
(``bench.<run>.<phase>.*``), consumer groups and Redis key prefix, so no phase
sees another's data. Every child process is started in its own session and
stopped by its pid (process group) when the bench ends, however it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_DEFAULTS",
    "Children",
    "Phase",
    "clean_up",
    "cpu_seconds",
    "log_events",
    "read_rss_mb",
    "wait_for_file",
    "waiting_for_a_core_seconds",
    "worker_metrics",
]

BENCH_DEFAULTS = {
    "TWIN_LOCAL_KAFKA_PORT": "59192",
    "TWIN_LOCAL_REDIS_PORT": "56479",
    "TWIN_STATE_DIR": "/tmp/tsstate-bench",
}
RESULTS = Path(__file__).resolve().parent / "results"
RUN_ID = uuid.uuid4().hex[:6]


def apply_defaults() -> None:
    """Set the bench's service env unless the caller did (before stream.* reads it)."""
    for key, value in BENCH_DEFAULTS.items():
        os.environ.setdefault(key, value)


def bootstrap() -> str:
    return f"127.0.0.1:{os.environ['TWIN_LOCAL_KAFKA_PORT']}"


def redis_url() -> str:
    return f"redis://127.0.0.1:{os.environ['TWIN_LOCAL_REDIS_PORT']}/0"


def clean_up(run_id: str | None = None, topics: bool = True) -> tuple[int, int]:
    """Delete bench topics (``bench.*``, and Faust's ``bench-*``; unless not
    ``topics``) and Redis keys (``b<run>*``): of run ``run_id``, or of every run
    but this one when None (runs killed before their own clean-up). Return
    (topics, keys) deleted.

    Every run makes 50-100 topics of 8 partitions, each partition some open
    files in the broker: left in place, a few hundred runs took the bench's
    broker past its open-file limit ("Too many open files") and it died.
    """
    import asyncio

    import redis
    from aiokafka.admin import AIOKafkaAdminClient

    def ours(name: str) -> bool:
        if run_id is not None:
            return name.startswith((f"bench.{run_id}.", f"bench-{run_id}-"))
        return name.startswith(("bench.", "bench-")) and name[6:12] != RUN_ID

    async def delete_topics() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(), request_timeout_ms=120_000)
        await admin.start()
        try:
            doomed = sorted(t for t in await admin.list_topics() if ours(t))
            for i in range(0, len(doomed), 200):
                await admin.delete_topics(doomed[i : i + 200], timeout_ms=120_000)
            return len(doomed)
        finally:
            await admin.close()

    deleted_topics = asyncio.run(delete_topics()) if topics else 0
    r = redis.Redis.from_url(redis_url())
    keys = 0
    pattern = f"b{run_id}*" if run_id is not None else "b??????*"
    batch: list[bytes] = []
    for key in r.scan_iter(match=pattern, count=5000):
        if run_id is None and key[1:7] == RUN_ID.encode():
            continue
        batch.append(key)
        if len(batch) >= 5000:
            keys += r.unlink(*batch)
            batch.clear()
    if batch:
        keys += r.unlink(*batch)
    return deleted_topics, keys


@dataclass
class Phase:
    """Fresh topics, group and key prefix for one measured phase."""

    name: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"{RUN_ID}{self.name}"[:15]

    def topic(self, kind: str) -> str:
        return f"bench.{RUN_ID}.{self.name}.{kind}"

    def env(self, consumer: str = "tw") -> dict[str, str]:
        """TWIN_* environment of a twinstream process (or the naive peer) in this phase."""
        kinds = ("vitals", "labs", "wearables", "profiles", "fhir", "outcomes", "alerts")
        env = {f"TWIN_TOPIC_{k.upper()}": self.topic(k) for k in kinds}
        env["TWIN_TOPIC_ALERT_ACKS"] = self.topic("alert-acks")
        env["TWIN_TOPIC_DEADLETTER"] = self.topic("deadletter")
        env |= {
            "TWIN_KAFKA_BOOTSTRAP": bootstrap(),
            "TWIN_REDIS_URL": redis_url(),
            "TWIN_CONSUMER_GROUP": self.group(consumer),
            "TWIN_KEY_PREFIX": self.prefix(consumer),
        }
        return env | self.extra_env

    def group(self, consumer: str) -> str:
        return f"bench-{RUN_ID}-{self.name}-{consumer}"

    def prefix(self, consumer: str) -> str:
        return f"b{RUN_ID}{self.name[:4]}{consumer[:4]}".lower().replace("-", "_")[:16]

    def settings(self, consumer: str = "tw") -> Any:
        from stream.settings import Settings

        fields = {k.removeprefix("TWIN_").lower(): v for k, v in self.env(consumer).items()}
        return Settings(**fields)

    def input_topics(self) -> list[str]:
        return [self.topic(k) for k in ("vitals", "labs", "wearables", "profiles")]


QUIX_VENV = Path(__file__).resolve().parent / ".venv-quix"


def quix_python() -> str:
    """A Python with Quix Streams, in a virtualenv of its own.

    quixstreams pins ``pydantic<2.14``; installed beside twinstream it would
    downgrade pydantic under twinstream (and change its exported JSON
    Schemas). So the competing framework gets ``bench/.venv-quix``, made on
    first use from PyPI.
    """
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "quixstreams>=3.20", "orjson"],
            check=True,
        )
    return str(python)


class Children:
    """Child processes of the bench, each in its own session, stopped by pid."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Any:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def module(
        self,
        name: str,
        module: str,
        *args: str,
        env: dict[str, str] | None = None,
        python: str | None = None,
    ) -> Any:
        return self.spawn(name, [python or sys.executable, "-m", module, *args], env)

    def track(self, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Adopt a process started elsewhere (e.g. stream.cli.spawn_worker)."""
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
        """SIGTERM the child's process group, then SIGKILL after ``grace`` seconds."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc, grace=3.0)


def tear_down(children: Children, stop_services: bool) -> None:
    """End of a bench command: stop its processes, delete this run's topics and
    Redis keys, and stop Kafka and Redis if ``stop_services`` (it started them)."""
    from stream import services

    children.stop_all()
    try:
        clean_up(RUN_ID)
    except Exception as exc:  # the figures matter more than the clean-up
        print(f"clean-up failed: {exc}", file=sys.stderr)
    if stop_services:
        services.down()


def wait_for_file(path: Path, timeout: float, proc: Any = None) -> dict[str, Any] | None:
    """The JSON at ``path`` once it appears; None on timeout or if ``proc`` died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            with contextlib.suppress(ValueError):  # caught mid-write: read again
                return dict(json.loads(path.read_text()))
        elif proc is not None and proc.poll() is not None:
            time.sleep(0.2)
            return dict(json.loads(path.read_text())) if path.exists() else None
        time.sleep(0.1)
    return None


def log_events(log: Path) -> dict[str, int]:
    """Counts of the worker log lines that tell of trouble (stalls, rebalances)."""
    marks = {
        "keepalive_not_responding": "keepalive is not responding",
        "heartbeat_session_expired": "Heartbeat session expired",
        "rejoin_group": "re-joining group",
        "timer_overlapping": "is overlapping",
        "retrying_batch": "retrying in",
        "errors": "[ERROR]",
    }
    text = log.read_text(errors="replace") if log.exists() else ""
    return {k: text.count(v) for k, v in marks.items() if v in text}


def read_rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MiB (0 if gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds used so far by ``pid`` (0 if gone)."""
    if pid is None:
        return 0.0
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def waiting_for_a_core_seconds(pid: int | None) -> float:
    """Seconds the threads of ``pid`` have spent ready to run but waiting for a CPU.

    The second field of each thread's ``/proc/<pid>/task/<tid>/schedstat`` (ns
    on a run queue; the kernel's ``run_delay``), summed over the threads alive
    now: on a machine whose cores are all busy, the time a process lost to the
    others, which its CPU time does not show. 0 if ``pid`` is gone, or if the
    kernel keeps no scheduler statistics.
    """
    if pid is None:
        return 0.0
    total = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def worker_metrics(port: int) -> dict[str, float]:
    """The ``twinstream_worker_*`` samples of a worker's Prometheus endpoint
    (``TWIN_WORKER_METRICS_PORT``), by sample name; empty if it has none."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("twinstream_worker_"):
            values[name] = float(value)
    return values
