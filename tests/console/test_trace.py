"""Var är studenten? (issue 32 §2): one person's records from every flow on one page, found by
personnummer (posted, never in the URL) or by a Ladok uid / NyA admission id; masked. On SQLite
and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient

from brygga import console
from brygga.store import ops
from brygga.store.models import (
    ArchivePackage,
    AterbudCase,
    Drift,
    NyaAdmission,
    NyaApplicant,
    NyaMerit,
    ScheduleObject,
    UnhandledAdmission,
)

PNR = "199001011239"
OTHER = "200102034567"
T0 = dt.datetime(2027, 8, 20, 12, 0, tzinfo=dt.UTC)


def _seed(store):
    with store.transaction() as s:
        s.add_all([
            NyaAdmission(admission_id="A-1", round="HT2027", sequence=1, personnummer=PNR, tillfalleskod="27611",
                         state="placed", student_uid="stud-1", utbildningstillfalle_uid="inst-1",
                         antagning_uid="ant-1", placed_at=T0, record={}),
            NyaAdmission(admission_id="A-2", round="HT2027", sequence=2, personnummer=PNR, tillfalleskod="27612",
                         state="unhandled", record={}),
            NyaAdmission(admission_id="B-1", round="HT2027", sequence=3, personnummer=OTHER, tillfalleskod="27611",
                         state="placed", student_uid="stud-2", record={}),
            UnhandledAdmission(nya_admission_id="A-2", round="HT2027", personnummer=PNR, hinder="tillfalle.installt",
                               reason="Tillfället är inställt", admission={}),
            AterbudCase(nya_aterbud_id="NA-1", nya_admission_id="A-1", round="HT2027", personnummer=PNR, utbildningstillfalle_uid="inst-1",
                        cause="registered", suggested_action="early_avbrott", status="open"),
            NyaMerit(ref="ladok:resultat:r-1", merit_id="ladok:resultat:r-1", personnummer=PNR, type="result",
                     version=2, state="present", held=True, source="feed"),
            NyaApplicant(round="HT2027", personnummer=PNR, sequence=5, snapshot="done", merits=3),
            ScheduleObject(target="timeedit", kind="student", ext_id="stud-1", content_hash="h", version=1,
                           status="active", updated_at=T0),
            ScheduleObject(target="timeedit", kind="membership", ext_id="inst-1:stud-1", content_hash="h", version=3,
                           status="deleted", updated_at=T0),
            ScheduleObject(target="timeedit", kind="membership", ext_id="inst-1:stud-2", content_hash="h", version=1,
                           status="active", updated_at=T0),
            ArchivePackage(package_id="uuid:pkg-1", subject_kind="kurstillfalle", subject_uid="inst-1",
                           content_sha256="0" * 64, status="accepted"),
            Drift(run_id=1, round="HT2027", kind="aterbud.only_in_nya", subject="A-1", personnummer=PNR, detail={},
                  action="report_aterbud", status="open"),
        ])
        ops.audit(s, "anna.operator", "admission.retry", "nya_admission", "A-2", note="ompröva")
        ops.audit(s, "anna.operator", "admission.retry", "nya_admission", "B-1", note="another person")


def _client(store):
    return TestClient(console.create_app(store, lambda r: console.Principal("anna.operator", frozenset(), None),
                                         secret="s" * 32), follow_redirects=False)


def test_one_page_shows_a_persons_records_from_every_flow(store):
    _seed(store)
    c = _client(store)
    r = c.post("/trace", data={"csrf": "", "what": "19900101-1239"})
    assert r.status_code == 303 and "1239" not in r.headers["location"] and "person=" in r.headers["location"]
    html = c.get(r.headers["location"]).text
    assert "19900101-****" in html and not re.search(r"19900101-?1239", html)
    for section in ("t-admissions", "t-queue", "t-cases", "t-merits", "t-applications", "t-schedule", "t-archive",
                    "t-drift", "t-audit"):
        assert f'id="{section}"' in html, section
    assert "ant-1" in html and "inst-1:stud-1" in html and "uuid:pkg-1" in html and "ladok:resultat:r-1" in html
    assert "A-2" in html and "B-1" not in html and "inst-1:stud-2" not in html  # nothing of another person
    assert "ompröva" in html and "another person" not in html


def test_found_by_a_ladok_uid_or_a_nya_admission_id_and_a_bad_number_says_so(store):
    _seed(store)
    c = _client(store)
    for ident in ("stud-1", "ant-1", "A-2"):
        r = c.post("/trace", data={"csrf": "", "what": ident})
        html = c.get(r.headers["location"]).text
        assert 'id="person"' in html and "19900101-****" in html and 'id="t-merits"' in html, ident
    r = c.post("/trace", data={"csrf": "", "what": "unknown-uid"})
    assert 'id="not-found"' in c.get(r.headers["location"]).text
    r = c.post("/trace", data={"csrf": "", "what": "19900101-1230"})  # a wrong check digit
    assert "flash=" in r.headers["location"] and "1230" not in r.headers["location"]
    assert "inte ett giltigt personnummer" in c.get(r.headers["location"]).text


def test_the_messages_a_person_caused_carry_their_trace_and_one_is_sent_again_audited(store):
    """Meddelanden till NyA: the återbud report and merit versions this person's records caused, with
    the trace id each carries (the återbud report's is its admission's). An operator sends one sent
    message again (a note required, audited); a viewer sees no form."""
    import brygga.console as bc
    from brygga import tracing
    from brygga.flows.aterbud import to_nya
    from brygga.flows.merits import ledger
    from brygga.records import Merit
    from brygga.store.models import AuditLog, OutboxMessage

    _seed(store)
    tp = tracing.new()
    with store.transaction() as s:
        s.get(NyaAdmission, "A-1").traceparent = tp
    to_nya.report_for_drift(store, drift_id=1, admission_id="A-1", date="2027-08-21", antagning_uid="ant-1",
                            actor="anna.operator")
    with store.transaction() as s:
        ledger.queue(s, [Merit(merit_id="ladok:resultat:r-9", personnummer=PNR, type="resultat",
                               utbildningskod="MA001", credits="7.5", grade="VG", date="2027-06-01")],
                     kind="merit", source="feed", correlation="merits:test")
        for m in s.query(OutboxMessage):
            m.status, m.sent_at = "sent", T0
        rows = {m.idempotency_key: (m.id, m.traceparent) for m in s.query(OutboxMessage)}
    report_id, report_tp = rows["nya:aterbud:A-1:drift:1"]
    assert tracing.trace_id(report_tp) == tracing.trace_id(tp) and report_tp != tp  # the admission's trace, a new span
    merit_id, merit_tp = rows["nya:merit:ladok:resultat:r-9:1"]
    assert tracing.valid(merit_tp) and tracing.trace_id(merit_tp) != tracing.trace_id(tp)

    operator = TestClient(bc.create_app(store, lambda r: bc.Principal("anna.operator", frozenset(bc.AREAS), None),
                                        secret="s" * 32), follow_redirects=False)
    loc = operator.post("/trace", data={"csrf": "", "what": "19900101-1239"}).headers["location"]
    html = operator.get(loc).text
    assert 'id="t-messages"' in html and tracing.trace_id(tp) in html and tracing.trace_id(merit_tp) in html
    assert f'action="/trace/messages/{report_id}/resend"' in html
    back = re.search(r'name="back" value="([^"]+)"', html).group(1).replace("&amp;", "&")
    r = operator.post(f"/trace/messages/{report_id}/resend", data={"csrf": "", "note": " ", "back": back})
    assert r.status_code == 303 and r.headers["location"].startswith(back + "&flash=")
    assert "varför" in operator.get(r.headers["location"]).text  # no note: refused, says why
    r = operator.post(f"/trace/messages/{report_id}/resend", data={"csrf": "", "note": "NyA tappade det", "back": back})
    assert "skickas om" in operator.get(r.headers["location"]).text
    r = operator.post(f"/trace/messages/{report_id}/resend", data={"csrf": "", "note": "igen", "back": back})
    assert "väntar redan" in operator.get(r.headers["location"]).text  # a second click: already due
    with store.transaction() as s:
        m = s.get(OutboxMessage, report_id)
        assert (m.status, m.attempts, m.idempotency_key) == ("pending", 0, "nya:aterbud:A-1:drift:1")
        assert s.get(OutboxMessage, merit_id).status == "sent"
        (a,) = s.query(AuditLog).filter(AuditLog.action == "outbox.resent").all()
        assert a.actor == "anna.operator" and a.detail["note"] == "NyA tappade det"
        assert a.detail["trace"] == tracing.trace_id(tp)

    viewer = _client(store)  # may nothing
    assert "/resend" not in viewer.get(loc).text
    assert viewer.post(f"/trace/messages/{merit_id}/resend", data={"csrf": "", "note": "x"}).status_code == 403
