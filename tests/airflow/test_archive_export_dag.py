"""The archive export DAG end to end: dag.test() against the Ladok and archive simulators."""

import pytest
from sqlalchemy import select

from simulators._server import serve_in_thread
from tests.airflow.conftest import load_dag
from tests.conftest import needs_eark_validator

pytestmark = [pytest.mark.airflow,
              needs_eark_validator()]


@pytest.fixture
def peers():
    from simulators.arkiv.app import create_app as arkiv_app
    from simulators.arkiv.state import ArchiveState
    from simulators.ladok.app import create_app as ladok_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState

    ladok = LadokState()
    seed_catalogue(ladok, 23, 3, 0, "VT2026")
    ended = [t for t in ladok.tillfallen.values() if not t.installt]
    ladok.seed_deltagande(ladok.seed_students(20, 23), ended, 6)
    ladok.seed_resultat(ended, 23)
    import datetime as dt

    bevis = [ladok.utfarda_bevis(s.uid, dt.date(2026, 6, 15), emit=False) for s in list(ladok.students.values())[:2]]
    archive = ArchiveState()
    with serve_in_thread(ladok_app(ladok)) as lad, serve_in_thread(arkiv_app(archive)) as ark:
        yield {"urls": {"ladok": lad.url, "arkiv": ark.url}, "ended": ended, "archive": archive, "bevis": bevis}


def test_dry_run_lists_then_a_run_archives_every_ended_instance(airflow_db, airflow_connections, dag_store, peers):
    from brygga.store.models import ArchivePackage

    airflow_connections(dag_store.url, peers["urls"], {"arkiv": {"closing_days": 30}})
    dr = load_dag("brygga_archive_export").test(run_conf={"up_to": "2026-12-01", "dry_run": True})
    assert dr.state == "success"
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["plan"] == "success" and states["deliver"] == "skipped"
    assert peers["archive"].deliveries == []

    dr = load_dag("brygga_archive_export").test(run_conf={"up_to": "2026-12-01"})
    assert dr.state == "success"
    assert {ti.task_id: ti.state for ti in dr.get_task_instances()}["deliver"] == "success"
    everything = len(peers["ended"]) + len(peers["bevis"])  # "alla": course instances and degrees
    assert [d["status"] for d in peers["archive"].deliveries] == ["mottaget"] * everything
    with dag_store.transaction() as s:
        held = {(p.subject_kind, p.subject_uid) for p in s.scalars(select(ArchivePackage)) if p.status == "accepted"}
    assert held == {("kurstillfalle", t.uid) for t in peers["ended"]} | {("examen", b) for b in peers["bevis"]}

    # a later run finds nothing new to send (everything due is held)
    dr = load_dag("brygga_archive_export").test(run_conf={"up_to": "2026-12-01", "what": "examina"})
    assert dr.state == "success" and len(peers["archive"].deliveries) == everything
