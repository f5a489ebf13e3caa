"""The twin core compiled to C with mypyc, used when it is built and current.

``scripts/build_native.py`` (run by ``scripts/bootstrap.sh``) compiles the
modules of :data:`COMPILED` from their type annotations into ``build/native``
(outside the package, ignored by git), and writes there a manifest with the
SHA-256 of every source file of ``twin/`` and the interpreter it was built for.
Importing :mod:`twin` puts that folder first on the package's ``__path__``
only if the manifest matches the sources as they are now: a core edited since
the build runs interpreted until it is rebuilt, never stale. ``TWIN_PURE_PYTHON=1``
runs it interpreted anyway.

The compiled modules are the same code: the tests run against them, and
``tests/unit/test_native.py`` replays one feed through both and compares every
encoded twin and alert byte for byte. On the latency feed of ``bench/`` they take
a third less CPU per event (``bench.live_cost``). Not compiled: the packages'
``__init__`` and this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
from pathlib import Path

__all__ = ["ACTIVE", "BUILD_DIR", "COMPILED", "REASON", "extend_path", "manifest_for"]

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = Path(os.environ.get("TWIN_NATIVE_DIR") or ROOT / "build" / "native")
GROUP = "twin_native"
"""mypyc's shared library of the compiled modules (``twin_native__mypyc``)."""

COMPILED = (
    "twin/alerting.py",
    "twin/apply.py",
    "twin/assess.py",
    "twin/codec.py",
    "twin/learned.py",
    "twin/scores.py",
    "twin/state.py",
    "twin/windows.py",
    "twin/learning/baseline.py",
    "twin/learning/codec.py",
    "twin/learning/drift.py",
    "twin/learning/forecast.py",
    "twin/learning/vitals.py",
)


def manifest_for(root: Path = ROOT) -> dict[str, object]:
    """What a build of ``root`` is valid for: interpreter, modules and every
    source file of ``twin/`` (compiled code reads the others' classes and
    constants as they were when it was built)."""
    sources = sorted(p for p in (root / "twin").rglob("*.py") if p.name != "_native.py")
    return {
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
        "compiled": list(COMPILED),
        "sources": {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sources
        },
    }


def _unusable() -> str | None:
    """Why the compiled core cannot be used; None if it can."""
    if os.environ.get("TWIN_PURE_PYTHON") == "1":
        return "TWIN_PURE_PYTHON=1"
    try:
        built = json.loads((BUILD_DIR / "manifest.json").read_text())
    except FileNotFoundError:
        return f"not built (python scripts/build_native.py writes {BUILD_DIR})"
    except (OSError, ValueError) as exc:
        return f"unreadable build manifest ({type(exc).__name__})"
    if built != manifest_for():
        return "built from other sources or for another interpreter: rebuild it"
    return None


REASON = _unusable()
ACTIVE = REASON is None
"""Whether this process runs the compiled core."""

if ACTIVE and str(BUILD_DIR) not in sys.path:
    sys.path.append(str(BUILD_DIR))  # for the modules' shared library, a top-level module


def extend_path(path: list[str], package: str) -> list[str]:
    """``package``'s ``__path__``, with its compiled modules first when they are used."""
    if not ACTIVE:
        return path
    return [str(BUILD_DIR.joinpath(*package.split("."))), *path]
