"""What the learned state costs per event: µs per model update, codec µs, bytes.

Run from the repository root::

    .venv/bin/python -m bench.learning_cost [--quick]

Prints a table and writes ``bench/results/learning_cost.json``. Each timing
is given as the best and the median of ``--repeats`` timed runs of many calls:
the best is the cost of the code, the median what the machine gave it (these
2-core machines are shared and noisy; the load average is recorded). A patient
is warmed up with 500 vitals sets of 6 vitals, one every 5 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import river

from twin.learning.anomaly import PopulationAnomalyModel
from twin.learning.codec import PatientModels
from twin.learning.risk import RiskModel, TwinSummary, features
from twin.learning.vitals import VITAL_NAMES

RESULTS = Path(__file__).resolve().parent / "results"
NORMAL = {
    "heart_rate": (75.0, 5.0),
    "respiratory_rate": (16.0, 2.0),
    "spo2": (97.0, 1.0),
    "systolic_bp": (122.0, 8.0),
    "diastolic_bp": (76.0, 6.0),
    "temperature_c": (37.0, 0.2),
}
STEP_S = 300.0


Timing = dict[str, float]


def per_call_us(fn: Callable[[], object], calls: int, repeats: int, per: int = 1) -> Timing:
    """Best and median over ``repeats`` of the µs per call of ``fn`` (divided by ``per``)."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter_ns() - started) / calls / per / 1000)
    return {"best": round(min(runs), 2), "median": round(statistics.median(runs), 2)}


def in_ms(timing: Timing) -> Timing:
    return {key: round(value / 1000, 2) for key, value in timing.items()}


def vitals_set(rng: random.Random) -> dict[str, float]:
    return {name: rng.gauss(mean, sd) for name, (mean, sd) in NORMAL.items()}


def warmed_patient(rng: random.Random, sets: int = 500) -> tuple[PatientModels, float]:
    models, at = PatientModels(), 1.7e9
    for _ in range(sets):
        for name, value in vitals_set(rng).items():
            models.observe(name, value, at)
        at += STEP_S
    return models, at


def measure_patient(calls: int, repeats: int) -> dict[str, Any]:
    rng = random.Random(1)
    models, at = warmed_patient(rng)
    raw = models.encode()
    sets = [vitals_set(rng) for _ in range(calls)]
    clock = {"at": at, "i": 0}

    def observe_set() -> None:
        values = sets[clock["i"] % calls]
        clock["i"] += 1
        clock["at"] += STEP_S
        for name in VITAL_NAMES:
            models.observe(name, values[name], clock["at"])

    def decode_all() -> None:
        restored = PatientModels.decode(raw)
        for name in VITAL_NAMES:
            restored.models(name)

    def event_six() -> None:  # what one vitals event costs the worker
        restored = PatientModels.decode(raw)
        clock["at"] += STEP_S
        for name, value in sets[clock["i"] % calls].items():
            restored.observe(name, value, clock["at"])
        clock["i"] += 1
        restored.encode()

    def event_one() -> None:  # a wearable heart rate
        restored = PatientModels.decode(raw)
        clock["at"] += 60.0
        restored.observe("heart_rate", sets[clock["i"] % calls]["heart_rate"], clock["at"])
        clock["i"] += 1
        restored.encode()

    # The largest encoding: a step change keeps every detector pending for an hour.
    step, at_step = PatientModels(), 1.7e9
    largest = 0
    for k in range(300):
        for name, (mean, sd) in NORMAL.items():
            shifted = mean + (4 * sd if k >= 150 else 0.0)
            step.observe(name, rng.gauss(shifted, sd), at_step)
        at_step += STEP_S
        largest = max(largest, len(step.encode()))

    return {
        "observe_us_per_call": per_call_us(observe_set, calls, repeats, per=len(VITAL_NAMES)),
        "encode_us": per_call_us(models.encode, calls, repeats),
        "decode_lazy_us": per_call_us(lambda: PatientModels.decode(raw), calls, repeats),
        "decode_all_vitals_us": per_call_us(decode_all, calls, repeats),
        "event_6_vitals_decode_observe_encode_us": per_call_us(event_six, calls, repeats),
        "event_1_vital_decode_observe_encode_us": per_call_us(event_one, calls, repeats),
        "encoded_bytes_6_vitals_after_500": len(raw),
        "encoded_bytes_6_vitals_max_while_pending": largest,
    }


def measure_anomaly(calls: int, repeats: int) -> dict[str, Any]:
    rng = random.Random(2)
    model = PopulationAnomalyModel()
    vectors = [{name: rng.gauss(0, 1) for name in VITAL_NAMES} for _ in range(1000)]
    for x in vectors:
        model.learn_one(x)
    clock = {"i": 0}

    def score_and_learn() -> None:
        x = vectors[clock["i"] % len(vectors)]
        clock["i"] += 1
        model.score_one(x)
        model.learn_one(x)

    raw = model.dumps()
    pickled = pickle.dumps(model._hst)
    few = max(3, repeats)
    return {
        "score_and_learn_us": per_call_us(score_and_learn, calls, repeats),
        "dumps_bytes": len(raw),
        "pickle_bytes": len(pickled),
        "dumps_ms": in_ms(per_call_us(model.dumps, 5, few)),
        "loads_ms": in_ms(per_call_us(lambda: PopulationAnomalyModel.loads(raw), 3, few)),
        "pickle_dumps_ms": in_ms(per_call_us(lambda: pickle.dumps(model._hst), 5, few)),
        "pickle_loads_ms": in_ms(per_call_us(lambda: pickle.loads(pickled), 5, few)),
    }


def measure_risk(calls: int, repeats: int) -> dict[str, Any]:
    rng = random.Random(3)
    model = RiskModel()
    summaries = [
        TwinSummary(
            news2_total=rng.randint(0, 10),
            news2_subscores={"heart_rate": rng.randint(0, 3)},
            age_years=rng.uniform(20, 90),
            worst_labs={"lactate": rng.uniform(0.5, 6.0)},
        )
        for _ in range(500)
    ]
    xs = [features(s) for s in summaries]
    for x in xs:
        model.learn(x, rng.random() < 0.1)
    clock = {"i": 0}

    def predict_and_learn() -> None:
        x = xs[clock["i"] % len(xs)]
        clock["i"] += 1
        model.predict_proba(x)
        model.learn(x, False)

    return {
        "features_us": per_call_us(lambda: features(summaries[0]), calls, repeats),
        "predict_and_learn_us": per_call_us(predict_and_learn, calls, repeats),
        "features": len(xs[0]),
        "dumps_bytes": len(model.dumps()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    calls = 200 if args.quick else 2000
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "river": river.__version__,
        "machine": platform.machine(),
        "load_average_1min": os.getloadavg()[0],
        "calls_per_run": calls,
        "repeats": args.repeats,
        "patient": measure_patient(calls, args.repeats),
        "population_anomaly": measure_anomaly(calls, args.repeats),
        "risk": measure_risk(calls, args.repeats),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "learning_cost.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"load average {results['load_average_1min']:.2f} on {os.cpu_count()} cores")
    print(f"{'what':<52} {'best':>10} {'median':>10}")
    for part in ("patient", "population_anomaly", "risk"):
        for name, value in results[part].items():
            best, median = (
                (value["best"], value["median"]) if isinstance(value, dict) else (value, "")
            )
            print(f"{part + '.' + name:<52} {best:>10} {median:>10}")
    print(f"wrote {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    main()
