#!/usr/bin/env bash
# Create .venv and install Brygga with its frozen dependencies (runtime and development: the tests,
# linters and benchmarks), and .venv-eark with eark-validator (the archive simulator's package
# validator; it pins an older lxml, so it lives apart). Safe to run again: it only reinstalls when
# requirements*.txt, constraints.txt or pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
STAMP=.venv/.brygga-installed
WANT="$(cat requirements.txt requirements-dev.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "==> installing dependencies (first time takes ~2 minutes; log in .venv/install.log)"
  if ! { .venv/bin/python -m pip install -q -r requirements-dev.txt -c constraints.txt \
         && .venv/bin/python -m pip install -q --no-deps -e .; } > .venv/install.log 2>&1; then
    cat .venv/install.log
    echo "==> installing dependencies failed (above)" >&2
    exit 1
  fi
  echo "$WANT" > "$STAMP"
fi

EARK_STAMP=.venv-eark/.brygga-installed
EARK_WANT="$(sha256sum requirements-eark.txt | cut -d' ' -f1)"
if [ ! -f "$EARK_STAMP" ] || [ "$(cat "$EARK_STAMP")" != "$EARK_WANT" ]; then
  echo "==> installing eark-validator in .venv-eark (log in .venv-eark/install.log)"
  [ -x .venv-eark/bin/python ] || "$PY" -m venv .venv-eark
  if ! .venv-eark/bin/python -m pip install -q -r requirements-eark.txt > .venv-eark/install.log 2>&1; then
    cat .venv-eark/install.log
    echo "==> installing eark-validator failed (above)" >&2
    exit 1
  fi
  echo "$EARK_WANT" > "$EARK_STAMP"
fi
