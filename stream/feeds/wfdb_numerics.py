"""``twinstream replay wfdb PATH``: a WFDB bedside-monitor numerics record as vitals.

Made for MIMIC-II numerics such as ``../shared/data/mimic2-numerics-s00001/
s00001-2896-10-10-00-31n`` (one sample a minute; Saeed M et al. Crit Care Med
2011;39:952-960; PhysioNet). Read with ``wfdb.rdrecord`` and ``p_signal`` by
``sig_name``: ``to_dataframe()`` fails on the de-identified year 2896.

Mapping (signal names compared without case, spaces or ``%``):

==================  ===================================================
signal              VitalsEvent field
==================  ===================================================
HR, else PULSE      heart_rate (ECG-derived rate preferred to pleth pulse)
RESP                respiratory_rate
SpO2                spo2
ABPSys, else NBPSys systolic_bp (arterial line preferred when it reads)
ABPDias, else       diastolic_bp
NBPDias
TEMP                temperature_c
==================  ===================================================

Zero and NaN both mean "no reading": the field is left out, and a sample
with no reading at all is skipped (counted). When the preferred signal's value
is outside the contract's bounds and the fallback's is inside, the fallback is
used. Other implausible values are passed through to be dead-lettered, or
dropped with ``--clean`` (counted either way).

Times: sample ``i`` is observed at ``base + i / fs``; ``base`` is ``--base``,
else the header's date and time with the year replaced by 2000 (a leap year,
so any shifted date exists). The patient id is ``--patient-id``, else
``wfdb-<record name up to the first '-'>``; a PatientProfile is sent first
when the header's comments give ``<age>`` or ``<sex>``.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from schemas.vitals import PLAUSIBLE_VITALS
from stream.feeds.producer import FeedKind, FeedMessage, run_feed
from stream.settings import get_settings

__all__ = [
    "CANDIDATES",
    "NumericsStats",
    "base_time",
    "numerics_messages",
    "read_numerics",
    "replay_wfdb",
]

SOURCE = "wfdb-numerics"
CANDIDATES: Mapping[str, tuple[str, ...]] = {
    "heart_rate": ("hr", "pulse"),
    "respiratory_rate": ("resp",),
    "spo2": ("spo2",),
    "systolic_bp": ("abpsys", "nbpsys"),
    "diastolic_bp": ("abpdias", "nbpdias"),
    "temperature_c": ("temp",),
}
"""Field -> signal names (normalised) in order of preference."""

_AGE = re.compile(r"<age>:\s*(\d+)")
_SEX = re.compile(r"<sex>:\s*([MFmf])")


@dataclass(frozen=True, slots=True)
class Numerics:
    """The parts of a WFDB record the replay uses."""

    record_name: str
    fs: float
    signals: Mapping[str, Sequence[float]]  # normalised name -> samples
    length: int
    base_date: Any  # datetime.date | None
    base_time: Any  # datetime.time | None
    comments: tuple[str, ...]


@dataclass(slots=True)
class NumericsStats:
    """Counts only, never values."""

    samples: int = 0
    skipped_empty: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    implausible: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """One line of counts."""
        return (
            f"{self.samples} samples, {self.skipped_empty} without any reading skipped; "
            f"{sum(self.implausible.values())} implausible values, "
            f"{sum(self.dropped.values())} dropped"
        )


def _normalise(name: str) -> str:
    return name.lower().replace(" ", "").replace("%", "").replace("_", "")


def read_numerics(path: Path) -> Numerics:
    """Read a WFDB record (``path`` with or without ``.hea``)."""
    try:
        import wfdb
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit('WFDB replay needs wfdb: pip install "twinstream[replay]"') from exc
    stem = str(path)[:-4] if str(path).endswith(".hea") else str(path)
    record = wfdb.rdrecord(stem)
    signal = record.p_signal
    signals = {_normalise(name): signal[:, i].tolist() for i, name in enumerate(record.sig_name)}
    return Numerics(
        record_name=str(record.record_name),
        fs=float(record.fs),
        signals=signals,
        length=int(signal.shape[0]),
        base_date=record.base_date,
        base_time=record.base_time,
        comments=tuple(record.comments or ()),
    )


def base_time(numerics: Numerics, override: datetime | None = None) -> datetime:
    """``override``, else the header's date and time moved to the year 2000 (UTC)."""
    if override is not None:
        return override
    if numerics.base_date is None:
        raise ValueError("the header has no base date: pass --base")
    day = numerics.base_date.replace(year=2000)
    moment = numerics.base_time or datetime.min.time()
    return datetime.combine(day, moment, tzinfo=UTC)


