"""Simulated patients: who they are, their personal baselines, circadian rhythm
and how they deteriorate.

Pure: every value is a function of the patient and the simulated time, so the
simulator's streams (bedside, wearable, labs) agree with one another without
sharing state. No clock, no I/O, no randomness except in :func:`make_patient`,
which draws from the generator it is given.

Severity ``s(t)`` is 0 before a scenario's onset and rises along a smoothstep
``x * x * (3 - 2x)`` with ``x = (t - onset) / ramp`` to 1, where it stays: the
simulated patient is not rescued. A vital sign is then::

    baseline + circadian(hour of day) + s(t) * change at full severity

and a lab result ``baseline * (1 + s * (scale - 1)) + s * add``. The
directions of change are those of the cited sources; the magnitudes are
illustrative, chosen so that each scenario reaches a NEWS2 single-parameter
score of 3 about 1-3 simulated hours after onset.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal, get_args

__all__ = [
    "LAB_KEYS",
    "OXYGEN_SPO2_GAIN",
    "SCENARIOS",
    "TRAJECTORIES",
    "VITAL_KEYS",
    "Scenario",
    "SimPatient",
    "Trajectory",
    "hour_of_day",
    "make_patient",
    "smoothstep",
]

Scenario = Literal["sepsis", "respiratory", "haemorrhage"]
SCENARIOS: tuple[Scenario, ...] = get_args(Scenario)

VITAL_KEYS = (
    "heart_rate",
    "respiratory_rate",
    "spo2",
    "systolic_bp",
    "diastolic_bp",
    "temperature_c",
)
LAB_KEYS = (
    "potassium",
    "sodium",
    "creatinine",
    "haemoglobin",
    "white_cell_count",
    "platelets",
    "glucose",
    "lactate",
    "bilirubin",
)

OXYGEN_SPO2_GAIN = 5.0
"""SpO2 points gained on supplemental oxygen (illustrative; a partial correction)."""

_OXYGEN_RESPONSE_S = 20 * 60  # from SpO2 below target to oxygen running

# Physiological limits of the simulated (true) values; all lie inside the
# wire contracts' plausibility bounds, so only deliberate faults break them.
_LIMITS: Mapping[str, tuple[float, float]] = {
    "heart_rate": (30.0, 220.0),
    "respiratory_rate": (6.0, 50.0),
    "spo2": (60.0, 100.0),
    "systolic_bp": (50.0, 230.0),
    "diastolic_bp": (25.0, 140.0),
    "temperature_c": (33.0, 42.5),
    "haemoglobin": (40.0, 200.0),
    "platelets": (5.0, 900.0),
}

# Circadian rhythm: (amplitude, hour of the daily peak). Core temperature peaks
# in the late afternoon with its nadir in the early morning (Refinetti R,
# Menaker M. The circadian rhythm of body temperature. Physiol Behav
# 1992;51:613-637); heart rate and blood pressure are lowest at night (Degaute
# JP et al. Quantitative analysis of the 24-hour blood pressure and heart rate
# patterns in young men. Hypertension 1991;18:199-210).
_CIRCADIAN: Mapping[str, tuple[float, float]] = {
    "heart_rate": (5.0, 16.0),
    "respiratory_rate": (0.5, 16.0),
    "systolic_bp": (6.0, 15.0),
    "diastolic_bp": (4.0, 15.0),
    "temperature_c": (0.3, 17.0),
}

_CONDITIONS: tuple[tuple[str, float], ...] = (
    # Illustrative prevalences among acute medical inpatients.
    ("hypertension", 0.40),
    ("t2dm", 0.20),
    ("copd", 0.15),
    ("ckd", 0.12),
    ("af", 0.12),
    ("heart_failure", 0.10),
)
_SCALE2_SHARE_OF_COPD = 0.4  # share of COPD patients with a prescribed 88-92 % target
_WARDS: Mapping[Scenario | None, tuple[str, ...]] = {
    None: ("AMU-1", "AMU-2", "RESP-1", "SURG-1", "SURG-2", "CARD-1"),
    "sepsis": ("AMU-1", "AMU-2", "SURG-1"),
    "respiratory": ("RESP-1", "AMU-1", "AMU-2"),
    "haemorrhage": ("SURG-1", "SURG-2"),
}
_REGIONS = ("north", "south", "east", "west", "central")


@dataclass(frozen=True, slots=True)
class Trajectory:
    """How a scenario changes a patient at full severity, and how fast."""

    ramp_h: float
    vitals: Mapping[str, float]
    labs_add: Mapping[str, float] = field(default_factory=dict)
    labs_scale: Mapping[str, float] = field(default_factory=dict)
    confusion_from: float = 1.1  # severity from which ACVPU is "C" (new confusion)


TRAJECTORIES: Mapping[Scenario, Trajectory] = MappingProxyType(
    {
        # Sepsis: tachycardia, tachypnoea and fever (SIRS: Bone RC et al. Chest
        # 1992;101:1644-1655), then hypotension, rising lactate and altered
        # mentation (Sepsis-3 and qSOFA: Singer M et al. JAMA 2016;315:801-810),
        # rising white cells, acute kidney injury (creatinine), falling platelets
        # and rising bilirubin (the SOFA organ scores, Vincent JL et al. Intensive
        # Care Med 1996;22:707-710).
        "sepsis": Trajectory(
            ramp_h=4.0,
            vitals={
                "heart_rate": 45.0,
                "respiratory_rate": 12.0,
                "temperature_c": 2.0,
                "systolic_bp": -40.0,
                "diastolic_bp": -22.0,
                "spo2": -4.0,
            },
            labs_add={"lactate": 3.5, "white_cell_count": 11.0, "glucose": 2.0},
            labs_scale={"creatinine": 1.9, "platelets": 0.55, "bilirubin": 1.8},
            confusion_from=0.7,
        ),
        # Acute respiratory failure: falling SpO2 with rising respiratory and
        # heart rate; oxygen is started when SpO2 falls below the target range
        # (94-98 %, or 88-92 % for those at risk of hypercapnic failure):
        # O'Driscoll BR et al. BTS guideline for oxygen use in healthcare and
        # emergency settings. Thorax 2017;72(Suppl 1):ii1-ii90.
        "respiratory": Trajectory(
            ramp_h=3.0,
            vitals={
                "spo2": -14.0,
                "respiratory_rate": 16.0,
                "heart_rate": 25.0,
                "temperature_c": 0.4,
                "systolic_bp": 5.0,
            },
            labs_add={"white_cell_count": 4.0, "lactate": 0.8},
            confusion_from=0.9,
        ),
        # Haemorrhage: rising heart rate, then falling blood pressure, rising
        # respiratory rate and anxiety or confusion as losses grow (American
        # College of Surgeons. ATLS Student Course Manual, 10th ed. 2018, table
        # 3-1, classes of haemorrhage); haemoglobin falls as fluids dilute the
        # remaining blood, and lactate rises with hypoperfusion.
        "haemorrhage": Trajectory(
            ramp_h=2.0,
            vitals={
                "heart_rate": 55.0,
                "systolic_bp": -50.0,
                "diastolic_bp": -28.0,
                "respiratory_rate": 8.0,
                "spo2": -2.0,
                "temperature_c": -0.4,
            },
            labs_add={"haemoglobin": -45.0, "lactate": 3.0},
            labs_scale={"platelets": 0.75},
            confusion_from=0.8,
        ),
    }
)


def smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, and ``3x^2 - 2x^3`` between.

    >>> smoothstep(-1.0), smoothstep(0.5), smoothstep(2.0)
    (0.0, 0.5, 1.0)
    """
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def hour_of_day(epoch_s: float) -> float:
    """Hour of the (UTC) ward clock, 0 <= h < 24.

    >>> hour_of_day(86400 * 3 + 5400)
    1.5
    """
    return (epoch_s % 86400.0) / 3600.0


