"""Merit sync Ladok → NyA (brygga.flows.merits) against the real simulators over HTTP, on SQLite
and PostgreSQL: feed checkpoint, dedupe, enrichment, outbox sending, crashes at every step."""

from __future__ import annotations

import datetime as dt
import re
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.http import PeerError
from adapters.ladok import LadokAdapter
from adapters.nya import NyaAdapter
from brygga.connections import PeerConfig
from brygga.flows import merits
from brygga.store import ops
from brygga.store.models import AuditLog, FeedCheckpoint, InboxMessage, OutboxMessage, Quarantine
from simulators import datagen
from simulators._server import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
NYA_SEED = 5


class World:
    """A Ladok and a NyA simulator on loopback whose students overlap: the first ``applicants``
    people of ``datagen.people(.., NYA_SEED)`` apply in NyA's open round HT2027."""

    def __init__(self, page_size: int = 10, applicants: int = 30):
        from simulators.ladok.app import create_app as ladok_app
        from simulators.ladok.catalogue import seed_catalogue
        from simulators.ladok.state import LadokState
        from simulators.nya.app import create_app as nya_app
        from simulators.nya.state import NyaState, seed

        self.ladok_state = LadokState(page_size=page_size)
        seed_catalogue(self.ladok_state, 3, 12, 3, "HT2027")
        self.nya_state = seed(NyaState(), NYA_SEED, offers=5, applicants=applicants)
        self.people = list(datagen.people(applicants, NYA_SEED))
        self.outsiders = list(datagen.people(5, 777))
        self._servers = [serve_in_thread(ladok_app(self.ladok_state)), serve_in_thread(nya_app(self.nya_state))]
        self.ladok_url, self.nya_url = (s.url for s in self._servers)
        self.ladok = LadokAdapter(PeerConfig("ladok", self.ladok_url))
        self.nya = NyaAdapter(PeerConfig("nya", self.nya_url))
        kurser = [t for t in self.ladok_state.tillfallen.values()
                  if t.utbildning.typ == "kurs" and t.utbildning.moduler and not t.installt]
        self.program = next(t for t in self.ladok_state.tillfallen.values() if t.utbildning.typ == "program")
        self.kurs = next(t for t in kurser if t.uid not in {c.uid for c in self._package(self.program)})
        self.expected: dict[str, dict[str, str]] = {}  # personnummer -> {HandelseUID: type}

    def _package(self, program):
        return [t for t in self.ladok_state.tillfallen.values()
                if t.uid in {a[2] for a in program.attribut() if a[1].endswith("ingaende.utbildningstillfalle")}]

    def close(self) -> None:
        for s in self._servers:
            s.stop()

    # -- writing in Ladok as staff would -------------------------------------------------------
    def student(self, person):
        from simulators.ladok.state import LadokError

        try:
            return self.ladok_state.etablera_student(person.personnummer, person.fornamn, person.efternamn,
                                                     emit=True)
        except LadokError:
            return self.ladok_state.student_by_pnr(person.personnummer)

    def _last_event(self, mtype: str):
        """The newest event of the merit type (an action emits several: a registration is followed
        by PaborjatUtbildningstillfalleEvent and PaborjadUtbildningEvent, as in Ladok)."""
        page = self.ladok.events.read_page(self.ladok_state.feed_page(None, "http://x"))
        return next(e for e in reversed(page.events) if merits.MERIT_TYPES.get(e.event_type) == mtype)

    def _last_handelse(self, mtype: str) -> str:
        return self._last_event(mtype).handelse_uid

    def _last_ref(self, mtype: str) -> str:
        """The merit id of the newest merit of the type: the Ladok object it is."""
        return merits.merit_ref(self._last_event(mtype))

    def _note(self, person, mtype: str) -> None:
        if not self.nya_state.is_open_applicant(person.personnummer):
            return
        self.expected.setdefault(person.personnummer, {})[self._last_ref(mtype)] = mtype

    def study(self, person, *, result: str = "VG", avbrott: bool = False, full: bool = False):
        """Course admission, registration and a module result (+ avbrott; + programme merits)."""
        from simulators.ladok.state import Placering

        s = self.student(person)
        st = self.ladok_state
        a, _ = st.placera(Placering(s.uid, self.kurs.uid, f"NYA-{person.personnummer}-K"))
        st.registrera(a.uid)
        self._note(person, "registrering")
        st.rapportera_resultat(a.uid, self.kurs.utbildning.moduler[0].kod, result, dt.date(2027, 10, 20))
        self._note(person, "resultat")
        if avbrott:
            st.avbrott(a.uid, self.kurs.start + dt.timedelta(days=40))
            self._note(person, "avbrott")
        if full:
            p, _ = st.placera(Placering(s.uid, self.program.uid, f"NYA-{person.personnummer}-P"))
            st.uppehall(p.uid, dt.date(2028, 1, 17), dt.date(2028, 6, 1))
            self._note(person, "studieuppehall")
            st.tillgodoraknande(s.uid, "Linjär algebra (Uppsala)", "7.5", dt.date(2027, 9, 1), self.program.uid)
            self._note(person, "tillgodoraknande")
            st.utfarda_bevis(s.uid, dt.date(2028, 6, 10), self.program.uid)
            self._note(person, "examen")
        return s

    def unknown_event(self) -> None:
        from simulators.ladok.xml import event

        name = "sd:StudiegangBytt2030Event"  # a type Brygga has never heard of
        with self.ladok_state.lock:
            self.ladok_state.feed.append(name, event(name, [], None))

    def bad_event(self) -> str:
        """A known merit type without its required fields (StudentUID ...): quarantined by the sync."""
        from simulators.ladok.xml import event

        el = event("sd:AvbrottEvent", [], None)
        with self.ladok_state.lock:
            self.ladok_state.feed.append("sd:AvbrottEvent", el)
        return el.findtext("{http://schemas.ladok.se/events}HandelseUID")

    def apply(self, person) -> None:
        """The person applies in NyA's open round now (after their merits were made in Ladok)."""
        from simulators.nya.state import Applicant

        offer = next(iter(self.nya_state.rounds["HT2027"].offers))
        self.nya_state.add_applicants("HT2027", [Applicant(person.personnummer, person.fornamn, person.efternamn,
                                                           [offer], 10.0)])

    def merit_refs(self, student_uid: str) -> dict[str, str]:
        """Every merit the feed announced for a student (ref -> NyA type), minus what it took back."""
        out: dict[str, str] = {}
        for n in range(self.ladok_state.feed.first_available, self.ladok_state.feed.last + 1):
            for e in self.ladok.feed_page(n).events:
                if e.student_uid != student_uid:
                    continue
                if e.event_type in merits.MERIT_TYPES:
                    out[merits.merit_ref(e)] = merits.MERIT_TYPES[e.event_type]
                elif e.event_type in merits.RETRACTIONS:
                    out.pop(merits.rules.retraction_ref(e), None)
        return out

    # -- reading back ------------------------------------------------------------------------------
    def nya_merits(self, personnummer: str) -> list:
        return self.nya.applicant_merits(personnummer)

    def all_expected(self) -> dict[str, str]:
        return {h: t for per in self.expected.values() for h, t in per.items()}

    def assert_each_merit_once(self) -> None:
        for pnr, wanted in self.expected.items():
            got = self.nya_merits(pnr)
            ids = [m.merit_id for m in got]
            assert len(ids) == len(set(ids)), "a MeritId stored twice"
            assert {m.merit_id: m.type for m in got} == wanted


