"""Sampling profile of a running worker and where its time goes per event.

``py-spy record --pid`` (non-blocking: the worker is never paused, so the
profile barely slows it) samples the worker's Python stacks while it
consumes; idle time (waiting in the event loop) is not sampled. Each stack is
put in the first category of :data:`CATEGORIES` that any of its frames
matches, so a category holds everything below that layer (e.g. "decode +
validate" includes pydantic's time). py-spy comes with the ``bench`` extra;
without it the profile is skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

_LEARNING = ("twin/population.py", "twin/learning/", "river/")
_TWIN_CORE = tuple(
    f"twin/{m}.py" for m in ("apply", "alerting", "assess", "scores", "windows", "state")
)

__all__ = ["CATEGORIES", "Profiling", "py_spy", "read_raw", "summarise"]

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("learning: population models, baselines (river)", _LEARNING),
    ("twin core: apply, scores, alert objects", _TWIN_CORE),
    ("twin codec: msgpack encode/decode", ("twin/codec.py",)),
    ("decode + validate input (pydantic)", ("stream/handlers.py", "schemas/")),
    ("dead letters (DeadLetter JSON)", ("_dead_letter ",)),
    ("alert JSON + send outbox", ("_encode_alert ", "_send_outbox ", "stream/app.py")),
    ("redis store: Lua commit, MGET (stream/store.py)", ("stream/store.py",)),
    ("updater bookkeeping (stream/updater.py)", ("stream/updater.py",)),
    ("faust stream: take_events", ("faust/streams.py",)),
    ("agent: Envelope building", ("agents/twin_updater.py",)),
    ("faust Monitor sensor", ("faust/sensors/",)),
    ("faust consumer/transport/producer", ("faust/",)),
    ("aiokafka client tasks (fetch, produce requests)", ("aiokafka/",)),
    ("redis-py tasks (wait_for: socket send/read)", ("redis/",)),
    ("mode services and threads", ("mode/",)),
    ("asyncio", ("asyncio/",)),
)
# Frames at the root of every stack (module runner, CLI, the loop's run call).
_ROOTS = ("<frozen runpy>", "bench/cpu_profile.py", "stream/cli.py", "execute_from_commandline")
LOOP_ITSELF = "event loop itself (uvloop C code between callbacks)"
_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    """The py-spy executable (in the venv or on PATH), or None."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_py_spy(pid: int, out: Path, log: Path, rate: int = 200) -> subprocess.Popen[bytes]:
    exe = py_spy()
    assert exe is not None
    argv = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking"]
    argv += ["--format", "raw", "-o", str(out)]
    return subprocess.Popen(
        argv, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_py_spy(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGINT makes py-spy write its output and exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _frame(frame: str) -> str:
    """``func (a/b/c/file.py:12)`` -> ``func (c/file.py)``."""
    name, _, where = frame.partition(" (")
    where = _LINE.sub("", "(" + where).strip("()")
    return f"{name} ({'/'.join(where.split('/')[-2:])})"


def read_raw(raw: Path) -> Counter[str]:
    """Stacks and their sample counts from a raw (collapsed) profile."""
    stacks: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            stacks[stack] += int(n)
    return stacks


def summarise(
    stacks: Counter[str], events: int, rate: int, title: str, sampled: str
) -> tuple[str, dict[str, float]]:
    """A text report of collapsed stacks and the µs per event of each category.

    ``sampled`` says what a sample stands for (wall time while busy, or CPU time).
    """
    cats: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for stack, count in stacks.items():
        if count <= 0:
            continue
        total += count
        frames = stack.split(";")
        inner = [f for f in frames if not any(r in f for r in _ROOTS)]
        label = next(
            (lab for lab, pats in CATEGORIES if any(p in f for f in inner for p in pats)),
            "other" if inner else LOOP_ITSELF,
        )
        cats[label] += count
        for name in {_frame(f) for f in frames}:
            inclusive[name] += count
        own[_frame(frames[-1])] += count
    per_sample_us = 1e6 / rate
    per_event = {k: v * per_sample_us / max(events, 1) for k, v in cats.most_common()}
    lines = [
        title,
        f"{total} samples, one per {per_sample_us / 1000:g} ms of {sampled}: {total / rate:.1f} s "
        f"over {events} events = {total * per_sample_us / max(events, 1):.0f} µs per event",
        "",
        "Per event, by layer (a stack counts in the first layer it reaches, top to bottom):",
    ]
    for label, us in per_event.items():
        lines.append(f"  {us:8.1f} µs  {100 * cats[label] / max(total, 1):5.1f} %  {label}")
    lines += ["", "Top functions, inclusive (% of samples):"]
    for name, n in inclusive.most_common(40):
        lines.append(f"  {100 * n / max(total, 1):5.1f} %  {name}")
    lines += ["", "Top functions, self (% of samples):"]
    for name, n in own.most_common(30):
        lines.append(f"  {100 * n / max(total, 1):5.1f} %  {name}")
    return "\n".join(lines) + "\n", per_event


class Profiling:
    """One profile of a worker, from its first consumed record to the last.

    ``kind="cpu"``: the worker runs under :mod:`bench.cpu_profile` (CPU-time
    samples, dumped on request at the start and the end, so startup is subtracted).
    ``kind="wall"``: py-spy attaches to the running worker (wall-clock samples
    of the busy main thread, which on a loaded machine include waiting for a core).
    """

    def __init__(self, kind: str, raw: Path, report: Path, logs: Path, rate: int = 200) -> None:
        self.kind = kind
        self.raw = raw
        self.report = report
        self.logs = logs
        self.rate = rate
        self.argv: list[str] | None = None
        if kind == "cpu":
            self.argv = [sys.executable, "-m", "bench.cpu_profile", str(raw), "-m", "stream.cli"]
            self.argv += ["worker", "-l", "warn"]
        self._pid = 0
        self._c0 = 0
        self._base: Counter[str] = Counter()
        self._threads0: dict[str, float] = {}
        self._spy: subprocess.Popen[bytes] | None = None

    def _dump(self) -> Counter[str]:
        from bench.cpu_profile import dump_request

        self.raw.unlink(missing_ok=True)
        dump_request(self.raw).touch()
        deadline = time.monotonic() + 10
        while not self.raw.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return read_raw(self.raw) if self.raw.exists() else Counter()

    def start(self, pid: int, consumed: int) -> None:
        from bench.cpu_profile import thread_cpu

        self._pid, self._c0 = pid, consumed
        self._threads0 = thread_cpu(pid)
        if self.kind == "cpu":
            self._base = self._dump()
        elif py_spy():
            self.raw.unlink(missing_ok=True)
            self._spy = start_py_spy(pid, self.raw, self.logs / "py-spy.log", self.rate)

    def stop(self, consumed: int) -> dict[str, Any]:
        from bench.cpu_profile import thread_cpu

        threads = {
            k: round(v - self._threads0.get(k, 0.0), 2) for k, v in thread_cpu(self._pid).items()
        }
        if self.kind == "cpu":
            stacks = self._dump()
            stacks.subtract(self._base)
            sampled = "CPU time of the process"
        else:
            if self._spy is None:
                return {}
            stop_py_spy(self._spy)
            stacks = read_raw(self.raw) if self.raw.exists() else Counter()
            sampled = "wall time while the main thread is not idle"
        events = consumed - self._c0
        title = f"{self.kind} profile of one twinstream worker over {events} events"
        text, per_event = summarise(stacks, events, self.rate, title, sampled)
        busy = {k: v for k, v in threads.items() if v > 0}
        text += "\nCPU seconds per thread during the profile (/proc): " + json.dumps(busy) + "\n"
        self.report.write_text(text)
        return {
            "us_per_event_by_layer": {k: round(v, 1) for k, v in per_event.items()},
            "thread_cpu_seconds": busy,
            "events": events,
        }
