"""Återbud reconciliation NyA ↔ Ladok (brygga.flows.aterbud) against the real simulators over HTTP,
on SQLite and PostgreSQL: both directions, återbudsärenden and their actions, the 3-week rule,
echo prevention, programme återbud, settings, crash-repeat and re-runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from adapters.ladok import LadokAdapter
from adapters.nya import NyaAdapter
from brygga.connections import PeerConfig
from brygga.flows import aterbud
from brygga import views
from brygga.store.models import (
    AterbudCase,
    AuditLog,
    FeedCheckpoint,
    InboxMessage,
    NyaAdmission,
    OutboxMessage,
    Quarantine,
    UnhandledAdmission,
)
from simulators import datagen
from simulators._server import serve_in_thread

pytestmark = pytest.mark.integration

ROUND = "HT2027"


class World:
    """Fresh Ladok and NyA simulators; admissions are made in NyA (offer = Ladok instance uid),
    placed in Ladok with Anmalningsnummer = AdmissionId, and recorded in ``nya_admission`` as the
    admission import would."""

    def __init__(self, store):
        from simulators.ladok.app import create_app as ladok_app
        from simulators.ladok.catalogue import seed_catalogue
        from simulators.ladok.state import LadokState
        from simulators.nya.app import create_app as nya_app
        from simulators.nya.state import NyaState, seed

        self.store = store
        self.ladok_state = LadokState(page_size=10)
        seed_catalogue(self.ladok_state, 3, 12, 3, ROUND)
        self.nya_state = seed(NyaState(), 5)
        self._servers = [serve_in_thread(ladok_app(self.ladok_state)), serve_in_thread(nya_app(self.nya_state))]
        self.ladok_url, self.nya_url = (s.url for s in self._servers)
        self.ladok = LadokAdapter(PeerConfig("ladok", self.ladok_url))
        self.nya = NyaAdapter(PeerConfig("nya", self.nya_url))
        self.people = iter(datagen.people(40, 4242, protected_share=0, samordning_share=0))
        tf = self.ladok_state.tillfallen.values()
        self.programme = next(t for t in tf if t.utbildning.typ == "program" and len(t.ingaende) >= 2)
        self.package = [self.ladok_state.tillfalle(u) for u in self.programme.ingaende]
        self.courses = [t for t in tf if t.utbildning.typ == "kurs" and not t.installt and not t.paketeringar]
        self._published: set[str] = set()

    def close(self) -> None:
        for s in self._servers:
            s.stop()

    # -- NyA ---------------------------------------------------------------------------------
    def _publish(self, t, package=None) -> None:
        from simulators.nya.state import Offer

        if t.uid in self._published:
            return
        kind = "programme-internal" if package is not None else "ordinary"
        offer = Offer(t.uid, kind, t.utbildning.kod, t.kod, t.utbildning.sv, t.utbildning.en,
                      Decimal(t.utbildning.omfattning), t.start, t.slut, None, t.takt, 30,
                      *((package.utbildning.kod, package.uid) if package is not None else ()))
        out = self.nya_state.publish_offers(ROUND, kind, [offer])
        assert out[0][1] in ("created", "unchanged"), out
        self._published.add(t.uid)

    def nya_admission(self, person, t, package=None) -> str:
        from simulators.nya.state import Applicant

        self._publish(t, package)
        self.nya_state.add_applicants(ROUND, [Applicant(person.personnummer, person.fornamn, person.efternamn,
                                                        [t.uid], 20.0, auto_accept=True)])
        self.nya_state.run_selection(ROUND)
        rs = self.nya_state.round_state(ROUND)
        return rs.admission_by_key[(person.personnummer, t.uid)]

    def nya_aterbud(self, admission_id: str, date: dt.date, origin: str = "applicant"):
        outcome, _, rec, reason = self.nya_state.register_aterbud(ROUND, admission_id=admission_id, date=date,
                                                                  origin=origin)
        assert outcome == "registered", reason
        return rec

    def nya_aterbud_of(self, admission_id: str):
        rs = self.nya_state.round_state(ROUND)
        return [a for a in rs.aterbud if a.admission_id == admission_id]

    # -- Ladok + store -------------------------------------------------------------------------
    def student(self, person):
        from simulators.ladok.state import LadokError

        try:
            return self.ladok_state.etablera_student(person.personnummer, person.fornamn, person.efternamn, emit=False)
        except LadokError:
            return self.ladok_state.student_by_pnr(person.personnummer)

    def admit(self, t, *, person=None, package_antagning=None, state: str = "placed", in_store: bool = True):
        """An admission in NyA, placed in Ladok, recorded in the store. Returns (person, admission id, antagning)."""
        from simulators.ladok.state import Placering

        person = person or next(self.people)
        package_t = package_antagning.tillfalle if package_antagning is not None else None
        adm_id = self.nya_admission(person, t, package_t)
        st = self.student(person)
        a = None
        if state in ("placed", "handled"):
            a, _ = self.ladok_state.placera(Placering(st.uid, t.uid, adm_id, kurspaketeringstillfalle_uid=(
                package_t.uid if package_t is not None else None)))
        if in_store:
            with self.store.transaction() as s:
                s.add(NyaAdmission(
                    admission_id=adm_id, round=ROUND, sequence=1, personnummer=person.personnummer, offer_id=t.uid,
                    utbildningskod=t.utbildning.kod, tillfalleskod=t.kod, programme_internal=package_t is not None,
                    package_id=package_t.uid if package_t is not None else None, fee_liable=False, conditions=[],
                    record={}, state=state, attempts=0, student_uid=st.uid,
                    utbildningstillfalle_uid=t.uid if a else None, antagning_uid=a.uid if a else None,
                    package_uid=package_t.uid if package_t is not None and a else None))
        return person, adm_id, a

    def sync(self):
        return aterbud.sync(self.store, self.nya, self.ladok)


@pytest.fixture
def world(store):
    w = World(store)
    yield w
    w.close()


def _count(store, model, *where) -> int:
    with store.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _snapshot(store) -> dict:
    """Every table the flow writes, as comparable rows (re-runs must leave it unchanged)."""
    with store.transaction() as s:
        return {
            "cases": sorted((c.nya_aterbud_id, c.cause, c.suggested_action, c.status)
                            for c in s.scalars(select(AterbudCase))),
            "inbox": sorted((m.source, m.message_id, m.status) for m in s.scalars(select(InboxMessage))),
            "outbox": sorted((m.idempotency_key, m.status) for m in s.scalars(select(OutboxMessage))),
            "admissions": sorted((a.admission_id, a.state, a.aterbud_date) for a in s.scalars(select(NyaAdmission))),
            "audit": s.scalar(select(func.count()).select_from(AuditLog)),
            "quarantine": s.scalar(select(func.count()).select_from(Quarantine)),
        }


def _cases(store) -> list[AterbudCase]:
    with store.transaction() as s:
        rows = list(s.scalars(select(AterbudCase).order_by(AterbudCase.id)))
        s.expunge_all()
        return rows


# ============================================================================ NyA → Ladok

def test_nya_aterbud_is_applied_in_ladok_once_and_not_echoed(world, store):
    course = world.courses[0]
    _, adm_id, a = world.admit(course)
    rec = world.nya_aterbud(adm_id, dt.date(2027, 8, 10))

    result = world.sync()
    assert result["nya_to_ladok"]["applied"] == 1
    ab = world.ladok_state.antagning(a.uid).aterbud
    assert ab is not None and ab.datum == dt.date(2027, 8, 10) and ab.externt_system == "NyA"
    assert ab.orsak.endswith("meddelat.av.studenten")
    # Ladok's AterbudEvent (ExterntSystem=NyA) is not reported back to NyA.
    assert result["ladok_to_nya"]["echo"] == 1 and result["ladok_to_nya"]["enqueued"] == 0
    assert _count(store, OutboxMessage) == 0
    assert [x.aterbud_id for x in world.nya_aterbud_of(adm_id)] == [rec.aterbud_id]
    assert _cases(store) == []
    with store.transaction() as s:
        assert s.get(NyaAdmission, adm_id).aterbud_date == "2027-08-10"
        assert s.get(FeedCheckpoint, aterbud.checkpoint_name(ROUND)).page > rec.sequence
        audit = [(e.actor, e.action) for e in s.scalars(select(AuditLog).where(AuditLog.object_id == adm_id))]
    assert ("brygga:aterbud-sync", "aterbud.applied") in audit

    before = _snapshot(store)
    again = world.sync()
    assert again["nya_to_ladok"]["read"] == 0 and again["ladok_to_nya"]["aterbud_events"] == 0
    assert _snapshot(store) == before


def test_repeat_after_crash_before_commit_is_success_not_a_case(world, store):
    """Ladok already has the återbud from NyA (we applied it, then crashed before the commit)."""
    course = world.courses[0]
    _, adm_id, a = world.admit(course)
    world.nya_aterbud(adm_id, dt.date(2027, 8, 11))
    world.ladok.aterbud(a.uid, "2027-08-11", externt_system="NyA")  # the call of the crashed run

    out = aterbud.nya_to_ladok(store, world.nya, world.ladok)
    assert out["already_applied"] == 1 and out["case"] == 0
    assert _cases(store) == []


def test_already_aterbud_in_ladok_becomes_a_case_that_staff_close(world, store):
    from simulators.ladok.state import ORSAK

    course = world.courses[1]
    person, adm_id, a = world.admit(course)
    world.ladok_state.aterbud(a.uid, dt.date(2027, 8, 1), ORSAK + "meddelat.av.studenten", None)  # staff, in Ladok
    rec = world.nya_aterbud(adm_id, dt.date(2027, 8, 2))

    out = aterbud.nya_to_ladok(store, world.nya, world.ladok)
    assert out["case"] == 1
    (case,) = _cases(store)
    assert (case.cause, case.suggested_action, case.status) == ("already_aterbud", "none", "open")
    assert case.nya_aterbud_id == rec.aterbud_id and case.nya_admission_id == adm_id and case.round == ROUND
    assert case.reported_at == dt.date(2027, 8, 2) and case.antagning_uid == a.uid
    assert case.education == f"{course.utbildning.kod} {course.utbildning.sv}"
    assert case.study_start == course.start

    listed = views.list_aterbud(store, status="open", round=ROUND, cause="already_aterbud", oldest_first=True)["rows"]
    assert [c["id"] for c in listed] == [case.id]
    assert listed[0]["personnummer"].endswith("****")  # masked for people and logs
    assert views.list_aterbud(store, cause="registered")["rows"] == []

    closed = aterbud.close_case(store, case.id, actor="handlaggare@uni.se", note="Återbud fanns redan i Ladok")
    assert closed["status"] == "closed" and closed["closed_by"] == "handlaggare@uni.se"
    assert views.list_aterbud(store, status="open")["rows"] == []
    before = _snapshot(store)
    aterbud.close_case(store, case.id, actor="other@uni.se", note="again")  # closing twice changes nothing
    assert _snapshot(store) == before
    with store.transaction() as s:
        acts = [(e.actor, e.action) for e in s.scalars(select(AuditLog).where(AuditLog.object_type == "aterbud_case"))]
    assert acts == [("brygga:aterbud-sync", "aterbud_case.created"), ("handlaggare@uni.se", "aterbud_case.close")]

    # The återbud staff entered in Ladok is not reported: NyA already has one for the admission.
    res = world.sync()
    assert res["ladok_to_nya"]["echo"] == 1 and res["ladok_to_nya"]["enqueued"] == 0
    assert len(world.nya_aterbud_of(adm_id)) == 1


@pytest.mark.parametrize("day, early", [(20, True), (21, False), (22, False)])
def test_registered_case_three_week_rule_and_apply(world, store, day, early):
    course = world.courses[2]
    _, adm_id, a = world.admit(course)
    world.ladok_state.registrera(a.uid, 1, course.start)
    reported = course.start + dt.timedelta(days=day)
    world.nya_aterbud(adm_id, reported)

    out = aterbud.nya_to_ladok(store, world.nya, world.ladok)
    assert out["case"] == 1 and out["applied"] == 0
    (case,) = _cases(store)
    assert case.cause == "registered"
    assert case.suggested_action == ("early_avbrott" if early else "avbrott")
    assert case.reported_at == reported and case.study_start == course.start
    assert world.ladok_state.antagning(a.uid).aterbud is None

    done = aterbud.apply_case(store, world.ladok, case.id, actor="handlaggare@uni.se")
    assert done["status"] == "closed" and done["result"]["early"] is early
    assert done["result"]["avbrott_date"] == reported.isoformat()
    la = world.ladok_state.antagning(a.uid)
    assert la.avbrott is not None and la.avbrott.datum == reported and la.avbrott.tidigt is early
    assert la.tillstand == ("tidigtavbrott" if early else "avbrott")
    assert [r.aterkallad for r in la.registreringar] == [reported if early else None]
    with store.transaction() as s:
        acts = [(e.actor, e.action) for e in s.scalars(
            select(AuditLog).where(AuditLog.object_type == "aterbud_case").order_by(AuditLog.id))]
    assert acts[1:] == [("handlaggare@uni.se", "aterbud_case.apply"), ("handlaggare@uni.se", "aterbud_case.close")]

    before = _snapshot(store)
    assert aterbud.apply_case(store, world.ladok, case.id, actor="x")["result"] == "already closed"
    assert world.sync()["nya_to_ladok"]["case"] == 0
    assert _snapshot(store) == before


def test_suggested_action_boundary_is_pure():
    start = dt.date(2027, 8, 30)
    assert aterbud.suggested_action("registered", start + dt.timedelta(days=20), start) == "early_avbrott"
    assert aterbud.suggested_action("registered", "2027-09-20", "2027-08-30") == "avbrott"
    assert aterbud.suggested_action("registered", start + dt.timedelta(days=22), start) == "avbrott"
    assert aterbud.suggested_action("registered", start - dt.timedelta(days=3), start) == "early_avbrott"
    assert aterbud.suggested_action("already_aterbud", start, start) == "none"
    assert aterbud.suggested_action("not_accepted", start, start) == "aterbud"


def test_pending_and_unhandled_admissions_are_declined_never_placed(world, store):
    _, pending_id, _ = world.admit(world.courses[0], state="pending")
    _, unhandled_id, _ = world.admit(world.courses[1], state="unhandled")
    with store.transaction() as s:
        s.add(UnhandledAdmission(nya_admission_id=unhandled_id, round=ROUND, hinder="redan.paborjat", reason="x",
                                 candidates=[], admission={}, status="open"))
    world.nya_aterbud(pending_id, dt.date(2027, 8, 5))
    world.nya_aterbud(unhandled_id, dt.date(2027, 8, 6))

    out = aterbud.nya_to_ladok(store, world.nya, world.ladok)
    assert out["declined"] == 2 and out["case"] == 0
    with store.transaction() as s:
        assert s.get(NyaAdmission, pending_id).state == "declined"
        assert s.get(NyaAdmission, unhandled_id).state == "declined"
        u = s.scalars(select(UnhandledAdmission)).one()
        assert (u.status, u.resolution) == ("resolved", "återbud")


def test_a_pending_admission_that_ladok_placed_for_a_process_that_died_gets_its_aterbud_in_ladok(world, store):
    """The placement process died after Ladok placed the admission and before it recorded it (the
    store still says pending); NyA's återbud then arrives. Ladok's study plan shows the placement:
    the återbud is applied there and the admission recorded placed — not declined, which left the
    placement in Ladok without its återbud (found by the fault-injection harness, seed 191)."""
    from simulators.ladok.state import Placering

    person, adm_id, _ = world.admit(world.courses[0], state="pending")
    st = world.student(person)
    placed, _ = world.ladok_state.placera(Placering(st.uid, world.courses[0].uid, adm_id))  # the lost try's
    world.nya_aterbud(adm_id, dt.date(2027, 8, 5))

    out = aterbud.nya_to_ladok(store, world.nya, world.ladok)
    assert out["applied"] == 1 and out["declined"] == 0
    assert world.ladok_state.antagning(placed.uid).aterbud is not None
    with store.transaction() as s:
        row = s.get(NyaAdmission, adm_id)
        assert (row.state, row.antagning_uid, row.aterbud_date) == ("placed", placed.uid, "2027-08-05")


def test_admission_unknown_to_the_store(world, store):
    """Placed in Ladok by hand (not in the store): found in the study plan and applied. Not in Ladok
    at all: nothing to do there (skipped, audited); the admission import will record it declined."""
    _, by_hand, a = world.admit(world.courses[0], in_store=False)
    _, nowhere, _ = world.admit(world.courses[1], state="pending", in_store=False)
    world.nya_aterbud(by_hand, dt.date(2027, 8, 7))
    world.nya_aterbud(nowhere, dt.date(2027, 8, 8))

    out = aterbud.nya_to_ladok(store, world.nya, world.ladok)
    assert out["applied"] == 1 and out["not_in_ladok"] == 1 and out["case"] == 0
    assert world.ladok_state.antagning(a.uid).aterbud.externt_system == "NyA"
    with store.transaction() as s:
        assert s.scalars(select(AuditLog.action).where(AuditLog.object_id == nowhere)).all() == ["aterbud.not_in_ladok"]


def test_not_accepted_from_nya_makes_cases_and_apply_enters_the_aterbud(world, store):
    aterbud.set_settings(store, actor="admin@uni.se", accept_from_nya=False)
    assert aterbud.settings(store) == {aterbud.SETTING_ACCEPT_FROM_NYA: False,
                                       aterbud.SETTING_STUDENTS_MAY_ENTER: True}
    _, adm_id, a = world.admit(world.courses[0])
    world.nya_aterbud(adm_id, dt.date(2027, 8, 12))

    out = aterbud.nya_to_ladok(store, world.nya, world.ladok)
    assert out["case"] == 1 and out["applied"] == 0
    assert world.ladok_state.antagning(a.uid).aterbud is None
    (case,) = _cases(store)
    assert (case.cause, case.suggested_action) == ("not_accepted", "aterbud")

    done = aterbud.apply_case(store, world.ladok, case.id, actor="handlaggare@uni.se", note="Bekräftat med studenten")
    assert done["status"] == "closed" and done["note"] == "Bekräftat med studenten"
    assert world.ladok_state.antagning(a.uid).aterbud.datum == dt.date(2027, 8, 12)
    with store.transaction() as s:
        setting_audit = s.scalars(select(AuditLog).where(AuditLog.action == "setting.set")).one()
    assert (setting_audit.actor, setting_audit.detail["new"]) == ("admin@uni.se", False)
    # The återbud we entered from the case is NyA's own: not echoed back.
    res = world.sync()
    assert res["ladok_to_nya"]["enqueued"] == 0 and len(world.nya_aterbud_of(adm_id)) == 1


# ============================================================================ Ladok → NyA

def test_staff_aterbud_in_ladok_is_reported_to_nya_once_and_not_applied_back(world, store):
    from simulators.ladok.state import ORSAK

    _, adm_id, a = world.admit(world.courses[0])
    world.ladok_state.aterbud(a.uid, dt.date(2027, 8, 14), ORSAK + "meddelat.av.studenten", None)

    res = world.sync()
    assert res["ladok_to_nya"]["enqueued"] == 1 and res["send"]["registered"] == 1
    (rec,) = world.nya_aterbud_of(adm_id)
    assert (rec.origin, rec.date, rec.source) == ("ladok", dt.date(2027, 8, 14), "ladok")
    assert rec.source_reference == f"ladok:tillfallesantagning:{a.uid}"
    with store.transaction() as s:
        (msg,) = s.scalars(select(OutboxMessage)).all()
        assert (msg.status, msg.payload["entered_by"]) == ("sent", "staff")
        assert s.get(NyaAdmission, adm_id).aterbud_date == "2027-08-14"

    # Next round trip: NyA's GetAterbud shows it with Origin=ladok; it is not applied back to Ladok.
    before = _snapshot(store)
    res = world.sync()
    assert res["nya_to_ladok"]["echo"] == 1 and res["nya_to_ladok"]["applied"] == 0
    assert res["send"]["requests"] == 0 and _cases(store) == []
    after = _snapshot(store)
    assert after["outbox"] == before["outbox"] and after["cases"] == before["cases"]
    assert len(world.nya_aterbud_of(adm_id)) == 1
    before = _snapshot(store)
    world.sync()
    assert _snapshot(store) == before


def test_student_aterbud_in_ladok_and_the_settings(world, store):
    _, adm1, a1 = world.admit(world.courses[0])
    _, adm2, a2 = world.admit(world.courses[1])
    _, adm3, a3 = world.admit(world.courses[2])

    # Students may enter återbud in Ladok's student web (Ladok's setting on): reported like staff's.
    r = requests.post(f"{world.ladok_url}/sim/student/aterbud", json={"tillfallesantagning_uid": a1.uid,
                                                                       "datum": "2027-08-15"}, timeout=10)
    assert r.status_code == 200 and r.json()["aterbud"]["av_student"] is True
    # Ladok's setting off: the student web refuses.
    requests.post(f"{world.ladok_url}/sim/installningar", json={"studenter_far_lamna_aterbud": False}, timeout=10)
    r = requests.post(f"{world.ladok_url}/sim/student/aterbud", json={"tillfallesantagning_uid": a2.uid}, timeout=10)
    assert r.status_code == 403 and r.json()["key"] == "studiedeltagande.hinder.aterbud.student.ej.tillatet"
    assert world.ladok_state.antagning(a2.uid).aterbud is None
    requests.post(f"{world.ladok_url}/sim/installningar", json={"studenter_far_lamna_aterbud": True}, timeout=10)

    res = world.sync()
    assert res["ladok_to_nya"]["enqueued"] == 1 and res["send"]["registered"] == 1
    assert [x.origin for x in world.nya_aterbud_of(adm1)] == ["ladok"]
    with store.transaction() as s:
        assert s.scalars(select(OutboxMessage)).one().payload["entered_by"] == "student"

    # Brygga's setting says students may not, yet one did (Ladok configured otherwise): it is a fact in
    # Ladok, so NyA is told, and the audit log warns staff.
    aterbud.set_settings(store, actor="admin@uni.se", students_may_enter=False)
    r = requests.post(f"{world.ladok_url}/sim/student/aterbud", json={"tillfallesantagning_uid": a3.uid,
                                                                       "datum": "2027-08-16"}, timeout=10)
    assert r.status_code == 200
    res = world.sync()
    assert res["ladok_to_nya"]["student_not_allowed"] == 1 and res["send"]["registered"] == 1
    assert [x.origin for x in world.nya_aterbud_of(adm3)] == ["ladok"]
    with store.transaction() as s:
        warn = s.scalars(select(AuditLog).where(AuditLog.action == "aterbud.student_entered_while_not_allowed")).one()
    assert warn.object_id == adm3

    # The student-entered AterbudEvents (the student as the acting user in the EventContext)
    # validate against the Ladok XSDs.
    users = []
    for n in range(1, world.ladok_state.feed.last + 1):
        page = world.ladok.events.read_page(world.ladok_state.feed_page(n, "http://x"), strict=True)
        assert page.errors == []
        users += [(e.fields["EventContext"]["AnvandareUID"], e.student_uid) for e in page.events
                  if e.event_type == "AterbudEvent"]
    assert users == [(a1.student_uid, a1.student_uid), (a3.student_uid, a3.student_uid)]


def test_aterbud_on_admission_not_from_nya_is_not_reported(world, store):
    from simulators.ladok.state import ORSAK, Placering

    person = next(world.people)
    st = world.student(person)
    a, _ = world.ladok_state.placera(Placering(st.uid, world.courses[3].uid, "LOKAL-1"))  # not a NyA admission
    world.ladok_state.aterbud(a.uid, dt.date(2027, 8, 1), ORSAK + "uteblev", None)
    res = world.sync()
    assert res["ladok_to_nya"]["not_nya"] == 1 and res["ladok_to_nya"]["enqueued"] == 0


# ============================================================================ programmes

def _programme_admission(world):
    person, prog_id, prog = world.admit(world.programme)
    kids = [world.admit(c, person=person, package_antagning=prog) for c in world.package[:2]]
    assert all(k[2].paket is prog for k in kids)
    return person, prog_id, prog, kids


def test_programme_aterbud_from_nya_covers_its_courses(world, store):
    person, prog_id, prog, kids = _programme_admission(world)
    world.nya_aterbud(prog_id, dt.date(2027, 8, 9))

    res = world.sync()
    assert res["nya_to_ladok"]["applied"] == 1
    assert world.ladok_state.antagning(prog.uid).aterbud.externt_system == "NyA"
    for _, _, k in kids:
        assert world.ladok_state.antagning(k.uid).aterbud is not None
    # Ladok emitted an AterbudEvent per admission: the programme's is NyA's own (echo); the courses
    # are NyA admissions of their own, so NyA is told about them.
    assert res["ladok_to_nya"]["echo"] == 1 and res["ladok_to_nya"]["enqueued"] == 2
    assert res["send"]["registered"] == 2
    assert [x.origin for x in world.nya_aterbud_of(prog_id)] == ["applicant"]
    for _, kid_id, _ in kids:
        assert [(x.origin, x.date) for x in world.nya_aterbud_of(kid_id)] == [("ladok", dt.date(2027, 8, 9))]

    # Those come back from NyA with Origin=ladok: not applied, and no cases, now or on re-runs.
    res = world.sync()
    assert res["nya_to_ladok"]["echo"] == 2 and res["nya_to_ladok"]["case"] == 0
    before = _snapshot(store)
    world.sync()
    assert _snapshot(store) == before and _cases(store) == []


def test_programme_and_course_aterbud_from_nya_give_no_case_for_the_course(world, store):
    person, prog_id, prog, kids = _programme_admission(world)
    world.nya_aterbud(prog_id, dt.date(2027, 8, 9))
    world.nya_aterbud(kids[0][1], dt.date(2027, 8, 9), origin="staff")  # the applicant declined both

    res = world.sync()
    assert res["nya_to_ladok"]["applied"] == 1 and res["nya_to_ladok"]["already_applied"] == 1
    assert res["nya_to_ladok"]["case"] == 0 and _cases(store) == []
    assert res["send"]["registered"] == 1  # only the second course was not known to NyA
    assert [x.origin for x in world.nya_aterbud_of(kids[0][1])] == ["staff"]
    assert [x.origin for x in world.nya_aterbud_of(kids[1][1])] == ["ladok"]


def test_programme_with_a_registered_course_is_one_case(world, store):
    person, prog_id, prog, kids = _programme_admission(world)
    world.ladok_state.registrera(kids[0][2].uid, 1, kids[0][2].tillfalle.start)
    world.nya_aterbud(prog_id, world.programme.start + dt.timedelta(days=5))

    res = world.sync()
    assert res["nya_to_ladok"]["case"] == 1
    (case,) = _cases(store)
    assert (case.nya_admission_id, case.cause, case.suggested_action) == (prog_id, "registered", "early_avbrott")
    assert case.education.startswith(world.programme.utbildning.kod)
    done = aterbud.apply_case(store, world.ladok, case.id, actor="handlaggare@uni.se")
    assert done["result"]["early"] is True
    assert world.ladok_state.antagning(kids[0][2].uid).registreringar[0].aterkallad is not None


def test_ladok_programme_aterbud_by_staff_is_reported_for_the_programme_and_its_courses(world, store):
    from simulators.ladok.state import ORSAK

    person, prog_id, prog, kids = _programme_admission(world)
    world.ladok_state.aterbud(prog.uid, dt.date(2027, 8, 3), ORSAK + "meddelat.av.studenten", None)
    res = world.sync()
    assert res["ladok_to_nya"]["enqueued"] == 3 and res["send"]["registered"] == 3
    for aid in [prog_id] + [k[1] for k in kids]:
        assert [x.origin for x in world.nya_aterbud_of(aid)] == ["ladok"]
    res = world.sync()
    assert res["nya_to_ladok"]["echo"] == 3 and res["nya_to_ladok"]["applied"] == 0 and _cases(store) == []


def test_crash_after_nya_answered_resends_the_same_request(world, store):
    """NyA applied the ReportAterbud but Brygga died before marking the rows: the re-send carries
    the same RequestId, NyA answers from its replay store, and the återbud exists once."""
    from simulators.ladok.state import ORSAK

    _, adm_id, a = world.admit(world.courses[0])
    world.ladok_state.aterbud(a.uid, dt.date(2027, 8, 14), ORSAK + "meddelat.av.studenten", None)
    assert aterbud.ladok_to_nya(store, world.ladok)["enqueued"] == 1

    class Crash(Exception):
        pass

    def crash(_rid):
        raise Crash

    with pytest.raises(Crash):
        aterbud.send_pending(store, world.nya, after_send=crash)
    assert [x.origin for x in world.nya_aterbud_of(adm_id)] == ["ladok"]
    assert _count(store, OutboxMessage, OutboxMessage.status == "pending") == 1
    out = aterbud.send_pending(store, world.nya)
    assert out["registered"] == 1 and out["requests"] == 1  # the stored reply, replayed
    assert len(world.nya_aterbud_of(adm_id)) == 1
    assert aterbud.send_pending(store, world.nya)["requests"] == 0