@pytest.fixture
def world():
    w = World()
    yield w
    w.close()


def _outbox(store) -> list[OutboxMessage]:
    with store.transaction() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "merit").order_by(OutboxMessage.id)))


def _count(store, model, *where) -> int:
    with store.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def nya_down() -> NyaAdapter:
    """NyA on a port nobody listens on, without the session's connect retries (fast failures)."""
    from adapters.http import session

    down = NyaAdapter(PeerConfig("nya", "http://127.0.0.1:9"))
    down.http = session(down.peer, retries=False)
    return down


def run(store, w: World, **kw) -> tuple[dict, dict]:
    a = merits.sync_once(store, w.ladok, w.nya, **kw)
    b = merits.send_pending(store, w.nya, base_seconds=0)
    return a, b


# ------------------------------------------------------------------------------------------ tests

def test_merits_of_applicants_arrive_in_nya_once(store, world):
    w = world
    w.study(w.people[0], full=True)
    w.study(w.people[1], result="G", avbrott=True)
    w.unknown_event()
    w.study(w.people[2], result="U")
    for p in w.outsiders[:2]:  # Ladok students who are not NyA applicants
        w.study(p)
    sync, sent = run(store, w, batch_size=20)

    total = len(w.all_expected())
    assert total == 5 + 3 + 2
    assert sync["merits"] == total and sync["not_applicant"] == 4 and sync["unknown_types"] == 1
    assert sync["quarantined"] == 0 and sync["caught_up"] is True
    assert sent["accepted"] == total and sent["duplicate"] == sent["rejected"] == 0 and sent["pending"] == 0
    w.assert_each_merit_once()
    for p in w.outsiders[:2]:
        assert w.nya_merits(p.personnummer) == []

    by_type = {m.type: m for m in w.nya_merits(w.people[0].personnummer)}
    kurs, modul = w.kurs, w.kurs.utbildning.moduler[0]
    assert by_type["resultat"].grade == "VG" and by_type["resultat"].date == "2027-10-20"
    assert by_type["resultat"].utbildningskod == kurs.utbildning.kod
    assert by_type["resultat"].tillfalleskod == kurs.kod
    assert float(by_type["resultat"].credits) == float(modul.omfattning)
    assert by_type["registrering"].date == kurs.start.isoformat()
    assert by_type["examen"].utbildningskod == w.program.utbildning.kod  # resolved through the study plan
    assert by_type["tillgodoraknande"].utbildningskod == w.program.utbildning.kod
    assert by_type["studieuppehall"].date == "2028-01-17"
    assert {m.grade for m in w.nya_merits(w.people[2].personnummer) if m.type == "resultat"} == {"U"}
    assert "avbrott" in {m.type for m in w.nya_merits(w.people[1].personnummer)}

    # NyA got every merit the first time: no `duplicate` outcome on any first send
    rows = _outbox(store)
    assert len(rows) == total and {r.status for r in rows} == {"sent"} and {r.response for r in rows} == {"accepted"}
    assert _count(store, InboxMessage, InboxMessage.source == "ladok") == total

    # a second run finds nothing new and sends nothing
    sync2, sent2 = run(store, w)
    assert sync2["merits"] == 0 and sent2["requests"] == 0
    assert len(_outbox(store)) == total

    # new events later are picked up from the checkpoint (the recent page kept growing)
    w.study(w.people[3])
    sync3, sent3 = run(store, w)
    # only the new events are read: establishment (2), admission (1), registration (3), result (1)
    assert sync3["merits"] == 2 and sync3["events"] == 7 and sent3["accepted"] == 2
    w.assert_each_merit_once()


