import json
import os

import pytest


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated Airflow metadata DB (SQLite in the session's throw-away AIRFLOW_HOME)."""
    from airflow.utils import db

    db.resetdb()
    yield


@pytest.fixture
def airflow_connections(monkeypatch, tmp_path):
    """Point the Brygga Connections at given URLs / a store, through AIRFLOW_CONN_* variables."""

    def set_connections(store_url: str, peers: dict[str, str], extras: dict[str, dict] | None = None):
        from brygga.config import SIMULATOR_EXTRA, SIMULATOR_SECRETS
        from brygga.connections import PEERS, STORE_CONN_ID

        monkeypatch.setenv(f"AIRFLOW_CONN_{STORE_CONN_ID.upper()}",
                           json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": store_url}}))
        for name, url in peers.items():
            scheme, rest = url.split("://", 1)
            host, port = rest.rsplit(":", 1)
            monkeypatch.setenv(f"AIRFLOW_CONN_{PEERS[name].conn_id.upper()}", json.dumps(
                {"conn_type": "https" if scheme == "https" else "http", "host": host, "port": int(port),
                 "password": SIMULATOR_SECRETS.get(name),  # the simulators' own (the scheduler's API key)
                 "extra": {**SIMULATOR_EXTRA.get(name, {}), **(extras or {}).get(name, {})}}))

    return set_connections


@pytest.fixture
def dag_store(empty_store_factory):
    """DAG runs use the embedded store (SQLite); the flow tests cover PostgreSQL."""
    from brygga.store import migrate

    s = empty_store_factory("sqlite")
    migrate.upgrade(s)
    return s


def load_dag(dag_id: str):
    """A DAG from the repository's dags/ folder, parsed the way the dag-processor does."""
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"), safe_mode=False).get_dag(dag_id)
