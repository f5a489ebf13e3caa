"""Source trees of twinstream, one worker each, taking turns on one loaded input.

Run from the repository root::

    .venv/bin/python -m bench.ab --tree old=/path/to/checkout --tree new=. [--rounds 2] [--quick]

A change worth a few per cent cannot be told from this shared machine's drift
by two runs minutes apart (``bench/README.md``); this loads the bench's main
input once (as ``python -m bench.run`` does, same sizes) and runs a worker of
each tree on it in turn, in the order A B B A for each round (A B C C B A for
three), each with a fresh consumer group and key prefix. A tree is any checkout (``git worktree add
/tmp/old <commit>``): its worker runs with ``PYTHONPATH`` set to it (and
``PYTHONSAFEPATH``, checked before anything runs), the packages coming from
this virtualenv. Prints each run's events per second (over the whole input and
its first 100,000 events) and the worker's CPU per event, the mean of each tree,
and each tree's mean rate over the first tree's, overall and by round; writes
``results/runs/ab-<mode>.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
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
from bench.run import DEFAULT_DATA, SIZES

__all__ = ["FIRST_EVENTS", "main", "order"]

FIRST_EVENTS = 100_000
"""Each run's rate over the input's first events is printed too (the naive peer's
ratio, ``bench.phases``, is also taken over the first 100,000)."""


def order(labels: list[str], rounds: int) -> list[str]:
    """The runs' order: each round the trees forward then backward (A B B A), so a
    machine that speeds up or slows down steadily weighs on all alike.

    >>> order(["old", "new"], 2)
    ['old', 'new', 'new', 'old', 'old', 'new', 'new', 'old']
    >>> order(["a", "b", "c"], 1)
    ['a', 'b', 'c', 'c', 'b', 'a']
    """
    return [*labels, *reversed(labels)] * rounds


def _tree(spec: str) -> tuple[str, Path]:
    label, sep, path = spec.partition("=")
    root = Path(path).resolve()
    if not sep or not label or not (root / "stream" / "cli.py").is_file():
        raise argparse.ArgumentTypeError(f"{spec!r}: want LABEL=PATH of a twinstream checkout")
    return label, root


def _tree_env(root: Path) -> dict[str, str]:
    """The environment that makes a worker import ``root``'s code: on ``PYTHONPATH``,
    and no current directory in front of it (``python -m`` puts it first, and the
    bench runs from this checkout)."""
    return {"PYTHONPATH": str(root), "PYTHONSAFEPATH": "1"}


def _check_imports(root: Path) -> None:
    """Fail unless a worker started as the bench starts it would import ``root``."""
    probe = "import agents, schemas, stream, twin; print(stream.__file__, twin.__file__)"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **_tree_env(root)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not all(Path(f).resolve().is_relative_to(root) for f in found):
        raise SystemExit(f"a worker would import {found}, not {root}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--tree", type=_tree, action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--rounds", type=int, default=2, help="A B B A rounds (default 2)")
    parser.add_argument("--quick", action="store_true", help="the quick input")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="physionet2012 folder")
    parser.add_argument("--keep-services", action="store_true", help="leave Kafka/Redis up")
    args = parser.parse_args(argv)
    trees = dict(args.tree)
    if len(trees) < 2 or len(trees) != len(args.tree):
        parser.error("give two or more --tree options with different labels")
    for root in trees.values():
        _check_imports(root)
    apply_defaults()
    from bench import phases, report
    from bench.twinrun import run_workers
    from stream import services

    mode = "quick" if args.quick else "full"
    size = SIZES[mode]
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (RESULTS / "runs").mkdir(exist_ok=True)
    res: dict[str, Any] = {"mode": mode, "trees": {k: str(v) for k, v in trees.items()}}
    children = Children(logs)
    started_services = services.pid_of("kafka") is None or services.pid_of("redis") is None
    try:
        services.up()
        clean_up()  # earlier runs' topics and keys
        n = phases.load_main(Phase("main"), size, args.data, res)
        print(f"loaded {n} messages", flush=True)
        runs: list[dict[str, Any]] = []
        for i, label in enumerate(order(list(trees), args.rounds)):
            phase = Phase("main", extra_env=_tree_env(trees[label]))
            run = run_workers(children, phase, f"ab{i}", n, size["tw_timeout"])
            cpu = run.cpu_s.get("worker0", 0.0) * 1e6 / max(run.consumed, 1)
            # Over the input's first events too: the naive peer's ratio is also taken there.
            first = round(run.eps_until(FIRST_EVENTS))
            runs.append(
                {"tree": label, "eps": round(run.eps), "cpu_us_per_event": round(cpu, 1)}
                | {"first_events_eps": first, "complete": run.complete}
                | {"mean_batch": run.mean_batch}
            )
            print(
                f"  {label}: {run.eps:,.0f} ev/s (first {FIRST_EVENTS:,} events {first:,}/s), "
                f"worker {cpu:.1f} us/event",
                flush=True,
            )
            clean_up(RUN_ID, topics=False)  # this run's twins: the next starts from nothing
        res["runs"] = runs
        res["summary"] = _summary(list(trees), runs)
        print(res["summary"], flush=True)
        report.write_json(res, RESULTS / "runs" / f"ab-{mode}.json")
        return 0 if all(r["complete"] for r in runs) else 1
    finally:
        tear_down(children, started_services and not args.keep_services)


def _summary(labels: list[str], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each tree's mean rate and CPU per event; every other tree's mean rate over the
    first's, and over the first's in each round (its two runs against the first's two)."""
    first = labels[0]

    def mean_of(key: str, label: str, of: list[dict[str, Any]] = runs) -> float:
        return statistics.mean(r[key] for r in of if r["tree"] == label)

    per_round = 2 * len(labels)
    rounds = [runs[i : i + per_round] for i in range(0, len(runs), per_round)]
    out: dict[str, Any] = {
        "eps_mean": {k: round(mean_of("eps", k)) for k in labels},
        "cpu_us_per_event_mean": {k: round(mean_of("cpu_us_per_event", k), 1) for k in labels},
    }
    for label in labels[1:]:
        base = mean_of("eps", first)
        out[f"{label}_over_{first}"] = round(mean_of("eps", label) / base, 3) if base else None
        out[f"{label}_over_{first}_by_round"] = [
            round(mean_of("eps", label, r) / mean_of("eps", first, r), 3) for r in rounds
        ]
    return out


if __name__ == "__main__":
    sys.exit(main())