def test_killed_worker_between_batches_loses_and_repeats_nothing(store, world):
    """A separate process runs the sync and is SIGKILLed after the transaction of page k, before
    page k+1; the re-run delivers every merit exactly once."""
    w = world
    for p in w.people[:6]:
        w.study(p, full=True)
    total = len(w.all_expected())
    assert w.ladok_state.feed.last >= 4

    child = textwrap.dedent(f"""
        import sys, time
        from adapters.ladok import LadokAdapter
        from adapters.nya import NyaAdapter
        from brygga.connections import PeerConfig
        from brygga.flows import merits
        from brygga.store import Store
        commits = []
        def after_commit(info):
            commits.append(info["page"])
            print("committed", info["page"], flush=True)
            if len(commits) == 2:
                time.sleep(60)  # parked between page k and k+1: the parent kills us here
        merits.sync_once(Store({store.url!r}), LadokAdapter(PeerConfig("ladok", {w.ladok_url!r})),
                         NyaAdapter(PeerConfig("nya", {w.nya_url!r})), batch_size=1, after_commit=after_commit)
        print("finished", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.split())
            if len([x for x in lines if x[0] == "committed"]) == 2:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, lines
    killed_at = int(lines[-1][1])
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, merits.CHECKPOINT)
        assert cp.page == killed_at  # the checkpoint is that of the last committed batch
    enqueued = len(_outbox(store))
    assert 0 < enqueued < total
    assert _count(store, InboxMessage) == enqueued  # inbox and outbox committed together

    sync, sent = run(store, w)
    assert sync["merits"] == total - enqueued
    assert sent["accepted"] == total and sent["duplicate"] == 0
    w.assert_each_merit_once()
    assert {r.response for r in _outbox(store)} == {"accepted"}


def test_crash_after_nya_applied_is_absorbed_by_request_id_replay(store, world):
    w = world
    for p in w.people[:4]:
        w.study(p)
    total = len(w.all_expected())

    # 1. an exception between two batches: the first is committed, the rest is read again
    def boom(info):
        raise RuntimeError("worker died after a commit")

    with pytest.raises(RuntimeError):
        merits.sync_once(store, w.ladok, w.nya, batch_size=1, after_commit=boom)
    first = len(_outbox(store))
    assert 0 < first < total
    assert merits.sync_once(store, w.ladok, w.nya, batch_size=3)["merits"] == total - first

    # 2. NyA applies the request, the worker dies before marking the rows sent
    applied: list[str] = []

    def die(rid):
        applied.append(rid)
        raise RuntimeError("worker died after NyA answered")

    with pytest.raises(RuntimeError):
        merits.send_pending(store, w.nya, after_send=die)
    assert {r.status for r in _outbox(store)} == {"pending"}
    stored_first = {m.merit_id: m.request_id for p in w.people[:4] for m in w.nya_merits(p.personnummer)}
    assert stored_first and set(stored_first.values()) == {applied[0]}

    sent = merits.send_pending(store, w.nya)
    # same rows -> same RequestId -> NyA replays its stored reply: outcomes "accepted", not "duplicate"
    assert sent["accepted"] == total and sent["duplicate"] == 0
    assert {r.response for r in _outbox(store)} == {"accepted"}
    w.assert_each_merit_once()
    assert {m.merit_id: m.request_id for p in w.people[:4] for m in w.nya_merits(p.personnummer)
            if m.merit_id in stored_first} == stored_first  # nothing re-applied


def test_feed_moved_on_records_the_gap_and_continues(store, world):
    w = world
    w.study(w.people[0])
    run(store, w)
    with store.transaction() as s:
        before = ops.checkpoint_get(s, merits.CHECKPOINT).page
    for p in w.people[1:8]:  # while we are away the feed grows ...
        w.study(p)
    w.ladok_state.prune(2)  # ... and Ladok prunes the pages we had not read
    first_kept = w.ladok_state.feed.first_available
    assert first_kept > before + 1

    sync, sent = run(store, w)
    assert sync["gaps"] == 1 and sync["caught_up"] is True
    with store.transaction() as s:
        gap = s.scalars(select(Quarantine).where(Quarantine.kind == "feed-gap")).one()
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "feed.gap")).one()
    assert f"page(s) {before}..{first_kept - 1} were pruned" in gap.reason and "reconcile" in gap.reason
    assert audit.detail["resumed_at"] == first_kept and audit.detail["from_page"] == before
    # what is still in the feed arrived, once; what was pruned could not
    available = {merits.merit_ref(e) for n in range(first_kept, w.ladok_state.feed.last + 1)
                 for e in w.ladok.feed_page(n).events if e.event_type in merits.MERIT_TYPES}
    delivered = {r.payload["merit"]["merit_id"] for r in _outbox(store)}
    expected = w.all_expected()
    assert delivered == {h for h in expected if h in available} | {h for h in w.expected[w.people[0].personnummer]}
    assert sent["accepted"] == sync["merits"] > 0
    # the next run has nothing left to report
    assert run(store, w)[0]["gaps"] == 0


def test_replay_from_a_page_sends_nothing_twice_but_picks_up_new_applicants(store, world):
    w = world
    late = w.outsiders[0]  # studies in Ladok before applying in NyA
    w.study(late)
    w.study(w.people[0])
    sync, sent = run(store, w)
    assert sync["merits"] == 2 and sync["not_applicant"] == 2

    from simulators.nya.state import Applicant

    offer = next(iter(w.nya_state.rounds["HT2027"].offers))
    w.nya_state.add_applicants("HT2027", [Applicant(late.personnummer, late.fornamn, late.efternamn, [offer], 10.0)])
    merits.reset_checkpoint(store, 1, actor="operator@example.se")
    sync2, sent2 = run(store, w)
    assert sync2["already_seen"] == 2 and sync2["merits"] == 2 and sent2["accepted"] == 2 and sent2["duplicate"] == 0
    w.assert_each_merit_once()
    assert [m.type for m in w.nya_merits(late.personnummer)] == ["registrering", "resultat"]
    with store.transaction() as s:
        a = s.scalars(select(AuditLog).where(AuditLog.action == "feed.replay")).one()
        assert a.actor == "operator@example.se" and a.detail["from_page"] == 1
    with pytest.raises(ValueError):
        merits.reset_checkpoint(store, 0, actor="x")


def test_grades_are_read_from_ladoks_scales_refreshed_once_per_run_then_quarantined(store, world, monkeypatch):
    """BetygsgradID is read through Ladok's grade scales (grunddata betygsskala) kept in the store:
    a grade or scale not there reads them again from Ladok, once per run, and only a grade still
    unknown after that is quarantined. The real AF scale's F (131657 / 131697) becomes a merit."""
    import dataclasses

    from brygga.store.models import LadokGrade
    from simulators.ladok import events as ev
    from simulators.ladok.state import new_uid

    w = world
    reads = []
    real = w.ladok.grade_scales
    monkeypatch.setattr(w.ladok, "grade_scales", lambda: reads.append(1) or real())
    st = w.ladok_state
    w.study(w.people[0], result="VG")
    sync, _ = run(store, w)
    assert sync["merits"] == 2 and len(reads) == 1  # an empty store: read once
    w.assert_each_merit_once()
    with store.transaction() as s:
        assert s.get(LadokGrade, "131697").code == "F" and s.get(LadokGrade, "131697").scale_id == "131657"
        assert s.get(LadokGrade, "900004") is None

    # a run whose grades are all known asks Ladok nothing
    w.study(w.people[1], result="F")  # AF: BetygsskalaID 131657, BetygsgradID 131697
    sync, _ = run(store, w)
    assert sync["merits"] == 2 and len(reads) == 1
    (f,) = [m for m in w.nya_merits(w.people[1].personnummer) if m.type == "resultat"]
    assert f.grade == "F"

    # a scale new in Ladok, and a grade no scale lists: one read for both, then the second quarantined
    st.lagg_till_betygsskala(900001, "TH", {"5": (900005, True), "4": (900004, True), "3": (900003, True),
                                            "U": (900000, False)})
    s2 = w.study(w.people[2], result="4")
    a = next(x for x in st.plan[s2.uid] if x.tillfalle.uid == w.kurs.uid)
    made = st.rapportera_resultat(a.uid, w.kurs.utbildning.moduler[1 % len(w.kurs.utbildning.moduler)].kod, "3",
                                  dt.date(2027, 10, 21))
    w._note(w.people[2], "resultat")
    stray = dataclasses.replace(made, uid=new_uid(), betygsgrad_id=999999)
    with st.lock:
        st._emit(ev.resultat(a, stray))
    bad = w._last_handelse("resultat")
    sync, _ = run(store, w)
    assert len(reads) == 2 and sync["merits"] == 3 and sync["quarantined"] == 1
    assert sorted(m.grade for m in w.nya_merits(w.people[2].personnummer) if m.type == "resultat") == ["3", "4"]
    with store.transaction() as s:
        q = s.scalars(select(Quarantine).where(Quarantine.message_id == bad)).one()
        assert "999999" in q.reason and "read again from Ladok" in q.reason
        assert s.get(LadokGrade, "900004").code == "4"
    w.assert_each_merit_once()


def test_a_new_personnummer_in_ladok_moves_bryggas_records_of_the_student(store, world):
    """An international student admitted with an interimspersonnummer gets a Swedish one: Ladok's
    LokalStudentEvent (TidigarePersonnummer) moves the admission, its queue entry and its återbud
    case to the new number, the records kept for ompröva too; the audit log has both masked."""
    from brygga.store.models import AterbudCase, NyaAdmission, UnhandledAdmission

    w = world
    interim, swedish = "19880527T281", w.outsiders[4].personnummer
    student = w.ladok_state.etablera_student(interim, "Mei", "Chen")
    other = w.people[5].personnummer
    with store.transaction() as s:
        for aid, p in (("A-1", interim), ("A-2", other)):
            s.add(NyaAdmission(admission_id=aid, round="HT2027", sequence=1, personnummer=p, state="unhandled",
                               record={"admission_id": aid, "personnummer": p, "given_name": "Mei"}))
            s.add(UnhandledAdmission(nya_admission_id=aid, round="HT2027", personnummer=p, hinder="ovrigt",
                                     reason="x", admission={"admission_id": aid, "personnummer": p}))
        s.add(AterbudCase(nya_aterbud_id="R-1", personnummer=interim, cause="registered", suggested_action="x"))
    w.ladok_state.byt_personnummer(student.uid, swedish)
    sync, _ = run(store, w)
    assert sync["renumbered"] == 3 and sync["quarantined"] == 0
    with store.transaction() as s:
        a1, a2 = s.get(NyaAdmission, "A-1"), s.get(NyaAdmission, "A-2")
        assert (a1.personnummer, a1.record["personnummer"], a1.record["given_name"]) == (swedish, swedish, "Mei")
        assert a2.personnummer == other and a2.record["personnummer"] == other
        q = {u.nya_admission_id: u for u in s.scalars(select(UnhandledAdmission))}
        assert (q["A-1"].personnummer, q["A-1"].admission["personnummer"]) == (swedish, swedish)
        assert q["A-2"].personnummer == other
        assert s.scalars(select(AterbudCase)).one().personnummer == swedish
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "student.personnummer_changed")).one()
    assert entry.object_id == student.uid and entry.detail["rows"] == 3
    assert entry.detail["previous"] == "19880527-****" and swedish not in str(entry.detail)
    # read again (a replay): nothing left to move
    merits.reset_checkpoint(store, 1, actor="test")
    assert run(store, w)[0]["renumbered"] == 0


