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
    ti = next(t for t in dr.get_task_instances() if t.task_id == "report")
    return ti.xcom_pull(task_ids="report")


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
    # sync and send run side by side (sending never waits on reading more): what one run's sync
    # queues goes out with that run's send if it ran after, else with the next run's
    assert not dag.get_task("send").upstream_task_ids
    dr = dag.test()
    assert dr.state == "success"
    first = _extra(dr)
    assert first["enqueued"] == total and first["duplicate"] == 0

    dr = load_dag("brygga_merit_sync").test()
    assert dr.state == "success"
    second = _extra(dr)
    assert second["enqueued"] == 0 and first["accepted"] + second["accepted"] == total
    assert second["pending"] == 0 and second["lag_seconds"] is None
    w.assert_each_merit_once()
    dr = load_dag("brygga_merit_sync").test()
    assert _extra(dr)["requests"] == 0

    # operator replay from page 1: everything is read again, nothing is sent again
    dr = load_dag("brygga_merit_sync").test(run_conf={"replay_from_page": 1})
    assert dr.state == "success"
    third = _extra(dr)
    assert third["events"] >= total and third["enqueued"] == 0 and third["requests"] == 0
    with store.transaction() as s:
        assert len(list(s.scalars(select(OutboxMessage)))) == total
        assert s.scalars(select(AuditLog).where(AuditLog.action == "feed.replay")).one().detail["from_page"] == 1
    w.assert_each_merit_once()



def test_the_snapshot_dag_sends_an_applicants_earlier_merits(airflow_db, airflow_connections, store, world):
    """brygga_merit_snapshot reads a new applicant's earlier merits; the merit sync's send sends them."""
    w = world
    airflow_connections(store.url, {"ladok": w.ladok_url, "nya": w.nya_url})
    person = w.outsiders[1]
    s = w.study(person, full=True)
    w.apply(person)
    dr = load_dag("brygga_merit_snapshot").test()
    assert dr.state == "success"
    ti = next(t for t in dr.get_task_instances() if t.task_id == "snapshot")
    taken = ti.xcom_pull(task_ids="snapshot")
    expected = w.merit_refs(s.uid)
    assert taken["students"] == 1 and taken["merits"] == len(expected) and taken["waiting"] == 0
    load_dag("brygga_merit_sync").test()
    assert {m.merit_id: m.type for m in w.nya_merits(person.personnummer)} == expected
