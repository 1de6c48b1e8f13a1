"""dag.test() runs of DAGs against real simulators on loopback and a real store."""

import pytest

from simulators._server import serve_in_thread

pytestmark = pytest.mark.airflow


@pytest.fixture
def folkbokforing_url():
    from simulators.folkbokforing.app import create_app

    with serve_in_thread(create_app()) as srv:
        yield srv.url


@pytest.fixture
def ladok_url():
    from simulators.ladok.app import create_app
    from simulators.ladok.state import LadokState

    state = LadokState()
    with serve_in_thread(create_app(state)) as srv:
        yield srv.url


def _dag(dag_id):
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"), safe_mode=False)
    return bag.get_dag(dag_id)


def test_healthcheck_succeeds_against_running_peers(airflow_db, airflow_connections, store, folkbokforing_url,
                                                    ladok_url):
    airflow_connections(store.url, {"ladok": ladok_url, "nya": folkbokforing_url,
                                    "folkbokforing": folkbokforing_url, "schema": folkbokforing_url,
                                    "arkiv": folkbokforing_url})
    dr = _dag("brygga_healthcheck").test()
    assert dr.state == "success"
    ti = next(t for t in dr.get_task_instances() if t.task_id == "ladok_rights")
    assert ti.state == "success"


def test_healthcheck_fails_when_the_ladok_certificate_lacks_a_right(airflow_db, airflow_connections, store,
                                                                  folkbokforing_url, ladok_url):
    """A Ladok administrator took the feed right (uppfoljning.feeds, 90019) from the integration's
    profile: the authenticated probe still answers, the rights self-check fails naming the flows."""
    import requests

    from brygga import rights

    keep = [a for a in rights.SYSTEMAKTIVITETER if a != 90019]
    requests.post(f"{ladok_url}/sim/behorigheter", json={"aktiviteter": keep}, timeout=10).raise_for_status()
    airflow_connections(store.url, {"ladok": ladok_url, "nya": folkbokforing_url,
                                    "folkbokforing": folkbokforing_url, "schema": folkbokforing_url,
                                    "arkiv": folkbokforing_url})
    dr = _dag("brygga_healthcheck").test()
    assert dr.state == "failed"
    states = {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.state
              for ti in dr.get_task_instances()}
    assert states["ladok_rights"] == "failed" and states["peer_reachable[0]"] == "success"


def test_healthcheck_fails_when_a_peer_is_down(airflow_db, airflow_connections, store, folkbokforing_url):
    airflow_connections(store.url, {"ladok": "http://127.0.0.1:9", "nya": folkbokforing_url,
                                    "folkbokforing": folkbokforing_url, "schema": folkbokforing_url,
                                    "arkiv": folkbokforing_url})
    dr = _dag("brygga_healthcheck").test()
    assert dr.state == "failed"
    states = {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.state
              for ti in dr.get_task_instances()}
    assert states["peer_reachable[0]"] == "failed"  # ladok
    assert states["peer_reachable[1]"] == "success"
    assert states["store_schema"] == "success"


def test_healthcheck_fails_on_unmigrated_store(airflow_db, airflow_connections, empty_store_factory, folkbokforing_url,
                                              ladok_url):
    s = empty_store_factory("sqlite")
    airflow_connections(s.url, {"ladok": ladok_url, "nya": folkbokforing_url,
                                "folkbokforing": folkbokforing_url, "schema": folkbokforing_url,
                                    "arkiv": folkbokforing_url})
    dr = _dag("brygga_healthcheck").test()
    assert {ti.task_id: ti.state for ti in dr.get_task_instances()}["store_schema"] == "failed"


def test_healthcheck_fails_a_week_before_a_client_certificate_expires(airflow_db, airflow_connections, store,
                                                                        folkbokforing_url, ladok_url, tmp_path):
    import datetime as dt

    from tests.unit.test_certificates import _cert

    soon = _cert(tmp_path, "brygga.example.se", 6.5, now=dt.datetime.now(dt.UTC))
    later = _cert(tmp_path, "later.example.se", 45, now=dt.datetime.now(dt.UTC))
    urls = {**dict.fromkeys(("nya", "folkbokforing", "schema", "arkiv"), folkbokforing_url), "ladok": ladok_url}
    airflow_connections(store.url, urls, extras={"nya": {"cert": later[0], "key": later[1]}})
    assert {ti.task_id: ti.state for ti in _dag("brygga_healthcheck").test().get_task_instances()
            }["certificates"] == "success"  # 45 days: a warning on the console, not a failure
    airflow_connections(store.url, urls, extras={"ladok": {"cert": soon[0], "key": soon[1]}})
    dr = _dag("brygga_healthcheck").test()
    assert dr.state == "failed"
    states = {ti.task_id: ti.state for ti in dr.get_task_instances() if ti.map_index < 0}
    assert states["certificates"] == "failed" and states["store_schema"] == "success"
