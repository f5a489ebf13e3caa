"""The compiled twin core (mypyc, ``twin/_native.py``) against the interpreted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import twin.apply
import twin.learning.forecast
from bench.core_cost import DEFAULT_DATA, digest
from twin import _native

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# PhysioNet stays when ../shared/data is there (most alerts, longest twins), and
# simulated patients with wearables either way.
_MIX = (DEFAULT_DATA, 40, 300, 0.5)


def _compiled_or_skip() -> None:
    if _native.ACTIVE:
        return
    if os.environ.get("TWIN_REQUIRE_NATIVE") == "1":
        pytest.fail(f"TWIN_REQUIRE_NATIVE=1 but the compiled core is not used: {_native.REASON}")
    pytest.skip(f"the compiled twin core is not used here: {_native.REASON}")


def test_compiled_modules_are_the_ones_imported() -> None:
    _compiled_or_skip()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for module in (twin.apply, twin.learning.forecast):
        assert module.__file__ is not None and module.__file__.endswith(suffix)
        assert Path(module.__file__).is_relative_to(_native.BUILD_DIR)


def test_compiled_and_interpreted_cores_give_the_same_bytes() -> None:
    """Every alert, score and encoded twin of one replay, compiled (here) and
    interpreted (a child process with TWIN_PURE_PYTHON=1)."""
    _compiled_or_skip()
    code = (
        "from pathlib import Path; from bench.core_cost import digest; "
        "from twin import _native; assert not _native.ACTIVE, _native.REASON; "
        f"print(digest(Path({str(_MIX[0])!r}), *{_MIX[1:]!r}))"
    )
    child = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=os.environ | {"TWIN_PURE_PYTHON": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert digest(*_MIX) == child.stdout.strip()


def test_a_changed_source_falls_back_to_the_interpreter(tmp_path: Path) -> None:
    """A build whose manifest no longer matches the sources is not used."""
    build = tmp_path / "native"
    build.mkdir()
    manifest = _native.manifest_for()
    sources = dict(manifest["sources"])  # type: ignore[call-overload]
    sources["twin/apply.py"] = "0" * 64
    (build / "manifest.json").write_text(json.dumps(manifest | {"sources": sources}))
    code = "from twin import _native; import twin.apply; print(_native.ACTIVE, twin.apply.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "TWIN_PURE_PYTHON"}
        | {"TWIN_NATIVE_DIR": str(build)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert out == ["False", str(ROOT / "twin" / "apply.py")]


def test_doctests_of_the_compiled_modules_pass_interpreted() -> None:
    """This session skips collecting them (``conftest.py``): a child pytest runs them."""
    _compiled_or_skip()
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *_native.COMPILED],
        cwd=ROOT,
        env=os.environ | {"TWIN_PURE_PYTHON": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = child.stdout.strip().splitlines()[-1]
    assert child.returncode == 0, child.stdout[-3000:]
    assert int(summary.split()[0]) >= len(_native.COMPILED), summary