def _snapshot(store, w, **kw):
    return merits.snapshot.take(store, w.ladok, w.nya, seconds=60, **kw)


def _rich_student(w, person):
    """A student with a bit of everything in Ladok: course admission and registration, a module
    result and the course grade, a programme with a study break, a credit transfer, a degree."""
    from simulators.ladok.state import Placering

    s = w.study(person, full=True)
    st = w.ladok_state
    a = next(x for x in st.plan[s.uid] if x.tillfalle.uid == w.kurs.uid)
    st.rapportera_resultat(a.uid, None, "VG", dt.date(2027, 12, 20))  # the course grade
    return s


def test_an_applicants_earlier_merits_reach_nya_once_when_they_apply(store, world):
    """A Ladok student with results (a module's and the course grade), a registration, a study
    break, a credit transfer and a degree applies in NyA: the snapshot reads them through Ladok REST
    and NyA gets each once; the feed path, replayed from its first page, finds the same merits and
    sends none of them again."""
    w = world
    person = w.outsiders[0]
    s = _rich_student(w, person)
    first, _ = run(store, w)
    assert first["merits"] == 0 and first["not_applicant"] > 0  # not an applicant (yet): nothing
    assert w.nya_merits(person.personnummer) == []

    w.apply(person)
    sync, _ = run(store, w)
    assert sync["new_applicants"] == 1 and sync["merits"] == 0  # the feed has moved past them
    taken = _snapshot(store, w)
    # every applicant is looked up; the 30 of the round who are not Ladok students have nothing
    assert taken["applicants"] == 31 and taken["students"] == 1 and taken["no_student"] == 30
    assert taken["waiting"] == 0
    sent = merits.send_pending(store, w.nya, base_seconds=0)
    expected = w.merit_refs(s.uid)
    assert set(expected.values()) == {"registrering", "resultat", "studieuppehall", "tillgodoraknande", "examen"}
    got = w.nya_merits(person.personnummer)
    assert {m.merit_id: m.type for m in got} == expected and len(got) == len(expected) == taken["merits"]
    assert sent["accepted"] == len(expected)
    course = next(m for m in got if m.type == "resultat" and m.date == "2027-12-20")
    assert course.grade == "VG" and course.utbildningskod == w.kurs.utbildning.kod  # the course grade

    # the feed read again from its first page: the same merits, none sent again
    merits.reset_checkpoint(store, 1, actor="test")
    replayed, resent = run(store, w)
    assert replayed["merits"] == 0 and replayed["already_queued"] >= len(expected)
    assert resent["requests"] == 0 and w.nya_state.merit_duplicates == 0
    assert _count(store, OutboxMessage, OutboxMessage.status == "sent") == len(expected)
    # a new merit afterwards comes by the feed, "direkt"
    w.ladok_state.rapportera_resultat(next(x for x in w.ladok_state.plan[s.uid] if x.tillfalle.uid == w.kurs.uid).uid,
                                      w.kurs.utbildning.moduler[0].kod, "G", dt.date(2028, 1, 10))
    later, sent2 = run(store, w)
    assert later["merits"] == 1 and sent2["accepted"] == 1


