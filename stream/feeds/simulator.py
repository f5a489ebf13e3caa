"""``twinstream simulate``: a deterministic feed of physiologically plausible patients.

What it generates, per patient (physiology in :mod:`stream.feeds.physiology`):

- a :class:`~schemas.profiles.PatientProfile` at the start (age, sex, ward,
  region, conditions; some COPD patients on NEWS2 SpO2 scale 2);
- bedside :class:`~schemas.vitals.VitalsEvent` sets at ward cadence: the next
  set is due after the NEWS2 minimum monitoring interval of the set just taken
  (RCP NEWS2 2017, chart 4), capped at 4 h, with "continuous" monitoring done
  as 15-minutely sets, and +-10 % jitter: 4 h when stable, 1 h for a score of
  5-6 or a single 3, 15 min for 7 or more;
- labs (:class:`~schemas.labs.LabEvent`): routine bloods daily, 6-hourly plus
  a lactate once deteriorating, and capillary glucose 6-hourly for diabetics;
  ``observed_at`` is the collection time, the message is released after a
  45-120 min turnaround;
- with ``--wearables``: one wrist reading a minute (heart rate, steps, skin
  temperature, sleep stage; SpO2 and HRV every 5 min), uploaded every
  ``--wearable-batch`` minutes in the contract's batched ``readings`` form.

Imperfections, all within the contracts (every message validates):
measurement noise; drop-outs (a field missing from a set, a watch off the
wrist for 10-60 min); artefacts in 0.5 % of bedside sets (heart rate double
counted, a falsely low SpO2 from a cold finger, a falsely low tympanic
temperature) and in 0.3 % of wrist heart rates (motion). Messages that break
the contracts are made only on request: ``--malformed-every N`` replaces every
Nth message by a broken one, cycling through not-JSON, a missing
``patient_id`` and an implausible value (heart rate 400, a lab value of 10^7,
age 200), each marked in :attr:`FeedMessage.fault`.

Deterministic: each patient and each of its streams draws from its own
generator seeded by ``(seed, patient, stream)``, so the same seed gives the
same messages whatever the pacing; ``--start`` fixes the absolute times too.
Simulated time runs ``--speed`` times faster than wall time (default 180: a
simulated hour in 20 s, so deterioration shows within 1-2 minutes).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from stream.feeds.physiology import (
    SCENARIOS,
    Scenario,
    SimPatient,
    hour_of_day,
    make_patient,
)
from stream.feeds.producer import FeedKind, FeedMessage, run_feed
from stream.settings import get_settings
from twin.scores import news2

__all__ = [
    "DEFAULT_SCENARIOS",
    "DEFAULT_SPEED",
    "FAULT_KINDS",
    "SimConfig",
    "cohort",
    "generate",
    "ground_truth",
    "inject_faults",
    "main_simulate",
    "parse_scenarios",
]

DEFAULT_SPEED = 180.0
DEFAULT_SCENARIOS: Mapping[Scenario, float] = {
    "sepsis": 0.05,
    "respiratory": 0.05,
    "haemorrhage": 0.02,
}
FAULT_KINDS = ("malformed_json", "invalid", "implausible")

_MIN_INTERVAL_S = 15 * 60
_MAX_INTERVAL_S = 4 * 3600
_NOISE = {
    "heart_rate": 3.0,
    "respiratory_rate": 1.0,
    "spo2": 0.8,
    "systolic_bp": 6.0,
    "diastolic_bp": 4.0,
    "temperature_c": 0.12,
}
_DROPOUT = {
    "heart_rate": 0.01,
    "respiratory_rate": 0.04,
    "spo2": 0.03,
    "temperature_c": 0.06,
    "consciousness": 0.02,
}
_BP_DROPOUT = 0.03
_BEDSIDE_ARTEFACT = 0.005
_WRIST_ARTEFACT = 0.003
# analyte -> (unit, LOINC, decimals, analytic SD as a fraction of the value)
_LAB_REPORTING: Mapping[str, tuple[str, str, int, float]] = {
    "potassium": ("mmol/L", "2823-3", 1, 0.025),
    "sodium": ("mmol/L", "2951-2", 0, 0.007),
    "creatinine": ("µmol/L", "14682-9", 0, 0.03),
    "haemoglobin": ("g/L", "718-7", 0, 0.02),
    "white_cell_count": ("10^9/L", "6690-2", 1, 0.03),
    "platelets": ("10^9/L", "777-3", 0, 0.04),
    "glucose": ("mmol/L", "14749-6", 1, 0.03),
    "lactate": ("mmol/L", "2524-7", 1, 0.05),
    "bilirubin": ("µmol/L", "14631-6", 0, 0.05),
}
_ROUTINE_PANEL = (
    "potassium",
    "sodium",
    "creatinine",
    "haemoglobin",
    "white_cell_count",
    "platelets",
    "glucose",
    "bilirubin",
)
_ESCALATION_SEVERITY = 0.3  # from here bloods are 6-hourly and include lactate


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate. ``hours`` of simulated time, or endless when None."""

    patients: int = 100
    seed: int = 7
    start: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    scenarios: Mapping[Scenario, float] = field(default_factory=lambda: dict(DEFAULT_SCENARIOS))
    wearables: bool = False
    wearable_batch_min: int = 5
    hours: float | None = None
    prefix: str = "sim"

    @property
    def start_s(self) -> float:
        """The start as epoch seconds."""
        return self.start.timestamp()

    @property
    def end_offset_s(self) -> float:
        """Simulated seconds to generate (infinite when endless)."""
        return float("inf") if self.hours is None else self.hours * 3600.0


