"""``python -m bench.run [--quick]``: issue #7's benchmark of twinstream and its peers.

Starts its own Kafka and Redis (stream.services, own ports and state dir),
loads the input topics once, then measures each consumer on the same input,
each in its own process, each with a fresh consumer group. See bench/README.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.env import (
    RESULTS,
    RUN_ID,
    Children,
    Phase,
    apply_defaults,
    clean_up,
    tear_down,
)

SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "stays": 100,
        "patients": 10_000,
        "hours": 0.25,
        "profile_cap": 20_000,
        "naive_cap": 10_000,
        "naive_deadline": 45,
        "consumer_deadline": 90,
        "tw_timeout": 300,
        "lat_rate": 2000,
        "lat_low_rate": 500,
        "lat_duration": 15,
        # Past the feed's first minute, as in the full run (see bench.phases.latency).
        "lat_warmup": 65,
        "mem_twins": 100_000,
        # As in the full run: with 2,000 and 10,000 messages the two wearable
        # runs lasted 0.5 s and 0.12 s, mostly start-up, not a sustained rate.
        "wear_batched": 10_000,
        "wear_single": 100_000,
    },
    "full": {
        "stays": None,
        "patients": 10_000,
        "hours": 2.0,
        "profile_cap": 10_000_000,  # the whole input: its later part costs more per event
        "naive_cap": 100_000,
        "naive_deadline": 240,
        "consumer_deadline": 300,
        "tw_timeout": 1200,
        "lat_rate": 2000,
        "lat_low_rate": 500,
        "lat_duration": 60,
        "lat_warmup": 65,
        "mem_twins": 100_000,
        "wear_batched": 10_000,
        "wear_single": 100_000,
    },
}
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "physionet2012"


def _code_version() -> dict[str, Any]:
    """The commit measured and the worker's files that differ from it (others edit them)."""
    import subprocess

    def git(*a: str) -> str:
        done = subprocess.run(["git", *a], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "stream", "twin", "agents", "schemas")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": dirty.splitlines()}


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


