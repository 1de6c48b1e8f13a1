"""The console's actions through its HTTP interface, on both stores: each calls the flow function
(against the real simulators where it talks to Ladok), is audited with the user, is safe to repeat,
needs the right to act and, for a browser session, the session's CSRF token."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from brygga import console
from brygga.store import ops
from brygga.store.models import AterbudCase, AuditLog, NyaAdmission, OutboxMessage, Quarantine, UnhandledAdmission
from tests.flows.admissions_world import _admission_of, _run, make_world
from tests.plugins.seed import PNR_A, PNR_B, seed

SECRET = "test-secret"
ALL = frozenset(console.AREAS)


def _client(store, *, who="anna.operator", may=ALL, session=None, airflow=None):
    def auth(request):
        return console.Principal(who, may, session)
    return TestClient(console.create_app(store, auth, secret=SECRET, airflow=airflow), follow_redirects=False)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]*)"', html).group(1)


def _nonce(html: str) -> str:
    return re.search(r'name="nonce" value="([0-9a-f]+)"', html).group(1)


def _flash(client, r) -> str:
    assert r.status_code == 303, (r.status_code, r.text[:300])
    page = client.get(r.headers["location"]).text
    m = re.search(r'id="flash">([^<]*)<', page)
    return m.group(1) if m else ""


def _audit(store, action):
    with store.transaction() as s:
        return [(a.actor, a.object_id, a.detail) for a in s.scalars(select(AuditLog).where(AuditLog.action == action))]


@pytest.fixture
def world():
    with make_world() as w:
        yield w


def test_ompröva_in_a_chosen_package_places_the_admission_once(store, world):
    w = world
    _run(store, w)
    (a_d,) = _admission_of(w, "d")  # in the queue: the course is in two of the student's programmes
    aid = a_d.admission_id
    peers = {"ladok": w["ladok"].peer, "folkbokforing": w["folk"].peer}
    c = _client(store, airflow=console.Airflow(peer=peers.__getitem__))
    page = c.get(f"/unhandled-admissions/{aid}").text
    assert "Ompröva" in page and "Placera som fristående" in page
    pt1, pt3 = w["t"]["pt1"].uid, w["t"]["pt3"].uid
    assert f'value="package:{pt1}"' in page

    r = c.post(f"/unhandled-admissions/{aid}/omprova", data={"choice": f"package:{pt3}", "csrf": ""})
    assert "inte en av antagningens kandidater" in _flash(c, r)  # only the queue's candidates
    r = c.post(f"/unhandled-admissions/{aid}/omprova", data={"choice": f"package:{pt1}", "csrf": ""})
    assert "placerad i Ladok" in _flash(c, r)
    detail = c.get(f"/unhandled-admissions/{aid}").text
    assert 'class="state resolved"' in detail and "Omprövning" in detail and "anna.operator" in detail
    assert 'id="omprova"' not in detail  # resolved: no more actions
    r = c.post(f"/unhandled-admissions/{aid}/omprova", data={"choice": f"package:{pt1}", "csrf": ""})
    assert "redan gjort" in _flash(c, r)  # a double click does it once
    assert w["L"].by_anmalningsnummer[aid].paket.tillfalle is w["t"]["pt1"]
    assert [(a, o) for a, o, _ in _audit(store, "admission.retry")] == [("anna.operator", aid)]
    with store.transaction() as s:
        assert s.get(NyaAdmission, aid).state == "placed"


def test_mark_handled_needs_a_note_and_is_audited_once(store):
    seed(store)
    c = _client(store)
    r = c.post("/unhandled-admissions/ADM-0/handled", data={"note": "  ", "csrf": ""})
    assert "anteckning" in _flash(c, r)
    for _ in range(2):
        r = c.post("/unhandled-admissions/ADM-0/handled", data={"note": f"placerad för hand ({PNR_A})", "csrf": ""})
    assert "redan gjort" in _flash(c, r)
    (entry,) = _audit(store, "admission.handled")
    assert entry[0] == "anna.operator"
    page = c.get("/unhandled-admissions/ADM-0").text
    assert "hanterad manuellt" in page and PNR_A not in page and "19900101-****" in page


def test_a_user_without_the_right_gets_403_and_no_buttons(store):
    ids = seed(store)
    c = _client(store, who="vera.viewer", may=frozenset())
    for path in ("/unhandled-admissions/ADM-0", "/aterbud-cases/1", f"/publications/{ids['dry']}", "/quarantine",
                 "/unhandled-admissions"):
        page = c.get(path)
        assert page.status_code == 200 and "<button type=\"submit\">Filtrera" not in page.text.replace(
            "Filtrera", "") and 'method="post"' not in page.text.replace('id="person-search"', ""), path
    for path, data in (("/unhandled-admissions/ADM-0/handled", {"note": "x"}),
                       ("/aterbud-cases/1/close", {"note": "x"}), ("/quarantine/1/dismiss", {"note": "x"}),
                       (f"/publications/{ids['dry']}/publish", {}), ("/unhandled-admissions/bulk-omprova", {})):
        assert c.post(path, data={**data, "csrf": ""}).status_code == 403, path
    assert _audit(store, "admission.handled") == [] and _audit(store, "aterbud_case.close") == []
    page = c.post("/aterbud-cases/1/close", data={"note": "x"}, headers={"Accept": "text/html"})
    assert page.status_code == 403 and "Inte tillåtet" in page.text and "vera.viewer får inte" in page.text
    # the right to one area is not the right to another
    cases_only = _client(store, may=frozenset({"cases"}))
    assert cases_only.post("/unhandled-admissions/ADM-0/handled", data={"note": "x", "csrf": ""}).status_code == 403
    assert cases_only.post("/aterbud-cases/1/close", data={"note": "x", "csrf": ""}).status_code == 303


def test_a_browser_session_must_send_its_csrf_token(store):
    seed(store)
    c = _client(store, session="jwt-of-this-session")
    page = c.get("/aterbud-cases/1").text
    token = _csrf(page)
    assert token
    assert c.post("/aterbud-cases/1/close", data={"note": "x"}).status_code == 403
    assert c.post("/aterbud-cases/1/close", data={"note": "x", "csrf": "0" * 40}).status_code == 403
    other = _client(store, session="another-session")
    assert other.post("/aterbud-cases/1/close", data={"note": "x", "csrf": token}).status_code == 403
    r = c.post("/aterbud-cases/1/close", data={"note": "ringde studenten", "csrf": token})
    assert "avslutat" in _flash(c, r)
    with store.transaction() as s:
        case = s.get(AterbudCase, 1)
        assert case.status == "closed" and case.closed_by == "anna.operator" and case.note == "ringde studenten"


def test_quarantine_retry_and_dismiss(store):
    with store.transaction() as s:
        ops.outbox_enqueue(s, [{"destination": "nya", "kind": "merit", "idempotency_key": "nya:merit:x",
                                "correlation": "m", "payload": {}}])
        ops.outbox_mark_failed(s, ops.outbox_due(s, "nya", kind="merit")[0], "NyA: 503", permanent=True)
        ops.quarantine(s, source="nya", message_id="A-1", kind="Admission", reason=f"Personnummer {PNR_B}: ogiltigt")
    with store.transaction() as s:
        dead, bad = (q.id for q in s.scalars(select(Quarantine).order_by(Quarantine.id)))
    c = _client(store)
    page = c.get("/quarantine").text
    assert page.count("Försök igen") == 1 and page.count("Avfärda") == 2  # retry only where it means something
    assert PNR_B not in page and "20010203-****" in page
    assert "skickas igen" in _flash(c, c.post(f"/quarantine/{dead}/retry", data={"csrf": ""}))
    with store.transaction() as s:
        assert s.scalars(select(OutboxMessage.status)).one() == "pending"
    assert "anteckning" in _flash(c, c.post(f"/quarantine/{bad}/dismiss", data={"note": "", "csrf": ""}))
    assert "avfärdad" in _flash(c, c.post(f"/quarantine/{bad}/dismiss", data={"note": "rättat i NyA", "csrf": ""}))
    assert "Inget i karantän" in c.get("/quarantine").text
    assert {a for a, *_ in _audit(store, "quarantine.release")} == {"anna.operator"}


class FakeAirflow:
    def __init__(self):
        self.runs: dict[str, tuple[str, dict, str]] = {}

    def trigger(self, dag_id, run_id, conf, user):
        if run_id in self.runs:
            return "exists"
        self.runs[run_id] = (dag_id, conf, user)
        return "created"


def test_bulk_ompröva_starts_one_review_run_for_the_filtered_set(store):
    seed(store)
    fake = FakeAirflow()
    c = _client(store, airflow=console.Airflow(trigger=fake.trigger))
    page = c.get("/unhandled-admissions", params={"round": "HT2027", "hinder": "studieplan.saknar.paket"}).text
    assert "Ompröva alla 2 i urvalet" in page
    form = {"csrf": "", "nonce": _nonce(page), "round": "HT2027", "hinder": "studieplan.saknar.paket", "status": "open"}
    for _ in range(2):  # a double click: the same form, the same run
        r = c.post("/unhandled-admissions/bulk-omprova", data=form)
    assert "redan startad" in _flash(c, r)
    ((run_id, (dag_id, conf, user)),) = fake.runs.items()
    assert dag_id == "brygga_admission_review" and user == "anna.operator" and conf["action"] == "ompröva"
    assert conf["admission_ids"] == ["ADM-0", "ADM-1"]  # oldest first, only the filtered set
    assert [(a, o) for a, o, _ in _audit(store, "console.bulk_retry")] == [("anna.operator", run_id)]


def test_publicera_sends_the_dry_runs_parameters(store):
    ids = seed(store)
    fake = FakeAirflow()
    c = _client(store, airflow=console.Airflow(trigger=fake.trigger))
    assert 'id="publish"' in c.get(f"/publications/{ids['dry']}").text
    assert 'id="publish"' not in c.get(f"/publications/{ids['real']}").text  # not a dry run
    assert "startad" in _flash(c, c.post(f"/publications/{ids['dry']}/publish", data={"csrf": ""}))
    (dag_id, conf, user), = fake.runs.values()
    assert dag_id == "brygga_offer_export" and user == "anna.operator"
    assert conf["plan_of"] == ids["dry"] and conf["dry_run"] is False and conf["codes"] == ["TKDAT"]
    assert "inte en provkörning" not in _flash(c, c.post(f"/publications/{ids['real']}/publish", data={"csrf": ""}))


def test_audit_search_by_personnummer_never_puts_it_in_a_url(store):
    seed(store)
    c = _client(store, session="s")
    page = c.get("/audit").text
    with store.transaction() as s:
        ops.audit(s, "anna.operator", "admission.handled", "nya_admission", "ADM-0", note="x")
        ops.audit(s, "bo.operator", "aterbud_case.close", "aterbud_case", "2", note="y")
        ops.audit(s, "bo.operator", "admission.handled", "nya_admission", "ADM-1", note="z")
    r = c.post("/audit", data={"personnummer": "19900101-1239", "csrf": _csrf(page)})
    assert r.status_code == 303
    url = r.headers["location"]
    assert "19900101" not in url and "1239" not in url and "person=" in url
    found = c.get(url).text
    rows = re.findall(r"<tr><td>[^<]+</td><td>([^<]+)</td><td>([^<]+) <code", found)
    # PNR_A's admission ADM-0 and case 2 (seed), not ADM-1 (no personnummer)
    assert sorted(rows) == [("anna.operator", "Markerad som hanterad"), ("bo.operator", "Ärende avslutat")]
    assert "19900101-****" in found and PNR_A not in found
    assert "inte ett giltigt" in _flash(c, c.post("/audit", data={"personnummer": "20010203-4567",
                                                                  "csrf": _csrf(page)}))
    forged = c.get("/audit", params={"person": "not-a-token"}).text
    assert "Inga poster matchar" in forged
    csv = c.get(url.replace("/audit?", "/audit.csv?"))
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0] == "at,actor,action,object_type,object_id,detail" and len(lines) == 3
    assert all("+01:00" in ln or "+02:00" in ln for ln in lines[1:])  # local time with offset


def test_overview_shows_runs_lag_and_links(store):
    seed(store)
    import datetime as dt

    runs = {"brygga_merit_sync": {"run_id": "scheduled__x", "state": "failed", "url": "/dags/x/runs/y",
                                  "start_date": dt.datetime(2027, 4, 1, 10, 0, tzinfo=dt.UTC), "end_date": None}}
    with store.transaction() as s:
        ops.checkpoint_set(s, "ladok-merits", 40, "e-1")
    c = _client(store, airflow=console.Airflow(dag_runs=lambda ids: runs, feed_head=lambda: 52))
    page = c.get("/").text
    assert "misslyckades" in page or "failed" in page
    assert "2027-04-01 12:00:00 +02:00" in page  # Stockholm summer time, with its offset
    assert re.search(r"sida <strong>40</strong> av 52:\s*<strong>12</strong> sidor efter", page)
    assert 'href="/unhandled-admissions"' in page and '<span class="n">4</span> ej hanterade' in page
    broken = _client(store, airflow=console.Airflow(dag_runs=lambda ids: 1 / 0, feed_head=lambda: 1 / 0))
    page = broken.get("/").text  # Airflow or Ladok failing never takes the page down
    assert "kunde inte läsas" in page and "Ladok svarar inte" in page


def test_certificates_page_shows_levels(store):
    certs = [{"peer": "ladok", "kind": "client", "subject": "CN=brygga.umu.se", "issuer": "CN=Sectigo",
              "not_after": "2027-01-02T00:00:00+00:00", "days_left": 5, "level": "7"},
             {"peer": "nya", "kind": "server", "note": "http: ingen TLS", "level": None}]
    c = _client(store, airflow=console.Airflow(certificates=lambda: certs))
    page = c.get("/certificates").text
    assert "CN=brygga.umu.se" in page and "Går ut inom 7 dagar" in page and 'class="level-7"' in page
    assert "2027-01-02 01:00:00 +01:00" in page
    assert '<span class="n">1</span> certifikat' in c.get("/").text


def test_certificates_page_shows_the_ladok_environment_and_the_rights_each_flow_lacks(store, world):
    """Against the Ladok simulator: who the certificate is, its environment (a plain-http Ladok:
    lokal), and the flows that read the feed losing uppfoljning.feeds when a Ladok administrator
    takes it from the integration's profile."""
    import requests

    from brygga import certificates, rights

    peer = world["ladok"].peer
    c = _client(store, airflow=console.Airflow(ladok_access=lambda: certificates.ladok_access(peer)))
    page = c.get("/certificates").text
    assert "brygga-integration@larosatet.example.se" in page and 'id="ladok-environment">lokal<' in page
    assert "uppfoljning.feeds" in page and 'class="bad"' not in page
    keep = [a for a in rights.SYSTEMAKTIVITETER if a != 90019]
    requests.post(f"{peer.base_url}/sim/behorigheter", json={"aktiviteter": keep}, timeout=10).raise_for_status()
    access = certificates.ladok_access(peer)
    lacking = {f["flow"]: f["missing"] for f in access["flows"] if not f["ok"]}
    assert lacking == {"brygga_merit_sync": ["uppfoljning.feeds"], "brygga_aterbud": ["uppfoljning.feeds"],
                       "brygga_schedule_export": ["uppfoljning.feeds"]}
    page = c.get("/certificates").text
    assert page.count('<td class="bad">uppfoljning.feeds</td>') == 3
    # an inactive profile grants nothing
    requests.post(f"{peer.base_url}/sim/behorigheter", json={"status": "INAKTIV"}, timeout=10).raise_for_status()
    assert not any(f["ok"] for f in certificates.ladok_access(peer)["flows"])


