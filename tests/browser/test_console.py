"""An admission officer's day in the console, in chromium: log in through Airflow's login page,
work the queue (ompröva in a chosen package), apply a case's suggested action, publish a dry run's
plan; then a viewer, who sees no buttons and whose forged POST is refused. No page carries an
unmasked personnummer. Each page's screenshot is written to ``var/screenshots/``.

The tests run in this order and build on each other (one stack, one browser)."""

from __future__ import annotations

import re

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from brygga.personnummer import is_valid
from tests.browser.conftest import login, screenshot

pytestmark = pytest.mark.browser
PAGES: dict[str, str] = {}  # every page seen: its HTML, for the masking check at the end
PNR = re.compile(r"(?<!\d)(\d{8})[-+]?(\d{4})(?!\d)")


def _open(driver, stack, path: str, name: str | None = None) -> str:
    driver.get(f"{stack.base_url}/brygga-ops{path}")
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
    html = driver.page_source
    PAGES[path] = html
    if name:
        screenshot(driver, name)
    return html


def _flash(driver) -> str:
    el = WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "flash")))
    PAGES[driver.current_url] = driver.page_source
    return el.text


def test_operator_omprövar_an_admission_choosing_a_package(console_stack, browser):
    s, sc = console_stack, console_stack.scenario
    login(browser, s.base_url, "operator")
    overview = _open(browser, s, "/", "overview")
    assert "Översikt" in overview and 'id="user">operator<' in overview
    queue = _open(browser, s, "/unhandled-admissions", "unhandled")
    assert sc["admission_id"] in queue
    browser.find_element(By.LINK_TEXT, sc["admission_id"]).click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "omprova")))
    PAGES["admission"] = browser.page_source
    screenshot(browser, "admission")
    browser.find_element(By.CSS_SELECTOR, f"input[value='package:{sc['package_uid']}']").click()
    browser.find_element(By.CSS_SELECTOR, "#omprova button[type='submit']").click()
    assert "placerad i Ladok" in _flash(browser)
    assert browser.find_element(By.ID, "status").text.startswith("löst")
    history = browser.find_element(By.ID, "history").text
    assert "Omprövning" in history and "operator" in history and "kurspaketering" in history
    assert not browser.find_elements(By.ID, "omprova")  # resolved: no more actions
    placed = s.world["L"].by_anmalningsnummer[sc["admission_id"]]
    assert placed.paket.tillfalle.uid == sc["package_uid"]  # in Ladok, in the chosen package

    audit = _open(browser, s, f"/audit?object_id={sc['admission_id']}", "audit")
    rows = browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
    assert any("operator" in r.text and "Omprövning" in r.text for r in rows), audit


def test_operator_applies_a_cases_suggested_action(console_stack, browser):
    s, sc = console_stack, console_stack.scenario
    _open(browser, s, "/aterbud-cases", "cases")
    _open(browser, s, f"/aterbud-cases/{sc['case_id']}", "case")
    assert "tidigt avbrott" in browser.find_element(By.ID, "apply").text
    browser.find_element(By.CSS_SELECTOR, "#apply button").click()
    assert "utförd i Ladok" in _flash(browser)
    assert browser.find_element(By.ID, "status").text.startswith("avslutat")
    la = s.world["L"].antagning(sc["antagning_c"])
    assert la.avbrott is not None and la.avbrott.tidigt  # within 3 weeks of study start: early


def test_operator_publishes_a_dry_runs_plan(console_stack, browser):
    s, sc = console_stack, console_stack.scenario
    _open(browser, s, "/publications", "publications")
    html = _open(browser, s, f"/publications/{sc['dry_run_id']}", "publication")
    assert "provkörning" in html and 'id="diff-new"' in html
    browser.find_element(By.CSS_SELECTOR, "#publish button").click()
    assert "startad som körning" in _flash(browser)
    runs = requests.get(f"{s.base_url}/api/v2/dags/brygga_offer_export/dagRuns",
                        headers={"Authorization": f"Bearer {s.token()}"}, timeout=30).json()["dag_runs"]
    (run,) = [r for r in runs if r["dag_run_id"] == f"console__publicera__{sc['dry_run_id']}"]
    assert run["conf"]["plan_of"] == sc["dry_run_id"] and run["conf"]["dry_run"] is False
    assert run["triggering_user_name"] == "operator"


