"""The measured phases of ``python -m bench.run``; each fills its part of the results."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.env import (
    RESULTS,
    Children,
    Phase,
    bootstrap,
    cpu_seconds,
    log_events,
    quix_python,
    wait_for_file,
    waiting_for_a_core_seconds,
    worker_metrics,
)
from bench.inputs import main_mix, one_vitals_each, send, wearables
from bench.twinrun import TwinRun, check_twins, run_workers, store_counters

Results = dict[str, Any]


def create_topics(phase: Phase) -> None:
    from stream.kafka import ensure_topics

    asyncio.run(ensure_topics(phase.settings()))


def _topics(phase: Phase) -> dict[str, str]:
    return {k: phase.topic(k) for k in ("vitals", "labs", "wearables", "profiles")}


def load_main(phase: Phase, size: dict[str, Any], data_dir: Path, res: Results) -> int:
    create_topics(phase)
    notes: list[str] = res.setdefault("notes", [])
    started = time.monotonic()
    mix = main_mix(data_dir, size["stays"], size["patients"], size["hours"], notes)
    counts = send(bootstrap(), _topics(phase), mix)
    total = sum(counts.values())
    res["inputs"] = {
        "messages": total,
        "by_kind": dict(counts),
        "physionet_stays": size["stays"] or "all",
        "simulated_patients": size["patients"],
        "simulated_hours": size["hours"],
        "load_seconds": round(time.monotonic() - started, 1),
    }
    return total


def consumer(
    children: Children,
    phase: Phase,
    name: str,
    module: str,
    expect: int,
    deadline: float,
    *extra: str,
) -> dict[str, Any] | None:
    """Run one measuring consumer process to its result file, then stop it."""
    out = RESULTS / "runs" / f"{name}.json"
    out.unlink(missing_ok=True)
    args = ["--bootstrap", bootstrap(), "--topics", ",".join(phase.input_topics())]
    args += ["--group", phase.group(name), "--expect", str(expect)]
    args += ["--deadline", str(deadline), "--out", str(out), *extra]
    # quix_bare runs in its own virtualenv (see bench.env.quix_python); it
    # imports only quixstreams, orjson and its own bench.probe by path.
    python = quix_python() if module == "bench.quix_bare" else None
    proc = children.module(name, module, *args, python=python, env=_repo_on_path())
    result = wait_for_file(out, deadline + 90, proc)
    children.stop(proc, grace=3.0)
    return result


def _repo_on_path() -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    return {"PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def bare_consumers(children: Children, phase: Phase, n: int, deadline: float, res: Results) -> None:
    eps = res.setdefault("throughput_eps", {})
    runs = res.setdefault("consumer_runs", {})
    for name, module, extra in (
        ("aiokafka_raw", "bench.aiokafka_raw", ()),
        ("quix_bare", "bench.quix_bare", ()),
        ("faust_bare", "bench.faust_bare", ()),
        ("faust_bare_tuned", "bench.faust_bare", ("--tuned",)),
        ("faust_bare_eager", "bench.faust_bare", ("--tuned", "--eager")),
        ("faust_bare_batch", "bench.faust_bare", ("--tuned", "--eager", "--batch")),
    ):
        result = consumer(children, phase, name, module, n, deadline, *extra)
        runs[name] = result
        eps[name] = round(result["eps"]) if result else None
        print(f"  {name}: {eps[name]} msg/s", flush=True)


def naive(children: Children, phase: Phase, n: int, size: dict[str, Any], res: Results) -> None:
    out = RESULTS / "runs" / "naive.json"
    out.unlink(missing_ok=True)
    cap = min(n, size["naive_cap"])
    env = phase.env("naive")
    args = ["--expect", str(cap), "--deadline", str(size["naive_deadline"]), "--out", str(out)]
    proc = children.module(
        "naive", "bench.naive_peer", *args, "--prefix", env["TWIN_KEY_PREFIX"], env=env
    )
    result = wait_for_file(out, size["naive_deadline"] + 90, proc)
    children.stop(proc, grace=3.0)
    res.setdefault("consumer_runs", {})["naive"] = result
    res.setdefault("throughput_eps", {})["naive"] = round(result["eps"]) if result else None
    if result:
        import redis

        from bench.env import redis_url

        r = redis.Redis.from_url(redis_url())
        keys = list(itertools.islice(r.scan_iter(match=f"{env['TWIN_KEY_PREFIX']}:*"), 300))
        sizes = [int(r.memory_usage(k, samples=0) or 0) for k in keys]
        r.close()
        res["naive_redis_bytes_per_twin"] = {
            "median": statistics.median(sizes) if sizes else 0,
            "max": max(sizes, default=0),
        }
    print(f"  naive: {res['throughput_eps']['naive']} ev/s (first {cap} messages)", flush=True)
    naive_eps = res["throughput_eps"]["naive"]
    tw = res.get("twinstream_run", {})
    tw_first = tw.get("first_events_eps", {}).get(str(cap))
    if naive_eps and tw_first:
        # Twinstream over the whole input against the naive peer over its first `cap`
        # events, and both over those same first events (the like-for-like pair:
        # the cost per event is not the same along the input).
        res["naive_ratio"] = {
            "whole_input_vs_first": round(res["throughput_eps"]["twinstream"] / naive_eps, 2),
            "same_first_events": round(tw_first / naive_eps, 2),
            "first_events": cap,
        }


def _first_counts(res: Results) -> list[int]:
    return [int(res["sizes"]["naive_cap"])] if res.get("sizes", {}).get("naive_cap") else []


def _cpu_us_per_event(run: TwinRun) -> dict[str, float]:
    """CPU microseconds per consumed event of each process a twinstream run measured."""
    return {k: round(v * 1e6 / max(run.consumed, 1), 1) for k, v in run.cpu_s.items()}


def twinstream(children: Children, phase: Phase, n: int, timeout: float, res: Results) -> None:
    run = run_workers(children, phase, "tw1", n, timeout)
    eps = res.setdefault("throughput_eps", {})
    eps["twinstream"] = round(run.eps)
    check = check_twins(phase.prefix("tw1"))
    res["twinstream_run"] = {
        "complete": run.complete,
        "consumed": run.consumed,
        "seconds": round(run.seconds, 2),
        "steady_eps": round(run.window_eps()),
        # Over the same first events the naive peer consumes (it stops at naive_cap).
        "first_events_eps": {str(k): round(run.eps_until(k)) for k in _first_counts(res)},
        "mean_batch_size": run.mean_batch,
        "redis_commands": run.redis_commands,
        "redis_round_trips": run.redis_requests,
        "cpu_seconds": run.cpu_s,
        "cpu_us_per_event": _cpu_us_per_event(run),
        "commandstats_per_event": {
            k: round(v / max(run.consumed, 1), 4) for k, v in sorted(run.commandstats.items())
        },
        "rss_mb": run.rss_mb,
        "worker_log": run.log_events,
        "check": check,
    }
    # What the worker sent (a script call is one command; a pipeline one round trip),
    # and everything Redis ran, the commands inside the scripts included.
    n = max(run.consumed, 1)
    sent, trips = run.redis_commands, run.redis_requests
    res["redis_commands_per_event"] = None if sent is None else round(sent / n, 4)
    res["redis_round_trips_per_event"] = None if trips is None else round(trips / n, 4)
    res["redis_server_commands_per_event"] = round(run.commands / n, 4)
    res["redis_bytes_per_twin"] = check["bytes"]
    print(f"  twinstream: {eps['twinstream']} ev/s; balanced={check['balanced']}", flush=True)


def ratio_repeat(
    children: Children, phase: Phase, n: int, size: dict[str, Any], res: Results
) -> None:
    """Tuned bare Faust, then twinstream, each once more on the same input: with the
    first round's pair (twinstream, then Faust in the bare phase) an ABBA order, so
    a machine that speeds up or slows down steadily during the run (this shared
    one does: Redis's CPU per event for the same work rose by over a third within
    an hour) weighs on both sides alike. The ratio is that of the two runs' mean
    rates; each run is kept."""
    first_tw = res.get("throughput_eps", {}).get("twinstream")
    first_faust = res.get("throughput_eps", {}).get("faust_bare_tuned")
    name = "faust_bare_tuned_2"
    again = consumer(
        children, phase, name, "bench.faust_bare", n, size["consumer_deadline"], "--tuned"
    )
    faust = round(again["eps"]) if again else None
    print(f"  {name}: {faust} msg/s", flush=True)
    run = run_workers(children, phase, "tw3", n, size["tw_timeout"])
    tw = round(run.eps)
    print(f"  twinstream again: {tw} ev/s (complete={run.complete})", flush=True)
    rounds = {
        "order": ["twinstream", "faust_bare_tuned", "faust_bare_tuned", "twinstream"],
        "twinstream": [first_tw, tw],
        "faust_bare_tuned": [first_faust, faust],
        "twinstream_complete": [res.get("twinstream_run", {}).get("complete"), run.complete],
        "twinstream_cpu_us_per_event": [
            res.get("twinstream_run", {}).get("cpu_us_per_event", {}).get("worker0"),
            _cpu_us_per_event(run).get("worker0"),
        ],
    }
    if first_tw and first_faust and faust:
        mean_tw, mean_faust = (first_tw + tw) / 2, (first_faust + faust) / 2
        rounds["twinstream_mean"] = round(mean_tw)
        rounds["faust_bare_tuned_mean"] = round(mean_faust)
        rounds["ratio"] = round(mean_tw / mean_faust, 3)
        rounds["ratio_first_pair"] = round(first_tw / first_faust, 3)
        rounds["ratio_second_pair"] = round(tw / faust, 3)
    res["vs_tuned_faust"] = rounds
    print(f"  twinstream / tuned Faust, ABBA: {rounds.get('ratio')}", flush=True)


def profiled(children: Children, phase: Phase, n: int, timeout: float, res: Results) -> None:
    """Two more single-worker runs: CPU-time samples (profile.txt) and py-spy (profile-wall.txt)."""
    from bench.profile import Profiling, py_spy

    out: dict[str, Any] = {}
    # A --quick run keeps its own files: the full run's profile is the one the README quotes.
    suffix = "" if res.get("mode") == "full" else f"-{res.get('mode')}"
    for kind, stem in (("cpu", "profile"), ("wall", "profile-wall")):
        if kind == "wall" and py_spy() is None:
            # Not a profile without py-spy: say so, rather than time an unprofiled worker
            # and point at a file from an earlier run.
            note = "wall profile skipped: py-spy not installed (pip install -e '.[bench]')"
            res.setdefault("notes", []).append(note)
            out[kind] = {"skipped": "py-spy not installed"}
            print(f"  {note}", flush=True)
            continue
        name = stem + suffix
        prof = Profiling(kind, RESULTS / f"{name}.raw", RESULTS / f"{name}.txt", children.logs)
        run = run_workers(children, phase, f"pr{kind}", n, timeout, profile=prof)
        out[kind] = {"eps_under_profiler": round(run.eps), "file": f"bench/results/{name}.txt"}
        out[kind] |= run.profile
        print(f"  {kind} profile: {round(run.eps)} ev/s under the profiler", flush=True)
    res["profile"] = out


def two_workers(children: Children, phase: Phase, n: int, timeout: float, res: Results) -> None:
    run = run_workers(children, phase, "tw2", n, timeout, workers=2)
    one = res.get("throughput_eps", {}).get("twinstream") or 0
    one_steady = res.get("twinstream_run", {}).get("steady_eps") or 0
    res["two_worker_eps"] = round(run.eps)
    res["two_worker_speedup"] = round(run.eps / one, 2) if one else None
    res["two_worker_speedup_steady"] = (
        round(run.window_eps() / one_steady, 2) if one_steady else None
    )
    res["two_worker_run"] = {
        "complete": run.complete,
        "cpu_seconds": run.cpu_s,
        "worker_logs": run.log_events,
    }
    print(f"  two workers: {round(run.eps)} ev/s", flush=True)


def wearable_rates(children: Children, size: dict[str, Any], timeout: float, res: Results) -> None:
    for key, phase, count, per in (
        ("batched_obs_per_s", Phase("wbat"), size["wear_batched"], 60),
        ("single_obs_per_s", Phase("wsgl"), size["wear_single"], 1),
    ):
        create_topics(phase)
        n = sum(
            send(
                bootstrap(), {"wearables": phase.topic("wearables")}, wearables(count, per)
            ).values()
        )
        run = run_workers(children, phase, "tw", n, timeout)
        res[key] = round(run.eps * per)
        res[key.replace("obs", "msgs")] = round(run.eps)
        print(f"  wearables x{per}: {round(run.eps)} msg/s = {res[key]} obs/s", flush=True)


def _pct(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else None


def _scrape(port: int) -> dict[str, Any]:
    """Mean batch size, batch wall time and worker-side event-to-alert (observed_at to
    broker ack), from the worker's Prometheus endpoint (``TWIN_WORKER_METRICS_PORT``);
    empty if it has none."""
    values = worker_metrics(port)
    out: dict[str, Any] = {}
    for short, metric in (
        ("batch_size", "batch_size"),
        ("event_to_alert_s", "event_to_alert_seconds"),
        ("batch_s", "batch_seconds"),
        ("record_wait_s", "record_wait_seconds"),
    ):
        n = values.get(f"twinstream_worker_{metric}_count", 0.0)
        if n:
            out[f"mean_{short}"] = round(values[f"twinstream_worker_{metric}_sum"] / n, 3)
            out[f"count_{short}"] = int(n)
    for name in ("event_to_alert", "batch", "record_wait"):
        buckets = {
            k.split('le="')[1].rstrip('"}'): v
            for k, v in values.items()
            if k.startswith(f"twinstream_worker_{name}_seconds_bucket")
        }
        if buckets:
            out[f"{name}_buckets_s"] = buckets
    return out


def _percentiles(lat: list[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max of sorted ``lat``."""
    return {q: _pct(lat, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))}


