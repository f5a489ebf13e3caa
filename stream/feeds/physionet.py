"""``twinstream replay physionet2012``: PhysioNet/CinC Challenge 2012 ICU stays as a live feed.

Reads ``set-a/<RecordID>.txt`` (``Time,Parameter,Value``; ``Time`` is HH:MM
since ICU admission) from ``--data`` (default ``<repo>/../shared/data/physionet2012``;
nothing is ever copied into the repository). Source: Silva I, Moody G, Scott DJ,
Celi LA, Mark RG. Predicting in-hospital mortality of ICU patients: the
PhysioNet/Computing in Cardiology Challenge 2012. Comput Cardiol 2012;39:245-248;
PhysioNet (Goldberger AL et al. Circulation 2000;101:e215-e220), ODC-By 1.0.

Mapping onto the contracts
--------------------------

=================================  =================================================
PhysioNet                          twinstream
=================================  =================================================
RecordID                           ``patient_id`` ``physionet-<RecordID>``
HH:MM                              event time = admission + offset; admission is
                                   ``--base`` (default now - 48 h) for every stay,
                                   or staggered by ``--stagger`` minutes per stay
rows of one HH:MM                  ONE VitalsEvent (if any vital maps), id
                                   ``physionet:<RecordID>:<HH:MM>:vitals``
HR / RespRate / Temp               heart_rate / respiratory_rate / temperature_c
SysABP, NISysABP                   systolic_bp: invasive (arterial line) preferred, being
                                   the more accurate; the non-invasive value is used
                                   when there is no invasive one, or when the invasive
                                   one is outside the contract's bounds (a zeroed or
                                   flushed line) and the cuff's is inside (counted)
DiasABP, NIDiasABP                 diastolic_bp, same rule
MAP, NIMAP                         not mapped (the contract has no MAP)
SaO2                               not mapped: arterial blood-gas saturation, not pulse
                                   oximetry (SpO2); ``--sao2-as-spo2`` maps it to spo2
GCS                                15 -> consciousness "A"; 3-14 -> "C" (treated as new
                                   confusion; NEWS2 scores every non-A level 3, so the
                                   V/P/U distinction would not change the score)
FiO2, MechVent                     on_oxygen: MechVent 1 -> true (ventilatory support);
                                   else FiO2 > 0.21 -> true, FiO2 = 0.21 -> false
K / Na / HCO3 (mmol/L)             LabEvent potassium / sodium / bicarbonate
Glucose / Creatinine / Bilirubin   glucose / creatinine / bilirubin, unit mg/dL
Lactate (mmol/L)                   lactate
WBC / Platelets (10^9/L)           white_cell_count / platelets
pH                                 ph, unit "pH"
TroponinI / TroponinT (µg/L)       troponin_i / troponin_t, unit "ug/L" (1 µg/L = 1000
                                   ng/L, the canonical unit)
HCT (%)                            not mapped: haematocrit is not haemoglobin;
                                   ``--estimate-hb`` sends haemoglobin = HCT / 3 g/dL
                                   (a rule of thumb, off by the MCHC)
lab rows                           one LabEvent each, id
                                   ``physionet:<RecordID>:<HH:MM>:<analyte>``
Age / Gender / ICUType (00:00)     PatientProfile: age (-1 -> unknown), sex (0 female,
                                   1 male, -1 unknown), ward from ICUType (1 Coronary
                                   Care Unit, 2 Cardiac Surgery Recovery Unit, 3 Medical
                                   ICU, 4 Surgical ICU); sent at admission
Height, Weight, Urine, PaO2,       not mapped (counted)
PaCO2, Mg, BUN, Albumin, ALP,
ALT, AST, Cholesterol
Outcomes-a.txt (``--outcomes``)    OutcomeEvent ``in_hospital_death`` (0/1) and
                                   ``icu_length_of_stay_days`` (when known), at the
                                   stay's last row: the set holds only the first 48 h,
                                   and waiting in event time for the real discharge
                                   would stall a paced replay for days
=================================  =================================================

Data quirks and how they are handled (all counted in :class:`ReplayStats`):

- Implausible values (e.g. Temp -17.8 or 0, pH 735, SysABP 0, RespRate 98) are
  passed through by default, so the pipeline dead-letters them and nothing is
  dropped silently. The whole VitalsEvent of that minute is then rejected
  downstream. ``--clean`` drops just the implausible values instead, and also
  zero heart and respiratory rates, which the contract accepts but which in a
  spot-charted record are recording artefacts.
- A parameter twice in one minute (e.g. two Temp values): the last row wins.
- A descriptor given twice with different values (some stays list several
  Ages): unknown rather than a guess. An Age of 200 or more is the source's
  top-coding of the oldest patients (over 89) and becomes 90; any other Age
  above the contract's 130 follows the implausible-value rule.
- This copy of the data has no ICUType rows; ward is then absent.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import orjson

from schemas.labs import ANALYTES, AnalyteName, to_canonical
from schemas.vitals import PLAUSIBLE_VITALS
from stream.feeds.producer import FeedKind, FeedMessage, run_feed
from stream.settings import get_settings

__all__ = [
    "DEFAULT_DATA_DIR",
    "ICU_TYPES",
    "LAB_PARAMETERS",
    "ReplayOptions",
    "ReplayStats",
    "load_outcomes",
    "main_replay",
    "map_labs",
    "map_vitals",
    "replay_messages",
    "stay_messages",
    "stay_paths",
]

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "physionet2012"
SOURCE = "physionet2012"
STAY_SPAN_S = 48 * 3600.0
ICU_TYPES: Mapping[int, str] = {
    1: "Coronary Care Unit",
    2: "Cardiac Surgery Recovery Unit",
    3: "Medical ICU",
    4: "Surgical ICU",
}
DESCRIPTORS = frozenset({"RecordID", "Age", "Gender", "Height", "ICUType", "Weight"})
LAB_PARAMETERS: Mapping[str, tuple[AnalyteName, str]] = {
    "K": ("potassium", "mmol/L"),
    "Na": ("sodium", "mmol/L"),
    "HCO3": ("bicarbonate", "mmol/L"),
    "Glucose": ("glucose", "mg/dL"),
    "Creatinine": ("creatinine", "mg/dL"),
    "Bilirubin": ("bilirubin", "mg/dL"),
    "Lactate": ("lactate", "mmol/L"),
    "WBC": ("white_cell_count", "10^9/L"),
    "Platelets": ("platelets", "10^9/L"),
    "pH": ("ph", "pH"),
    "TroponinI": ("troponin_i", "ug/L"),
    "TroponinT": ("troponin_t", "ug/L"),
}
_SIMPLE_VITALS = {"HR": "heart_rate", "RespRate": "respiratory_rate", "Temp": "temperature_c"}
_BP = (("systolic_bp", "SysABP", "NISysABP"), ("diastolic_bp", "DiasABP", "NIDiasABP"))
_VITAL_INPUTS = frozenset(
    {*_SIMPLE_VITALS, "SysABP", "NISysABP", "DiasABP", "NIDiasABP", "GCS", "FiO2", "MechVent"}
)
_ZERO_ARTEFACTS = frozenset({"heart_rate", "respiratory_rate"})
_TIME = re.compile(r"^(\d{1,3}):([0-5]\d)$")
ALL_KINDS: frozenset[FeedKind] = frozenset(get_args(FeedKind))

_MessageFactory = Callable[[FeedKind, dict[str, Any], float], FeedMessage | None]


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How to map and time the stays (see the module docstring)."""

    base: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    stagger_s: float = 0.0
    clean: bool = False
    sao2_as_spo2: bool = False
    estimate_hb: bool = False
    outcomes: Mapping[int, Mapping[str, float]] | None = None
    kinds: frozenset[FeedKind] = ALL_KINDS