def test_a_held_schedule_plan_is_approved_or_rejected_from_the_schedule_page(store):
    """The guard held a full run that would end half the term: the Schemaexport page shows the
    plan and its removals; rejecting needs a note; approving enqueues them, starts a delta run
    and is audited; a viewer sees no button and a forged POST is 403."""
    import datetime as dt

    from brygga.config import PeerConfig
    from brygga.flows.schedule import sending
    from simulators._server import serve_in_thread
    from simulators.ladok.app import create_app as ladok_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState
    from simulators.schema.app import create_app as schema_app
    from simulators.schema.state import ScheduleState
    from tests.flows.test_schedule import SCOPE, TIMEEDIT, adapters, export

    st = LadokState(page_size=50)
    seed_catalogue(st, 7, 8, 2, "HT2027")
    st.seed_deltagande(st.seed_students(40, 7), [t for t in st.tillfallen.values() if not t.installt], 8, seed=7)
    with serve_in_thread(ladok_app(st)) as lad, serve_in_thread(schema_app(ScheduleState())) as sch:
        ladok, schedule = adapters(lad, sch)
        export(store, ladok, schedule)
        courses = [t for t in st.tillfallen.values() if t.startperiod == "HT2027" and t.utbildning.typ == "kurs"]
        for t in courses[: len(courses) // 2]:
            st.flytta_tillfalle(t.uid, dt.date(2028, 1, 17))
        summary, _ = export(store, ladok, schedule)
        plan = summary["guard"]["plan"]
        assert summary["guard"]["held"] and SCOPE.terms == ("HT2027",)
        fake = FakeAirflow()
        peer = PeerConfig("schema", sch.url, password="sim-api-key", extra={"format": "timeedit", **TIMEEDIT})
        c = _client(store, airflow=console.Airflow(peer=lambda name: peer, trigger=fake.trigger))
        page = c.get("/schedule").text
        assert 'id="held-alert"' in page and f'id="plan-{plan}"' in page and "Godkänn borttagningarna" in page
        assert courses[0].uid in page  # the removals are listed

        viewer = _client(store, who="ville.viewer", may=frozenset())
        assert "Godkänn borttagningarna" not in viewer.get("/schedule").text
        assert viewer.post(f"/schedule/plans/{plan}/approve", data={"csrf": ""}).status_code == 403

        assert "skriv varför" in _flash(c, c.post(f"/schedule/plans/{plan}/reject", data={"csrf": "", "note": " "}))
        flash = _flash(c, c.post(f"/schedule/plans/{plan}/approve", data={"csrf": ""}))
        assert flash.startswith("Godkänd: ") and "en körning skickar dem nu" in flash
        (dag_id, conf, user), = fake.runs.values()
        assert (dag_id, conf, user) == ("brygga_schedule_export", {"mode": "delta", "format": "timeedit"},
                                        "anna.operator")
        assert "redan godkänd" in _flash(c, c.post(f"/schedule/plans/{plan}/approve", data={"csrf": ""}))
        assert [(a, o) for a, o, _ in _audit(store, "schedule.removals_approved")] == [("anna.operator", str(plan))]
        sending.send(store, schedule)
        assert 'id="no-held"' in c.get("/schedule").text


def test_subscriptions_are_seen_by_all_and_changed_by_operators_only_audited(store):
    """Bevakningar: an operator adds a subscription (a bad address is refused with the reason),
    changes its threshold and turns it off; a viewer sees it without a form and cannot post."""
    from brygga.flows import alerts

    c = _client(store)
    page = c.get("/alerts").text
    assert 'id="no-subscriptions"' in page and 'id="new-subscription"' in page
    flash = _flash(c, c.post("/alerts", data={"csrf": "", "kind": "quarantine", "threshold": "3",
                                              "recipients": "drift@uni.example; 19900101-1234"}))
    assert "varken e-postadresser eller webhooks" in flash and "19900101-1234" not in flash  # masked in the page too
    flash = _flash(c, c.post("/alerts", data={"csrf": "", "kind": "quarantine", "threshold": "3",
                                              "recipients": "drift@uni.example; it@uni.example"}))
    assert "Bevakning 1 (Karantän) sparad" in flash
    (sub,) = alerts.subscriptions(store)
    assert (sub["threshold"], sub["recipients"], sub["enabled"]) == (3, "drift@uni.example, it@uni.example", True)
    _flash(c, c.post(f"/alerts/{sub['id']}", data={"csrf": "", "kind": "quarantine", "threshold": "5,5",
                                                    "for_minutes": "2", "recipients": "drift@uni.example"}))
    (sub,) = alerts.subscriptions(store)
    assert (sub["threshold"], sub["for_minutes"], sub["enabled"]) == (5.5, 2, False)  # no "enabled": turned off
    page = c.get("/alerts").text
    assert 'id="sub-1"' in page and 'value="drift@uni.example"' in page

    viewer = _client(store, who="ville.viewer", may=frozenset())
    html = viewer.get("/alerts").text
    assert "Karantän" in html and 'id="new-subscription"' not in html and "<form" not in html.split("<main>")[1]
    assert viewer.post("/alerts", data={"csrf": "", "kind": "drift", "recipients": "a@uni.example"}).status_code == 403
    with store.transaction() as s:
        audit = [(a.actor, a.action) for a in s.scalars(select(AuditLog).where(AuditLog.action.like("alert.%"))
                                                        .order_by(AuditLog.id))]
    assert audit == [("anna.operator", "alert.subscribed"), ("anna.operator", "alert.changed")]


def test_an_operator_adds_a_units_digest_with_a_webhook_beside_the_mail(store):
    from brygga.flows import alerts

    c = _client(store)
    flash = _flash(c, c.post("/alerts", data={"csrf": "", "kind": "quarantine", "recipients": "a@uni.example",
                                              "organisation": "DATA"}))
    assert "bara för sammandrag" in flash
    flash = _flash(c, c.post("/alerts", data={"csrf": "", "kind": "digest", "organisation": "DATA",
                                              "recipients": "data@uni.example, webhook:brygga_teams"}))
    assert "(Dagligt sammandrag per organisationsenhet) sparad" in flash
    (sub,) = alerts.subscriptions(store)
    assert (sub["kind"], sub["organisation"], sub["recipients"]) == ("digest", "DATA",
                                                                     "data@uni.example, webhook:brygga_teams")
    page = c.get("/alerts").text
    assert 'name="organisation" value="DATA"' in page and "inget ännu" in page
    _flash(c, c.post(f"/alerts/{sub['id']}", data={"csrf": "", "kind": "digest", "organisation": "",
                                                    "recipients": "alla@uni.example", "enabled": "on"}))
    (sub,) = alerts.subscriptions(store)
    assert sub["organisation"] is None and sub["enabled"]  # every unit now


def test_an_operator_replays_a_nya_stream_from_a_swedish_time_dry_run_first(store):
    """Läs om från en tidpunkt on the Karantän page: the form's time is Swedish time; the dry run
    says from where and changes nothing, the run moves the checkpoint (audited); a viewer has no
    form and may not post."""
    import datetime as dt

    from brygga.store import ops
    from brygga.store.models import CheckpointHistory, FeedCheckpoint

    name = "nya-admissions:HT2027"
    with store.transaction() as s:  # where the stream stood: 10 at 12:00 UTC, 25 at 13:30 UTC
        s.add(FeedCheckpoint(name=name, page=40, events_seen=40))
        s.add_all([CheckpointHistory(name=name, position=10, at=dt.datetime(2027, 8, 20, 12, 0, tzinfo=dt.UTC)),
                   CheckpointHistory(name=name, position=25, at=dt.datetime(2027, 8, 20, 13, 30, tzinfo=dt.UTC)),
                   CheckpointHistory(name=name, position=40, at=dt.datetime(2027, 8, 20, 15, 0, tzinfo=dt.UTC))])
    c = _client(store)
    page = c.get("/quarantine").text
    assert 'id="checkpoint-list"' in page and 'value="nya-admissions:HT2027"' in page
    form = {"csrf": "", "name": name, "since": "2027-08-20T15:00", "reason": "NyA skickade om"}  # 13:00 UTC
    flash = _flash(c, c.post("/checkpoints/replay", data={**form, "dry_run": "1"}))
    assert "Provkörning" in flash and "sekvens 10" in flash and "står nu på 40" in flash
    with store.transaction() as s:
        assert ops.checkpoint_get(s, name).page == 40
    flash = _flash(c, c.post("/checkpoints/replay", data={**form, "since": "2027-08-20T16:00", "dry_run": ""}))
    assert "läses om från sekvens 25" in flash  # 14:00 UTC
    with store.transaction() as s:
        assert ops.checkpoint_get(s, name).page == 25
        actions = [a.action for a in s.scalars(select(AuditLog).where(AuditLog.object_id == name).order_by(AuditLog.id))]
    assert actions == ["checkpoint.set", "checkpoint.replay"]
    assert "en tidpunkt" in _flash(c, c.post("/checkpoints/replay", data={**form, "since": "i går"}))

    viewer = _client(store, who="ville.viewer", may=frozenset())
    assert "/checkpoints/replay" not in viewer.get("/quarantine").text
    assert viewer.post("/checkpoints/replay", data=form).status_code == 403
