"""The browser tests' ground: Airflow's login page leads to the console, the console's API wants a
login, and the seeded scenario (``tests.browser.scenario``) is real — what the tests act on can
be acted on with Brygga's own flows."""

from __future__ import annotations

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select

from tests.browser.conftest import SCREENSHOTS, login, logout, screenshot

pytestmark = pytest.mark.browser


def test_the_operator_logs_in_through_airflow_and_sees_the_console(browser, console_stack):
    s = console_stack
    login(browser, s.base_url, "operator", "brygga")
    assert browser.get_cookie("_token")["value"].count(".") == 2  # Airflow's JWT
    browser.get(f"{s.base_url}/brygga-ops/")
    h1 = WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
    assert h1.text.strip()
    assert screenshot(browser, "overview-smoke") == SCREENSHOTS / "overview-smoke.png"
    assert (SCREENSHOTS / "overview-smoke.png").stat().st_size > 1000


def test_without_a_login_the_consoles_api_is_401(browser, console_stack):
    s = console_stack
    r = requests.get(f"{s.base_url}/brygga-ops/api/overview", timeout=30)
    assert r.status_code == 401, (r.status_code, r.text[:300])
    # the browser too, once logged out (another user first: login/logout switch users)
    login(browser, s.base_url, "viewer")
    logout(browser, s.base_url)
    assert browser.get_cookie("_token") is None
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/brygga-ops/api/overview', {credentials: 'include'}).then(r => done(r.status));")
    assert status == 401


def test_the_scenario_is_real_the_flows_act_on_it(tmp_path):
    """On a second seeded store (and simulators of its own): ompröva in the candidate package
    places the admission in Ladok, the case's suggested action is carried out in Ladok."""
    from brygga.flows import admissions, aterbud
    from brygga.store import Store, migrate
    from brygga.store.models import AuditLog, Publication, PublicationItem, Quarantine, UnhandledAdmission
    from tests.browser.scenario import SCENARIO_KEYS, seed
    from tests.flows.admissions_world import make_world

    store = Store(f"sqlite:///{tmp_path / 'brygga.db'}")
    migrate.upgrade(store)
    try:
        with make_world() as w:
            sc = seed(store, w)
            assert set(SCENARIO_KEYS) <= set(sc)
            with store.transaction() as s:
                pub = s.get(Publication, sc["publication_id"])
                assert pub.dry_run and pub.status == "done", (pub.dry_run, pub.status)
                assert s.scalar(select(func.count()).select_from(PublicationItem).where(
                    PublicationItem.publication_id == pub.id, PublicationItem.action == "new")) >= 1
                assert s.scalar(select(func.count()).select_from(Quarantine).where(Quarantine.released_at.is_(None)))
                assert s.scalar(select(func.count()).select_from(AuditLog)) >= 3

            res = admissions.retry(store, w["ladok"], w["folk"], sc["admission_id"], actor="operator",
                                   package_uid=sc["package_uid"])
            assert res["outcome"] == "placed" and res["package_uid"] == sc["package_uid"], res
            placed = w["L"].by_anmalningsnummer[sc["admission_id"]]
            assert placed.paket.tillfalle.uid == sc["package_uid"]
            with store.transaction() as s:
                row = s.scalars(select(UnhandledAdmission).where(
                    UnhandledAdmission.nya_admission_id == sc["admission_id"])).one()
                assert row.status == "resolved"

            done = aterbud.apply_case(store, w["ladok"], sc["case_id"], actor="operator")
            assert done["status"] == "closed" and done["result"]["performed"] == "early_avbrott", done
            la = w["L"].antagning(sc["antagning_c"])
            assert la.avbrott is not None and la.avbrott.tidigt
    finally:
        store.dispose()