@dataclass(slots=True)
class ReplayStats:
    """What the replay made of the data; counts only, never values or ids."""

    stays: int = 0
    rows: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    implausible: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    conflicting: Counter[str] = field(default_factory=Counter)
    bad_rows: int = 0
    invasive_replaced: int = 0
    no_outcome: int = 0
    ages_top_coded: int = 0

    def summary(self) -> str:
        """One line of counts."""
        return (
            f"{self.stays} stays, {self.rows} rows; "
            f"{sum(self.implausible.values())} implausible values, "
            f"{sum(self.dropped.values())} values dropped; "
            f"{sum(self.unmapped.values())} rows not mapped; "
            f"{sum(self.duplicates.values())} repeated in the same minute (last kept); "
            f"{self.invasive_replaced} invasive BP replaced by cuff; {self.bad_rows} bad rows"
        )


def _plausible_vital(name: str, value: float) -> bool:
    low, high, _ = PLAUSIBLE_VITALS[name]
    return low <= value <= high


def _keep(
    name: str, value: float, plausible: bool, options: ReplayOptions, stats: ReplayStats
) -> bool:
    """Count an implausible value; drop it only with ``--clean``."""
    if options.clean and value == 0 and name in _ZERO_ARTEFACTS:
        stats.dropped[f"{name}=0"] += 1
        return False
    if plausible:
        return True
    stats.implausible[name] += 1
    if options.clean:
        stats.dropped[name] += 1
        return False
    return True


