"""The "Brygga operations" plugin inside Airflow's own API server app: loaded by Airflow's plugin
manager, mounted at /brygga-ops, and guarded by the user's Airflow login (JWT from Airflow's
/auth/token, as bearer or in the UI's ``_token`` cookie), validated by Airflow's auth manager."""

import json

import pytest
from fastapi.testclient import TestClient

from tests.plugins.seed import PNR_A, seed

pytestmark = pytest.mark.airflow

API = "/brygga-ops/api/publications"


@pytest.fixture
def api(airflow_db, empty_store_factory, monkeypatch, tmp_path):
    """Airflow's API server app (core) with the plugins folder of this checkout, and a seeded store
    behind the brygga_store Connection."""
    from brygga.store import migrate

    store = empty_store_factory("sqlite")
    migrate.upgrade(store)
    ids = seed(store)
    monkeypatch.setenv("AIRFLOW_CONN_BRYGGA_STORE",
                       json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": store.url}}))
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"operator": "s3cret-pw"}))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    passwords.write_text(json.dumps({"operator": "s3cret-pw", "viewer": "viewer-pw"}))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "operator:admin,viewer:viewer")  # as airflow.cfg

    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    app = create_app("core")
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        yield client, ids
    purge_cached_app()


def _token(client, user: str = "operator", password: str = "s3cret-pw") -> str:
    r = client.post("/auth/token", json={"username": user, "password": password})
    assert r.status_code == 201, r.text
    return r.json()["access_token"]


def test_airflow_loads_the_plugin_with_its_app_and_menu_entry():
    from airflow import plugins_manager

    apps, _ = plugins_manager.get_fastapi_plugins()
    assert [a["url_prefix"] for a in apps if a["name"] == "Brygga operations"] == ["/brygga-ops"]
    views, _ = plugins_manager._get_ui_plugins()
    (view,) = [v for v in views if v["name"] == "Brygga operations"]
    assert view["url_route"] == "brygga-ops" and view["href"] == "brygga-ops/" and view["destination"] == "nav"
    plugins, errors = plugins_manager._get_plugins()
    assert "brygga_ops" in {p.name for p in plugins} and not errors


