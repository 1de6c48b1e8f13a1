"""The offer export DAG end to end: dag.test() against the Ladok and NyA simulators."""

import pytest
from sqlalchemy import func, select

from simulators._server import serve_in_thread
from tests.airflow.conftest import load_dag

pytestmark = pytest.mark.airflow


@pytest.fixture
def peers():
    from simulators.folkbokforing.app import create_app as fbf_app
    from simulators.ladok.app import create_app as ladok_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState
    from simulators.nya.app import create_app as nya_app
    from simulators.nya.state import NyaState, seed

    ladok = LadokState()
    seed_catalogue(ladok, 21, 10, 2, "HT2027")
    nya = seed(NyaState(), 21)
    with serve_in_thread(ladok_app(ladok)) as l, serve_in_thread(nya_app(nya)) as n, serve_in_thread(fbf_app()) as f:
        yield {"urls": {"ladok": l.url, "nya": n.url, "folkbokforing": f.url}, "ladok": ladok, "nya": nya}


def _active_offers(nya_state):
    rs = nya_state.round_state("HT2027")
    return {oid for oid, o in rs.offers.items() if getattr(o, "status", "active") == "active"}


def test_dry_run_then_real_then_rerun(airflow_db, airflow_connections, dag_store, peers):
    from brygga.store.models import OutboxMessage, Publication

    airflow_connections(dag_store.url, peers["urls"])
    expected = {t.uid for t in peers["ladok"].tillfallen.values()
                if "HT2027" in t.omgangar and not t.installt and t.utannonserat}

    dr = load_dag("brygga_offer_export").test(run_conf={"round": "HT2027", "dry_run": True})
    assert dr.state == "success"
    assert _active_offers(peers["nya"]) == set()

    dr = load_dag("brygga_offer_export").test(run_conf={"round": "HT2027", "dry_run": False})
    assert dr.state == "success"
    assert _active_offers(peers["nya"]) == expected
    with dag_store.transaction() as s:
        sent = s.scalar(select(func.count()).select_from(OutboxMessage))
        pubs = list(s.scalars(select(Publication).order_by(Publication.id)))
    assert sent == len(expected)
    assert [(p.dry_run, p.status, p.triggered_by) for p in pubs] == [(True, "done", "dag_test"), (False, "done", "dag_test")]
    assert pubs[0].counts["new"] == len(expected) and pubs[1].counts["status_sent"] == len(expected)

    dr = load_dag("brygga_offer_export").test(run_conf={"round": "HT2027", "dry_run": False})
    assert dr.state == "success"
    with dag_store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == sent
        last = s.scalars(select(Publication).order_by(Publication.id.desc())).first()
    assert last.counts == {"unchanged": len(expected), "status_done": len(expected)}


def test_codes_selection_without_codes_fails_clearly(airflow_db, airflow_connections, dag_store, peers):
    airflow_connections(dag_store.url, peers["urls"])
    dr = load_dag("brygga_offer_export").test(run_conf={"round": "HT2027", "selection": "codes", "codes": []})
    assert dr.state == "failed"
    assert {ti.task_id: ti.state for ti in dr.get_task_instances()}["start"] == "failed"


def test_publishing_a_dry_runs_plan_sends_it_or_nothing(airflow_db, airflow_connections, dag_store, peers):
    """The console's Publicera: the run with plan_of sends exactly the dry run's plan; when Ladok
    changed since, it fails, sends nothing and the publication says so."""
    from brygga.flows import offers
    from brygga.store.models import OutboxMessage, Publication

    airflow_connections(dag_store.url, peers["urls"])
    assert load_dag("brygga_offer_export").test(run_conf={"round": "HT2027", "dry_run": True}).state == "success"
    with dag_store.transaction() as s:
        dry = s.scalars(select(Publication.id)).one()
    uid = sorted(t.uid for t in peers["ladok"].tillfallen.values() if "HT2027" in t.omgangar and t.utannonserat
                 and not t.installt)[0]
    peers["ladok"].tillfallen[uid].installt = True  # cancelled after the dry run: the plan is no longer that plan
    dr = load_dag("brygga_offer_export").test(run_conf=offers.publish_conf(dag_store, dry))
    assert dr.state == "failed"
    with dag_store.transaction() as s:
        refused = s.scalars(select(Publication).order_by(Publication.id.desc())).first()
        assert refused.status == "failed" and refused.selection["plan_of"] == dry
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    peers["ladok"].tillfallen[uid].installt = False
    dr = load_dag("brygga_offer_export").test(run_conf=offers.publish_conf(dag_store, dry))
    assert dr.state == "success"
    with dag_store.transaction() as s:
        assert s.scalars(select(Publication.status).order_by(Publication.id.desc())).first() == "done"
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) > 0