def map_vitals(
    values: Mapping[str, float], options: ReplayOptions, stats: ReplayStats
) -> dict[str, Any]:
    """The VitalsEvent fields for one minute's ``{Parameter: Value}`` (maybe empty).

    >>> map_vitals({"HR": 88.0, "GCS": 14.0, "FiO2": 0.21}, ReplayOptions(), ReplayStats())
    {'heart_rate': 88.0, 'consciousness': 'C', 'on_oxygen': False}
    """
    out: dict[str, Any] = {}
    for parameter, name in _SIMPLE_VITALS.items():
        value = values.get(parameter)
        if value is not None and _keep(name, value, _plausible_vital(name, value), options, stats):
            out[name] = value
    for name, invasive, cuff in _BP:
        a, b = values.get(invasive), values.get(cuff)
        chosen = a if a is not None else b
        replace = a is not None and b is not None and not _plausible_vital(name, a)
        if replace and b is not None and _plausible_vital(name, b):
            chosen = b
            stats.invasive_replaced += 1
        if chosen is not None and _keep(
            name, chosen, _plausible_vital(name, chosen), options, stats
        ):
            out[name] = chosen
    sao2 = values.get("SaO2")
    if (
        options.sao2_as_spo2
        and sao2 is not None
        and _keep("spo2", sao2, _plausible_vital("spo2", sao2), options, stats)
    ):
        out["spo2"] = sao2
    gcs = values.get("GCS")
    if gcs is not None:
        if 3 <= gcs <= 15:
            out["consciousness"] = "A" if gcs == 15 else "C"
        else:  # no GCS field to dead-letter: it cannot be passed through
            stats.implausible["gcs"] += 1
            stats.dropped["gcs"] += 1
    if values.get("MechVent") == 1:
        out["on_oxygen"] = True
    elif (fio2 := values.get("FiO2")) is not None:
        out["on_oxygen"] = fio2 > 0.21 + 1e-9
    return out


def map_labs(
    values: Mapping[str, float], options: ReplayOptions, stats: ReplayStats
) -> list[tuple[AnalyteName, str, float]]:
    """``(analyte, unit, value)`` for each lab parameter of one minute.

    >>> map_labs({"K": 4.1, "Glucose": 180.0, "HCT": 30.0}, ReplayOptions(), ReplayStats())
    [('potassium', 'mmol/L', 4.1), ('glucose', 'mg/dL', 180.0)]
    """
    out: list[tuple[AnalyteName, str, float]] = []
    for parameter, value in values.items():
        if parameter in LAB_PARAMETERS:
            analyte, unit = LAB_PARAMETERS[parameter]
        elif parameter == "HCT" and options.estimate_hb:
            analyte, unit, value = "haemoglobin", "g/dL", round(value / 3.0, 1)
        else:
            continue
        spec = ANALYTES[analyte]
        canonical = to_canonical(analyte, value, unit)
        plausible = canonical is not None and spec.low <= canonical <= spec.high
        if _keep(analyte, value, plausible, options, stats):
            out.append((analyte, unit, value))
    return out


