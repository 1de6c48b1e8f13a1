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
# The embedded default's known operator login (README); change it in var/airflow/passwords.json.
if [ ! -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ]; then
  (umask 077; echo "{\"operator\": \"${BRYGGA_OPERATOR_PASSWORD:-brygga}\"}" > "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
fi
