"""What every measured consumer process records: first and last message, count.

Each consumer runs in its own process and writes one JSON result file when it
has seen ``expect`` messages or its deadline has passed (``complete`` says
which). The orchestrator waits for that file, then stops the process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["Probe", "add_probe_arguments"]


class Probe:
    """Counts messages and times first-to-last (wall clock, seconds)."""

    def __init__(self, out: Path, expect: int, deadline_s: float) -> None:
        self.out = out
        self.expect = expect
        self.deadline = time.monotonic() + deadline_s
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.done = False
        self.extra: dict[str, Any] = {}
        """Written with the result (e.g. the naive peer's alert count)."""

    def hit(self, n: int = 1) -> bool:
        """Record ``n`` messages; True once the result has been written."""
        now = time.time()
        if self.count == 0:
            self.first = now
        self.count += n
        self.last = now
        if not self.done and (self.count >= self.expect or time.monotonic() > self.deadline):
            self.write()
        return self.done

    def expired(self) -> bool:
        """Past the deadline: write what we have (call periodically)."""
        if not self.done and time.monotonic() > self.deadline:
            self.write()
        return self.done

    def write(self, **extra: Any) -> None:
        span = self.last - self.first
        doc = {
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "seconds": span,
            # count-1 intervals between the first and the last message
            "eps": (self.count - 1) / span if span > 0 else 0.0,
            "complete": self.count >= self.expect,
            "pid": os.getpid(),
            **self.extra,
            **extra,
        }
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.rename(self.out)
        self.done = True


def add_probe_arguments(parser: Any) -> None:
    """The arguments every consumer takes."""
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topics", required=True, help="comma-separated")
    parser.add_argument("--group", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds")
    parser.add_argument("--out", type=Path, required=True)