def _clamp(name: str, value: float) -> float:
    low, high = _LIMITS.get(name, (-math.inf, math.inf))
    return min(high, max(low, value))


@dataclass(frozen=True, slots=True)
class SimPatient:
    """One simulated patient: profile, baselines and an optional scenario."""

    patient_id: str
    index: int
    age: int
    sex: Literal["female", "male"]
    ward: str
    region: str
    spo2_scale: Literal[1, 2]
    conditions: tuple[str, ...]
    baseline: Mapping[str, float]
    scenario: Scenario | None = None
    onset_s: float | None = None
    oxygen_from_s: float | None = None

    def severity(self, t_s: float) -> float:
        """0 (well) to 1 (full deterioration) at ``t_s`` seconds after the start."""
        if self.scenario is None or self.onset_s is None or t_s <= self.onset_s:
            return 0.0
        ramp_s = TRAJECTORIES[self.scenario].ramp_h * 3600.0
        return smoothstep((t_s - self.onset_s) / ramp_s)

    @property
    def spo2_target_low(self) -> float:
        """Lower end of the prescribed SpO2 target (BTS 2017): 94 %, or 88 % on scale 2."""
        return 88.0 if self.spo2_scale == 2 else 94.0

    def on_oxygen(self, t_s: float) -> bool:
        """Supplemental oxygen running at ``t_s`` (started once, never stopped)."""
        return self.oxygen_from_s is not None and t_s >= self.oxygen_from_s

    def vitals_at(self, t_s: float, hour: float) -> dict[str, float]:
        """True (noise-free) vital signs at ``t_s``; ``hour`` is the ward clock's."""
        s = self.severity(t_s)
        change = TRAJECTORIES[self.scenario].vitals if self.scenario else {}
        out: dict[str, float] = {}
        for name in VITAL_KEYS:
            amplitude, peak = _CIRCADIAN.get(name, (0.0, 0.0))
            rhythm = amplitude * math.cos(2.0 * math.pi * (hour - peak) / 24.0)
            out[name] = self.baseline[name] + rhythm + s * change.get(name, 0.0)
        if self.on_oxygen(t_s):
            out["spo2"] = min(99.0, out["spo2"] + OXYGEN_SPO2_GAIN)
        out = {name: _clamp(name, value) for name, value in out.items()}
        out["diastolic_bp"] = min(out["diastolic_bp"], out["systolic_bp"] - 15.0)
        return out

    def labs_at(self, t_s: float) -> dict[str, float]:
        """True lab values at ``t_s``, in the simulator's reporting units."""
        s = self.severity(t_s)
        trajectory = TRAJECTORIES[self.scenario] if self.scenario else None
        out: dict[str, float] = {}
        for name in LAB_KEYS:
            value = self.baseline[name]
            if trajectory is not None:
                scale = trajectory.labs_scale.get(name, 1.0)
                value = value * (1.0 + s * (scale - 1.0)) + s * trajectory.labs_add.get(name, 0.0)
            out[name] = _clamp(name, value)
        return out

    def confused(self, t_s: float) -> bool:
        """New confusion (ACVPU "C") at ``t_s``."""
        if self.scenario is None:
            return False
        return self.severity(t_s) >= TRAJECTORIES[self.scenario].confusion_from


