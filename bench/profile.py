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

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

_TWIN_CORE = tuple(
    f"twin/{m}.py" for m in ("apply", "alerting", "assess", "scores", "windows", "state")
)

__all__ = ["CATEGORIES", "py_spy", "start_py_spy", "stop_py_spy", "summarise"]

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
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
_ROOTS = ("<frozen runpy>", "stream/cli.py", "execute_from_commandline")
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


def summarise(raw: Path, events: int, rate: int, title: str) -> tuple[str, dict[str, float]]:
    """A text report of a py-spy raw profile and the µs per event of each category."""
    cats: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
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
        f"{total} samples at {rate} Hz = {total / rate:.1f} s of busy main thread "
        f"over {events} events = {total * per_sample_us / max(events, 1):.0f} µs per event",
        "(idle time in the event loop is not sampled; µs are main-thread CPU+wait-for-GIL)",
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