def parse_scenarios(text: str) -> dict[Scenario, float]:
    """``"sepsis:0.05,respiratory:0.05"`` -> fractions of patients per scenario.

    >>> parse_scenarios("sepsis:0.1, haemorrhage:0.02")
    {'sepsis': 0.1, 'haemorrhage': 0.02}
    >>> parse_scenarios("none")
    {}
    """
    out: dict[Scenario, float] = {}
    if text.strip().lower() in ("", "none"):
        return out
    for part in text.split(","):
        name, _, value = part.strip().partition(":")
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
        fraction = float(value)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"scenario {name}: fraction must be between 0 and 1")
        out[name] = fraction
    if sum(out.values()) > 1.0 + 1e-9:
        raise ValueError("scenario fractions add up to more than 1")
    return out


def _rng(config: SimConfig, index: int, stream: str) -> random.Random:
    # String seeds hash with SHA-512: stable across runs and Python versions.
    return random.Random(f"{config.seed}:{index}:{stream}")


def cohort(config: SimConfig) -> list[SimPatient]:
    """The simulated patients of ``config``."""
    return [
        make_patient(i, _rng(config, i, "patient"), config.scenarios, prefix=config.prefix)
        for i in range(1, config.patients + 1)
    ]


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


def ground_truth(config: SimConfig, patients: Iterable[SimPatient]) -> dict[str, Any]:
    """Per patient the scenario and its onset (and when oxygen was started), as JSON data."""
    start = config.start_s
    return {
        "generator": "twinstream.feeds.simulator/1",
        "seed": config.seed,
        "start": _iso(start),
        "scenarios": dict(config.scenarios),
        "patients": {
            p.patient_id: {
                "scenario": p.scenario,
                "onset": None if p.onset_s is None else _iso(start + p.onset_s),
                "onset_offset_s": p.onset_s,
                "oxygen_from": None if p.oxygen_from_s is None else _iso(start + p.oxygen_from_s),
                "spo2_scale": p.spo2_scale,
            }
            for p in patients
        },
    }


def _message(kind: FeedKind, patient: SimPatient, doc: dict[str, Any], at: float) -> FeedMessage:
    return FeedMessage(kind, patient.patient_id.encode(), orjson.dumps(doc), at)


def _profile(config: SimConfig, p: SimPatient) -> FeedMessage:
    doc = {
        "patient_id": p.patient_id,
        "age": p.age,
        "sex": p.sex,
        "ward": p.ward,
        "region": p.region,
        "spo2_scale": p.spo2_scale,
        "conditions": list(p.conditions),
        "updated_at": _iso(config.start_s),
    }
    return _message("profiles", p, doc, config.start_s)


