"""``twinstream profiles load FILE.csv``: patient profiles from a CSV file.

Columns (a header row is required; only ``patient_id`` must be present)::

    patient_id,age,sex,ward,region,spo2_scale,conditions[,updated_at]

An empty cell means "not given": age unknown, sex ``unknown``, no ward or
region, SpO2 scale 1, no conditions. ``sex`` is case-insensitive and accepts
``F``/``M``; ``conditions`` are ``;``-separated; ``updated_at`` is ISO 8601
with an offset. Without ``updated_at`` a profile is stamped with the load
time, so it supersedes what the twin already has (on the profiles topic the
latest ``updated_at`` wins).

Each row is validated as a :class:`~schemas.profiles.PatientProfile`. A row
that fails is reported by its line number, the field and the rule broken --
never the value -- and skipped; a repeated ``patient_id`` is such a failure.
The command then exits 1, after sending the valid rows (``--dry-run`` sends
nothing).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.decode import describe_validation_error
from schemas.profiles import PatientProfile
from stream.feeds.producer import FeedMessage, run_feed
from stream.settings import get_settings

__all__ = ["COLUMNS", "RowError", "main_profiles", "parse_profiles", "profile_messages"]

COLUMNS = ("patient_id", "age", "sex", "ward", "region", "spo2_scale", "conditions", "updated_at")
_SEX_ALIASES = {"f": "female", "m": "male"}


class HeaderError(ValueError):
    """The CSV header is unusable: fix the column names (see :data:`COLUMNS`)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """Why the row on ``line`` was skipped (value-free)."""

    line: int
    error: str


class _CellError(ValueError):
    pass


def _int_cell(name: str, cell: str, default: int | None) -> int | None:
    if cell == "":
        return default
    try:
        return int(cell)
    except ValueError:
        raise _CellError(f"{name}: not a whole number") from None


def _row_document(row: dict[str | Any, Any], now: datetime) -> dict[str, Any]:
    if None in row:
        raise _CellError("row: more cells than columns")
    cells = {k: (v or "").strip() for k, v in row.items()}
    doc: dict[str, Any] = {"patient_id": cells["patient_id"]}
    age = _int_cell("age", cells.get("age", ""), None)
    if age is not None:
        doc["age"] = age
    sex = cells.get("sex", "").lower()
    doc["sex"] = _SEX_ALIASES.get(sex, sex) or "unknown"
    for name in ("ward", "region"):
        if cells.get(name):
            doc[name] = cells[name]
    doc["spo2_scale"] = _int_cell("spo2_scale", cells.get("spo2_scale", ""), 1)
    doc["conditions"] = [c.strip() for c in cells.get("conditions", "").split(";") if c.strip()]
    updated = cells.get("updated_at", "")
    try:
        doc["updated_at"] = datetime.fromisoformat(updated) if updated else now
    except ValueError:
        raise _CellError("updated_at: not an ISO 8601 date and time") from None
    return doc


def parse_profiles(
    lines: Iterable[str], *, now: datetime
) -> tuple[list[PatientProfile], list[RowError]]:
    """Valid profiles and the errors of the invalid rows (line numbers count the header as 1).

    >>> ok, bad = parse_profiles(["patient_id,age,conditions", "p1,71,copd;t2dm", "p2,old,"],
    ...                          now=datetime(2026, 1, 1, tzinfo=UTC))
    >>> [(p.patient_id, p.age, p.conditions) for p in ok], bad
    ([('p1', 71, ['copd', 't2dm'])], [RowError(line=3, error='age: not a whole number')])
    """
    reader = csv.DictReader(iter(lines))
    header = reader.fieldnames or []
    if "patient_id" not in header:
        raise HeaderError("the header has no patient_id column")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise HeaderError(f"unknown columns: {', '.join(unknown)}; expected {', '.join(COLUMNS)}")
    profiles: list[PatientProfile] = []
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        try:
            profile = PatientProfile.model_validate(_row_document(row, now))
        except _CellError as exc:
            errors.append(RowError(line, str(exc)))
            continue
        except ValidationError as exc:
            errors.append(RowError(line, describe_validation_error(exc)[1]))
            continue
        if profile.patient_id in first_line:
            errors.append(
                RowError(line, f"patient_id: repeats line {first_line[profile.patient_id]}")
            )
            continue
        first_line[profile.patient_id] = line
        profiles.append(profile)
    return profiles, errors


def profile_messages(profiles: Iterable[PatientProfile], at: float) -> Iterator[FeedMessage]:
    """One message per profile, keyed by ``patient_id``."""
    for profile in profiles:
        value = profile.model_dump_json(exclude_none=True).encode()
        yield FeedMessage("profiles", profile.patient_id.encode(), value, at)


def main_profiles(argv: list[str]) -> int:
    """``twinstream profiles load FILE.csv [--dry-run] [--quiet]``."""
    parser = argparse.ArgumentParser(prog="twinstream profiles", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="validate a CSV of profiles and send the valid ones")
    load.add_argument("file", type=Path)
    load.add_argument("--dry-run", action="store_true", help="validate only, send nothing")
    load.add_argument("--quiet", action="store_true", help="no progress display")
    args = parser.parse_args(argv)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        with args.file.open(encoding="utf-8-sig", newline="") as handle:
            profiles, errors = parse_profiles(handle, now=now)
    except (OSError, HeaderError, UnicodeDecodeError) as exc:
        print(f"{args.file.name}: {exc}", file=sys.stderr)
        return 2
    for error in errors:
        print(f"{args.file.name} line {error.line}: {error.error}", file=sys.stderr)
    verdict = f"{len(profiles)} valid, {len(errors)} invalid rows skipped"
    if args.dry_run:
        print(f"{verdict} (dry run: nothing sent)")
    else:
        run = run_feed(
            get_settings(),
            profile_messages(profiles, now.timestamp()),
            description="profiles",
            speed=None,
            quiet=args.quiet,
        )
        print(f"{run.summary()}; {verdict}")
        if run.interrupted:
            return 130
    return 1 if errors else 0
