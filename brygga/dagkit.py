"""The thin layer between Airflow and Brygga's plain-Python core, used by every DAG file.

Only this module (and ``dags/``, ``plugins/``) imports Airflow. Tasks get their peers and the
store from Airflow Connections here, so the same code runs on LocalExecutor and CeleryExecutor.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from brygga import logmask
from brygga.connections import PEERS, STORE_CONN_ID, PeerConfig, from_connection
from brygga.store import Store

log = logmask.get_logger("brygga.dagkit")
logmask.install()

OWNER = "brygga"


def on_failure(context: dict[str, Any]) -> None:
    """Failure callback: one masked, greppable line per failed task instance."""
    ti = context.get("task_instance") or context.get("ti")
    exc = context.get("exception")
    log.error(
        "BRYGGA TASK FAILED dag=%s task=%s run=%s try=%s error=%s",
        getattr(ti, "dag_id", "?"), getattr(ti, "task_id", "?"), getattr(ti, "run_id", "?"),
        getattr(ti, "try_number", "?"), f"{type(exc).__name__}: {exc}" if exc else "unknown",
    )


DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    "on_failure_callback": on_failure,
}


def _connection(conn_id: str):
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def peer(name: str) -> PeerConfig:
    """The peer's settings from its Airflow Connection (``brygga_<name>``)."""
    c = _connection(PEERS[name].conn_id)
    return from_connection(
        name, conn_type=c.conn_type, host=c.host, port=c.port, schema=c.schema,
        login=c.login, password=c.password, extra=c.extra_dejson or {},
    )


def store() -> Store:
    """Brygga's store from the ``brygga_store`` Connection (extra ``sqlalchemy_url``)."""
    url = (_connection(STORE_CONN_ID).extra_dejson or {}).get("sqlalchemy_url")
    if not url:
        raise RuntimeError(f"Connection {STORE_CONN_ID} has no extra.sqlalchemy_url")
    return Store(url)
