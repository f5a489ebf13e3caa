"""``twinstream`` command line: worker, services, simulate, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]

log = logging.getLogger("twinstream")


def _cmd_worker(args: argparse.Namespace) -> int:
    from stream.settings import get_settings

    settings = get_settings()
    from stream.kafka import ensure_topics

    asyncio.run(ensure_topics(settings))
    import faust
    from mode.loop import use as use_loop

    use_loop("uvloop")
    import agents.twin_updater  # noqa: F401  (registers the agent)
    from stream.app import app

    worker = faust.Worker(app, loglevel=args.loglevel.upper(), quiet=True)
    worker.execute_from_commandline()
    return 0


def _cmd_services(args: argparse.Namespace) -> int:
    from stream.services import main_services

    return main_services(args.rest)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from stream.kafka import ensure_topics
    from stream.settings import get_settings
    from stream.simulate import simulate

    settings = get_settings()

    async def run() -> int:
        await ensure_topics(settings)
        return await simulate(
            settings,
            patients=args.patients,
            rate=args.rate,
            duration=args.duration,
            seed=args.seed,
            malformed_every=args.malformed_every,
        )

    sent = asyncio.run(run())
    print(f"sent {sent} vitals messages to {settings.topic_vitals}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from stream.demo import run_demo

    return asyncio.run(run_demo(args))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker", help="run a twin-updater worker")
    w.add_argument("--loglevel", "-l", default="info", choices=["debug", "info", "warn", "error"])
    w.set_defaults(func=_cmd_worker)

    s = sub.add_parser("services", help="start/stop the local Kafka and Redis", add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=_cmd_services)

    sim = sub.add_parser("simulate", help="produce a synthetic vitals feed")
    sim.add_argument("--patients", type=int, default=100)
    sim.add_argument("--rate", type=float, default=50.0, help="messages per second")
    sim.add_argument("--duration", type=float, default=60.0, help="seconds")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--malformed-every", type=int, default=0, help="every Nth message broken")
    sim.set_defaults(func=_cmd_simulate)

    d = sub.add_parser("demo", help="services up, worker, live feed, print alerts")
    d.add_argument("--patients", type=int, default=40)
    d.add_argument("--rate", type=float, default=40.0)
    d.add_argument("--duration", type=float, default=0.0, help="seconds (0: until Ctrl-C)")
    d.add_argument("--keep-services", action="store_true", help="leave Kafka and Redis up")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``twinstream`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return int(args.func(args) or 0)


def spawn_worker(
    env: dict[str, str] | None = None, log_path: str | None = None
) -> subprocess.Popen[bytes]:
    """Start ``twinstream worker`` as a child process (used by the demo and tests)."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "worker", "-l", "warn"],
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, wait, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
