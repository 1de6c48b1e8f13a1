#!/usr/bin/env bash
# Run Brygga scaled out on Airflow's CeleryExecutor: PostgreSQL for Airflow's metadata DB and for
# Brygga's store, Redis as the Celery broker, and api-server, scheduler, dag-processor, triggerer
# and two Celery workers as separate processes (plus the simulators). Ctrl-C or `make stop` stops
# everything. Needs root for the first run (apt-get for PostgreSQL and redis-server).
#   BRYGGA_WORKERS=2 BRYGGA_WORKER_CONCURRENCY=4 bash scripts/run-celery.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
export BRYGGA_VAR="${BRYGGA_VAR:-$ROOT/var/celery}"
WORKERS="${BRYGGA_WORKERS:-2}"
REDIS_PORT="${BRYGGA_REDIS_PORT:-6390}"
AIRFLOW_DB="${BRYGGA_CELERY_AIRFLOW_DB:-brygga_airflow}"
STORE_DB="${BRYGGA_CELERY_STORE_DB:-brygga_store}"

bash scripts/postgres.sh "$AIRFLOW_DB" "$STORE_DB"
if ! command -v redis-server >/dev/null; then
  echo "==> installing redis-server"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg://brygga:brygga@127.0.0.1:5432/$AIRFLOW_DB"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC="postgresql+psycopg_async://brygga:brygga@127.0.0.1:5432/$AIRFLOW_DB"
export AIRFLOW__CELERY__BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
export AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql+psycopg://brygga:brygga@127.0.0.1:5432/$AIRFLOW_DB"
export AIRFLOW__CELERY__WORKER_CONCURRENCY="${BRYGGA_WORKER_CONCURRENCY:-4}"
export AIRFLOW__CORE__HOSTNAME_CALLABLE=brygga.airflow_hosts.hostname
export AIRFLOW__CORE__PARALLELISM=16
export BRYGGA_STORE_URL="postgresql+psycopg://brygga:brygga@127.0.0.1:5432/$STORE_DB"
source scripts/airflow-env.sh
# BRYGGA_DAGS_PAUSED=1: DAGs start paused (the scale-out check and benchmark unpause what they run)
[ -n "${BRYGGA_DAGS_PAUSED:-}" ] && export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True

echo "==> migrating Brygga's store and Airflow's metadata DB (PostgreSQL)"
brygga_airflow_setup 8 4 --store-url "$BRYGGA_STORE_URL"

mkdir -p "$BRYGGA_VAR/run"
bash scripts/stop.sh --quiet
stopping=0
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  echo "==> stopping"
  bash "$ROOT/scripts/stop.sh"
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
BOOT="$(awk '/^btime/ {print $2}' /proc/stat)"
start() {  # start <part> <command...>: a session of its own, recorded for stop.sh
  local part="$1"; shift
  setsid "$@" >> "$BRYGGA_VAR/log/$part.log" 2>&1 &
  echo "$! $BOOT" > "$BRYGGA_VAR/run/$part.pgid"
}

echo "==> redis-server :$REDIS_PORT, simulators, api-server :8080, scheduler, dag-processor, triggerer, $WORKERS Celery workers; logs in $BRYGGA_VAR/log"
start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
start simulators python -m simulators --seed "${BRYGGA_SEED:-1}" ${BRYGGA_SIMULATOR_ARGS:-}
start api-server airflow api-server
start scheduler airflow scheduler
start dag-processor airflow dag-processor
start triggerer airflow triggerer
for i in $(seq 1 "$WORKERS"); do
  start "worker$i" env BRYGGA_WORKER_NAME="worker$i" airflow celery worker --celery-hostname "worker$i@%h"
done
echo "==> http://127.0.0.1:8080 (login operator / ${BRYGGA_OPERATOR_PASSWORD:-brygga}); stop with Ctrl-C or make stop"
# A supervisor's loop: a lost worker (killed, crashed) is restarted, as many as
# BRYGGA_WORKER_RESTARTS (5) times a run, while the rest keeps running; after that it is reported
# and left down. Its tasks are failed by the scheduler after [scheduler]
# task_instance_heartbeat_timeout (60 s) and retried on a live worker. Any other part ending stops it all.
declare -A restarts
while true; do
  for f in "$BRYGGA_VAR"/run/*.pgid; do
    [ -f "$f" ] || continue
    part="$(basename "$f" .pgid)"
    kill -0 "$(cut -d' ' -f1 "$f")" 2>/dev/null && continue
    if [[ "$part" == worker* ]]; then
      n="${restarts[$part]:-0}"
      bash "$ROOT/scripts/stop.sh" --quiet --part "$part"  # what is left of its session (pool processes)
      if [ "$n" -lt "${BRYGGA_WORKER_RESTARTS:-5}" ]; then
        restarts[$part]=$((n + 1))
        echo "==> $part ended; restarting it ($((n + 1)) of ${BRYGGA_WORKER_RESTARTS:-5}); see $BRYGGA_VAR/log/$part.log" >&2
        start "$part" env BRYGGA_WORKER_NAME="$part" airflow celery worker --celery-hostname "$part@%h"
      else
        echo "==> $part ended again; left down (restarted ${n} times), the rest keeps running" >&2
      fi
      continue
    fi
    echo "==> $part ended; see $BRYGGA_VAR/log/$part.log" >&2
    exit 1
  done
  sleep 2
done
