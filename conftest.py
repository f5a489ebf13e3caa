"""Collection rules for the whole tree; the test fixtures are in ``tests/conftest.py``."""

from __future__ import annotations

from pathlib import Path

from twin import _native

_ROOT = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """Not the doctests of compiled modules (``twin/_native.py``): pytest can only
    collect a module's doctests from the module it imports, and those run
    interpreted in ``tests/unit/test_native.py``."""
    if not (_native.ACTIVE and collection_path.is_relative_to(_ROOT)):
        return None
    return collection_path.relative_to(_ROOT).as_posix() in _native.COMPILED or None
