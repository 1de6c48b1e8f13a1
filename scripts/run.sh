#!/usr/bin/env bash
# Run Brygga on its embedded default: simulators + Airflow (UI http://127.0.0.1:8080, login
# operator / brygga), SQLite for Airflow and for Brygga's store, everything under var/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
source scripts/airflow-env.sh

# BRYGGA_SCHEDULE_FORMAT (make run-lis: lis): what the schedule export delivers; lis goes to a local
# RabbitMQ over AMQP 1.0 (started here, stopped with the rest), the others to the simulator or var/
FORMAT="${BRYGGA_SCHEDULE_FORMAT:-timeedit}"
echo "==> migrating Brygga's store and Airflow's metadata DB"
brygga_airflow_setup 4 2 --schedule-format "$FORMAT"
mkdir -p "$BRYGGA_VAR/oneroster"

# Each part runs in a session of its own (setsid), recorded in var/run/; stopping (Ctrl-C, SIGTERM,
# or `make stop` from another shell, also after this script was killed) ends every group:
# SIGTERM, then SIGKILL for what is left after a grace (Airflow's scheduler ignores SIGTERM ~50 s).
mkdir -p "$BRYGGA_VAR/run"
bash scripts/stop.sh --quiet  # what a killed earlier run left behind
stopping=0
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  echo "==> stopping simulators and Airflow"
  bash "$ROOT/scripts/stop.sh"
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

if [ "$FORMAT" = lis ]; then
  echo "==> starting RabbitMQ (AMQP 1.0, queue ladok-lis; management: rabbitmqctl -n brygga@localhost list_queues)"
  BRYGGA_BROKER_MARK="$BRYGGA_VAR/run/rabbitmq.started" timeout 300 bash scripts/rabbitmq.sh
fi

echo "==> starting simulators (Ladok :8701, NyA :8702, folkbokföring :8703, schemaläggning :8704, e-arkiv :8705); log in var/log/simulators.log"
setsid python -m simulators --seed 1 --demo > "$BRYGGA_VAR/log/simulators.log" 2>&1 &
SIM_PID=$!
BOOT="$(awk '/^btime/ {print $2}' /proc/stat)"  # a record from before a reboot is stale
echo "$SIM_PID $BOOT" > "$BRYGGA_VAR/run/simulators.pgid"

echo "==> starting a mail sink for alerts on :8725 (every mail kept in var/mail, a Maildir)"
setsid python -m aiosmtpd -n -l 127.0.0.1:8725 -c aiosmtpd.handlers.Mailbox "$BRYGGA_VAR/mail" \
  > "$BRYGGA_VAR/log/mail.log" 2>&1 &
echo "$! $BOOT" > "$BRYGGA_VAR/run/mail.pgid"

# The demo round's operator steps, once Airflow has parsed the DAGs: a dry run of the offer
# export (the plan on Utbud till NyA) and a reconciliation (Avstämning); the admission import,
# återbud and the rest run on their schedules against the demo round (simulators --demo).
setsid bash -c '
  for _ in $(seq 90); do
    airflow dags trigger brygga_offer_export --conf "{\"dry_run\": true}" >/dev/null 2>&1 && break
    sleep 2
  done
  # an alert subscription of the demo: the quarantine (the wrong personnummer) mails var/mail
  [ -n "$(brygga alerts list | grep -o "\"kind\": \"quarantine\"")" ] || \
    brygga alerts subscribe --kind quarantine --threshold 0 --to drift@example.se --actor demo >/dev/null
  sleep 150  # after the first admission import and återbud runs (the demo people act once placed)
  airflow dags trigger brygga_reconciliation >/dev/null 2>&1
  # Statistik: two weeks of history (the demo history set: two thirds marked handled, then spread)
  python -m simulators.demo --history
  echo "demo: a dry run of the offer export, a reconciliation and the statistics history"
' >> "$BRYGGA_VAR/log/demo.log" 2>&1 &
echo "$! $BOOT" > "$BRYGGA_VAR/run/demo.pgid"

echo "==> starting Airflow: http://127.0.0.1:8080  (login: operator / ${BRYGGA_OPERATOR_PASSWORD:-brygga}); stop with Ctrl-C or make stop"
setsid airflow standalone &
AIRFLOW_PID=$!
echo "$AIRFLOW_PID $BOOT" > "$BRYGGA_VAR/run/airflow.pgid"
wait $AIRFLOW_PID
