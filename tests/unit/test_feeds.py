"""The feeds as pure generators: simulator, PhysioNet 2012 and WFDB mapping, profile CSV.

No broker: the Kafka step (``run_feed``) is replaced by a collector where an
entry point is exercised.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from schemas.decode import Rejection, decode
from schemas.labs import LabEvent
from schemas.outcomes import OutcomeEvent
from schemas.profiles import PatientProfile
from schemas.vitals import VitalsEvent
from schemas.wearables import MAX_READINGS, WearableEvent
from stream.feeds import physionet, profiles_csv, simulator, wfdb_numerics
from stream.feeds.physiology import SCENARIOS, TRAJECTORIES, hour_of_day
from stream.feeds.physionet import ReplayOptions, ReplayStats, replay_messages, stay_messages
from stream.feeds.producer import FeedMessage, FeedRun, Pacer
from stream.feeds.simulator import SimConfig, cohort, generate, ground_truth, inject_faults

pytestmark = [
    pytest.mark.unit,
    pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.drop"),  # inside wfdb
]

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
CONTRACTS: dict[str, type[BaseModel]] = {
    "vitals": VitalsEvent,
    "labs": LabEvent,
    "wearables": WearableEvent,
    "profiles": PatientProfile,
    "outcomes": OutcomeEvent,
}


def decoded(msg: FeedMessage) -> Any:
    return decode(CONTRACTS[msg.kind], msg.value)


def collector(sent: list[FeedMessage]) -> Any:
    """A stand-in for ``run_feed`` that consumes the feed instead of sending it."""

    def run_feed(_settings: object, messages: Iterable[FeedMessage], **_: object) -> FeedRun:
        counts: Counter[str] = Counter()
        for msg in messages:
            sent.append(msg)
            counts[f"twin.{msg.kind}"] += 1
        return FeedRun(counts, 1.0, False)

    return run_feed


# --- simulator ------------------------------------------------------------


@pytest.fixture(scope="module")
def day() -> tuple[SimConfig, list[FeedMessage]]:
    """24 simulated hours of 40 patients, most of them deteriorating, with wearables."""
    config = SimConfig(
        patients=40,
        seed=11,
        start=START,
        scenarios={"sepsis": 0.3, "respiratory": 0.3, "haemorrhage": 0.3},
        wearables=True,
        hours=24,
    )
    return config, list(generate(config))


def test_same_seed_same_messages() -> None:
    config = SimConfig(patients=12, seed=3, start=START, wearables=True, hours=8)
    first = list(generate(config))
    assert first == list(generate(config))
    other = list(generate(SimConfig(patients=12, seed=4, start=START, wearables=True, hours=8)))
    assert [m.value for m in first] != [m.value for m in other]


def test_start_only_shifts_times() -> None:
    a = list(generate(SimConfig(patients=5, seed=3, start=START, hours=6)))
    b = list(generate(SimConfig(patients=5, seed=3, start=START + timedelta(days=1), hours=6)))
    assert [m.at + 86400 for m in a] == [m.at for m in b]
    strip = ("observed_at", "updated_at")
    assert [{k: v for k, v in orjson.loads(m.value).items() if k not in strip} for m in a] == [
        {k: v for k, v in orjson.loads(m.value).items() if k not in strip} for m in b
    ]


def test_every_generated_message_validates(day: tuple[SimConfig, list[FeedMessage]]) -> None:
    config, messages = day
    kinds = Counter(m.kind for m in messages)
    assert set(kinds) == {"profiles", "vitals", "labs", "wearables"}
    assert kinds["profiles"] == config.patients
    rejected = [(m.kind, r) for m in messages if isinstance(r := decoded(m), Rejection)]
    assert rejected == []
    assert all(m.fault is None for m in messages)


def test_messages_come_in_release_order_profiles_first(
    day: tuple[SimConfig, list[FeedMessage]],
) -> None:
    config, messages = day
    assert [m.kind for m in messages[: config.patients]] == ["profiles"] * config.patients
    ats = [m.at for m in messages]
    assert ats == sorted(ats)
    assert ats[0] == config.start_s


def test_profiles_include_scale_2_copd_patients() -> None:
    patients = cohort(SimConfig(patients=400, seed=5, start=START))
    scale2 = [p for p in patients if p.spo2_scale == 2]
    assert scale2, "some COPD patients should be on SpO2 scale 2"
    assert all("copd" in p.conditions for p in scale2)
    assert all(88 <= p.baseline["spo2"] <= 92 for p in scale2)


def test_drop_outs_and_artefacts_stay_within_contracts(
    day: tuple[SimConfig, list[FeedMessage]],
) -> None:
    _, messages = day
    vitals = [orjson.loads(m.value) for m in messages if m.kind == "vitals"]
    missing = Counter(
        name for v in vitals for name in ("temperature_c", "spo2", "systolic_bp") if name not in v
    )
    assert missing["temperature_c"] > 0  # drop-outs happen
    assert all("on_oxygen" in v for v in vitals)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenarios_move_in_the_documented_direction(scenario: str) -> None:
    config = SimConfig(patients=60, seed=2, start=START, scenarios={scenario: 1.0})
    for p in cohort(config)[:10]:
        assert p.scenario == scenario and p.onset_s is not None
        before, after = p.onset_s - 600, p.onset_s + 6 * 3600
        hour = 12.0  # same ward-clock hour: compare trajectory, not rhythm
        v0, v1 = p.vitals_at(before, hour), p.vitals_at(after, hour)
        l0, l1 = p.labs_at(before), p.labs_at(after)
        assert p.severity(before) == 0 and p.severity(after) == 1
        assert p.confused(after) and not p.confused(before)
        if scenario == "sepsis":
            assert v1["heart_rate"] > v0["heart_rate"] + 30
            assert v1["respiratory_rate"] > v0["respiratory_rate"] + 8
            assert v1["temperature_c"] > v0["temperature_c"] + 1.5
            assert v1["systolic_bp"] < v0["systolic_bp"] - 25
            assert l1["lactate"] > l0["lactate"] + 2
            assert l1["white_cell_count"] > l0["white_cell_count"]
        elif scenario == "respiratory":
            assert v1["spo2"] < v0["spo2"] - 5  # even with oxygen running
            assert v1["respiratory_rate"] > v0["respiratory_rate"] + 10
            assert p.on_oxygen(after) and not p.on_oxygen(before)
        else:
            assert v1["heart_rate"] > v0["heart_rate"] + 40
            assert v1["systolic_bp"] < v0["systolic_bp"] - 35
            assert l1["haemoglobin"] < l0["haemoglobin"] - 30


def test_sepsis_shows_in_the_measured_vitals() -> None:
    config = SimConfig(patients=20, seed=8, start=START, scenarios={"sepsis": 1.0}, hours=12)
    onsets = {p.patient_id: p.onset_s for p in cohort(config)}
    early: list[float] = []
    late: list[float] = []
    for msg in generate(config):
        doc = orjson.loads(msg.value)
        if msg.kind != "vitals" or "heart_rate" not in doc:
            continue
        t = msg.at - config.start_s
        onset = onsets[doc["patient_id"]]
        assert onset is not None
        if t < onset:
            early.append(doc["heart_rate"])
        elif t > onset + 6 * 3600:
            late.append(doc["heart_rate"])
    assert early and late
    assert statistics.median(late) > statistics.median(early) + 30


def test_bedside_cadence_between_15_minutes_and_4_hours(
    day: tuple[SimConfig, list[FeedMessage]],
) -> None:
    config, messages = day
    times: dict[bytes, list[float]] = {}
    for m in messages:
        if m.kind == "vitals":
            times.setdefault(m.key, []).append(m.at)
    stable = {p.patient_id.encode() for p in cohort(config) if p.scenario is None}
    intervals_stable: list[float] = []
    for key, ts in times.items():
        gaps = [b - a for a, b in itertools.pairwise(ts)]
        assert all(15 * 60 <= g <= 4 * 3600 for g in gaps), key
        if key in stable:
            intervals_stable += gaps
    # Stable patients are observed 4-hourly; deteriorating ones much more often.
    assert intervals_stable and min(intervals_stable) >= 3.5 * 3600
    assert min(b - a for ts in times.values() for a, b in itertools.pairwise(ts)) < 3600


def test_labs_cadence_and_turnaround(day: tuple[SimConfig, list[FeedMessage]]) -> None:
    _, messages = day
    labs = [(m, orjson.loads(m.value)) for m in messages if m.kind == "labs"]
    analytes = Counter(doc["analyte"] for _, doc in labs)
    assert {"potassium", "sodium", "creatinine", "haemoglobin", "lactate"} <= set(analytes)
    for msg, doc in labs:
        collected = datetime.fromisoformat(doc["observed_at"]).timestamp()
        assert msg.at >= collected  # released at or after specimen collection
        if doc["source"] == "sim-lis":
            assert 45 * 60 <= msg.at - collected <= 3 * 3600


def test_wearables_are_batched_per_minute_readings(
    day: tuple[SimConfig, list[FeedMessage]],
) -> None:
    _, messages = day
    batches = [m for m in messages if m.kind == "wearables"]
    assert batches
    stages = Counter()
    for msg in batches[:2000]:
        event = decoded(msg)
        assert isinstance(event, WearableEvent) and event.is_batch
        readings = list(event.iter_readings())
        assert 1 <= len(readings) <= min(5, MAX_READINGS)
        assert event.observed_at == readings[-1].observed_at
        for r in readings:
            night = hour_of_day(r.observed_at.timestamp())
            stages[(night >= 23 or night < 7, r.sleep_stage)] += 1
    assert stages[(True, "deep")] > 0 and stages[(False, "deep")] == 0


def test_ground_truth_names_scenario_and_onset() -> None:
    config = SimConfig(patients=50, seed=9, start=START, scenarios={"haemorrhage": 0.5})
    patients = cohort(config)
    truth = json.loads(json.dumps(ground_truth(config, patients)))
    assert truth["seed"] == 9 and truth["start"] == "2026-03-01T06:00:00Z"
    assert set(truth["patients"]) == {p.patient_id for p in patients}
    bleeding = {pid: t for pid, t in truth["patients"].items() if t["scenario"] == "haemorrhage"}
    assert 10 <= len(bleeding) <= 40
    for entry in bleeding.values():
        onset = datetime.fromisoformat(entry["onset"])
        assert START + timedelta(minutes=15) <= onset <= START + timedelta(hours=2)
    assert all(t["onset"] is None for t in truth["patients"].values() if t["scenario"] is None)


def test_faults_are_rejected_for_the_intended_reason() -> None:
    config = SimConfig(patients=10, seed=1, start=START, wearables=True, hours=6)
    messages = list(inject_faults(generate(config), 7))
    faults = [m for m in messages if m.fault]
    assert len(faults) == len(messages) // 7
    assert {m.fault for m in faults} == {"malformed_json", "invalid", "implausible"}
    for m in messages:
        result = decoded(m)
        if m.fault is None:
            assert not isinstance(result, Rejection)
        else:
            assert isinstance(result, Rejection) and result.reason == m.fault


def test_main_simulate_writes_truth_and_prints_no_patient_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[FeedMessage] = []
    monkeypatch.setattr(simulator, "run_feed", collector(sent))
    truth = tmp_path / "truth.json"
    argv = ["--patients", "8", "--seed", "4", "--hours", "6", "--start", "2026-03-01T06:00:00Z"]
    argv += ["--truth", str(truth), "--malformed-every", "10", "--wearables", "--max"]
    assert simulator.main_simulate(argv) == 0
    doc = json.loads(truth.read_text())
    assert len(doc["patients"]) == 8 and doc["start"] == "2026-03-01T06:00:00Z"
    config = SimConfig(patients=8, seed=4, start=START, wearables=True, hours=6)
    assert [m.value for m in sent] == [m.value for m in inject_faults(generate(config), 10)]
    out = capsys.readouterr().out
    assert f"{len(sent) // 10} deliberately malformed" in out
    assert "sim-0000" not in out


def test_scenario_argument_is_checked() -> None:
    assert simulator.parse_scenarios("respiratory:0.5") == {"respiratory": 0.5}
    for bad in ("flu:0.1", "sepsis:2", "sepsis:0.6,respiratory:0.6"):
        with pytest.raises(ValueError):
            simulator.parse_scenarios(bad)


def test_pacer_combines_speed_and_rate() -> None:
    pacer = Pacer(speed=60.0, rate=2.0)
    assert pacer.delay(at=0.0, now=0.0) == 0.0
    assert pacer.delay(at=0.0, now=0.0) == 0.5  # rate cap: same event time, next slot
    assert pacer.delay(at=600.0, now=1.0) == 9.0  # 10 simulated minutes = 10 wall s
    assert Pacer(speed=None, rate=None).delay(at=1e9, now=0.0) == 0.0


def test_trajectories_cite_all_scenarios() -> None:
    assert set(TRAJECTORIES) == set(SCENARIOS)


# --- PhysioNet 2012 ---------------------------------------------------------

STAY_A = """Time,Parameter,Value
00:00,RecordID,140001
00:00,Age,67
00:00,Gender,1
00:00,Height,-1
00:00,ICUType,3
00:00,Weight,80
00:07,GCS,15
00:07,HR,88
00:07,NIDiasABP,65
00:07,NISysABP,128
00:07,RespRate,19
00:07,Temp,37.1
00:07,FiO2,0.21
00:07,SaO2,97
00:07,MAP,86
00:07,Urine,120
01:00,HR,92
01:00,SysABP,0
01:00,NISysABP,110
01:00,DiasABP,60
01:00,GCS,9
01:00,FiO2,0.5
01:00,K,4.1
01:00,Glucose,180
01:00,Creatinine,1.2
01:00,TroponinT,0.05
01:00,HCT,30
01:00,pH,7.31
02:30,MechVent,1
02:30,FiO2,0.21
02:30,Temp,0
02:30,HR,0
03:00,Temp,37.7
03:00,Temp,36.7
03:00,HR,97
"""
STAY_B = """Time,Parameter,Value
00:00,RecordID,140002
00:00,Age,54
00:00,Age,61
00:00,Gender,-1
00:00,Height,170
00:00,Weight,-1
00:00,HR,70
00:30,HR,72
01:30,HR,75
01:30,Lactate,2.5
"""
OUTCOMES = """RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death
140001,12,5,7,-1,0
140002,20,9,-1,3,1
"""
BASE = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def physionet_dir(tmp_path: Path) -> Path:
    (tmp_path / "set-a").mkdir()
    (tmp_path / "set-a" / "140001.txt").write_text(STAY_A)
    (tmp_path / "set-a" / "140002.txt").write_text(STAY_B)
    (tmp_path / "Outcomes-a.txt").write_text(OUTCOMES)
    return tmp_path


def stay(
    physionet_dir: Path, record: int = 140001, **options: Any
) -> tuple[list[FeedMessage], ReplayStats]:
    stats = ReplayStats()
    messages = list(
        stay_messages(
            physionet_dir / "set-a" / f"{record}.txt",
            admitted=BASE,
            options=ReplayOptions(base=BASE, **options),
            stats=stats,
        )
    )
    return messages, stats


def of_kind(messages: list[FeedMessage], kind: str) -> list[dict[str, Any]]:
    return [orjson.loads(m.value) for m in messages if m.kind == kind]


def test_physionet_descriptors_become_a_profile(physionet_dir: Path) -> None:
    messages, _ = stay(physionet_dir)
    assert messages[0].kind == "profiles" and messages[0].at == BASE.timestamp()
    profile = decoded(messages[0])
    assert profile == PatientProfile(
        patient_id="physionet-140001",
        age=67,
        sex="male",
        ward="Medical ICU",
        updated_at=BASE,
    )


def test_physionet_unknown_and_conflicting_descriptors(physionet_dir: Path) -> None:
    messages, stats = stay(physionet_dir, 140002)
    profile = decoded(messages[0])
    assert isinstance(profile, PatientProfile)
    assert profile.age is None and profile.sex == "unknown" and profile.ward is None
    assert stats.conflicting == Counter({"age": 1})
    vitals = of_kind(messages, "vitals")
    assert [v["heart_rate"] for v in vitals] == [70, 72, 75]  # 00:00 vitals are not descriptors


def test_physionet_rows_of_one_minute_make_one_vitals_event(physionet_dir: Path) -> None:
    messages, stats = stay(physionet_dir)
    vitals = of_kind(messages, "vitals")
    assert [v["event_id"] for v in vitals] == [
        "physionet:140001:00:07:vitals",
        "physionet:140001:01:00:vitals",
        "physionet:140001:02:30:vitals",
        "physionet:140001:03:00:vitals",
    ]
    first = decoded(next(m for m in messages if m.kind == "vitals"))
    assert first == VitalsEvent(
        event_id="physionet:140001:00:07:vitals",
        patient_id="physionet-140001",
        observed_at=BASE + timedelta(minutes=7),
        source="physionet2012",
        heart_rate=88,
        respiratory_rate=19,
        systolic_bp=128,
        diastolic_bp=65,
        temperature_c=37.1,
        consciousness="A",
        on_oxygen=False,
    )
    # SaO2 is arterial, not pulse oximetry: not mapped unless asked.
    assert "spo2" not in vitals[0]
    assert stats.unmapped["SaO2"] == 1 and stats.unmapped["MAP"] == 1
    assert stats.unmapped["Weight"] == 0  # the 00:00 Weight is a descriptor


def test_physionet_gcs_fio2_mechvent_and_blood_pressure_choice(physionet_dir: Path) -> None:
    messages, stats = stay(physionet_dir)
    v = of_kind(messages, "vitals")
    assert v[1]["consciousness"] == "C"  # GCS 9
    assert v[1]["on_oxygen"] is True  # FiO2 0.5
    assert v[2]["on_oxygen"] is True  # MechVent 1 wins over FiO2 0.21
    # Invasive SysABP 0 (a zeroed line) is replaced by the cuff; DiasABP is invasive.
    assert v[1]["systolic_bp"] == 110 and v[1]["diastolic_bp"] == 60
    assert stats.invasive_replaced == 1


def test_physionet_labs_keep_units_the_contract_converts(physionet_dir: Path) -> None:
    messages, _ = stay(physionet_dir)
    labs = {e.analyte: e for m in messages if m.kind == "labs" for e in [decoded(m)]}
    assert set(labs) == {"potassium", "glucose", "creatinine", "troponin_t", "ph"}
    assert labs["glucose"].unit == "mg/dL"
    assert labs["glucose"].value_canonical == pytest.approx(180 / 18.016)
    assert labs["creatinine"].canonical() == ("creatinine", 1.2, "mg/dL")
    assert labs["troponin_t"].value_canonical == pytest.approx(50.0)  # 0.05 µg/L = 50 ng/L
    assert labs["potassium"].canonical() == ("potassium", 4.1, "mmol/L")
    assert labs["ph"].value == 7.31
    assert labs["glucose"].event_id == "physionet:140001:01:00:glucose"
    assert "haemoglobin" not in labs  # HCT is not haemoglobin


def test_physionet_optional_mappings(physionet_dir: Path) -> None:
    messages, _ = stay(physionet_dir, sao2_as_spo2=True, estimate_hb=True)
    assert of_kind(messages, "vitals")[0]["spo2"] == 97
    hb = [d for d in of_kind(messages, "labs") if d["analyte"] == "haemoglobin"]
    assert hb == [hb[0]] and hb[0]["value"] == 10.0 and hb[0]["unit"] == "g/dL"


def test_physionet_implausible_values_pass_through_by_default(physionet_dir: Path) -> None:
    messages, stats = stay(physionet_dir)
    at_0230 = next(m for m in messages if b"02:30:vitals" in m.value)
    result = decoded(at_0230)
    assert isinstance(result, Rejection) and result.reason == "implausible"
    assert "temperature_c" in result.error and "0" not in result.error.split(":")[0]
    assert stats.implausible == Counter({"temperature_c": 1})
    assert orjson.loads(at_0230.value)["heart_rate"] == 0  # within the contract's bounds


def test_physionet_clean_drops_implausible_and_zero_values(physionet_dir: Path) -> None:
    messages, stats = stay(physionet_dir, clean=True)
    at_0230 = decoded(next(m for m in messages if b"02:30:vitals" in m.value))
    assert isinstance(at_0230, VitalsEvent)
    assert at_0230.temperature_c is None and at_0230.heart_rate is None
    assert at_0230.on_oxygen is True
    assert stats.dropped == Counter({"temperature_c": 1, "heart_rate=0": 1})
    assert all(not isinstance(decoded(m), Rejection) for m in messages)


def test_physionet_repeated_parameter_last_row_wins(physionet_dir: Path) -> None:
    messages, stats = stay(physionet_dir)
    assert of_kind(messages, "vitals")[-1]["temperature_c"] == 36.7
    assert stats.duplicates == Counter({"Temp": 1})


def test_physionet_outcomes_at_the_end_of_the_stay(physionet_dir: Path) -> None:
    outcomes = physionet.load_outcomes(physionet_dir / "Outcomes-a.txt")
    assert outcomes[140002] == {
        "SAPS-I": 20,
        "SOFA": 9,
        "Length_of_stay": -1,
        "Survival": 3,
        "In-hospital_death": 1,
    }
    a, _ = stay(physionet_dir, outcomes=outcomes)
    b, _ = stay(physionet_dir, 140002, outcomes=outcomes)
    got_a = [decoded(m) for m in a if m.kind == "outcomes"]
    assert [(o.outcome, o.value) for o in got_a] == [
        ("in_hospital_death", 0),
        ("icu_length_of_stay_days", 7),
    ]
    assert all(o.observed_at == BASE + timedelta(hours=3) for o in got_a)
    assert a[-1].kind == "outcomes"
    assert [(o.outcome, o.value) for m in b if m.kind == "outcomes" for o in [decoded(m)]] == [
        ("in_hospital_death", 1)
    ]


def test_physionet_stays_interleave_in_event_time(physionet_dir: Path) -> None:
    paths = physionet.stay_paths(physionet_dir)
    merged = list(replay_messages(paths, ReplayOptions(base=BASE)))
    assert [m.at for m in merged] == sorted(m.at for m in merged)
    assert {m.key for m in merged[:3]} == {b"physionet-140001", b"physionet-140002"}
    staggered = list(replay_messages(paths, ReplayOptions(base=BASE, stagger_s=3600)))
    b_profile = next(m for m in staggered if m.key == b"physionet-140002")
    assert b_profile.at == BASE.timestamp() + 3600
    only = list(replay_messages(paths, ReplayOptions(base=BASE, kinds=frozenset({"vitals"}))))
    assert {m.kind for m in only} == {"vitals"}
    assert list(replay_messages(paths, ReplayOptions(base=BASE))) == merged  # deterministic


def test_main_replay_physionet_summary_has_counts_only(
    physionet_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[FeedMessage] = []
    monkeypatch.setattr(physionet, "run_feed", collector(sent))
    argv = ["physionet2012", "--data", str(physionet_dir), "--max", "--outcomes", "--limit", "1"]
    assert physionet.main_replay([*argv, "--base", "2026-02-01T00:00:00"]) == 0
    assert {m.key for m in sent} == {b"physionet-140001"}
    assert sent[0].at == BASE.timestamp()
    out = capsys.readouterr().out
    assert "1 stays" in out and "140001" not in out
    assert physionet.main_replay(["physionet2012", "--data", str(physionet_dir / "nope")]) == 2


# --- WFDB numerics --------------------------------------------------------


def write_numerics(directory: Path) -> Path:
    wfdb = pytest.importorskip("wfdb")
    nan = math.nan
    names = ["HR", "ABPSys", "PULSE", "RESP", "SpO2", "NBPSys", "NBPDias"]
    rows = [
        [72.0, 0.0, 71.0, 16.0, 97.0, nan, nan],  # cuff not inflated: NaN
        [0.0, 0.0, 80.0, 0.0, 0.0, 120.0, 70.0],  # ECG off: pulse used
        [0.0, 0.0, 0.0, 0.0, 0.0, nan, nan],  # nothing at all: skipped
        [75.0, 131.0, 74.0, 18.0, 96.0, 125.0, 72.0],  # arterial line preferred
    ]
    import numpy as np

    wfdb.wrsamp(
        "tiny-2896-10-10-00-31n",
        fs=1 / 60,
        units=["bpm", "mmHg", "bpm", "pm", "%", "mmHg", "mmHg"],
        sig_name=names,
        p_signal=np.array(rows),
        fmt=["16"] * len(names),
        adc_gain=[10.0] * len(names),
        baseline=[0] * len(names),
        comments=["<age>: 60 <sex>: F"],
        base_time=datetime(2000, 1, 1, 0, 31, 25).time(),
        base_date=datetime(2896, 10, 10).date(),
        write_dir=str(directory),
    )
    return directory / "tiny-2896-10-10-00-31n"


def test_wfdb_numerics_mapping(tmp_path: Path) -> None:
    record = wfdb_numerics.read_numerics(write_numerics(tmp_path))
    base = wfdb_numerics.base_time(record)
    assert base == datetime(2000, 10, 10, 0, 31, 25, tzinfo=UTC)
    stats = wfdb_numerics.NumericsStats()
    messages = list(
        wfdb_numerics.numerics_messages(record, patient_id="wfdb-tiny", base=base, stats=stats)
    )
    events = [decoded(m) for m in messages]
    assert not any(isinstance(e, Rejection) for e in events)
    profile, *vitals = events
    assert (profile.age, profile.sex) == (60, "female")
    assert [v.observed_at for v in vitals] == [
        base,
        base + timedelta(minutes=1),
        base + timedelta(minutes=3),
    ]
    fields = [
        v.model_dump(exclude_none=True, exclude={"event_id", "patient_id", "observed_at", "source"})
        for v in vitals
    ]
    assert fields == [
        {"heart_rate": 72, "respiratory_rate": 16, "spo2": 97},
        {"heart_rate": 80, "systolic_bp": 120, "diastolic_bp": 70},
        {
            "heart_rate": 75,
            "respiratory_rate": 18,
            "spo2": 96,
            "systolic_bp": 131,
            "diastolic_bp": 72,
        },
    ]
    assert vitals[2].event_id == "wfdb:tiny-2896-10-10-00-31n:3:vitals"
    assert stats.samples == 4 and stats.skipped_empty == 1


def test_main_replay_wfdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_numerics(tmp_path)
    sent: list[FeedMessage] = []
    monkeypatch.setattr(wfdb_numerics, "run_feed", collector(sent))
    assert (
        physionet.main_replay(["wfdb", f"{path}.hea", "--max", "--base", "2026-01-01T00:00Z"]) == 0
    )
    assert [m.kind for m in sent] == ["profiles", "vitals", "vitals", "vitals"]
    assert sent[1].at == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert {m.key for m in sent} == {b"wfdb-tiny"}
    assert "1 without any reading skipped" in capsys.readouterr().out


def test_wfdb_real_record() -> None:
    path = Path(__file__).parents[2] / ".." / "shared" / "data" / "mimic2-numerics-s00001"
    if not path.is_dir():
        pytest.skip("../shared/data/mimic2-numerics-s00001 not present: real-record check skipped")
    record = wfdb_numerics.read_numerics(path / "s00001-2896-10-10-00-31n")
    stats = wfdb_numerics.NumericsStats()
    messages = list(
        wfdb_numerics.numerics_messages(
            record, patient_id="wfdb-s00001", base=wfdb_numerics.base_time(record), stats=stats
        )
    )
    assert stats.samples == 1936
    assert stats.messages["vitals"] + stats.skipped_empty == 1936
    assert all(not isinstance(decoded(m), Rejection) for m in messages)


# --- profile CSV ----------------------------------------------------------

PROFILES_CSV = """patient_id,age,sex,ward,region,spo2_scale,conditions
p-1,71,F,AMU-2,north,2,copd; t2dm
p-2,,,,,,
p-3,abc,male,AMU-1,,1,
p-4,200,female,,,1,
p-5,40,robot,,,1,
p-6,50,male,,,3,
bad id!,50,male,,,1,
p-1,72,female,,,1,
p-7,33,M,,,1,a;b;c,extra
"""


def test_profiles_csv_validates_each_row() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    profiles, errors = profiles_csv.parse_profiles(PROFILES_CSV.splitlines(), now=now)
    assert [p.patient_id for p in profiles] == ["p-1", "p-2"]
    assert profiles[0] == PatientProfile(
        patient_id="p-1",
        age=71,
        sex="female",
        ward="AMU-2",
        region="north",
        spo2_scale=2,
        conditions=["copd", "t2dm"],
        updated_at=now,
    )
    assert profiles[1].age is None and profiles[1].sex == "unknown" and profiles[1].spo2_scale == 1
    assert [e.line for e in errors] == [4, 5, 6, 7, 8, 9, 10]
    text = "\n".join(e.error for e in errors)
    for value in ("abc", "200", "robot", "bad id", "72", "extra"):
        assert value not in text
    assert "repeats line 2" in errors[5].error


def test_profiles_csv_rejects_unknown_columns() -> None:
    with pytest.raises(profiles_csv.HeaderError):
        profiles_csv.parse_profiles(["patient_id,nhs_number", "p1,123"], now=datetime.now(UTC))
    with pytest.raises(profiles_csv.HeaderError):
        profiles_csv.parse_profiles(["age", "12"], now=datetime.now(UTC))


def test_main_profiles_sends_valid_rows_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[FeedMessage] = []
    monkeypatch.setattr(profiles_csv, "run_feed", collector(sent))
    path = tmp_path / "profiles.csv"
    path.write_text(PROFILES_CSV)
    assert profiles_csv.main_profiles(["load", str(path)]) == 1
    assert [m.key for m in sent] == [b"p-1", b"p-2"]
    assert all(isinstance(decoded(m), PatientProfile) for m in sent)
    captured = capsys.readouterr()
    assert "profiles.csv line 4: age: not a whole number" in captured.err
    assert "abc" not in captured.err + captured.out
    path.write_text("patient_id,age\np-9,50\n")
    assert profiles_csv.main_profiles(["load", str(path), "--dry-run"]) == 0
