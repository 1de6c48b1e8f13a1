#!/usr/bin/env bash
# A local PostgreSQL for the tests (.ci/run) and the scale-out run mode (make run-celery): installed
# with apt-get when missing, its cluster created and started, the role brygga (password brygga)
# and the databases named as arguments created (owned by brygga). Needs root (apt-get, su postgres).
#   bash scripts/postgres.sh brygga_test [more databases ...]
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "==> installing PostgreSQL"
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
PGVER="$(ls /usr/lib/postgresql | sort -n | tail -1)"
if ! pg_lsclusters -h | grep -q "^$PGVER main"; then
  pg_createcluster "$PGVER" main >/dev/null
fi
pg_ctlcluster "$PGVER" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q" && break
  sleep 1
done
su postgres -c "psql -qtc \"SELECT 1 FROM pg_roles WHERE rolname='brygga'\" | grep -q 1 || psql -qc \"CREATE ROLE brygga LOGIN SUPERUSER PASSWORD 'brygga'\""
for db in "$@"; do
  su postgres -c "psql -qtc \"SELECT 1 FROM pg_database WHERE datname='$db'\" | grep -q 1 || createdb -O brygga $db"
done
