"""The retention DAG: dag.test() with the form's dry run, then a real purge with one kind's days overridden."""

import datetime as dt

import pytest
from sqlalchemy import select

from tests.airflow.conftest import load_dag

pytestmark = pytest.mark.airflow


def test_dry_run_then_purge_from_the_form(airflow_db, airflow_connections, dag_store):
    from brygga.store.models import AuditLog, OutboxMessage

    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    with dag_store.transaction() as s:
        s.add(OutboxMessage(destination="nya", kind="merit", idempotency_key="m-1", payload={"pnr": "198503121002"},
                            status="sent", sent_at=old, created_at=old))
    airflow_connections(dag_store.url, {})
    dag = load_dag("brygga_retention")

    dr = dag.test(run_conf={"dry_run": True, "outbox": 7})
    assert dr.state == "success"
    counted = next(t for t in dr.get_task_instances() if t.task_id == "purge").xcom_pull(task_ids="purge")
    assert counted["dry_run"] is True and counted["outbox"] == 1

    dr = dag.test(run_conf={"dry_run": False, "outbox": 7})
    assert dr.state == "success"
    with dag_store.transaction() as s:
        assert s.scalars(select(OutboxMessage.payload)).one() == {"purged": True}
        assert s.scalars(select(AuditLog.action)).all() == ["retention.purge"]