def _measure_vitals(p: SimPatient, t: float, at: float, rng: random.Random) -> dict[str, Any]:
    true = p.vitals_at(t, hour_of_day(at))
    measured: dict[str, Any] = {}
    for name, value in true.items():
        noisy = value + rng.gauss(0.0, _NOISE[name])
        measured[name] = round(noisy, 1) if name == "temperature_c" else round(noisy)
    measured["spo2"] = min(100, measured["spo2"])
    if rng.random() < _BEDSIDE_ARTEFACT:
        artefact = rng.choice(("double_counted_hr", "cold_finger_spo2", "tympanic_temp"))
        if artefact == "double_counted_hr":
            measured["heart_rate"] = min(250, 2 * measured["heart_rate"])
        elif artefact == "cold_finger_spo2":
            measured["spo2"] = rng.randint(70, 85)
        else:
            measured["temperature_c"] = round(rng.uniform(34.0, 35.4), 1)
    for name, p_missing in _DROPOUT.items():
        if name != "consciousness" and rng.random() < p_missing:
            del measured[name]
    if rng.random() < _BP_DROPOUT:
        del measured["systolic_bp"], measured["diastolic_bp"]
    if rng.random() >= _DROPOUT["consciousness"]:
        measured["consciousness"] = "C" if p.confused(t) else "A"
    measured["on_oxygen"] = p.on_oxygen(t)
    return measured


def _next_obs_interval(p: SimPatient, measured: Mapping[str, Any], rng: random.Random) -> float:
    score = news2(
        respiratory_rate=measured.get("respiratory_rate"),
        spo2=measured.get("spo2"),
        on_oxygen=measured.get("on_oxygen"),
        systolic_bp=measured.get("systolic_bp"),
        heart_rate=measured.get("heart_rate"),
        consciousness=measured.get("consciousness"),
        temperature_c=measured.get("temperature_c"),
        spo2_scale=p.spo2_scale,
    )
    minutes = score.monitoring_interval_minutes or 15  # 0 = continuous: 15-minutely sets
    interval = min(minutes * 60.0, _MAX_INTERVAL_S) * rng.uniform(0.9, 1.1)
    return min(_MAX_INTERVAL_S, max(_MIN_INTERVAL_S, interval))


def _bedside(config: SimConfig, p: SimPatient) -> Iterator[FeedMessage]:
    rng = _rng(config, p.index, "bedside")
    t = float(round(rng.uniform(0.0, 1800.0)))
    for seq in itertools.count(1):
        if t > config.end_offset_s:
            return
        at = config.start_s + t
        measured = _measure_vitals(p, t, at, rng)
        doc = {
            "event_id": f"{p.patient_id}:vitals:{seq}",
            "patient_id": p.patient_id,
            "observed_at": _iso(at),
            "source": "sim-bedside",
            **measured,
        }
        yield _message("vitals", p, doc, at)
        t += round(_next_obs_interval(p, measured, rng))


def _lab_event(
    p: SimPatient, analyte: str, value: float, at: float, seq: int, source: str
) -> dict[str, Any]:
    unit, loinc, decimals, _ = _LAB_REPORTING[analyte]
    if analyte == "glucose" and source == "sim-poct":
        loinc = "14743-9"  # capillary blood glucose by glucometer
    return {
        "event_id": f"{p.patient_id}:lab:{seq}",
        "patient_id": p.patient_id,
        "observed_at": _iso(at),
        "source": source,
        "analyte": analyte,
        "loinc": loinc,
        "unit": unit,
        "value": round(value, decimals) if decimals else round(value),
    }


def _labs(config: SimConfig, p: SimPatient) -> Iterator[FeedMessage]:
    """Routine bloods daily; 6-hourly with lactate once deteriorating (plus one urgent set)."""
    rng = _rng(config, p.index, "labs")
    t = float(round(rng.uniform(1.0, 8.0) * 3600.0))
    urgent: float | None = None
    if p.scenario is not None and p.onset_s is not None:
        # Urgent bloods about an hour after the deterioration becomes evident.
        evident = p.onset_s
        while p.severity(evident) < _ESCALATION_SEVERITY:
            evident += 300.0
        urgent = evident + 3600.0
    seq = 0
    released = 0.0
    while True:
        if urgent is not None and urgent < t:
            t, urgent = urgent, None
        if t > config.end_offset_s:
            return
        escalated = p.severity(t) >= _ESCALATION_SEVERITY
        values = p.labs_at(t)
        panel = (*_ROUTINE_PANEL, "lactate") if escalated else _ROUTINE_PANEL
        released = max(released, config.start_s + t + round(rng.uniform(45.0, 120.0) * 60.0))
        for analyte in panel:
            seq += 1
            sd = _LAB_REPORTING[analyte][3] * values[analyte]
            value = max(0.1, values[analyte] + rng.gauss(0.0, sd))
            doc = _lab_event(p, analyte, value, config.start_s + t, seq, "sim-lis")
            yield _message("labs", p, doc, released)
        t += round((6.0 if escalated else 24.0) * 3600.0 * rng.uniform(0.9, 1.1))


