#!/usr/bin/env bash
# Set up everything twinstream needs on a fresh Debian/Ubuntu machine with
# Python 3.11+, Java 17 and Maven: a virtualenv with the package and its test
# tools, redis-server (apt), and the pinned Kafka broker jars (Maven Central).
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.twinstream-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Python packages"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[test,replay]"
  echo "$want" > "$stamp"
fi
# mypyc needs a C compiler and the interpreter's headers: from apt when missing
# (Debian's python3 keeps them in python3-dev; a pyenv or python.org build has them).
py_include=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if { ! command -v cc >/dev/null 2>&1 || [ ! -f "$py_include/Python.h" ]; } \
    && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: installing gcc and python3-dev (to compile the twin core)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc python3-dev >/dev/null 2>&1 \
    || echo "bootstrap: gcc or python3-dev not installed"
fi
# The twin core compiled with mypyc into build/native (twin/_native.py): under a
# minute, only when twin/ changed since the last build. Where it cannot be built
# (no C compiler), the core runs interpreted: the same results, a third more CPU.
.venv/bin/python scripts/build_native.py || echo "bootstrap: the twin core runs interpreted"
# Debian's Chromium drives the dashboard's browser test (Playwright cannot
# download its own browser here): installed for the tests only
# (TWIN_BOOTSTRAP_BROWSER=1, set by `make test`); skipped where apt is absent.
if [ "${TWIN_BOOTSTRAP_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: installing chromium (browser test of the dashboard)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null 2>&1 \
    || echo "bootstrap: chromium not installed; the browser test will skip"
fi
# redis-server from apt and the Kafka jars from Maven Central (cached outside the repo).
.venv/bin/python - <<'PYEOF'
from stream.services import ensure_kafka_jars, ensure_redis_installed
print("bootstrap: redis-server at", ensure_redis_installed())
print("bootstrap: kafka jars in", ensure_kafka_jars())
PYEOF
