"""Run a module under a CPU-time sampling profiler: ``python -m bench.cpu_profile OUT -m MOD ...``.

``setitimer(ITIMER_PROF)`` fires SIGPROF every ``BENCH_PROFILE_INTERVAL`` seconds
(default 0.005) of CPU time used by the process, so a process that waits for
Redis, for Kafka or for a core (on a shared 2-core machine it often does)
is not sampled while it waits, unlike a wall-clock sampler. The handler
records the main thread's Python stack in py-spy's raw format
(``frame;frame;... count``). Creating the file ``OUT.dump`` asks for them to be
written to OUT (a watcher thread polls for it: mode's worker owns SIGUSR1 and
SIGUSR2); exit writes them too.

Limits: the handler runs at the next bytecode of the main thread, so CPU
spent in C code between Python callbacks (uvloop, a socket write) or in
another thread (Faust's consumer thread) is charged to the Python frame that
runs next. :func:`thread_cpu` gives the per-thread CPU split to judge that.
"""

from __future__ import annotations

import atexit
import os
import runpy
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

__all__ = ["dump_request", "thread_cpu"]

_stacks: Counter[str] = Counter()


def _sample(signum: int, frame: FrameType | None) -> None:
    names = []
    while frame is not None:
        code = frame.f_code
        names.append(f"{code.co_qualname} ({code.co_filename}:{frame.f_lineno})")
        frame = frame.f_back
    _stacks[";".join(reversed(names))] += 1


def _dump(out: Path) -> None:
    while True:
        try:
            items = list(_stacks.items())
            break
        except RuntimeError:  # the handler added a stack meanwhile
            continue
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(f"{stack} {n}\n" for stack, n in items))
    tmp.rename(out)


def dump_request(out: Path) -> Path:
    """The file whose creation asks the profiled process to write ``out``."""
    return out.with_name(out.name + ".dump")


def _watch(out: Path) -> None:
    request = dump_request(out)
    while True:
        if request.exists():
            _dump(out)
            request.unlink(missing_ok=True)
        time.sleep(0.02)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of ``pid`` (from /proc)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        key = f"{name} (main)" if task.name == str(pid) else name
        out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        sys.exit("usage: python -m bench.cpu_profile OUT -m MODULE [ARGS...]")
    out = Path(sys.argv[1])
    module = sys.argv[3]
    interval = float(os.environ.get("BENCH_PROFILE_INTERVAL", "0.005"))
    signal.signal(signal.SIGPROF, _sample)
    threading.Thread(target=_watch, args=(out,), name="cpu-profile-dump", daemon=True).start()
    atexit.register(_dump, out)
    signal.setitimer(signal.ITIMER_PROF, interval, interval)
    sys.argv = [module, *sys.argv[4:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