def test_a_drift_is_repaired_from_the_reconciliation_page(console_stack, browser):
    s = console_stack
    html = _open(browser, s, "/reconciliation", "reconciliation")
    assert "Antagen i NyA men saknas i Ladok" in html and "-****" in html
    browser.find_element(By.CSS_SELECTOR, f"#drift-{s.scenario['drift_id']} button.repair").click()
    assert "placeras igen" in _flash(browser)
    with s.store.transaction() as tx:
        from brygga.store.models import Drift

        assert tx.get(Drift, s.scenario["drift_id"]).status == "repaired"


def test_the_other_pages(console_stack, browser):
    s = console_stack
    q = _open(browser, s, "/quarantine", "quarantine")
    assert "Försök igen" in q and "HTTP 503" in q
    _open(browser, s, "/statistics", "statistics")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-charts"))
    assert browser.execute_script("return typeof Chart") == "function"  # the vendored library, no CDN
    _open(browser, s, "/certificates", "certificates")
    _open(browser, s, "/archive")
    browser.get(f"{s.base_url}/plugin/brygga-ops")  # inside Airflow's own UI
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.TAG_NAME, "iframe")))
    screenshot(browser, "in-airflow")


def test_where_is_the_student_shows_one_persons_records_from_every_flow(console_stack, browser):
    """The operator types a personnummer (never in the URL) and sees the person's admissions with
    their Ladok placements, the queue, merits, the schedule export's objects and the audit trail."""
    from sqlalchemy import select

    from brygga.store.models import NyaAdmission

    s = console_stack
    with s.store.transaction() as tx:
        pnr, antagning = tx.execute(select(NyaAdmission.personnummer, NyaAdmission.antagning_uid).where(
            NyaAdmission.state == "placed", NyaAdmission.personnummer.is_not(None)).limit(1)).first()
    assert pnr and antagning
    _open(browser, s, "/trace")
    field = browser.find_element(By.NAME, "what")
    field.send_keys(f"{pnr[:8]}-{pnr[8:]}")
    field.submit()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "person")))
    assert pnr[8:] not in browser.current_url and "person=" in browser.current_url
    PAGES["/trace?person"] = html = browser.page_source
    screenshot(browser, "trace")
    assert f"{pnr[:8]}-****" in html and browser.find_element(By.ID, "t-admissions")
    rows = browser.find_elements(By.CSS_SELECTOR, "#t-admissions tbody tr")
    assert rows and any(antagning in r.text for r in rows)  # the placement Ladok made of it
    _open(browser, s, "/alerts")
    form = browser.find_element(By.ID, "new-subscription")
    form.find_element(By.NAME, "threshold").send_keys("0")
    form.find_element(By.NAME, "recipients").send_keys("drift@lärosäte.example")
    form.submit()
    assert "sparad" in _flash(browser)
    assert browser.find_element(By.CSS_SELECTOR, "#subscriptions tbody tr[id^='sub-']")
    screenshot(browser, "alerts")


def test_a_viewer_sees_no_buttons_and_a_forged_post_is_403(console_stack, browser):
    s = console_stack
    login(browser, s.base_url, "viewer")
    with s.store.transaction() as tx:
        from sqlalchemy import select

        from brygga.store.models import UnhandledAdmission

        other = tx.scalars(select(UnhandledAdmission.nya_admission_id).where(UnhandledAdmission.status == "open")
                           .limit(1)).first()
    assert other
    html = _open(browser, s, f"/unhandled-admissions/{other}", "viewer-admission")
    assert "endast läsbehörighet" in html
    assert not browser.find_elements(By.CSS_SELECTOR, "form[method='post']")
    _open(browser, s, f"/publications/{s.scenario['dry_run_id']}")
    assert not browser.find_elements(By.ID, "publish")
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/brygga-ops/unhandled-admissions/{other}/handled', {{method: 'POST', credentials: 'include',"
        "  body: new URLSearchParams({note: 'forged', csrf: 'forged'})}).then(r => done(r.status));")
    assert status == 403
    with s.store.transaction() as tx:
        from brygga.store.models import UnhandledAdmission

        assert tx.scalars(select(UnhandledAdmission.status).where(UnhandledAdmission.nya_admission_id == other)
                          ).one() == "open"


def test_no_page_carries_an_unmasked_personnummer(console_stack):
    assert len(PAGES) >= 10
    for where, html in PAGES.items():
        clear = [m.group(0) for m in PNR.finditer(html) if is_valid(m.group(1) + m.group(2))]
        assert not clear, (where, clear[:3])
    assert any("-****" in html for html in PAGES.values())  # they are there, masked
