"""Minimal stand-ins for :mod:`stream.feeds`, used only when those modules are absent.

A PhysioNet 2012 reader (one vitals message per stay-minute with any of HR,
RespRate, Temp, SysABP/NISysABP, DiasABP/NIDiasABP; one lab message per mapped
lab row) and a simple simulator (profiles, 4-hourly vitals, 5-minute batches of
one-per-minute wrist readings). Contracts as in ``schemas/``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

Message = tuple[str, bytes, bytes]
_BASE = datetime(2026, 1, 1, tzinfo=UTC)
_VITALS = {
    "HR": "heart_rate",
    "RespRate": "respiratory_rate",
    "Temp": "temperature_c",
    "SysABP": "systolic_bp",
    "NISysABP": "systolic_bp",
    "DiasABP": "diastolic_bp",
    "NIDiasABP": "diastolic_bp",
}
_LABS = {"K": ("potassium", "mmol/L"), "Na": ("sodium", "mmol/L"), "Lactate": ("lactate", "mmol/L")}


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _stay(path: Path) -> Iterator[tuple[float, Message]]:
    pid = f"physionet-{path.stem}"
    key = pid.encode()
    groups: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines()[1:]:
        hhmm, name, value = line.split(",")
        groups.setdefault(hhmm, {})[name] = float(value)
    profile = {"patient_id": pid, "updated_at": _iso(_BASE)}
    yield 0.0, ("profiles", key, orjson.dumps(profile))
    for hhmm, values in groups.items():
        h, m = hhmm.split(":")
        at = _BASE + timedelta(hours=int(h), minutes=int(m))
        common = {"patient_id": pid, "observed_at": _iso(at), "source": "physionet2012"}
        vitals = {_VITALS[k]: v for k, v in values.items() if k in _VITALS}
        if vitals:
            doc = {"event_id": f"{pid}:{hhmm}:v", **common, **vitals}
            yield at.timestamp(), ("vitals", key, orjson.dumps(doc))
        for name, (analyte, unit) in _LABS.items():
            if name in values:
                doc = {"event_id": f"{pid}:{hhmm}:{analyte}", **common}
                doc |= {"analyte": analyte, "unit": unit, "value": values[name]}
                yield at.timestamp(), ("labs", key, orjson.dumps(doc))


def physionet_messages(data_dir: Path, stays: int | None) -> Iterator[Message]:
    paths = sorted((data_dir / "set-a").glob("*.txt"), key=lambda p: int(p.stem))[:stays]
    for _, msg in heapq.merge(*(_stay(p) for p in paths), key=lambda m: m[0]):
        yield msg


def simulated_messages(patients: int, hours: float) -> Iterator[Message]:
    rng = random.Random(7)
    pids = [f"sim-{i:05d}" for i in range(patients)]
    for pid in pids:
        yield "profiles", pid.encode(), orjson.dumps({"patient_id": pid, "age": 60})
    for minute in range(5, int(hours * 60) + 1, 5):
        for n, pid in enumerate(pids):
            at = _BASE + timedelta(minutes=minute)
            readings = [
                {"observed_at": _iso(at - timedelta(minutes=k)), "heart_rate": rng.randint(55, 95)}
                for k in range(4, -1, -1)
            ]
            doc = {"event_id": f"{pid}:w{minute}", "patient_id": pid, "device_id": f"w{n}"}
            doc |= {"observed_at": readings[-1]["observed_at"], "readings": readings}
            yield "wearables", pid.encode(), orjson.dumps(doc)
            if minute % 240 == 5:
                vit = {"event_id": f"{pid}:v{minute}", "patient_id": pid, "observed_at": _iso(at)}
                vit |= {"heart_rate": rng.randint(55, 95), "spo2": 97, "respiratory_rate": 16}
                yield "vitals", pid.encode(), orjson.dumps(vit)
