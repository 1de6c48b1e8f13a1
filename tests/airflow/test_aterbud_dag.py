"""The återbud DAGs end to end: dag.test() against the Ladok and NyA simulators and a SQLite store."""

import datetime as dt

import pytest
from sqlalchemy import select

from tests.airflow.conftest import load_dag

pytestmark = pytest.mark.airflow


@pytest.fixture
def world(dag_store):
    from tests.flows.test_aterbud import World

    w = World(dag_store)
    yield w
    w.close()


def test_sync_both_ways_then_close_the_case_from_the_form(airflow_db, airflow_connections, dag_store, world):
    from brygga.store.models import AterbudCase, AuditLog
    from simulators.ladok.state import ORSAK

    w = world
    airflow_connections(dag_store.url, {"ladok": w.ladok_url, "nya": w.nya_url})
    _, applied_id, applied = w.admit(w.courses[0])
    w.nya_aterbud(applied_id, dt.date(2027, 8, 10))                          # NyA → Ladok: applied
    _, registered_id, registered = w.admit(w.courses[1])
    w.ladok_state.registrera(registered.uid, 1, w.courses[1].start)
    w.nya_aterbud(registered_id, w.courses[1].start + dt.timedelta(days=3))  # NyA → Ladok: a case
    _, staff_id, staff = w.admit(w.courses[2])
    w.ladok_state.aterbud(staff.uid, dt.date(2027, 8, 12), ORSAK + "meddelat.av.studenten", None)  # Ladok → NyA

    dag = load_dag("brygga_aterbud")
    assert dag.max_active_runs == 1 and "återbud" in dag.tags
    dr = dag.test()
    assert dr.state == "success"
    extra = next(t for t in dr.get_task_instances() if t.task_id == "send").xcom_pull(task_ids="send")
    assert (extra["applied"], extra["cases"], extra["enqueued"], extra["registered"], extra["pending"]) == (1, 1, 1, 1, 0)
    assert w.ladok_state.antagning(applied.uid).aterbud.externt_system == "NyA"
    assert [x.origin for x in w.nya_aterbud_of(staff_id)] == ["ladok"]
    with dag_store.transaction() as s:
        (case,) = s.scalars(select(AterbudCase)).all()
        case_id = case.id
        assert (case.cause, case.suggested_action, case.status) == ("registered", "early_avbrott", "open")

    dr = load_dag("brygga_aterbud_cases").test(run_conf={"case_ids": [case_id], "action": "apply",
                                                     "note": "Tidigt avbrott enligt återbudet"})
    assert dr.state == "success"
    assert w.ladok_state.antagning(registered.uid).avbrott.tidigt is True
    with dag_store.transaction() as s:
        case = s.get(AterbudCase, case_id)
        assert (case.status, case.note, case.closed_by) == ("closed", "Tidigt avbrott enligt återbudet", "dag_test")
        actions = s.scalars(select(AuditLog.action).where(AuditLog.actor == "dag_test")).all()
    assert actions == ["aterbud_case.apply", "aterbud_case.close"]


def test_an_unreadable_feed_page_leaves_the_committed_aterbud_reported(airflow_db, airflow_connections, dag_store,
                                                                       world):
    """Återbud entered in Ladok, then a page that cannot be read: ladok_to_nya commits the pages
    before it and stops (an operator's matter), and send still reports what was committed to NyA;
    the run says it failed."""
    import requests

    from simulators.ladok.state import ORSAK
    from tests.flows.test_merits import _break_page

    w = world
    airflow_connections(dag_store.url, {"ladok": w.ladok_url, "nya": w.nya_url})
    staff = []
    for t in w.courses[:3]:
        _, admission_id, antagning = w.admit(t)
        w.ladok_state.aterbud(antagning.uid, dt.date(2027, 8, 12), ORSAK + "meddelat.av.studenten", None)
        staff.append(admission_id)
    with w.ladok_state.lock:  # the återbud's page made full (an archive page), the next one broken
        free = w.ladok_state.feed.page_size - len(w.ladok_state.feed._pages[-1])
    fill = ["<entry><id>pad-%d</id><updated>2027-01-01T00:00:00Z</updated></entry>" % i for i in range(free)]
    assert requests.post(f"{w.ladok_url}/sim/feed/raw", json={"entries": fill}, timeout=10).status_code == 200
    _break_page(w)  # the page after the återbud cannot be parsed

    dr = load_dag("brygga_aterbud").test()
    assert dr.state == "failed"
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["ladok_to_nya"] == "failed" and states["send"] == "success"
    assert states["report"] == "upstream_failed"
    for admission_id in staff:  # reported to NyA though the follower stopped
        assert [x.origin for x in w.nya_aterbud_of(admission_id)] == ["ladok"]
