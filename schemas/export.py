"""Export the wire contracts as JSON Schema files, and check the exported files are current.

One file per contract in ``schemas/json/<name>.schema.json``, written
deterministically (sorted keys, two-space indent, trailing newline) so that a
stale file shows up as a diff::

    python -m schemas.export           # rewrite schemas/json/
    python -m schemas.export --check   # exit 1 listing stale or missing files
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel

from schemas.acks import AlertAck
from schemas.alert import Alert
from schemas.deadletter import DeadLetter
from schemas.labs import LabEvent
from schemas.outcomes import OutcomeEvent
from schemas.profiles import PatientProfile
from schemas.vitals import VitalsEvent
from schemas.wearables import WearableEvent

__all__ = [
    "CONTRACTS",
    "JSON_SCHEMA_DIR",
    "check_json_schemas",
    "export_json_schemas",
    "main",
    "render_json_schema",
]

JSON_SCHEMA_DIR = Path(__file__).resolve().parent / "json"
_SUFFIX = ".schema.json"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"

CONTRACTS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        "vitals": VitalsEvent,
        "labs": LabEvent,
        "wearables": WearableEvent,
        "profiles": PatientProfile,
        "outcomes": OutcomeEvent,
        "alert_acks": AlertAck,
        "alert": Alert,
        "deadletter": DeadLetter,
    }
)
"""Exported name -> contract model."""


def _without_doctests(node: object) -> object:
    # Class docstrings become descriptions; their doctests are no help to a schema reader.
    if isinstance(node, dict):
        return {
            key: value.split("\n>>>")[0].rstrip()
            if key == "description" and isinstance(value, str)
            else _without_doctests(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_without_doctests(item) for item in node]
    return node


def render_json_schema(model: type[BaseModel]) -> str:
    """The JSON Schema text for ``model`` exactly as it is written to disk.

    >>> render_json_schema(AlertAck).endswith("}\\n")
    True
    """
    schema = _without_doctests({"$schema": _DIALECT, **model.model_json_schema(mode="validation")})
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_json_schemas(out_dir: Path = JSON_SCHEMA_DIR) -> list[Path]:
    """Write one ``<name>.schema.json`` per contract into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in CONTRACTS.items():
        path = out_dir / f"{name}{_SUFFIX}"
        path.write_text(render_json_schema(model), encoding="utf-8")
        written.append(path)
    return written


def check_json_schemas(out_dir: Path = JSON_SCHEMA_DIR) -> list[str]:
    """Names of schema files in ``out_dir`` that are missing, stale or left over; empty if current.

    A left-over file (a ``*.schema.json`` no contract produces) is reported under
    its file name, so a renamed contract cannot leave its old schema behind.
    """
    problems = []
    for name, model in CONTRACTS.items():
        path = out_dir / f"{name}{_SUFFIX}"
        if not path.is_file() or path.read_text(encoding="utf-8") != render_json_schema(model):
            problems.append(name)
    expected = {f"{name}{_SUFFIX}" for name in CONTRACTS}
    if out_dir.is_dir():
        problems.extend(
            sorted(p.name for p in out_dir.glob(f"*{_SUFFIX}") if p.name not in expected)
        )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: export, or with ``--check`` report stale files and return 1."""
    parser = argparse.ArgumentParser(prog="python -m schemas.export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    parser.add_argument("--out-dir", type=Path, default=JSON_SCHEMA_DIR)
    args = parser.parse_args(argv)
    if args.check:
        stale = check_json_schemas(args.out_dir)
        for name in stale:
            print(f"stale or missing: {name} (run: python -m schemas.export)", file=sys.stderr)
        return 1 if stale else 0
    for path in export_json_schemas(args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