def _is_mapped(parameter: str, options: ReplayOptions) -> bool:
    return (
        parameter in _VITAL_INPUTS
        or parameter in LAB_PARAMETERS
        or (parameter == "SaO2" and options.sao2_as_spo2)
        or (parameter == "HCT" and options.estimate_hb)
    )


def _single(values: list[float], name: str, stats: ReplayStats) -> float | None:
    """One descriptor value, or None when absent, unknown (-1) or contradictory."""
    distinct = set(values)
    if len(distinct) > 1:
        stats.conflicting[name] += 1
        return None
    value = next(iter(distinct), None)
    return None if value is None or value == -1 else value


def _profile(
    record_id: int,
    descriptors: Mapping[str, list[float]],
    admitted: datetime,
    options: ReplayOptions,
    stats: ReplayStats,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"patient_id": f"physionet-{record_id}"}
    age = _single(descriptors.get("Age", []), "age", stats)
    if age is not None and age >= 200:
        # De-identification top-codes the ages of the oldest patients (HIPAA
        # safe harbour: over 89) as values of 200 and more: read them as 90,
        # "90 or older", rather than dead-letter the whole profile.
        stats.ages_top_coded += 1
        age = 90.0
    if age is not None and _keep("age", age, 0 <= age <= 130, options, stats):
        doc["age"] = int(age)
    sex = _single(descriptors.get("Gender", []), "gender", stats)
    doc["sex"] = {0: "female", 1: "male"}.get(int(sex) if sex is not None else -1, "unknown")
    icu = _single(descriptors.get("ICUType", []), "icu_type", stats)
    if icu is not None and int(icu) in ICU_TYPES:
        doc["ward"] = ICU_TYPES[int(icu)]
    doc["updated_at"] = admitted
    return doc


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text``, lazily: a stay waiting in the merge holds its text only."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        yield text[start:end]
        start = end + 1


def _rows(text: str, stats: ReplayStats) -> Iterator[tuple[str, int, str, float]]:
    """``(HH:MM, minute, parameter, value)`` for every well-formed row after the header."""
    last_time, last_minute = "", -1
    for line in itertools.islice(_lines(text), 1, None):  # after the header
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").split(",")
        if len(parts) != 3:
            stats.bad_rows += 1
            continue
        time_text, parameter, cell = parts
        if time_text != last_time:  # rows come grouped by time: parse each time once
            match = _TIME.match(time_text)
            if match is None:
                stats.bad_rows += 1
                continue
            last_time, last_minute = time_text, int(match.group(1)) * 60 + int(match.group(2))
        try:
            value = float(cell)
        except ValueError:
            stats.bad_rows += 1
            continue
        if not math.isfinite(value):
            stats.bad_rows += 1
            continue
        stats.rows += 1
        yield last_time, last_minute, parameter, value