def _draw_scenario(rng: random.Random, fractions: Mapping[Scenario, float]) -> Scenario | None:
    u = rng.random()
    cumulative = 0.0
    for name in SCENARIOS:  # fixed order: the draw does not depend on the mapping's order
        cumulative += fractions.get(name, 0.0)
        if u < cumulative:
            return name
    return None


def _oxygen_from(patient: SimPatient) -> float | None:
    """When oxygen starts: the first minute true SpO2 (on air) is below target, plus a response."""
    if patient.scenario is None or patient.onset_s is None:
        return None
    drop = TRAJECTORIES[patient.scenario].vitals.get("spo2", 0.0)
    if patient.baseline["spo2"] + drop >= patient.spo2_target_low:
        return None
    end = patient.onset_s + TRAJECTORIES[patient.scenario].ramp_h * 3600.0
    t = patient.onset_s
    while t <= end:
        if patient.baseline["spo2"] + patient.severity(t) * drop < patient.spo2_target_low:
            return t + _OXYGEN_RESPONSE_S
        t += 60.0
    return end + _OXYGEN_RESPONSE_S  # pragma: no cover - reached only through rounding


def make_patient(
    index: int,
    rng: random.Random,
    fractions: Mapping[Scenario, float],
    *,
    prefix: str = "sim",
) -> SimPatient:
    """Draw one patient (profile, baselines, scenario and onset) from ``rng``."""
    scenario = _draw_scenario(rng, fractions)
    onset_s = float(round(rng.uniform(0.25, 2.0) * 3600.0)) if scenario else None
    age = int(rng.triangular(18, 96, 72))
    sex: Literal["female", "male"] = "female" if rng.random() < 0.5 else "male"
    conditions = tuple(name for name, p in _CONDITIONS if rng.random() < p)
    scale: Literal[1, 2] = 2 if "copd" in conditions and rng.random() < _SCALE2_SHARE_OF_COPD else 1
    if scale == 2:
        spo2 = rng.uniform(88.5, 92.0)
    elif "copd" in conditions:
        spo2 = rng.uniform(94.5, 97.0)
    else:
        spo2 = rng.uniform(95.5, 99.0)
    sbp = rng.gauss(118.0 + 0.35 * (age - 50), 11.0) + (10.0 if "hypertension" in conditions else 0)
    sbp = min(165.0, max(98.0, sbp))
    creatinine = min(120.0, max(45.0, rng.gauss(70.0 if sex == "female" else 85.0, 12.0)))
    baseline = {
        "heart_rate": min(98.0, max(55.0, rng.gauss(76.0, 8.0))),
        "respiratory_rate": rng.uniform(12.0, 17.0) + (2.0 if "copd" in conditions else 0.0),
        "spo2": spo2,
        "systolic_bp": sbp,
        "diastolic_bp": sbp * rng.uniform(0.55, 0.66),
        "temperature_c": min(37.2, max(36.3, rng.gauss(36.8, 0.2))),
        "potassium": rng.uniform(3.6, 4.8),
        "sodium": rng.uniform(135.0, 144.0),
        "creatinine": creatinine * (2.0 if "ckd" in conditions else 1.0),
        "haemoglobin": min(165.0, max(100.0, rng.gauss(128.0 if sex == "female" else 142.0, 10))),
        "white_cell_count": rng.uniform(4.5, 10.0),
        "platelets": rng.uniform(160.0, 380.0),
        "glucose": rng.uniform(6.5, 11.0) if "t2dm" in conditions else rng.uniform(4.5, 6.5),
        "lactate": rng.uniform(0.6, 1.6),
        "bilirubin": rng.uniform(5.0, 18.0),
        # Resting RMSSD falls with age (illustrative, within published norms).
        "hrv_rmssd_ms": min(90.0, max(12.0, rng.gauss(45.0 - 0.35 * (age - 40), 8.0))),
    }
    patient = SimPatient(
        patient_id=f"{prefix}-{index:05d}",
        index=index,
        age=age,
        sex=sex,
        ward=rng.choice(_WARDS[scenario]),
        region=rng.choice(_REGIONS),
        spo2_scale=scale,
        conditions=conditions,
        baseline=MappingProxyType(baseline),
        scenario=scenario,
        onset_s=onset_s,
    )
    return replace(patient, oxygen_from_s=_oxygen_from(patient))
