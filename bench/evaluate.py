"""Evaluation on real data (issue #5): PhysioNet/CinC 2012 stays through the real pipeline.

Run from the repository root::

    .venv/bin/python -m bench.evaluate [--data DIR] [--outcomes FILE] [--limit N]
                                       [--stagger MIN] [--window MIN] [--out DIR]

What it does
------------
1. Starts Kafka and Redis with :mod:`stream.services` on their own ports
   (``TWIN_LOCAL_KAFKA_PORT=62092``, ``TWIN_LOCAL_REDIS_PORT=62379``,
   ``TWIN_STATE_DIR=/tmp/tsstate-eval`` unless set; ``--kafka``/``--redis``
   use running services instead), fresh topics, consumer group and key prefix
   per run, and one ``twinstream worker`` (:func:`stream.cli.spawn_worker`).
2. Replays the stays (:mod:`stream.feeds.physionet`; implausible values passed
   through, so the worker dead-letters them) with their ``in_hospital_death``
   outcome at each stay's last row. Stays are admitted in RecordID order, one
   every ``--stagger`` minutes of event time (default 30: 48 admissions a day,
   about 96 stays in the unit at once). A stay's final risk is therefore
   scored when the labels of the stays admitted about 48 h + one window
   earlier (~100 stays before it) have been learned: prequential, with the
   label arriving 0 to ``--window`` minutes after the end of the 48 h
   record. Sent as fast as the worker takes it, window by window (see
   :mod:`bench.eval_feed` for why). The window defaults to the worker's
   lateness allowance (``TWIN_LATENESS_MINUTES``, 60): the worker
   interleaves topics by fetch, so inside a longer window labs could be
   applied hours ahead of the same patient's vitals, which the twin would
   then treat as late and not score (a 6 h window lowered the maximum NEWS2
   of 13 % of stays against strict event-time order).
   ``TWIN_STALE_AFTER_MINUTES`` is set very large: every stay simply ends
   after 48 h, and stale-data alerts for ended stays would be noise.
3. Waits until the worker's committed ``consumed`` equals what was sent,
   reads every twin (and its ``MEMORY USAGE``) and the whole alerts topic.
4. Writes ``<out>/evaluation.json`` and ``<out>/evaluation_roc.png`` (default
   ``bench/results``) and prints a table.

Nothing is tuned on the outcomes it scores: the worker runs with its default
settings except the stale-data timeout; stagger and window are fixed above.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.eval_collect import read_alerts, read_risk_model, read_twins, wait_outbox_empty
from bench.eval_feed import FeedLog, barrier_windows, send_in_windows
from bench.eval_output import print_table, write_roc_png
from bench.eval_stays import StayTap, stay_files
from bench.eval_summary import RunResult, build_report, code_version

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "physionet2012" / "set-a"
RESULTS = REPO / "bench" / "results"
EVAL_DEFAULTS = {
    "TWIN_LOCAL_KAFKA_PORT": "62092",
    "TWIN_LOCAL_REDIS_PORT": "62379",
    "TWIN_STATE_DIR": "/tmp/tsstate-eval",
}
BASE = datetime(2026, 1, 1, tzinfo=UTC)  # first admission; fixed, so runs are comparable
STALE_NEVER_MINUTES = 10_000_000  # ~19 years: no stale-data alerts within a replay
PARTITIONS = 8

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of <RecordID>.txt")
    p.add_argument("--outcomes", type=Path, default=None, help="default: Outcomes-a.txt beside")
    p.add_argument("--limit", type=int, default=None, help="first N stays by RecordID")
    p.add_argument("--stagger", type=float, default=30.0, help="minutes between admissions")
    p.add_argument(
        "--window",
        type=float,
        default=None,
        help="event-time minutes per window (default: lateness)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="where the JSON and PNG go")
    p.add_argument("--kafka", default=None, help="use this running broker (with --redis)")
    p.add_argument("--redis", default=None, help="use this running Redis URL (with --kafka)")
    p.add_argument("--keep", action="store_true", help="keep the run's topics and Redis keys")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for CIs")
    return p


def _outcomes_file(data: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    for candidate in (data.parent / "Outcomes-a.txt", data / "Outcomes-a.txt"):
        if candidate.is_file():
            return candidate
    return data.parent / "Outcomes-a.txt"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker_env(run: str, bootstrap: str, redis_url: str) -> dict[str, str]:
    kinds = ("vitals", "labs", "wearables", "profiles", "fhir", "outcomes", "alerts")
    env = {f"TWIN_TOPIC_{k.upper()}": f"eval.{run}.{k}" for k in kinds}
    env |= {
        "TWIN_TOPIC_ALERT_ACKS": f"eval.{run}.alert-acks",
        "TWIN_TOPIC_DEADLETTER": f"eval.{run}.deadletter",
        "TWIN_CONSUMER_GROUP": f"eval-{run}",
        "TWIN_KEY_PREFIX": f"ev{run}",
        "TWIN_KAFKA_BOOTSTRAP": bootstrap,
        "TWIN_REDIS_URL": redis_url,
        "TWIN_PARTITIONS": str(PARTITIONS),
        "TWIN_STALE_AFTER_MINUTES": str(STALE_NEVER_MINUTES),
        "TWIN_STALE_SCAN_SECONDS": str(STALE_NEVER_MINUTES * 60),
        # Only how fresh the risk checkpoint read at the end is; scoring is unaffected.
        "TWIN_CHECKPOINT_SECONDS": "5",
    }
    return env


def _settings(env: dict[str, str]) -> Any:
    from stream.settings import Settings

    fields: dict[str, Any] = {k.removeprefix("TWIN_").lower(): v for k, v in env.items()}
    return Settings(**fields)


async def _wait_claimed(settings: Any, proc: subprocess.Popen[bytes], limit_s: float) -> None:
    """Wait until the worker has joined and claimed every partition (startup is over)."""
    from stream.store import RedisTwinStore

    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    deadline = time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline:
            keys = [store.key(p, "epoch") for p in range(settings.partitions)]
            if all(v is not None for v in await store.redis.mget(keys)):
                return
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {proc.returncode} while starting")
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the worker did not claim its partitions within {limit_s:.0f} s")
    finally:
        await store.close()


async def _cleanup(settings: Any) -> None:
    """Delete the run's topics and Redis keys."""
    from aiokafka.admin import AIOKafkaAdminClient

    from stream.kafka import all_topics, kafka_client_options
    from stream.store import RedisTwinStore

    admin = AIOKafkaAdminClient(**kafka_client_options(settings))
    await admin.start()
    try:
        present = set(await admin.list_topics())
        doomed = [t for t in all_topics(settings) if t in present]
        doomed += [t for t in present if t.startswith(f"{settings.consumer_group}-")]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    try:
        batch: list[bytes] = []
        async for key in store.redis.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await store.redis.unlink(*batch)
                batch = []
        if batch:
            await store.redis.unlink(*batch)
    finally:
        await store.close()


