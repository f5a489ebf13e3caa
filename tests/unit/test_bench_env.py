"""The bench's /proc readings of what a process used and what it waited for."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.env import cpu_seconds, waiting_for_a_core_seconds

pytestmark = pytest.mark.unit

_SPIN = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


def _has_schedstat() -> bool:
    return Path(f"/proc/self/task/{os.getpid()}/schedstat").exists()


def test_a_process_that_is_gone_or_unknown_waited_nothing() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert waiting_for_a_core_seconds(gone.pid) == 0.0
    assert waiting_for_a_core_seconds(None) == 0.0


@pytest.mark.skipif(
    not _has_schedstat(), reason="this kernel keeps no scheduler statistics (/proc/*/schedstat)"
)
def test_more_busy_processes_than_cores_wait_for_one() -> None:
    # One more spinning process than there are cores: at any moment one of them
    # is ready to run with no core free, so together they wait about as long as
    # they run for, split among them.
    cores = len(os.sched_getaffinity(0))
    seconds = 1.5
    spinners = [
        subprocess.Popen([sys.executable, "-c", _SPIN.format(s=seconds)]) for _ in range(cores + 1)
    ]
    try:
        time.sleep(0.2)  # all started
        waited0 = sum(waiting_for_a_core_seconds(p.pid) for p in spinners)
        ran0 = sum(cpu_seconds(p.pid) for p in spinners)
        time.sleep(1.0)
        waited = sum(waiting_for_a_core_seconds(p.pid) for p in spinners) - waited0
        ran = sum(cpu_seconds(p.pid) for p in spinners) - ran0
    finally:
        for p in spinners:
            p.wait(timeout=30)
    assert ran > 0.5 * cores  # they did spin, on all the cores
    assert waited > 0.3, f"{cores + 1} spinners on {cores} cores waited {waited:.2f}s in 1 s"