def _collect(
    rows: Iterator[tuple[str, int, str, float]],
    minute: int,
    options: ReplayOptions,
    stats: ReplayStats,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """One minute's mapped ``{Parameter: Value}`` (last wins) and, at 00:00, its descriptors."""
    values: dict[str, float] = {}
    descriptors: dict[str, list[float]] = {}
    for _, _, parameter, value in rows:
        if minute == 0 and parameter in DESCRIPTORS:
            descriptors.setdefault(parameter, []).append(value)
        elif not _is_mapped(parameter, options):
            stats.unmapped[parameter] += 1
        else:
            if parameter in values:
                stats.duplicates[parameter] += 1
            values[parameter] = value
    return values, descriptors


def stay_messages(
    path: Path,
    *,
    admitted: datetime,
    options: ReplayOptions,
    stats: ReplayStats,
) -> Iterator[FeedMessage]:
    """The messages of one stay, in event-time order; the file is read at the first ``next``."""
    record_id = int(path.stem)
    pid = f"physionet-{record_id}"
    key = pid.encode()
    stats.stays += 1
    base_s = admitted.timestamp()

    def message(kind: FeedKind, doc: dict[str, Any], at: float) -> FeedMessage | None:
        if kind not in options.kinds:
            return None
        stats.messages[kind] += 1
        return FeedMessage(kind, key, orjson.dumps(doc), at)

    rows = _rows(path.read_text(encoding="utf-8"), stats)
    profile_sent = False
    last_at = base_s
    for (hhmm, minute), group in itertools.groupby(rows, key=lambda r: r[:2]):
        at = base_s + minute * 60.0
        values, descriptors = _collect(group, minute, options, stats)
        if not profile_sent:
            profile_sent = True
            doc = _profile(record_id, descriptors, admitted, options, stats)
            if msg := message("profiles", doc, base_s):
                yield msg
        common = {
            "patient_id": pid,
            "observed_at": admitted + timedelta(minutes=minute),
            "source": SOURCE,
        }
        vitals = map_vitals(values, options, stats)
        if vitals:
            doc = {"event_id": f"physionet:{record_id}:{hhmm}:vitals", **common, **vitals}
            if msg := message("vitals", doc, at):
                yield msg
        for analyte, unit, value in map_labs(values, options, stats):
            doc = {
                "event_id": f"physionet:{record_id}:{hhmm}:{analyte}",
                **common,
                "analyte": analyte,
                "unit": unit,
                "value": value,
            }
            if msg := message("labs", doc, at):
                yield msg
        last_at = at
    if options.outcomes is not None:
        yield from _outcomes(record_id, last_at, options.outcomes, message, stats)


def _outcomes(
    record_id: int,
    at: float,
    outcomes: Mapping[int, Mapping[str, float]],
    message: _MessageFactory,
    stats: ReplayStats,
) -> Iterator[FeedMessage]:
    row = outcomes.get(record_id)
    if row is None:
        stats.no_outcome += 1
        return
    pid = f"physionet-{record_id}"
    observed = datetime.fromtimestamp(at, UTC)
    labels = {"in_hospital_death": row.get("In-hospital_death")}
    if row.get("Length_of_stay", -1) >= 0:
        labels["icu_length_of_stay_days"] = row["Length_of_stay"]
    for name, value in labels.items():
        if value is None:
            continue
        doc = {"patient_id": pid, "outcome": name, "value": value, "observed_at": observed}
        if msg := message("outcomes", doc, at):
            yield msg


def load_outcomes(path: Path) -> dict[int, dict[str, float]]:
    """``Outcomes-a.txt`` as ``{RecordID: {"SAPS-I": .., "SOFA": .., "Length_of_stay": ..,
    "Survival": .., "In-hospital_death": ..}}`` (-1 kept: it means unknown)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    if header[0] != "RecordID":
        raise ValueError(f"{path.name}: expected a RecordID column first")
    out: dict[int, dict[str, float]] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != len(header):
            raise ValueError(
                f"{path.name} line {number}: {len(cells)} cells, expected {len(header)}"
            )
        out[int(cells[0])] = {
            name: float(cell) for name, cell in zip(header[1:], cells[1:], strict=True)
        }
    return out


def stay_paths(data_dir: Path, limit: int | None = None) -> list[Path]:
    """The ``set-a`` stay files in RecordID order, at most ``limit``."""
    paths = sorted((data_dir / "set-a").glob("*.txt"), key=lambda p: int(p.stem))
    return paths if limit is None else paths[:limit]


def replay_messages(
    paths: list[Path], options: ReplayOptions, stats: ReplayStats | None = None
) -> Iterator[FeedMessage]:
    """All stays' messages merged in event time (stay ``i`` admitted at base + i * stagger)."""
    stats = ReplayStats() if stats is None else stats
    streams = [
        stay_messages(
            path,
            admitted=options.base + timedelta(seconds=i * options.stagger_s),
            options=options,
            stats=stats,
        )
        for i, path in enumerate(paths)
    ]
    return heapq.merge(*streams, key=lambda m: m.at)


def _kinds(text: str) -> frozenset[FeedKind]:
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    unknown = kinds - ALL_KINDS
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown kinds: {', '.join(sorted(unknown))}")
    return frozenset(kinds)  # type: ignore[arg-type]


def _iso(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _add_pacing_arguments(parser: argparse.ArgumentParser) -> None:
    """``--speed``/``--max``, ``--only``, ``--quiet``: shared by the replay subcommands."""
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=3600.0, help="data seconds per wall second")
    pace.add_argument("--max", action="store_true", help="as fast as possible")
    parser.add_argument("--base", type=_iso, default=None, help="admission time, ISO 8601")
    parser.add_argument("--clean", action="store_true", help="drop implausible values")
    parser.add_argument(
        "--only", type=_kinds, default=ALL_KINDS, help="comma-separated kinds to send, e.g. vitals"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinstream replay", description="Replay recorded data.")
    sub = p.add_subparsers(dest="source", required=True)
    ph = sub.add_parser("physionet2012", help="PhysioNet/CinC Challenge 2012 set A")
    ph.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="physionet2012 folder")
    ph.add_argument("--limit", type=int, default=None, help="first N stays by RecordID")
    ph.add_argument("--outcomes", action="store_true", help="send outcomes at each stay's end")
    ph.add_argument("--stagger", type=float, default=0.0, help="minutes between admissions")
    ph.add_argument("--sao2-as-spo2", action="store_true", help="map arterial SaO2 to spo2")
    ph.add_argument("--estimate-hb", action="store_true", help="haemoglobin = HCT / 3 g/dL")
    _add_pacing_arguments(ph)
    wf = sub.add_parser("wfdb", help="a WFDB numerics record (e.g. MIMIC-II)")
    wf.add_argument("path", type=Path, help="record path, with or without .hea")
    wf.add_argument("--patient-id", default=None, help="default: wfdb-<record prefix>")
    _add_pacing_arguments(wf)
    return p


def main_replay(argv: list[str]) -> int:
    """``twinstream replay physionet2012 ...`` or ``twinstream replay wfdb PATH ...``."""
    args = _parser().parse_args(argv)
    if args.source == "wfdb":
        from stream.feeds.wfdb_numerics import replay_wfdb

        return replay_wfdb(args)
    data_dir: Path = args.data
    if not (data_dir / "set-a").is_dir():
        print(
            f"no set-a/ under {data_dir}: pass --data DIR (the physionet2012 folder)",
            file=sys.stderr,
        )
        return 2
    base = args.base or (datetime.now(UTC) - timedelta(seconds=STAY_SPAN_S)).replace(
        second=0, microsecond=0
    )
    outcomes = load_outcomes(data_dir / "Outcomes-a.txt") if args.outcomes else None
    options = ReplayOptions(
        base=base,
        stagger_s=args.stagger * 60.0,
        clean=args.clean,
        sao2_as_spo2=args.sao2_as_spo2,
        estimate_hb=args.estimate_hb,
        outcomes=outcomes,
        kinds=args.only,
    )
    paths = stay_paths(data_dir, args.limit)
    stats = ReplayStats()
    run = run_feed(
        get_settings(),
        replay_messages(paths, options, stats),
        description="physionet2012",
        speed=None if args.max else args.speed,
        span_s=STAY_SPAN_S + max(0, len(paths) - 1) * options.stagger_s,
        quiet=args.quiet,
    )
    print(f"{run.summary()}; {stats.summary()}")
    return 130 if run.interrupted else 0