def test_a_killed_snapshot_resumes_where_it_stopped_and_sends_nothing_twice(store, world):
    """A separate process takes the snapshot two applicants at a time and is SIGKILLed in the middle
    of a chunk (after its claim, before its commit); the next run on the host sees the holder gone
    and takes its claims over at once (no 10-minute lease to wait out), and the rest, and NyA holds
    every merit once."""
    w = world
    people = w.outsiders[:4]
    for p in people:
        _rich_student(w, p)
        w.apply(p)
    merits.applicants.follow(store, w.nya)
    expected = {p.personnummer: w.merit_refs(w.ladok_state.student_by_pnr(p.personnummer).uid) for p in people}
    child = textwrap.dedent(f"""
        import datetime as dt, time
        from adapters.ladok import LadokAdapter
        from adapters.nya import NyaAdapter
        from brygga.connections import PeerConfig
        from brygga.flows import merits
        from brygga.store import Store
        ladok = LadokAdapter(PeerConfig("ladok", {w.ladok_url!r}))
        real, calls = ladok.student_merits, []
        def parked(uid):
            calls.append(uid)
            if len(calls) == 3:  # the second chunk's first student: claimed, nothing committed
                print("parked", flush=True)
                time.sleep(60)
            return real(uid)
        ladok.student_merits = parked
        merits.snapshot.take(Store({store.url!r}), ladok, NyaAdapter(PeerConfig("nya", {w.nya_url!r})), chunk=2,
                             workers=1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for line in proc.stdout:
            if line.startswith("parked"):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    from brygga.store.models import NyaApplicant
    mine = {p.personnummer for p in people}
    with store.transaction() as s:
        states = sorted((a.snapshot, a.claimed_by) for a in s.scalars(select(NyaApplicant))
                        if a.personnummer in mine)
    assert [x for x, _ in states] == ["done", "done", "pending", "pending"]
    assert states[2][1] and states[2][1] == states[3][1]  # held by the dead process, for a 10-minute lease
    merits.send_pending(store, w.nya, base_seconds=0)
    resumed = _snapshot(store, w, worker="next")
    assert resumed["applicants"] == 2 and resumed["waiting"] == 0
    merits.send_pending(store, w.nya, base_seconds=0)
    for p in people:
        got = w.nya_merits(p.personnummer)
        assert {m.merit_id: m.type for m in got} == expected[p.personnummer] and len(got) == len(expected[p.personnummer])
    assert w.nya_state.merit_duplicates == 0


def test_each_retraction_withdraws_its_merit_and_one_not_yet_sent_sends_nothing(store, world):
    """Ladok takes back a result (makulering), a credit transfer, an avbrott, a study break, a
    degree, and — by an early avbrott — a registration: NyA withdraws each merit once. A result
    cancelled before its merit was sent costs NyA nothing: neither the merit nor a withdrawal goes."""
    from simulators.ladok.state import Placering

    w = world
    st = w.ladok_state
    rich, quitter, late = w.people[0], w.people[1], w.people[2]
    s = _rich_student(w, rich)
    w.study(quitter, avbrott=True)  # an avbrott after the first three weeks: a merit
    early = w.student(late)
    a_early, _ = st.placera(Placering(early.uid, w.kurs.uid, f"NYA-{late.personnummer}-E"))
    st.registrera(a_early.uid, 1, w.kurs.start)
    run(store, w)
    before = {p.personnummer: {m.merit_id for m in w.nya_merits(p.personnummer)} for p in (rich, quitter, late)}
    assert all(before.values())

    result = next(r for r in st.resultat[s.uid] if r.modul is not None)
    st.makulera_resultat(result.uid)
    st.ta_bort_tillgodoraknande(next(tg.uid for tg in st.tillgodo[s.uid]))
    st.ta_bort_uppehall(next(u.uid for u in st.uppehall_by_uid.values() if u.antagning.student_uid == s.uid))
    st.ta_bort_bevis(next(b.uid for b in st.bevis.values() if b.student_uid == s.uid))
    quitter_uid = st.student_by_pnr(quitter.personnummer).uid
    st.ta_bort_avbrott(next(a.uid for a in st.plan[quitter_uid] if a.avbrott))
    st.avbrott(a_early.uid, w.kurs.start + dt.timedelta(days=5))  # early: the registration is withdrawn
    sync, sent = run(store, w)
    assert sync["withdrawn"] == 6 and sent["withdrawn"] == 6 and sent["requests"] == 1
    gone = {f"ladok:resultat:{result.uid}", f"ladok:registrering:{a_early.registreringar[0].uid}",
            f"ladok:avbrott:{quitter_uid}:{w.kurs.uid}"}
    now = {p.personnummer: {m.merit_id for m in w.nya_merits(p.personnummer)} for p in (rich, quitter, late)}
    assert {r for p in now for r in before[p] - now[p]} >= gone
    assert sum(len(before[p] - now[p]) for p in now) == 6 and w.nya_state.merits_withdrawn == 6
    assert now[rich.personnummer] == set(w.merit_refs(s.uid)) and now[late.personnummer] == set()
    # taken back again (a replay): nothing more
    merits.reset_checkpoint(store, 1, actor="test")
    assert run(store, w)[1]["requests"] == 0

    # a result cancelled before its merit went: nothing goes, neither merit nor withdrawal
    fresh = w.people[3]
    w.study(fresh)
    queued = merits.sync_once(store, w.ladok, w.nya)
    assert queued["merits"] == 2
    fs = st.student_by_pnr(fresh.personnummer)
    st.makulera_resultat(st.resultat[fs.uid][0].uid)
    calls_before = w.nya_state.merits_withdrawn
    sync2, sent2 = run(store, w)
    assert sync2["withdrawn"] == 1 and sent2["accepted"] == 1 and sent2["cancelled"] == 2
    assert sent2["withdrawn"] == 0 and w.nya_state.merits_withdrawn == calls_before
    assert {m.type for m in w.nya_merits(fresh.personnummer)} == {"registrering"}


def test_rejected_and_unreachable_merits_back_off_then_quarantine(store, world):
    w = world
    w.study(w.people[0])
    w.study(w.people[1])
    merits.sync_once(store, w.ladok, w.nya)
    # people[1] withdraws from NyA between enqueue and send: NyA rejects that merit for good
    del w.nya_state.rounds["HT2027"].applicants[w.people[1].personnummer]
    sent = merits.send_pending(store, w.nya, base_seconds=0)
    assert sent["accepted"] == 2 and sent["rejected"] == 2
    with store.transaction() as s:
        q = list(s.scalars(select(Quarantine).where(Quarantine.source == "nya")))
    assert len(q) == 2 and all("unknown applicant" in x.reason for x in q)
    assert Counter(r.status for r in _outbox(store)) == {"sent": 2, "dead": 2}

    # NyA unreachable: each attempt is recorded with a growing backoff, then the message is dead
    w.study(w.people[2])
    merits.sync_once(store, w.ladok, w.nya)
    down = nya_down()
    for attempt in range(1, 4):
        with pytest.raises(PeerError):
            merits.send_pending(store, down, max_attempts=3, base_seconds=0)
        pending = [r for r in _outbox(store) if r.payload["merit"]["personnummer"] == w.people[2].personnummer]
        assert {r.attempts for r in pending} == {attempt}
    assert {r.status for r in pending} == {"dead"}
    assert merits.send_pending(store, w.nya)["requests"] == 0  # dead stays dead (operator releases it)
    with store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Quarantine).where(
            Quarantine.reason.like("gave up after 3 attempt(s)%"))) == 2


def test_backoff_is_exponential_and_merits_wait_for_it(store, world):
    w = world
    w.study(w.people[0])
    merits.sync_once(store, w.ladok, w.nya)
    down = nya_down()
    with pytest.raises(PeerError):
        merits.send_pending(store, down, base_seconds=30)
    assert merits.send_pending(store, w.nya)["requests"] == 0  # not due yet: backing off
    rows = _outbox(store)
    delay = (rows[0].next_attempt_at.replace(tzinfo=None) - rows[0].created_at.replace(tzinfo=None)).total_seconds()
    assert 25 < delay < 40 and merits.lag_seconds(store) >= 0
    with store.transaction() as s:
        for r in s.scalars(select(OutboxMessage)):
            r.next_attempt_at = r.created_at
    assert merits.send_pending(store, w.nya)["accepted"] == 2
    assert merits.lag_seconds(store) is None


def test_personnummer_never_logged_in_clear(store, world, caplog):
    w = world
    w.study(w.people[0])
    w.study(w.outsiders[0])
    caplog.set_level("DEBUG")
    run(store, w)
    text = caplog.text
    for p in (w.people[0], w.outsiders[0]):
        assert p.personnummer not in text and p.personnummer[2:] not in text


def test_skipped_and_bad_entries_count_once_per_entry_not_per_read_of_the_recent_page(store, world):
    """The recent page is read on every run. An unknown event type or a bad entry after the last
    merit must be counted (and quarantined) once, not again on each run."""
    w = world
    w.study(w.people[0])
    w.unknown_event()
    bad = w.bad_event()
    w.unknown_event()  # the page ends with entries that are not events Brygga keeps
    first, _ = run(store, w)
    assert first["unknown_types"] == 2 and first["quarantined"] == 1 and first["merits"] == 2
    for _ in range(2):
        again, _ = run(store, w)
        assert (again["unknown_types"], again["quarantined"], again["events"], again["merits"]) == (0, 0, 0, 0)
    with store.transaction() as s:
        q = list(s.scalars(select(Quarantine).where(Quarantine.source == "ladok")))
        cp = ops.checkpoint_get(s, merits.CHECKPOINT)
    assert [x.message_id for x in q] == [bad] and "StudentUID" in q[0].reason
    # the checkpoint stands on the page's last entry (the unknown one), not on the last merit
    newest = w.ladok.feed_page().entries[-1]
    assert cp.entry_id == newest[0] and isinstance(newest[1], str)

    w.unknown_event()
    w.study(w.people[1])
    later, _ = run(store, w)
    assert later["unknown_types"] == 1 and later["merits"] == 2 and later["quarantined"] == 0
    w.assert_each_merit_once()


def test_an_over_long_handelse_uid_or_entry_id_is_quarantined_and_the_rest_go_on(store, world):
    """A merit event with a 200-character HandelseUID (the inbox keys events by it, 128 characters)
    and one with a 300-character Atom entry id (the checkpoint's position marker), put on the feed
    as a broken Ladok would, over HTTP: the first quarantined with its reason, the second kept (its
    position bounded by digest), every other merit sent; the same on both stores."""
    import requests

    w = world
    w.study(w.people[0])
    with w.ladok_state.lock:
        template = w.ladok_state.feed._pages[-1][-1].decode()  # the newest entry: a merit event
    huid = re.search(r"HandelseUID>([^<]+)<", template).group(1)
    entry_id = re.search(r"<id>([^<]+)</id>", template).group(1)
    long_huid = template.replace(huid, "H" * 200).replace(entry_id, "e-long-huid")
    long_entry = template.replace(huid, "6b1c3f2e-0000-4000-8000-000000000001").replace(entry_id, "E" * 300)
    r = requests.post(f"{w.ladok_url}/sim/feed/raw", json={"entries": [long_huid, long_entry]}, timeout=10)
    assert r.status_code == 200, r.text
    # (the kept one is the merit it was copied from, again: the ledger sends it once)
    w.study(w.people[1])
    first, _ = run(store, w)
    assert first["quarantined"] == 1
    with store.transaction() as s:
        (q,) = s.scalars(select(Quarantine).where(Quarantine.source == "ladok"))
        cp = ops.checkpoint_get(s, merits.CHECKPOINT)
        seen = set(s.scalars(select(InboxMessage.message_id)))
    assert "HandelseUID" in q.reason and len(q.message_id) <= 128 and q.message_id.startswith("HHHH")
    assert "6b1c3f2e-0000-4000-8000-000000000001" in seen  # the over-long entry id did not stop its event
    assert len(cp.entry_id) <= 128
    w.assert_each_merit_once()
    again, _ = run(store, w)
    assert (again["quarantined"], again["events"]) == (0, 0)  # its bounded position resumes the page


def _break_page(w) -> int:
    """Put an entry with a control character on the feed (the page it lands on can no longer be
    parsed) and fill that page up, so it becomes an archive page. Returns its number."""
    import requests

    with w.ladok_state.lock:
        number = w.ladok_state.feed.last
        free = w.ladok_state.feed.page_size - len(w.ladok_state.feed._pages[-1])
    bad = "<entry><id>broken</id><content>\u0001</content></entry>"
    fill = ["<entry><id>fill-%d</id><updated>2027-01-01T00:00:00Z</updated></entry>" % i for i in range(free - 1)]
    assert requests.post(f"{w.ladok_url}/sim/feed/raw", json={"entries": [bad, *fill]}, timeout=10).status_code == 200
    return number


def test_an_unreadable_page_is_quarantined_the_pages_before_committed_and_after_3_runs_moved_past(store, world):
    """A page with a control character: the merits on the pages before it are committed (not only
    at batch boundaries), the page is quarantined with its position, size and the parser's message,
    each run that meets it counts an attempt and fails, and the third moves past it (it is an
    archive page) with an audit row; every merit after it then arrives."""
    from adapters.ladok import UnreadablePage

    w = world
    for p in w.people[:6]:
        w.study(p)
    before = w.all_expected()
    bad_page = _break_page(w)
    for p in w.people[6:10]:
        w.study(p)
    after = {h: t for h, t in w.all_expected().items() if h not in before}
    earlier = {merits.merit_ref(e) for n in range(1, bad_page) for e in w.ladok.feed_page(n).events
               if e.event_type in merits.MERIT_TYPES}
    on_bad_page = {h for h in before if h not in earlier}  # before the broken entry, on its page
    assert before and after and on_bad_page and earlier
    for attempt in (1, 2):
        with pytest.raises(UnreadablePage) as e:
            merits.sync_once(store, w.ladok, w.nya, batch_size=100_000)  # one batch would hold it all
        assert e.value.page == bad_page and not e.value.transient
        delivered = {r.payload["merit"]["merit_id"] for r in _outbox(store)}
        assert delivered == set(before) - on_bad_page  # the pages before it are committed
        with store.transaction() as s:
            (q,) = s.scalars(select(Quarantine).where(Quarantine.kind == "feed-page"))
            assert (q.attempts, q.message_id) == (attempt, f"{merits.CHECKPOINT}:page:{bad_page}")
            assert f"page {bad_page} cannot be read" in q.reason and "bytes" in q.reason and "line" in q.reason
            assert "\x01" in q.payload or "\u0001" in q.payload or "&#1;" in q.payload or "broken" in q.payload
    third = merits.sync_once(store, w.ladok, w.nya)
    assert third["skipped_pages"] == [bad_page]
    with store.transaction() as s:
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "feed.page-skipped")).one()
        assert audit.detail["page"] == bad_page and "3 attempts" in audit.detail["reason"]
        assert ops.checkpoint_get(s, merits.CHECKPOINT).page == bad_page + 1
    fourth, sent = run(store, w)
    assert fourth["skipped_pages"] == [] and fourth["caught_up"] is True
    delivered = {r.payload["merit"]["merit_id"] for r in _outbox(store)}
    assert delivered == (set(before) - on_bad_page) | set(after)  # nothing after the page is lost


class _FailingFeed:
    """The real Ladok adapter, except that reading page ``fail_at`` along next-archive fails."""

    def __init__(self, ladok: LadokAdapter, fail_at: int):
        self.ladok, self.fail_at, self.read = ladok, fail_at, []

    def __getattr__(self, name):
        return getattr(self.ladok, name)

    def feed_page(self, number=None, *, url=None, first=False):
        page_no = "first" if first else number if url is None else int(url.rstrip("/").rsplit("/", 1)[-1])
        self.read.append(page_no)
        if page_no == self.fail_at:
            raise PeerError("ladok", f"feed/{page_no}: HTTP 503", status=503, transient=True)
        return self.ladok.feed_page(number, url=url, first=first)


@pytest.mark.parametrize("ahead", [0, 3])
def test_read_ahead_error_reaches_the_sync_at_that_page_and_nothing_is_lost(store, world, ahead):
    """Pages are fetched ahead in a thread; a failure on page k surfaces when the sync gets to page
    k: pages before it are committed, the checkpoint is on page k-1, and the re-run delivers the
    rest once."""
    w = world
    for p in w.people[:6]:
        w.study(p, full=True)
    assert w.ladok_state.feed.last >= 5
    flaky = _FailingFeed(w.ladok, fail_at=4)
    committed = []
    with pytest.raises(PeerError, match="HTTP 503"):
        merits.sync_once(store, flaky, w.nya, batch_size=1, read_ahead_pages=ahead,
                         after_commit=lambda info: committed.append(info["page"]))
    assert committed == [1, 2, 3]
    with store.transaction() as s:
        assert ops.checkpoint_get(s, merits.CHECKPOINT).page == 3
    sync, sent = run(store, w, read_ahead_pages=ahead)
    assert sync["caught_up"] and sent["accepted"] == len(w.all_expected()) and sent["duplicate"] == 0
    w.assert_each_merit_once()


def test_read_ahead_gives_the_same_result_as_reading_page_by_page(empty_store_factory, world):
    w = world
    for p in w.people[:5]:
        w.study(p, full=True)
    w.unknown_event()
    for p in w.outsiders[:2]:
        w.study(p)
    results = []
    for ahead in (0, 1, 8):
        store = empty_store_factory("sqlite")
        from brygga.store import migrate

        migrate.upgrade(store)
        sync = merits.sync_once(store, w.ladok, w.nya, batch_size=7, read_ahead_pages=ahead)
        keys = [r.idempotency_key for r in _outbox(store)]
        with store.transaction() as s:
            cp = ops.checkpoint_get(s, merits.CHECKPOINT)
        results.append(({k: v for k, v in sync.items() if k != "lookups"}, keys, (cp.page, cp.entry_id)))
    assert results[0] == results[1] == results[2]
    assert results[0][0]["merits"] == len(w.all_expected()) and results[0][0]["unknown_types"] == 1


def test_a_replay_from_a_time_sends_what_was_lost_and_nothing_already_handled(store, world):
    """Merits after 14:00 were skipped (the checkpoint moved past them by hand); a replay from
    14:00 finds the page by its events' times, its dry run lists them, and the run sends exactly
    those — the earlier ones on the same pages are in the inbox and are not sent again."""
    import datetime as dt
    import time

    from brygga.flows import checkpoints

    w = world
    w.study(w.people[0])
    w.study(w.people[1])
    run(store, w)
    before = {p: len(w.nya_merits(p.personnummer)) for p in w.people[:2]}
    time.sleep(1.1)
    since = dt.datetime.now(dt.UTC)
    w.study(w.people[2])
    w.study(w.people[3])
    recent = w.ladok.feed_page()
    checkpoints.set_position(store, merits.CHECKPOINT, recent.number, entry_id=recent.events[-1].entry_id,
                             actor="anna", reason="moved past (the merits after it are lost)")
    assert run(store, w)[0]["merits"] == 0
    assert w.nya_merits(w.people[2].personnummer) == []

    plan = checkpoints.replay_since(store, w.ladok, merits.CHECKPOINT, since, actor="anna", reason="lost", dry_run=True)
    lost = len(w.expected[w.people[2].personnummer]) + len(w.expected[w.people[3].personnummer])
    assert plan["to_handle"] == plan["events"] and plan["already_handled"] == 0 and plan["events"] >= lost
    assert plan["page"] <= recent.number and plan["pages_searched"] < recent.number + 2
    assert run(store, w)[0]["merits"] == 0  # a dry run changes nothing

    done = checkpoints.replay_since(store, w.ladok, merits.CHECKPOINT, since.astimezone(dt.timezone(dt.timedelta(hours=2))),
                                    actor="anna", reason="lost")
    assert done["page"] == plan["page"]
    sync, sent = run(store, w)
    assert sent["accepted"] == lost and sent["duplicate"] == 0
    w.assert_each_merit_once()
    assert {p: len(w.nya_merits(p.personnummer)) for p in w.people[:2]} == before
    with store.transaction() as s:
        a = s.scalars(select(AuditLog).where(AuditLog.action == "checkpoint.replay")).one()
    assert a.actor == "anna" and a.detail["page"] == plan["page"]
    with pytest.raises(KeyError, match="cannot be replayed from a time"):
        checkpoints.replay_since(store, w.ladok, "nya-admissions:HT2027", since, actor="a", reason="x")
    with pytest.raises(ValueError, match="offset"):
        checkpoints.replay_since(store, w.ladok, merits.CHECKPOINT, since.replace(tzinfo=None), actor="a", reason="x")