def test_without_a_login_every_page_is_401(api):
    client, ids = api
    for path in ("/brygga-ops/", "/brygga-ops/publications", f"/brygga-ops/publications/{ids['real']}",
                 "/brygga-ops/unhandled-admissions", "/brygga-ops/aterbud-cases", API,
                 "/brygga-ops/api/unhandled-admissions", "/brygga-ops/api/aterbud-cases",
                 "/brygga-ops/api/openapi.json"):
        r = client.get(path)
        assert r.status_code == 401, (path, r.status_code)
        assert "anna.operator" not in r.text
    page = client.get("/brygga-ops/publications", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "/auth/login" in page.text  # a way to log in


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJvcGVyYXRvciJ9.c2lnbmF0dXJl"])
def test_a_token_airflow_does_not_accept_is_401(api, token):
    client, _ = api
    assert client.get(API, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    client.cookies.set("_token", token)
    assert client.get(API).status_code == 401


def test_a_token_signed_with_another_secret_or_expired_is_401(api):
    import jwt

    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    client, _ = api
    client.cookies.clear()  # only the bearer below may authenticate
    am = get_auth_manager()
    good = jwt.decode(_token(client), options={"verify_signature": False})
    forged = jwt.encode({**good, "jti": "forged"}, "not-the-airflow-secret-" * 4, algorithm="HS512")
    assert client.get(API, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    expired = am.generate_jwt(SimpleAuthManagerUser(username="operator", role="admin"),
                              expiration_time_in_seconds=-3600)
    r = client.get(API, headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"].lower()


def test_airflow_login_as_bearer_or_cookie_gets_the_pages(api):
    client, ids = api
    token = _token(client)  # Airflow's own login endpoint
    r = client.get(API, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert {row["id"] for row in r.json()["rows"]} == set(ids.values())

    client.cookies.set("_token", token)  # what the UI has after logging in
    page = client.get("/brygga-ops/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and '<strong id="user">operator</strong>' in page.text
    assert 'href="/brygga-ops/publications"' in page.text  # links carry the mount prefix
    detail = client.get(f"/brygga-ops/publications/{ids['real']}")
    assert detail.status_code == 200 and "already published" in detail.text
    queue = client.get("/brygga-ops/unhandled-admissions", params={"round": "HT2027", "status": "open"})
    assert queue.status_code == 200 and "19900101-****" in queue.text and PNR_A not in queue.text
    counts = client.get("/brygga-ops/api/unhandled-admissions", params={"round": "HT2027"}).json()
    assert counts["counts_per_hinder"] == {"studieplan.saknar.paket": 2, "tillfalle.installt": 2}


def test_a_user_without_a_role_is_403(api):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    client, _ = api
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="guest", role=None))
    assert client.get(API, headers={"Authorization": f"Bearer {token}"}).status_code == 403


def _csrf(html: str) -> str:
    import re

    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def test_a_viewer_sees_no_actions_and_is_403_on_any_action(api):
    client, _ = api
    client.cookies.set("_token", _token(client, "viewer", "viewer-pw"))
    page = client.get("/brygga-ops/unhandled-admissions/ADM-0")
    assert page.status_code == 200 and "endast läsbehörighet" in page.text
    assert "Ompröva" not in page.text and "Markera som hanterad" not in page.text and "<button" not in page.text
    for path, form in (("/brygga-ops/unhandled-admissions/ADM-0/handled", {"note": "x"}),
                       ("/brygga-ops/unhandled-admissions/ADM-0/omprova", {"choice": ""}),
                       ("/brygga-ops/unhandled-admissions/bulk-omprova", {"status": "open"}),
                       ("/brygga-ops/aterbud-cases/1/close", {"note": "x"}),
                       ("/brygga-ops/publications/2/publish", {})):
        r = client.post(path, data={**form, "csrf": "forged"}, follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
    from brygga.store.models import UnhandledAdmission

    store = __import__("plugins.brygga_ops", fromlist=["store"]).store()
    with store.transaction() as s:
        assert s.query(UnhandledAdmission).filter_by(nya_admission_id="ADM-0").one().status == "open"


def test_an_operators_cookie_post_needs_the_csrf_token_of_its_session(api):
    client, _ = api
    client.cookies.set("_token", _token(client))
    page = client.get("/brygga-ops/unhandled-admissions/ADM-0")
    assert "Markera som hanterad" in page.text
    r = client.post("/brygga-ops/unhandled-admissions/ADM-0/handled", data={"note": "klar i Ladok"},
                    follow_redirects=False)
    assert r.status_code == 403  # no token: a forged cross-site form
    other = _token(client)  # another session's token does not fit this session
    client.cookies.set("_token", other)
    r = client.post("/brygga-ops/unhandled-admissions/ADM-0/handled", data={"note": "klar", "csrf": _csrf(page.text)},
                    follow_redirects=False)
    assert r.status_code == 403
    page = client.get("/brygga-ops/unhandled-admissions/ADM-0")
    r = client.post("/brygga-ops/unhandled-admissions/ADM-0/handled",
                    data={"note": "placerad för hand i Ladok", "csrf": _csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    done = client.get(r.headers["location"])
    assert "Markerad som hanterad" in done.text and "placerad för hand i Ladok" in done.text
    assert "hanterad manuellt" in done.text  # the status shown
    audit = client.get("/brygga-ops/audit", params={"object_id": "ADM-0"})
    assert "operator" in audit.text and "Markerad som hanterad" in audit.text
    # a bearer-authenticated API client needs no CSRF token
    client.cookies.clear()
    r = client.post("/brygga-ops/aterbud-cases/1/close", data={"note": "ringt studenten"},
                    headers={"Authorization": f"Bearer {_token(client)}"}, follow_redirects=False)
    assert r.status_code == 303


def test_publicera_triggers_the_offer_export_as_the_user_once(api):
    """Publicera starts brygga_offer_export with the dry run's parameters, as the logged-in user;
    a second click finds the run there already."""
    from pathlib import Path

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()
    dags = Path(__file__).resolve().parents[2] / "dags"
    sync_bag_to_db(DagBag(dag_folder=str(dags / "brygga_offer_export.py"), safe_mode=False),
                   "dags-folder", None)
    client, ids = api
    client.cookies.set("_token", _token(client))
    page = client.get(f"/brygga-ops/publications/{ids['dry']}")
    assert 'id="publish"' in page.text
    for _ in range(2):  # a double click
        r = client.post(f"/brygga-ops/publications/{ids['dry']}/publish", data={"csrf": _csrf(page.text)},
                        follow_redirects=False)
        assert r.status_code == 303
    assert "redan publicerad" in client.get(r.headers["location"]).text
    with create_session() as s:
        runs = s.query(DagRun).filter(DagRun.dag_id == "brygga_offer_export").all()
        assert len(runs) == 1
        run = runs[0]
        assert run.run_id == f"console__publicera__{ids['dry']}" and run.triggering_user_name == "operator"
        assert run.conf == {"round": "HT2027", "kind": "programme-internal", "selection": "codes", "codes": ["TKDAT"],
                            "dry_run": False, "places": 30, "plan_of": ids["dry"]}
