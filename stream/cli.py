"""``twinstream`` command line: worker, demo, and the subcommands of stream.* modules."""

from __future__ import annotations

import argparse
import asyncio
import importlib
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
    # Tens of thousands of hot twins are long-lived objects: full collections of
    # them took ~0.75 s each (bench profile). See stream.gcpolicy.
    from stream import gcpolicy

    gcpolicy.install(freeze_survivors=settings.gc_full_minutes > 0)
    import agents.twin_updater  # noqa: F401  (registers the agent)
    from stream.app import app

    if settings.worker_metrics_port:
        from stream.metrics import start_worker_metrics_server

        start_worker_metrics_server(settings.worker_metrics_port)

    worker = faust.Worker(app, loglevel=args.loglevel.upper(), quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG so that it spins on
    # every record: every library's debug call then builds a LogRecord that the
    # handler drops (aiokafka logs each partition of each fetch), ~8 % of a
    # worker's CPU on a live feed (py-spy, bench latency phase). No spinner, and
    # the root logger stays at the chosen level.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0


_DELEGATED = {
    "services": (
        "stream.services",
        "main_services",
        "start/stop/status of the local Kafka and Redis",
    ),
    "simulate": ("stream.feeds.simulator", "main_simulate", "produce a synthetic patient feed"),
    "replay": ("stream.feeds.physionet", "main_replay", "replay physionet2012 or a WFDB record"),
    "profiles": ("stream.feeds.profiles_csv", "main_profiles", "load patient profiles from CSV"),
    "api": ("stream.api.server", "main_api", "serve the HTTP API and dashboard"),
    "alerts": ("stream.api.subscribers", "main_alerts", "tail or forward alerts"),
}


def _cmd_demo(args: argparse.Namespace) -> int:
    from stream.demo import run_demo

    return asyncio.run(run_demo(args))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker", help="run a twin-updater worker")
    w.add_argument("--loglevel", "-l", default="info", choices=["debug", "info", "warn", "error"])
    w.set_defaults(func=_cmd_worker)

    for name, (_module, _func, text) in _DELEGATED.items():
        # Listed for --help; main() hands their arguments to the module's own parser.
        sub.add_parser(name, help=text, add_help=False)

    d = sub.add_parser("demo", help="services up, worker, live feed, print alerts")
    d.add_argument("--patients", type=int, default=40)
    d.add_argument("--rate", type=float, default=40.0)
    d.add_argument("--duration", type=float, default=0.0, help="seconds (0: until Ctrl-C)")
    d.add_argument("--speed", type=float, default=600.0, help="simulated seconds per second")
    d.add_argument("--seed", type=int, default=None, help="default: a new cohort each run")
    d.add_argument("--keep-services", action="store_true", help="leave Kafka and Redis up")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``twinstream`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if argv and argv[0] in _DELEGATED:
        module, func, _ = _DELEGATED[argv[0]]
        return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
    args = _parser().parse_args(argv)
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
