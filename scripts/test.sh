#!/usr/bin/env bash
# Run the whole test suite. PostgreSQL store tests run when BRYGGA_TEST_PG_URL is set
# (.ci/run sets it and BRYGGA_REQUIRE_PG=1, which turns a missing database into a failure).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec .venv/bin/python -m pytest "$@"