def _run_key(key: str) -> str:
    """``latency_ms`` -> ``latency_run``, ``latency_ms_at_500`` -> ``latency_run_at_500``."""
    return key.replace("_ms", "_run")


def latency(
    children: Children,
    size: dict[str, Any],
    rate: int,
    key: str,
    res: Results,
    alerts: str = "staggered",
    workers: int = 1,
) -> None:
    """Event-to-alert latency at ``rate`` events/s offered; fills ``res[key]``.

    ``alerts``: when the feed's patients change level (``bench.latency``):
    ``staggered``, spread over time, or ``synchronized``, all on the same round.
    ``workers``: worker processes in one consumer group (the second on the
    machine's second core, as ``two_workers`` measures throughput)."""
    metrics_port = 59310 + rate % 100
    no_hold = {"TWIN_ALERT_HOLD_MINUTES": "0", "TWIN_ALERT_COOLDOWN_MINUTES": "0"}
    name = f"lat{rate}" + ("" if alerts == "staggered" else alerts[:4])
    phase = Phase(name + ("" if workers == 1 else f"w{workers}"), no_hold)
    create_topics(phase)
    import redis

    from bench.env import redis_url
    from stream import services
    from stream.cli import spawn_worker

    env = phase.env("tw")
    log = str(children.logs / f"{key}-worker.log")
    procs = [
        children.track(
            spawn_worker(
                env | {"TWIN_WORKER_METRICS_PORT": str(metrics_port + i)},
                log_path=log if i == 0 else log.replace("-worker.log", f"-worker{i}.log"),
            )
        )
        for i in range(workers)
    ]
    r = redis.Redis.from_url(redis_url())
    epochs = [f"{env['TWIN_KEY_PREFIX']}:{{p{p}}}:epoch" for p in range(8)]
    deadline = time.monotonic() + 90
    while r.exists(*epochs) < 8 and time.monotonic() < deadline:  # all partitions claimed
        time.sleep(0.2)
    if workers > 1:
        # A worker that joins after the first claimed every partition makes the group
        # rebalance: wait until no partition's epoch (bumped by each claim) moved for 10 s.
        seen, still_since = r.mget(epochs), time.monotonic()
        while time.monotonic() - still_since < 10 and time.monotonic() < deadline + 60:
            time.sleep(0.5)
            now = r.mget(epochs)
            if now != seen:
                seen, still_since = now, time.monotonic()
    # The feed runs warmup + duration seconds; percentiles count the alerts of events
    # produced after the warm-up: by then each of the feed's 1,000 patients has its
    # twin (a first event costs 2-4x a later one: models built, first risk score), the
    # worker's caches are warm, and every patient's forecasters have taken their first
    # 60 s step, after which each event also projects NEWS2 (predicted deterioration):
    # a live feed's steady state. In the first minute an event cost the core about 90
    # us, after it 110-119 (the feed's events replayed through the core, no I/O); a
    # 10 s warm-up measured mostly the cheaper minute. The whole run's percentiles are
    # kept as ``including_warmup``, and ``p99_by_10s`` shows the tail over time.
    warmup = size.get("lat_warmup", 0)
    duration = size["lat_duration"] + warmup
    sub_out, prod_out = RESULTS / "runs" / f"{key}-sub.json", RESULTS / "runs" / f"{key}-prod.json"
    for f in (sub_out, prod_out, sub_out.with_suffix(".ready")):
        f.unlink(missing_ok=True)
    common = ["--bootstrap", bootstrap(), "--topic"]
    cpu_before = [cpu_seconds(p.pid) for p in procs]
    # What else the 2-core machine ran meanwhile (the load generators report their own).
    service_pids = {name: services.pid_of(name) for name in ("kafka", "redis")}
    services_before = {name: cpu_seconds(pid) for name, pid in service_pids.items()}
    # And how long each was ready to run but found both cores taken (bench.env).
    pids = {"worker": [p.pid for p in procs]} | {n: [pid] for n, pid in service_pids.items()}
    waited_before = {n: sum(map(waiting_for_a_core_seconds, ps)) for n, ps in pids.items()}
    wall_before = time.monotonic()
    sub = children.module(
        f"{key}-sub",
        "bench.latency",
        "subscribe",
        *common,
        phase.topic("alerts"),
        "--group",
        phase.group("sub"),
        "--out",
        str(sub_out),
        "--until",
        str(time.time() + duration + 120),
    )
    ready_deadline = time.monotonic() + 60
    while not sub_out.with_suffix(".ready").exists() and time.monotonic() < ready_deadline:
        time.sleep(0.1)
    prod = children.module(
        f"{key}-prod",
        "bench.latency",
        "produce",
        *common,
        phase.topic("vitals"),
        "--rate",
        str(rate),
        "--alerts",
        alerts,
        "--duration",
        str(duration),
        "--out",
        str(prod_out),
    )
    produced = wait_for_file(prod_out, duration + 60, prod)
    # % of one core each used while the feed ran (from just before its start to its
    # end), warm-up included: the worker shares this 2-core machine with Kafka, Redis
    # and the bench's load generators (the producer and subscriber report their own).
    wall = time.monotonic() - wall_before
    cpu_share = {
        name: round(100 * (cpu_seconds(pid) - services_before[name]) / wall, 1)
        for name, pid in service_pids.items()
    }
    worker_cpu_each = [cpu_seconds(p.pid) - c for p, c in zip(procs, cpu_before, strict=True)]
    cpu_share["worker"] = round(100 * sum(worker_cpu_each) / wall, 1)
    if workers > 1:
        cpu_share |= {f"worker{i}": round(100 * c / wall, 1) for i, c in enumerate(worker_cpu_each)}
    waiting = {
        n: round(100 * (sum(map(waiting_for_a_core_seconds, ps)) - waited_before[n]) / wall, 1)
        for n, ps in pids.items()
    }
    if produced and produced.get("seconds"):
        cpu_share["producer"] = round(100 * produced["cpu_s"] / produced["seconds"], 1)
    got = wait_for_file(sub_out, 130, sub)
    if got and "cpu_s" in got:  # its whole life: the feed, and 5 s of waiting after it
        cpu_share["subscriber"] = round(100 * got["cpu_s"] / (time.monotonic() - wall_before), 1)
    consumed = sum(
        int(v)
        for k in r.scan_iter(match=f"{env['TWIN_KEY_PREFIX']}:*:counters")
        for f, v in r.hgetall(k).items()
        if f == b"consumed"
    )
    r.close()
    worker_metrics = _scrape(metrics_port)  # worker 0's
    # The workers' CPU over the run: what a live feed costs per event, idle waits included.
    worker_cpu = sum(cpu_seconds(p.pid) - c for p, c in zip(procs, cpu_before, strict=True))
    for p in procs:
        children.stop(p)
    everything = got["latencies_ms"] if got else []
    received = got["received_at"] if got else []
    event_at = [r - ms / 1000 for r, ms in zip(received, everything, strict=True)]
    start = min(event_at, default=0.0)
    raw = [ms for ms, at in zip(everything, event_at, strict=True) if at >= start + warmup]
    lat = sorted(raw)
    res[key] = _percentiles(lat)
    # Each kept latency split at the alert record's timestamp (ms resolution).
    created = got.get("created_at", []) if got else []
    way_in, way_out = [], []
    for rcv, at, made in zip(received, event_at, created, strict=False):
        if at >= start + warmup:
            way_in.append((made - at) * 1000.0)
            way_out.append((rcv - made) * 1000.0)
    third = len(raw) // 3
    # p99 of each 10 s of the feed (by event time), from the first event on.
    by_10s: dict[int, list[float]] = {}
    for ms, at in zip(everything, event_at, strict=True):
        by_10s.setdefault(int((at - start) // 10), []).append(ms)
    res[_run_key(key)] = {
        "warmup_s": warmup,
        "workers": workers,
        "including_warmup": _percentiles(sorted(everything)),
        "offered": produced,
        "alerts_received": len(lat),
        "consumed_by_worker": consumed,
        "worker_cpu_us_per_event": round(worker_cpu / consumed * 1e6, 1) if consumed else None,
        "cpu_percent_of_a_core": cpu_share,
        # Summed over each process's threads, so a worker's two busy threads can add
        # up to more than 100 % of the wall time.
        "waiting_for_a_core_percent_of_wall": waiting,
        "repeats_dropped": got["repeats"] if got else None,
        "event_to_alert_produced": _percentiles(sorted(way_in)) if way_in else None,
        "alert_produced_to_received": _percentiles(sorted(way_out)) if way_out else None,
        # A backlog that grows during the run shows as a later third slower than the first.
        "p50_first_third": _pct(sorted(raw[:third]), 0.5),
        "p50_last_third": _pct(sorted(raw[-third:]), 0.5) if third else None,
        "p99_by_10s": [_pct(sorted(by_10s[k]), 0.99) for k in sorted(by_10s)],
        "worker_log": log_events(Path(log)),
        "worker_metrics": worker_metrics,
    }
    (RESULTS / "runs" / f"{key}.json").write_text(json.dumps(lat))
    run = res[_run_key(key)]
    print(
        f"  latency at {rate}/s offered ({alerts} alerts, {workers} worker(s)),"
        f" after {warmup}s warm-up: {res[key]};"
        f" including warm-up: {run['including_warmup']};"
        f" worker CPU {run['worker_cpu_us_per_event']} us/event;"
        f" % of a core: {run['cpu_percent_of_a_core']};"
        f" waiting for a core, % of the time: {run['waiting_for_a_core_percent_of_wall']};"
        f" worker 0: {batch_summary(worker_metrics)}",
        flush=True,
    )


def batch_summary(metrics: dict[str, Any]) -> str:
    """Worker 0's mean micro-batch and how old its oldest record was when it began,
    from :func:`_scrape`'s means.

    A batch that takes everything that arrived while the one before it ran starts about
    one batch time after its oldest record; two or more means records waited a batch
    longer on their way in (README, Performance).

    >>> batch_summary({"mean_batch_size": 94.1, "mean_batch_s": 0.045, "mean_record_wait_s": 0.088})
    'batches of 94.1 events, 45 ms each, oldest record 88 ms old at the start (2.0 batch times)'
    >>> batch_summary({})
    'no batch metrics'
    """
    size, wall = metrics.get("mean_batch_size"), metrics.get("mean_batch_s")
    wait = metrics.get("mean_record_wait_s")
    if size is None or wall is None or wait is None:
        return "no batch metrics"
    ratio = f" ({wait / wall:.1f} batch times)" if wall > 0 else ""
    return (
        f"batches of {size} events, {wall * 1000:.0f} ms each,"
        f" oldest record {wait * 1000:.0f} ms old at the start{ratio}"
    )


def memory(children: Children, size: dict[str, Any], timeout: float, res: Results) -> None:
    phase = Phase("mem")
    create_topics(phase)
    import redis

    from bench.env import redis_url

    r = redis.Redis.from_url(redis_url())
    used0 = int(r.info("memory")["used_memory"])
    n = sum(
        send(
            bootstrap(), {"vitals": phase.topic("vitals")}, one_vitals_each(size["mem_twins"])
        ).values()
    )
    run = run_workers(children, phase, "tw", n, timeout)
    used1 = int(r.info("memory")["used_memory"])
    r.close()
    counters = store_counters(phase.prefix("tw"))
    res["worker_rss_mb_100k_twins"] = round(max(run.rss_mb, default=0.0), 1)
    res["memory_run"] = {
        "twins": n,
        "counters": counters,
        "complete": run.complete,
        "worker_log": run.log_events,
        "rss_mb_after_first_batch": round(run.rss_start_mb, 1),
        "redis_used_memory_bytes_per_twin": round((used1 - used0) / max(n, 1)),
        "eps": round(run.eps),
    }
    print(f"  worker RSS with {n} twins: {res['worker_rss_mb_100k_twins']} MB", flush=True)


__all__ = [
    "bare_consumers",
    "latency",
    "load_main",
    "memory",
    "naive",
    "profiled",
    "ratio_repeat",
    "twinstream",
    "two_workers",
    "wearable_rates",
]
