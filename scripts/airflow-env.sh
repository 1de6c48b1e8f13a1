# Sourced by run/test scripts: Airflow environment for this checkout. Paths cannot live in
# airflow.cfg (it is not templated), and secrets are generated here once, into var/, never committed.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BRYGGA_VAR="${BRYGGA_VAR:-$ROOT/var}"
mkdir -p "$BRYGGA_VAR/airflow" "$BRYGGA_VAR/log"
export PATH="$ROOT/.venv/bin:$PATH"
export AIRFLOW_CONFIG="$ROOT/airflow.cfg"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$BRYGGA_VAR/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://127.0.0.1:8080}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
SECRETS="$BRYGGA_VAR/secrets.env"
if [ ! -f "$SECRETS" ]; then
  (umask 077; "$ROOT/.venv/bin/python" - > "$SECRETS" <<'PY'
import secrets, base64
print(f"export AIRFLOW__API_AUTH__JWT_SECRET={secrets.token_urlsafe(64)}")  # >= 64 bytes for HS512
print(f"export AIRFLOW__API__SECRET_KEY={secrets.token_urlsafe(32)}")
print(f"export AIRFLOW__CORE__FERNET_KEY={base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}")
PY
  )
fi
# shellcheck disable=SC1090
source "$SECRETS"
# The embedded default's known logins (README): operator (admin) and viewer (read-only); change
# them in var/airflow/passwords.json. A file from before the viewer existed gets the viewer added.
(umask 077; "$ROOT/.venv/bin/python" - "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" <<'PY'
import json, os, sys
path = sys.argv[1]
users = json.load(open(path)) if os.path.exists(path) else {}
wanted = {"operator": os.environ.get("BRYGGA_OPERATOR_PASSWORD", "brygga"),
          "viewer": os.environ.get("BRYGGA_VIEWER_PASSWORD", "brygga-viewer")}
if any(u not in users for u in wanted):
    json.dump({**wanted, **users}, open(path, "w"))
PY
)

# Migrate both databases, import the Connections (brygga connections-json with the given flags) and
# set the pools (ladok_api and nya_api sizes as arguments; schema_api 2, arkiv_api 1): make run and
# make run-celery share it.
brygga_airflow_setup() {
  local ladok="$1" nya="$2"; shift 2
  brygga db upgrade
  airflow db migrate > "$BRYGGA_VAR/log/airflow-migrate.log" 2>&1
  brygga connections-json "$@" > "$BRYGGA_VAR/connections.json"
  airflow connections import --overwrite "$BRYGGA_VAR/connections.json" > /dev/null
  airflow pools set ladok_api "$ladok" "Concurrent calls to Ladok" > /dev/null
  airflow pools set nya_api "$nya" "Concurrent calls to NyA" > /dev/null
  airflow pools set schema_api 2 "Concurrent calls to the scheduling system" > /dev/null
  airflow pools set arkiv_api 1 "Concurrent deliveries to the archive" > /dev/null
}
