"""Compile the twin core with mypyc into ``build/native`` (see ``twin/_native.py``).

Run by ``scripts/bootstrap.sh``; quick when the build already matches the
sources. Needs mypy (a test dependency) and a C compiler with the Python
headers. Without them, or with ``--pure``, the core runs interpreted.

    .venv/bin/python scripts/build_native.py [--force] [--pure]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# mypy settings for the compile alone: the project's strict settings are for
# `make lint`; here the other packages' types are not followed (they stay
# Python objects in the compiled code), which keeps the build under a minute.
_MYPY_INI = """\
[mypy]
python_version = 3.11
follow_imports = skip
ignore_missing_imports = True
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if current")
    parser.add_argument("--pure", action="store_true", help="remove the build: run interpreted")
    args = parser.parse_args()
    os.environ.pop("TWIN_PURE_PYTHON", None)  # the manifest check below, not the switch
    from twin import _native

    out = _native.BUILD_DIR
    if args.pure:
        shutil.rmtree(out, ignore_errors=True)
        print(f"build_native: removed {out}; the twin core runs interpreted")
        return 0
    if _native.ACTIVE and not args.force:
        print(f"build_native: {out} is current")
        return 0
    try:
        from mypyc.build import mypycify
        from setuptools import Distribution
    except ImportError as exc:
        print(f"build_native: {exc.name} is missing; the twin core runs interpreted")
        return 1
    began = time.monotonic()
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="twin-native-") as tmp:
        ini = Path(tmp) / "mypy.ini"
        ini.write_text(_MYPY_INI)
        cwd = Path.cwd()
        os.chdir(ROOT)  # mypyc names modules by their paths from here
        try:
            extensions = mypycify(
                ["--config-file", str(ini), *_native.COMPILED],
                opt_level="3",
                group_name=_native.GROUP,
                target_dir=str(Path(tmp) / "c"),
            )
            dist = Distribution({"name": "twin-native", "ext_modules": extensions})
            build = dist.get_command_obj("build_ext")
            build.build_lib = str(out)  # type: ignore[attr-defined]
            build.build_temp = str(Path(tmp) / "o")  # type: ignore[attr-defined]
            dist.run_command("build_ext")
        except (SystemExit, Exception) as exc:  # mypy errors exit; a compiler error raises
            print(f"build_native: compiling failed ({exc}); the twin core runs interpreted")
            shutil.rmtree(out, ignore_errors=True)
            return 1
        finally:
            os.chdir(cwd)
    (out / "manifest.json").write_text(json.dumps(_native.manifest_for(), indent=1) + "\n")
    print(
        f"build_native: {len(_native.COMPILED)} modules compiled into {out} "
        f"in {time.monotonic() - began:.0f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
