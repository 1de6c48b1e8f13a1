"""The merit sync DAG end to end: dag.test() against the Ladok and NyA simulators and a real store."""

import pytest
from sqlalchemy import select

from tests.airflow.conftest import load_dag

pytestmark = pytest.mark.airflow


@pytest.fixture
def world():
    from tests.flows.test_merits import World

    w = World(page_size=10)
    yield w
    w.close()


def _extra(dr):
    ti = next(t for t in dr.get_task_instances() if t.task_id == "send")
    return ti.xcom_pull(task_ids="send")


def test_merits_arrive_once_and_a_second_run_sends_nothing(airflow_db, airflow_connections, store, world):
    from brygga.store.models import AuditLog, OutboxMessage

    w = world
    airflow_connections(store.url, {"ladok": w.ladok_url, "nya": w.nya_url})
    w.study(w.people[0], full=True)
    w.study(w.people[1], result="G")
    w.study(w.outsiders[0])
    total = len(w.all_expected())
    assert total == 7

    dag = load_dag("brygga_merit_sync")
    assert dag.max_active_runs == 1 and "meriter" in dag.tags
    dr = dag.test()
    assert dr.state == "success"
    first = _extra(dr)
    assert first["enqueued"] == total and first["accepted"] == total and first["duplicate"] == 0
    assert first["pending"] == 0 and first["lag_seconds"] is None
    w.assert_each_merit_once()

    dr = load_dag("brygga_merit_sync").test()
    assert dr.state == "success"
    second = _extra(dr)
    assert second["enqueued"] == 0 and second["requests"] == 0
    w.assert_each_merit_once()

    # operator replay from page 1: everything is read again, nothing is sent again
    dr = load_dag("brygga_merit_sync").test(run_conf={"replay_from_page": 1})
    assert dr.state == "success"
    third = _extra(dr)
    assert third["events"] >= total and third["enqueued"] == 0 and third["requests"] == 0
    with store.transaction() as s:
        assert len(list(s.scalars(select(OutboxMessage)))) == total
        assert s.scalars(select(AuditLog).where(AuditLog.action == "feed.replay")).one().detail["from_page"] == 1
    w.assert_each_merit_once()