#: The phases that read the main input (the others make their own).
MAIN_INPUT_PHASES = {"twinstream", "bare", "naive", "profile", "two_workers", "ratio_repeat"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few minutes in all")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="physionet2012 folder")
    parser.add_argument("--keep-services", action="store_true", help="leave Kafka/Redis up")
    parser.add_argument("--only", default="", help="comma-separated phases (default: all)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=N", help="override a size, e.g. stays=50"
    )
    args = parser.parse_args(argv)
    apply_defaults()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    # Producing right after topic creation retries on NotLeaderForPartition: not news.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    from bench import phases, report
    from stream import services

    mode = "quick" if args.quick else "full"
    size = dict(SIZES[mode])
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in size:
            parser.error(f"--set {key}: unknown; one of {', '.join(size)}")
        size[key] = float(value) if "." in value else int(value)
    (RESULTS / "runs").mkdir(parents=True, exist_ok=True)
    logs = RESULTS / "logs"
    logs.mkdir(exist_ok=True)
    for old_log in logs.glob("*.log"):  # children append: counts are per run
        old_log.unlink()
    res: dict[str, Any] = {
        "mode": mode,
        "run_id": RUN_ID,
        "started": datetime.now(UTC).isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores; shared, noisy",
        "ports": {k: os.environ[k] for k in ("TWIN_LOCAL_KAFKA_PORT", "TWIN_LOCAL_REDIS_PORT")},
        "sizes": size,
        "notes": [],
        "errors": {},
        "code": _code_version(),
    }
    children = Children(logs)
    started_services = services.pid_of("kafka") is None or services.pid_of("redis") is None
    wanted = set(filter(None, args.only.split(",")))
    # A full run is latest.json, a --quick one latest-quick.json; an --only run
    # never overwrites either.
    stem = "latest" if mode == "full" else "latest-quick"
    out = RESULTS / f"{stem}.json" if not wanted else RESULTS / "runs" / f"partial-{mode}.json"
    t0 = time.monotonic()

    def step(name: str, fn: Any, *a: Any) -> None:
        if wanted and name not in wanted:
            return
        print(f"[{time.monotonic() - t0:6.0f}s] {name}", flush=True)
        # Other processes on this shared machine: the 1-minute load average before each phase.
        res.setdefault("loadavg_before", {})[name] = round(os.getloadavg()[0], 2)
        # Others commit while the bench runs; each phase's processes import the tree as it is.
        code = _code_version()
        if code != res["code"]:
            res.setdefault("code_per_phase", {})[name] = code
        try:
            fn(*a)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            res["errors"][name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            # Each phase measures on its own data: the twins of earlier phases would
            # only make Redis's AOF rewrites longer during the later ones.
            try:
                clean_up(RUN_ID, topics=False)
            except Exception as exc:
                print(f"clean-up after {name} failed: {exc}", file=sys.stderr)
            report.write_json(res, out)

    try:
        print(
            f"services up (Kafka :{os.environ['TWIN_LOCAL_KAFKA_PORT']}, "
            f"Redis :{os.environ['TWIN_LOCAL_REDIS_PORT']})",
            flush=True,
        )
        services.up()
        old = clean_up()  # earlier runs' topics and keys (a run killed before its own)
        if any(old):
            print(f"deleted {old[0]} topics and {old[1]} Redis keys of earlier runs", flush=True)
        main_phase = Phase("main")
        n = 0
        if not wanted or wanted & MAIN_INPUT_PHASES:
            n = phases.load_main(main_phase, size, args.data, res)
            print(f"loaded {n} messages: {res['inputs']['by_kind']}", flush=True)
        tw_timeout = size["tw_timeout"]
        step("twinstream", phases.twinstream, children, main_phase, n, tw_timeout, res)
        step("bare", phases.bare_consumers, children, main_phase, n, size["consumer_deadline"], res)
        step("naive", phases.naive, children, main_phase, n, size, res)
        prof_n = min(n, size["profile_cap"])
        step("profile", phases.profiled, children, main_phase, prof_n, tw_timeout, res)
        step("two_workers", phases.two_workers, children, main_phase, n, tw_timeout, res)
        step("ratio_repeat", phases.ratio_repeat, children, main_phase, n, size, res)
        step("wearables", phases.wearable_rates, children, size, tw_timeout, res)
        step("latency", phases.latency, children, size, size["lat_rate"], "latency_ms", res)
        # The same feed with every patient changing level on the same round: alerting
        # work in half-second bursts (bench.latency), reported beside the steady one.
        step(
            "latency_synchronized",
            phases.latency,
            children,
            size,
            size["lat_rate"],
            "latency_ms_synchronized",
            res,
            "synchronized",
        )
        low = size["lat_low_rate"]
        step("latency_low", phases.latency, children, size, low, f"latency_ms_at_{low}", res)
        # The 2,000/s feed again with a second worker process in the group: what a
        # deployment adds when one worker's core is not enough for the offered load.
        step(
            "latency_two_workers",
            phases.latency,
            children,
            size,
            size["lat_rate"],
            "latency_ms_two_workers",
            res,
            "staggered",
            2,
        )
        step("memory", phases.memory, children, size, tw_timeout, res)
    except KeyboardInterrupt:
        res["notes"].append("interrupted: results are partial")
        print("interrupted; cleaning up", file=sys.stderr)
    finally:
        tear_down(children, started_services and not args.keep_services)
        res["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        res["wall_seconds"] = round(time.monotonic() - t0)
        report.write_json(res, out)
        try:
            report.plot(res, out.with_suffix(".png"))
        except Exception as exc:  # a missing plot must not hide the figures
            print(f"plot failed: {exc}", file=sys.stderr)
    report.table(res)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