def _progress(span_h: float, started: float) -> Any:
    last = [0.0]

    def report(log: FeedLog) -> None:
        now = time.monotonic()
        if now - last[0] >= 30.0:
            last[0] = now
            print(
                f"  {now - started:5.0f} s: {log.total:,} messages sent and consumed,"
                f" {log.windows} windows (event time span {span_h:.0f} h)",
                file=sys.stderr,
                flush=True,
            )

    return report


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data: Path = args.data.resolve()
    outcomes_path = _outcomes_file(data, args.outcomes)
    files = stay_files(data, args.limit)
    if not files:
        print(f"no <RecordID>.txt stays under {data}: pass --data DIR (e.g. .../set-a)")
        return 2
    if not outcomes_path.is_file():
        print(f"no outcomes file at {outcomes_path}: pass --outcomes FILE")
        return 2
    if os.environ.get("TWIN_PSEUDONYM_KEY"):
        print("unset TWIN_PSEUDONYM_KEY: the evaluation joins twins to RecordIDs by patient id")
        return 2
    if bool(args.kafka) != bool(args.redis):
        print("--kafka and --redis go together (or neither: local services are started)")
        return 2
    from stream.feeds.physionet import ReplayOptions, ReplayStats, load_outcomes

    outcomes = load_outcomes(outcomes_path)
    missing = [f.stem for f in files if int(f.stem) not in outcomes]
    if missing:
        print(f"{len(missing)} stays have no row in {outcomes_path.name}, e.g. {missing[0]}")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    started_services: tuple[str, ...] = ()
    if args.kafka:
        bootstrap, redis_url = args.kafka, args.redis
    else:
        for key, value in EVAL_DEFAULTS.items():
            os.environ.setdefault(key, value)
        from stream import services as svc

        before = {s.name for s in svc.status() if s.running}
        svc.up()
        started_services = tuple(sorted({"kafka", "redis"} - before))
        ports = svc.ServicePorts.resolve()
        bootstrap, redis_url = f"127.0.0.1:{ports.kafka}", f"redis://127.0.0.1:{ports.redis}/0"
    run = uuid.uuid4().hex[:6]
    env = _worker_env(run, bootstrap, redis_url)
    settings = _settings(env)
    if args.window is None:
        args.window = max(settings.lateness_minutes, 1.0)
    logs = Path(os.environ.get("TWIN_STATE_DIR", "/tmp/tsstate-eval")) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    worker_log = logs / f"evaluate-{run}-worker.log"
    proc: subprocess.Popen[bytes] | None = None
    from stream.cli import spawn_worker, stop_process
    from stream.kafka import ensure_topics

    try:
        asyncio.run(ensure_topics(settings))
        code = code_version()  # what the worker is about to import
        proc = spawn_worker(env, log_path=str(worker_log))
        worker = proc
        asyncio.run(_wait_claimed(settings, worker, limit_s=180.0))
        cpu0 = _cpu_seconds(worker.pid)
        stats = ReplayStats()
        options = ReplayOptions(base=BASE, stagger_s=args.stagger * 60.0, outcomes=outcomes)
        tap = StayTap()
        messages = tap.messages(files, options, stats)
        span_h = 48 + (len(files) - 1) * args.stagger / 60.0
        print(
            f"evaluating {len(files)} stays (run {run}, worker log {worker_log})",
            file=sys.stderr,
        )
        t0 = time.monotonic()
        log = asyncio.run(
            send_in_windows(
                settings,
                barrier_windows(messages, args.window * 60.0),
                worker_alive=lambda: worker.poll() is None,
                worker_cpu=lambda: _cpu_seconds(worker.pid),
                on_window=_progress(span_h, t0),
            )
        )
        cpu1 = _cpu_seconds(worker.pid)
        flushed = asyncio.run(wait_outbox_empty(settings))
        counters = asyncio.run(_counters(settings))
        stop_process(worker)
        result = RunResult(
            run_id=run,
            data_dir=data,
            outcomes_path=outcomes_path,
            outcomes=outcomes,
            stagger_minutes=args.stagger,
            window_minutes=args.window,
            settings=settings,
            tap=tap,
            stats=stats,
            log=log,
            worker_cpu_s=cpu1 - cpu0,
            counters=counters,
            outbox_flushed=flushed,
            twins=asyncio.run(read_twins(settings)),
            alerts=asyncio.run(read_alerts(settings)),
            risk_model=asyncio.run(read_risk_model(settings)),
            code_at_start=code,
        )
        report = build_report(result, resamples=args.resamples)
        write_roc_png(
            report.pop("roc_curves"),
            report["auroc"],
            report["auroc_detail"],
            args.out / "evaluation_roc.png",
        )
        (args.out / "evaluation.json").write_text(json.dumps(report, indent=1) + "\n")
        print_table(report)
        print(f"wrote {args.out / 'evaluation.json'} and {args.out / 'evaluation_roc.png'}")
        return 0
    finally:
        if proc is not None:
            stop_process(proc)
        if not args.keep:
            with contextlib.suppress(Exception):
                asyncio.run(_cleanup(settings))
        if started_services:
            from stream import services as svc

            svc.down(started_services)


async def _counters(settings: Any) -> dict[str, int]:
    from stream.store import RedisTwinStore

    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    try:
        return dict(await store.counters())
    finally:
        await store.close()


if __name__ == "__main__":
    sys.exit(main())
