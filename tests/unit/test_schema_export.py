"""The JSON Schema files in schemas/json/ match the models they are exported from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.export import (
    CONTRACTS,
    JSON_SCHEMA_DIR,
    check_json_schemas,
    export_json_schemas,
    main,
)

pytestmark = pytest.mark.unit


def test_committed_schemas_are_current() -> None:
    stale = check_json_schemas(JSON_SCHEMA_DIR)
    assert stale == [], f"stale JSON Schema files {stale}: run `python -m schemas.export`"


def test_export_writes_one_file_per_contract(tmp_path: Path) -> None:
    paths = export_json_schemas(tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{name}.schema.json" for name in CONTRACTS)
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        schema = json.loads(text)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["additionalProperties"] is False
        assert ">>>" not in text  # doctests stay in the code
    assert check_json_schemas(tmp_path) == []


def test_export_is_deterministic(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in export_json_schemas(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in export_json_schemas(tmp_path / "b")}
    assert first == second


def test_changed_missing_and_left_over_files_are_detected(tmp_path: Path) -> None:
    export_json_schemas(tmp_path)
    labs = tmp_path / "labs.schema.json"
    labs.write_text(labs.read_text(encoding="utf-8").replace("potassium", "kalium"), "utf-8")
    (tmp_path / "vitals.schema.json").unlink()
    (tmp_path / "old_contract.schema.json").write_text("{}\n", encoding="utf-8")
    assert check_json_schemas(tmp_path) == ["vitals", "labs", "old_contract.schema.json"]


def test_missing_directory_reports_every_contract(tmp_path: Path) -> None:
    assert check_json_schemas(tmp_path / "nowhere") == list(CONTRACTS)


def test_command_line_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--out-dir", str(tmp_path)]) == 1
    assert "stale or missing: vitals" in capsys.readouterr().err
    assert main(["--out-dir", str(tmp_path)]) == 0
    assert main(["--check", "--out-dir", str(tmp_path)]) == 0