def _reading(value: float) -> float | None:
    if value == 0 or math.isnan(value):
        return None
    return round(value, 3)


def _plausible(name: str, value: float) -> bool:
    low, high, _ = PLAUSIBLE_VITALS[name]
    return low <= value <= high


def _vitals(numerics: Numerics, i: int, clean: bool, stats: NumericsStats) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, candidates in CANDIDATES.items():
        readings = [
            value
            for signal in candidates
            if signal in numerics.signals
            and (value := _reading(numerics.signals[signal][i])) is not None
        ]
        if not readings:
            continue
        chosen = next((v for v in readings if _plausible(name, v)), None)
        if chosen is None:
            stats.implausible[name] += 1
            if clean:
                stats.dropped[name] += 1
                continue
            chosen = readings[0]
        out[name] = chosen
    return out


def numerics_messages(
    numerics: Numerics,
    *,
    patient_id: str,
    base: datetime,
    clean: bool = False,
    kinds: frozenset[FeedKind] = frozenset({"vitals", "profiles"}),
    stats: NumericsStats | None = None,
) -> Iterator[FeedMessage]:
    """A profile (if the header tells age or sex) then one VitalsEvent per sample with data."""
    stats = NumericsStats() if stats is None else stats
    key = patient_id.encode()
    comments = " ".join(numerics.comments)
    age, sex = _AGE.search(comments), _SEX.search(comments)
    if "profiles" in kinds and (age or sex):
        profile: dict[str, Any] = {"patient_id": patient_id, "updated_at": base}
        if age:
            profile["age"] = int(age.group(1))
        if sex:
            profile["sex"] = "female" if sex.group(1).upper() == "F" else "male"
        stats.messages["profiles"] += 1
        yield FeedMessage("profiles", key, orjson.dumps(profile), base.timestamp())
    for i in range(numerics.length):
        stats.samples += 1
        vitals = _vitals(numerics, i, clean, stats)
        if not vitals:
            stats.skipped_empty += 1
            continue
        if "vitals" not in kinds:
            continue
        observed = base + timedelta(seconds=i / numerics.fs)
        doc = {
            "event_id": f"wfdb:{numerics.record_name}:{i}:vitals",
            "patient_id": patient_id,
            "observed_at": observed,
            "source": SOURCE,
            **vitals,
        }
        stats.messages["vitals"] += 1
        yield FeedMessage("vitals", key, orjson.dumps(doc), observed.timestamp())


def replay_wfdb(args: argparse.Namespace) -> int:
    """Run ``twinstream replay wfdb`` from parsed arguments (see :mod:`stream.feeds.physionet`)."""
    path: Path = args.path
    header = Path(str(path) if str(path).endswith(".hea") else f"{path}.hea")
    if not header.is_file():
        print(f"no WFDB header {header.name} in {header.parent}", file=sys.stderr)
        return 2
    numerics = read_numerics(path)
    patient_id = args.patient_id or f"wfdb-{numerics.record_name.split('-')[0]}"
    stats = NumericsStats()
    messages = numerics_messages(
        numerics,
        patient_id=patient_id,
        base=base_time(numerics, args.base),
        clean=args.clean,
        kinds=args.only,
        stats=stats,
    )
    run = run_feed(
        get_settings(),
        messages,
        description="wfdb",
        speed=None if args.max else args.speed,
        span_s=numerics.length / numerics.fs,
        quiet=args.quiet,
    )
    print(f"{run.summary()}; {stats.summary()}")
    return 130 if run.interrupted else 0
