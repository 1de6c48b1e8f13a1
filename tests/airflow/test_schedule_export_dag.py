"""The schedule export DAG end to end: dag.test() against the Ladok and scheduling-system simulators."""

import pytest
from sqlalchemy import func, select

from simulators._server import serve_in_thread
from tests.airflow.conftest import load_dag

pytestmark = pytest.mark.airflow


@pytest.fixture
def peers():
    from simulators.ladok.app import create_app as ladok_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState
    from simulators.schema.app import create_app as schema_app
    from simulators.schema.state import ScheduleState

    ladok = LadokState()
    seed_catalogue(ladok, 22, 6, 1, "HT2027")
    ladok.seed_deltagande(ladok.seed_students(40, 22), [t for t in ladok.tillfallen.values() if not t.installt], 8)
    schema = ScheduleState()
    with serve_in_thread(ladok_app(ladok)) as lad, serve_in_thread(schema_app(schema)) as sch:
        yield {"urls": {"ladok": lad.url, "schema": sch.url}, "ladok": ladok, "schema": schema}


def test_dry_run_full_then_delta_after_an_aterbud(airflow_db, airflow_connections, dag_store, peers):
    from brygga.store.models import OutboxMessage

    airflow_connections(dag_store.url, peers["urls"],
                        {"schema": {"format": "timeedit", "terms": ["HT2027"], "beside_wait": 0}})
    dr = load_dag("brygga_schedule_export").test(run_conf={"mode": "delta", "dry_run": True})
    assert dr.state == "success"
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["plan"] == "success" and states["send_timeedit"] == states["send_beside_timeedit"] == "skipped"
    assert peers["schema"].objects == {}

    dr = load_dag("brygga_schedule_export").test(run_conf={"mode": "full"})
    assert dr.state == "success"
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["send_timeedit"] == states["send_beside_timeedit"] == "success"
    assert states["send_lis"] == states["send_beside_lis"] == "skipped"
    instances = {ext for (t, ext) in peers["schema"].objects if t == "utbildningstillfalle"}
    assert instances == {t.uid for t in peers["ladok"].tillfallen.values() if t.startperiod == "HT2027"}
    with dag_store.transaction() as s:
        sent = s.scalar(select(func.count()).select_from(OutboxMessage))

    a = next(a for a in peers["ladok"].antagningar.values() if a.tillstand == "ej_paborjad" and not a.tillfalle.installt)
    peers["ladok"].aterbud(a.uid, a.tillfalle.start, "studiedeltagande.domain.aterbudsorsak.uteblev", None)
    dr = load_dag("brygga_schedule_export").test(run_conf={"mode": "delta"})
    assert dr.state == "success"
    assert ("medlemskap", f"{a.tillfalle.uid}:{a.student_uid}") not in peers["schema"].objects
    with dag_store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == sent + 2  # membership + counts


def test_no_term_anywhere_fails_clearly_and_what_is_committed_is_still_sent(airflow_db, airflow_connections,
                                                                             dag_store, peers):
    from adapters.ladok import LadokAdapter
    from adapters.schema import ScheduleAdapter
    from brygga.connections import PeerConfig
    from brygga.flows.schedule import planning

    # batches an earlier run committed and did not send
    planning.plan(dag_store, LadokAdapter(PeerConfig("ladok", peers["urls"]["ladok"])),
                  ScheduleAdapter(PeerConfig("schema", peers["urls"]["schema"], password="sim-api-key",
                                             extra={"organization_id": "brygga-sim", "default_organization": "brygga"})),
                  mode="full", scope=planning.Scope(("HT2027",)))
    assert peers["schema"].objects == {}
    airflow_connections(dag_store.url, peers["urls"], {"schema": {"beside_wait": 0}})
    dr = load_dag("brygga_schedule_export").test(run_conf={"mode": "full"})
    assert dr.state == "failed"
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["plan"] == "failed"
    # the senders do not wait for reading more: the committed batches reached the system
    assert states["send_beside_timeedit"] == states["send_timeedit"] == "success"
    assert states["report"] == "upstream_failed"  # the run says it failed
    from brygga import views
    from brygga.store.models import AuditLog

    assert views.failed_tasks(dag_store) == 1  # the failure callback recorded it (the failed_tasks alert's figure)
    with dag_store.transaction() as s:
        row = s.scalars(select(AuditLog).where(AuditLog.action == "task.failed")).one()
    assert row.object_id == "brygga_schedule_export.plan" and "no term to export" in row.detail["error"]
    assert {ext for (t, ext) in peers["schema"].objects if t == "utbildningstillfalle"} == {
        t.uid for t in peers["ladok"].tillfallen.values() if t.startperiod == "HT2027"}
