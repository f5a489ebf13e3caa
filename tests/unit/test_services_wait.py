"""How long ``stream.services`` waits for a starting service (no real service needed)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stream import services as svc

pytestmark = pytest.mark.unit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((svc.HOST, 0))
        return int(s.getsockname()[1])


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TWIN_STATE_DIR", str(tmp_path))  # pid files of this test only
    return tmp_path


@pytest.fixture
def sleeper() -> Iterator[Callable[[float], subprocess.Popen[bytes]]]:
    """Processes standing in for a starting service, killed after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(seconds: float) -> subprocess.Popen[bytes]:
        procs.append(
            subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
        )
        return procs[-1]

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_start_up_that_keeps_logging_is_waited_for(
    state: Path, sleeper: Callable[[float], subprocess.Popen[bytes]]
) -> None:
    """Silent for longer than ``timeout`` it would fail; logging, it is waited for
    until it ends (here: the process exits, which is reported as such)."""
    log = state / "server.log"
    log.write_text("")
    proc = sleeper(3.5)
    stop = threading.Event()

    def logging() -> None:
        while not stop.wait(0.3):
            with log.open("a") as f:
                f.write("Log loaded for partition\n")

    writer = threading.Thread(target=logging, daemon=True)
    writer.start()
    began = time.monotonic()
    try:
        with pytest.raises(svc.ServiceError, match="exited during start-up"):
            svc._wait_ready("redis", proc.pid, _free_port(), 1.0, (log,))
    finally:
        stop.set()
    assert time.monotonic() - began >= 3.0


def test_a_silent_start_up_fails_after_the_timeout(
    state: Path, sleeper: Callable[[float], subprocess.Popen[bytes]]
) -> None:
    log = state / "server.log"
    log.write_text("starting\n")
    proc = sleeper(30)
    began = time.monotonic()
    with pytest.raises(svc.ServiceError, match="did not answer"):
        svc._wait_ready("redis", proc.pid, _free_port(), 1.0, (log,))
    assert time.monotonic() - began < 10