def _poct_glucose(config: SimConfig, p: SimPatient) -> Iterator[FeedMessage]:
    """Capillary glucose 6-hourly for patients with diabetes, released at once."""
    if "t2dm" not in p.conditions:
        return
    rng = _rng(config, p.index, "poct")
    t = float(round(rng.uniform(0.5, 6.0) * 3600.0))
    for seq in itertools.count(1):
        if t > config.end_offset_s:
            return
        value = max(1.0, p.labs_at(t)["glucose"] + rng.gauss(0.0, 0.4))
        doc = _lab_event(p, "glucose", value, config.start_s + t, seq, "sim-poct")
        doc["event_id"] = f"{p.patient_id}:poct:{seq}"
        yield _message("labs", p, doc, config.start_s + t)
        t += round(6.0 * 3600.0 * rng.uniform(0.95, 1.05))


def _wrist_reading(p: SimPatient, minute: int, at: float, rng: random.Random) -> dict[str, Any]:
    t = minute * 60.0
    hour = hour_of_day(at)
    asleep = hour >= 23.0 or hour < 7.0
    s = p.severity(t)
    true = p.vitals_at(t, hour)
    reading: dict[str, Any] = {"observed_at": _iso(at)}
    walking = not asleep and rng.random() < 0.12 * (1.0 - s)
    if rng.random() >= 0.02:
        hr = true["heart_rate"] - (6.0 if asleep else 0.0) + (12.0 if walking else 0.0)
        hr += rng.gauss(0.0, 2.0)
        if rng.random() < _WRIST_ARTEFACT:
            hr += rng.uniform(40.0, 80.0)  # motion artefact
        reading["heart_rate"] = round(min(220.0, max(30.0, hr)))
    reading["steps"] = rng.randint(5, 60) if walking else 0
    fever = true["temperature_c"] - p.baseline["temperature_c"]
    # Distal skin warms at night (Kräuchi K, Wirz-Justice A. Am J Physiol 1994;267:R819-R829).
    skin = 33.0 + (0.9 if asleep else 0.0) + 0.3 * fever + rng.gauss(0.0, 0.2)
    reading["skin_temperature_c"] = round(skin, 1)
    if minute % 5 == 0:
        reading["spo2"] = min(100, round(true["spo2"] + rng.gauss(0.0, 1.2)))
        # HRV falls as sepsis develops (Ahmad S et al. PLoS One 2009;4:e6642).
        rmssd = p.baseline["hrv_rmssd_ms"] * (1.3 if asleep else 1.0) * (1.0 - 0.6 * s)
        reading["hrv_rmssd_ms"] = round(max(3.0, rmssd + rng.gauss(0.0, 3.0)), 1)
    if asleep:
        night_min = ((hour - 23.0) % 24.0) * 60.0
        phase = (night_min % 90.0) / 90.0
        stage = "light" if phase < 0.5 else "deep" if phase < 0.75 else "rem"
        reading["sleep_stage"] = "awake" if rng.random() < 0.03 else stage
    else:
        reading["sleep_stage"] = "awake"
    return reading


def _wearable(config: SimConfig, p: SimPatient) -> Iterator[FeedMessage]:
    rng = _rng(config, p.index, "wearable")
    batch: list[dict[str, Any]] = []
    off_until = 0
    seq = 0
    for minute in itertools.count(1):
        t = minute * 60.0
        if t > config.end_offset_s:
            return
        at = config.start_s + t
        if minute < off_until:
            pass  # off the wrist: charging, washing
        elif rng.random() < 1.0 / 600.0:
            off_until = minute + rng.randint(10, 60)
        else:
            batch.append(_wrist_reading(p, minute, at, rng))
        if minute % config.wearable_batch_min == 0 and batch:
            seq += 1
            doc = {
                "event_id": f"{p.patient_id}:wearable:{seq}",
                "patient_id": p.patient_id,
                "observed_at": batch[-1]["observed_at"],
                "device_id": f"{config.prefix}-watch-{p.index:05d}",
                "readings": batch,
            }
            yield _message("wearables", p, doc, at)
            batch = []


