#!/usr/bin/env bash
# Run the whole test suite: ruff, mypy, then pytest (with arguments: only pytest, with them). PostgreSQL store tests run when BRYGGA_TEST_PG_URL is set
# (.ci/run sets it and BRYGGA_REQUIRE_PG=1, which turns a missing database into a failure).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
if [ "$#" -eq 0 ]; then  # the whole run: lint and types first (seconds), then the tests
  echo "==> shell syntax (bash -n scripts/*.sh .ci/run)"
  for f in scripts/*.sh .ci/run; do bash -n "$f"; done
  echo "==> ruff"
  .venv/bin/ruff check .
  echo "==> import contracts (lint-imports: entry points -> views -> flows -> store -> adapters -> mappings -> records)"
  .venv/bin/lint-imports --no-cache
  echo "==> mypy (strict: brygga/flows, brygga/store, adapters, mappings)"
  .venv/bin/mypy
fi
exec .venv/bin/python -m pytest "$@"
