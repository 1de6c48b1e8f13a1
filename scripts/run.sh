#!/usr/bin/env bash
# Run Brygga on its embedded default: simulators + Airflow (UI http://127.0.0.1:8080, login
# operator / brygga), SQLite for Airflow and for Brygga's store, everything under var/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
source scripts/airflow-env.sh

echo "==> migrating Brygga's store and Airflow's metadata DB"
brygga db upgrade
airflow db migrate > "$BRYGGA_VAR/log/airflow-migrate.log" 2>&1
brygga connections-json > "$BRYGGA_VAR/connections.json"
airflow connections import --overwrite "$BRYGGA_VAR/connections.json" > /dev/null
airflow pools set ladok_api 4 "Concurrent calls to Ladok" > /dev/null
airflow pools set nya_api 2 "Concurrent calls to NyA" > /dev/null

echo "==> starting simulators (Ladok :8701, NyA :8702, folkbokföring :8703); log in var/log/simulators.log"
brygga simulators --seed 1 > "$BRYGGA_VAR/log/simulators.log" 2>&1 &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT INT TERM

echo "==> starting Airflow: http://127.0.0.1:8080  (login: operator / ${BRYGGA_OPERATOR_PASSWORD:-brygga})"
airflow standalone