def generate(config: SimConfig) -> Iterator[FeedMessage]:
    """Every message of the simulation, in release-time order (profiles first)."""
    patients = cohort(config)
    yield from (_profile(config, p) for p in patients)
    streams: list[Iterator[FeedMessage]] = []
    for p in patients:
        streams += [_bedside(config, p), _labs(config, p), _poct_glucose(config, p)]
        if config.wearables:
            streams.append(_wearable(config, p))
    yield from heapq.merge(*streams, key=lambda m: m.at)


def _broken(msg: FeedMessage, fault: str) -> bytes:
    if fault == "malformed_json":
        return msg.value[: len(msg.value) // 2]
    doc = orjson.loads(msg.value)
    if fault == "invalid":
        del doc["patient_id"]
    elif msg.kind == "vitals":
        doc["heart_rate"] = 400
    elif msg.kind == "labs":
        doc["value"] = 1e7
    elif msg.kind == "profiles":
        doc["age"] = 200
    elif msg.kind == "wearables":
        doc["readings"][0]["heart_rate"] = 400
    else:  # pragma: no cover - the simulator makes no other kinds
        raise ValueError(f"no implausible form for {msg.kind}")
    return orjson.dumps(doc)


def inject_faults(messages: Iterable[FeedMessage], every: int) -> Iterator[FeedMessage]:
    """Replace every ``every``-th message by a broken one (cycling through :data:`FAULT_KINDS`)."""
    faults = itertools.cycle(FAULT_KINDS)
    for n, msg in enumerate(messages, start=1):
        if every > 0 and n % every == 0:
            fault = next(faults)
            yield FeedMessage(msg.kind, msg.key, _broken(msg, fault), msg.at, fault)
        else:
            yield msg


def _scenarios_argument(text: str) -> dict[Scenario, float]:
    try:
        return parse_scenarios(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinstream simulate", description=__doc__.split("\n")[0])
    p.add_argument("--patients", type=int, default=100)
    p.add_argument("--rate", type=float, default=1000.0, help="cap, messages per wall second")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help=f"simulated seconds per wall second (default {DEFAULT_SPEED:g})",
    )
    pace.add_argument("--max", action="store_true", help="no event-time pacing (--rate still caps)")
    p.add_argument(
        "--scenarios",
        type=_scenarios_argument,
        default=dict(DEFAULT_SCENARIOS),
        help="fractions, e.g. sepsis:0.05,respiratory:0.05,haemorrhage:0.02 (or none)",
    )
    p.add_argument("--wearables", action="store_true", help="also a wrist device per patient")
    p.add_argument("--wearable-batch", type=int, default=5, help="minutes per wearable upload")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--duration", type=float, default=0.0, help="wall seconds (0: no limit)")
    p.add_argument("--hours", type=float, default=None, help="simulated hours (default: endless)")
    p.add_argument("--start", type=datetime.fromisoformat, default=None, help="ISO start time")
    p.add_argument("--truth", type=Path, default=None, help="write ground truth JSON here")
    p.add_argument("--malformed-every", type=int, default=0, help="every Nth message broken")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    return p


def main_simulate(argv: list[str]) -> int:
    """``twinstream simulate ...``: generate and produce; print a one-line summary."""
    args = _parser().parse_args(argv)
    start = args.start or datetime.now(UTC).replace(microsecond=0)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    config = SimConfig(
        patients=args.patients,
        seed=args.seed,
        start=start,
        scenarios=args.scenarios,
        wearables=args.wearables,
        wearable_batch_min=args.wearable_batch,
        hours=args.hours,
    )
    if args.truth is not None:
        truth = ground_truth(config, cohort(config))
        args.truth.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    faults = 0

    def counted(messages: Iterable[FeedMessage]) -> Iterator[FeedMessage]:
        nonlocal faults
        for msg in messages:
            faults += msg.fault is not None
            yield msg

    run = run_feed(
        get_settings(),
        counted(inject_faults(generate(config), args.malformed_every)),
        description="simulate",
        speed=None if args.max else args.speed,
        rate=args.rate,
        duration=args.duration or None,
        span_s=None if args.hours is None else args.hours * 3600.0,
        quiet=args.quiet,
    )
    print(f"{run.summary()}; {faults} deliberately malformed")
    return 0
