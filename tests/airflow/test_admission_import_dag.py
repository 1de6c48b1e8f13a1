"""The admission import and review DAGs end to end: dag.test() against the three simulators."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from simulators._server import serve_in_thread
from tests.airflow.conftest import load_dag

pytestmark = pytest.mark.airflow
INTERIM = "19880527T281"


@pytest.fixture
def peers():
    from brygga import personnummer as pnr_mod
    from simulators.folkbokforing.app import create_app as fbf_app
    from simulators.folkbokforing.state import FolkbokforingState
    from simulators.ladok.app import create_app as ladok_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState
    from simulators.nya.app import create_app as nya_app
    from simulators.nya.state import Applicant, NyaState, Offer

    ladok = LadokState()
    courses = [t for t in seed_catalogue(ladok, 31, 8, 0, "HT2027") if not t.installt and t.omgangar]
    nya = NyaState()
    nya.put_round("HT2027", "open")
    nya.publish_offers("HT2027", "ordinary", [
        Offer(t.uid, "ordinary", t.utbildning.kod, t.kod, t.utbildning.sv, None, Decimal("7.5"), t.start, t.slut,
              None, 100, 50) for t in courses])
    folk = FolkbokforingState(seed=31, people=60)
    people = [p for p in folk.all()][:40]
    unknown = pnr_mod.with_check_digit("19770707123")
    applicants = [Applicant(p.personnummer, p.fornamn, p.efternamn, [courses[i % len(courses)].uid], 10.0,
                            auto_accept=True) for i, p in enumerate(people)]
    applicants.append(Applicant(unknown, "Okänd", "Person", [courses[0].uid], 10.0, auto_accept=True))
    # an applicant without a Swedish number: the interimspersonnummer antagning.se gave her
    applicants.append(Applicant(INTERIM, "Mei", "Chen", [courses[1].uid], 10.0, fee_liable=True,
                                application_fee_paid=True, auto_accept=True))
    nya.add_applicants("HT2027", applicants)
    nya.run_selection("HT2027")
    with serve_in_thread(ladok_app(ladok)) as l, serve_in_thread(nya_app(nya)) as n, serve_in_thread(fbf_app(folk)) as f:
        yield {"urls": {"ladok": l.url, "nya": n.url, "folkbokforing": f.url}, "ladok": ladok, "nya": nya,
               "unknown": unknown}


def test_import_then_rerun_then_operator_marks_handled(airflow_db, airflow_connections, dag_store, peers):
    from brygga import views
    from brygga.flows import admissions
    from brygga.store.models import AuditLog, NyaAdmission

    airflow_connections(dag_store.url, peers["urls"])
    dr = load_dag("brygga_admission_import").test(run_conf={"round": ""})
    assert dr.state == "success"
    assert admissions.summary(dag_store) == {"placed": 41, "unhandled": 1}
    report = next(t for t in dr.get_task_instances() if t.task_id == "report").xcom_pull(task_ids="report")
    # counted in the store, not added up from the tasks' returns
    assert (report["placed"], report["unhandled"], report["claimed_unplaced"]) == (41, 1, 0)
    assert len(peers["ladok"].antagningar) == 41 and len(peers["ladok"].students) == 41
    assert peers["ladok"].by_pnr[INTERIM].fornamn == "Mei"  # established from NyA's name
    assert views.count_unhandled(dag_store, status="open") == {"personnummer.okant": 1}

    dr = load_dag("brygga_admission_import").test(run_conf={"round": "HT2027"})
    assert dr.state == "success"
    assert len(peers["ladok"].antagningar) == 41 and admissions.summary(dag_store) == {"placed": 41, "unhandled": 1}

    with dag_store.transaction() as s:
        unknown_id = s.scalars(select(NyaAdmission.admission_id).where(
            NyaAdmission.personnummer == peers["unknown"])).one()
    dr = load_dag("brygga_admission_review").test(run_conf={"admission_ids": [unknown_id], "action": "handled",
                                                        "note": "etablerad manuellt"})
    assert dr.state == "success"
    assert views.count_unhandled(dag_store, status="open") == {}
    with dag_store.transaction() as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "admission.handled")).one()
    assert entry.object_id == unknown_id and entry.detail["note"] == "etablerad manuellt"


def test_a_failing_task_never_prints_a_personnummer(airflow_db, airflow_connections, dag_store, peers, monkeypatch,
                                                    capfd, caplog, tmp_path):
    """A database error inside a task, with personnummer in the statement's parameters and in the
    exception: nothing Airflow prints or writes (stdout, stderr, log records, task log files) holds
    a personnummer in clear, in any of its forms; the error itself is there to read."""
    import os
    from pathlib import Path

    from airflow.sdk.exceptions import AirflowFailException
    from sqlalchemy import text

    from brygga import views
    from brygga.flows import admissions

    def boom(s, items, counts):  # (the interimspersonnummer's admission when it is among them)
        p = next((i.personnummer for i in items if i.personnummer == INTERIM), items[0].personnummer)
        try:
            s.execute(text("INSERT INTO no_such_table (personnummer, other) VALUES (:p, :q)"),
                      {"p": p, "q": f"{p[2:8]} {p[8:]} {p[2:]}"})
        except Exception as e:
            raise AirflowFailException(f"could not record {p} ({p[:8]}-{p[8:]}, {p[2:]})") from e

    monkeypatch.setattr(admissions.placing, "_record", boom)
    airflow_connections(dag_store.url, peers["urls"])
    dr = load_dag("brygga_admission_import").test(run_conf={"round": "HT2027"})
    assert dr.state == "failed"
    out = capfd.readouterr()
    logs = "".join(p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log"))
    printed = "\n".join([out.out, out.err, caplog.text, logs])
    assert "no_such_table" in printed and "could not record" in printed  # the error is readable
    people = [a.personnummer for a in peers["nya"].rounds["HT2027"].applicants.values()]
    assert INTERIM in people and "19880527-****" in printed  # her number was in the error: masked
    for p in people:
        for form in (p, f"{p[:8]}-{p[8:]}", p[2:], f"{p[2:8]}-{p[8:]}", f"{p[2:8]} {p[8:]}", f"{p[:8]} {p[8:]}"):
            assert form not in printed, f"a personnummer in clear ({form[:6]}…)"
