"""Admission import NyA → Ladok, the placement (``placing.py``): every hinder, re-runs, chunks and
shards, outages and the ovrigt rule. Against the simulators over HTTP, on both stores (the world:
``tests/flows/admissions_world.py``)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from adapters.ladok import LadokAdapter
from brygga import personnummer as pnr_mod
from brygga import views
from brygga.connections import PeerConfig
from brygga.flows import admissions
from brygga.store.models import (
    NyaAdmission,
    Quarantine,
)
from tests.flows.admissions_world import (
    ROUND,
    _admission_of,
    _ladok_admission,
    _queue,
    _run,
    world,  # noqa: F401 - the fixture
)


def test_batch_covering_every_hinder(store, world):
    w = world
    counts, placed = _run(store, w)
    L, p, t = w["L"], w["p"], w["t"]

    # The not-accepted admission is not read; the invalid personnummer is quarantined and queued.
    assert counts["invalid"] == 1 and counts["read"] == 13
    assert placed["placed"] == 6 and placed["established"] == 2

    # New student: established with the population register's name and address, then placed with
    # fee liability, paid application fee and the villkor.
    (a_new,) = _admission_of(w, "new")
    la = _ladok_admission(w, a_new.admission_id)
    student = L.students[la.student_uid]
    assert student.adress is not None and not student.skyddad
    assert (student.fornamn, student.efternamn) == (p["new"].fornamn, p["new"].efternamn)
    assert student.adress.postnummer == p["new"].adress.postnummer
    assert la.tillfalle is t["t1"] and la.avgift.endswith("ej_betald") and la.anmalningsavgift_betald is True
    assert [v.kod for v in la.aktuella_villkor()] == ["VILLKOR-ENG6"]

    # Protected identity: established, no address stored in Ladok.
    (a_prot,) = _admission_of(w, "protected")
    sp = L.students[_ladok_admission(w, a_prot.admission_id).student_uid]
    assert sp.skyddad and sp.adress is None

    # Existing student: placed, no second student; not fee liable.
    (a_c,) = _admission_of(w, "c")
    lc = _ladok_admission(w, a_c.admission_id)
    assert L.by_pnr[p["c"].personnummer].uid == lc.student_uid and lc.avgift.endswith("ej_aktuell")
    assert lc.anmalningsavgift_betald is None

    # Programme-internal with the package in the plan: placed inside it.
    (a_f,) = _admission_of(w, "f")
    lf = _ladok_admission(w, a_f.admission_id)
    assert lf.paket is not None and lf.paket.tillfalle is t["pt3"]

    # Programme + course in its package, admitted in one batch: the course sits in the package and
    # the programme's villkor warns on the course row, not on the programme row.
    plan = {x["utbildningskod"]: x for x in L.json_plan(L.by_pnr[p["m"].personnummer].uid)}
    assert plan["TDA600"]["kurspaketeringstillfalle_uid"] == t["pt4"].uid
    assert plan["TKELT"]["villkor"] and not plan["TKELT"]["villkorsvarning"]
    assert plan["TDA600"]["villkor"] == [] and plan["TDA600"]["villkorsvarning"]

    queue = _queue(store)
    by_hinder = {}
    for u in queue.values():
        by_hinder.setdefault(u.hinder, []).append(u)
    assert views.count_unhandled(store, round=ROUND, status="open") == {k: len(v) for k, v in by_hinder.items()}
    assert set(by_hinder) == {"kunde.inte.placeras.i.plan", "redan.paborjat", "personnummer.okant",
                              "personnummer.ogiltigt", "utbildningstillfalle.saknas", "utbildningstillfalle.installt"}
    assert len(by_hinder["kunde.inte.placeras.i.plan"]) == 2

    # Several packages to choose from: both offered as candidates.
    (a_d,) = _admission_of(w, "d")
    ud = queue[a_d.admission_id]
    assert {c["package_uid"] for c in ud.candidates} == {t["pt1"].uid, t["pt2"].uid}
    assert ud.reason.startswith("Antagning kunde inte placeras i plan: ") and "flera kurspaketering" in ud.reason
    # Programme-internal without the package in the plan: no candidates.
    (a_e,) = _admission_of(w, "e")
    assert queue[a_e.admission_id].candidates == []
    (a_g,) = _admission_of(w, "g")
    assert queue[a_g.admission_id].reason.startswith("Studenten har redan påbörjat utbildningen")
    for key in ("unknown", "invalid"):
        (a,) = _admission_of(w, key)
        assert queue[a.admission_id].hinder == f"personnummer.{'okant' if key == 'unknown' else 'ogiltigt'}"
        assert _ladok_admission(w, a.admission_id) is None
    assert p["unknown"] not in L.by_pnr
    # Personnummer are masked in what operators list.
    listed = views.list_unhandled(store, round=ROUND, hinder="personnummer.okant", status="open", oldest_first=True)["rows"]
    assert listed[0]["personnummer"] == pnr_mod.mask(p["unknown"]) != p["unknown"]
    with store.transaction() as s:
        q = s.scalars(select(Quarantine).where(Quarantine.kind == "Admission")).one()
        assert "Personnummer" in q.reason


def test_rerun_changes_nothing_and_late_acceptance_is_placed(store, world):
    w = world
    _run(store, w)
    L = w["L"]
    before = (len(L.students), len(L.antagningar), len(L.feed.entries) if hasattr(L.feed, "entries") else None)
    queue_before = {k: (u.hinder, u.reason) for k, u in _queue(store).items()}
    counts, placed = _run(store, w)
    assert counts["read"] == 0 and placed == {"placed": 0, "established": 0, "unhandled": 0, "retry": 0}
    assert (len(L.students), len(L.antagningar), len(L.feed.entries) if hasattr(L.feed, "entries") else None) == before
    assert {k: (u.hinder, u.reason) for k, u in _queue(store).items()} == queue_before

    # The applicant accepts later: the next run reads and places exactly that one admission.
    w["N"].accept(ROUND, w["p"]["late"].personnummer)
    counts, placed = _run(store, w)
    assert counts["read"] == 1 and placed["placed"] == 1
    (a,) = _admission_of(w, "late")
    assert _ladok_admission(w, a.admission_id) is not None


def test_a_lost_commit_places_nothing_twice(store, world, monkeypatch):
    """Ladok placed the admissions but Brygga crashed before recording it: the re-run finds them
    placed (same Anmalningsnummer) and records them; Ladok has no duplicates."""
    w = world
    admissions.fetch(store, w["nya"], ROUND)
    real = admissions.placing._record

    def crash(*a, **k):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(admissions.placing, "_record", crash)
    with pytest.raises(RuntimeError):
        admissions.place(store, w["ladok"], w["folk"], ROUND)
    n_antagningar = len(w["L"].antagningar)
    monkeypatch.setattr(admissions.placing, "_record", real)
    placed = admissions.place(store, w["ladok"], w["folk"], ROUND)
    assert placed["placed"] == 6 and len(w["L"].antagningar) == n_antagningar
    assert admissions.summary(store, ROUND)["placed"] == 6


def test_small_chunks_and_shards_keep_each_student_whole(store, world):
    """Chunks of one and three shards give the same placements as one big run: a student's
    programme is still placed before the course that goes inside it."""
    w = world
    admissions.fetch(store, w["nya"], ROUND)
    total = {"placed": 0, "unhandled": 0}
    for shard in range(3):
        c = admissions.place(store, w["ladok"], w["folk"], ROUND, chunk=1, workers=2, shard=shard, shards=3)
        total = {k: total[k] + c[k] for k in total}
    assert total == {"placed": 6, "unhandled": 6}
    L, p, t = w["L"], w["p"], w["t"]
    plan = {x["utbildningskod"]: x for x in L.json_plan(L.by_pnr[p["m"].personnummer].uid)}
    assert plan["TDA600"]["kurspaketeringstillfalle_uid"] == t["pt4"].uid
    with pytest.raises(ValueError):
        admissions.place(store, w["ladok"], w["folk"], ROUND, shard=3, shards=3)


def test_an_outage_leaves_admissions_pending_and_ompröva_unchanged(store, world):
    """Ladok unreachable: nothing goes to the manual queue however often it is tried; an operator's
    ompröva fails with a transient error and changes nothing."""
    from adapters.http import PeerError, session

    w = world
    admissions.fetch(store, w["nya"], ROUND)
    down = LadokAdapter(PeerConfig("ladok", "http://127.0.0.1:9"))
    down.http = session(down.peer, retries=False)
    for _ in range(7):
        counts = admissions.place(store, down, w["folk"], ROUND)
        assert counts["placed"] == counts["unhandled"] == 0 and counts["retry"] == 12
    assert admissions.summary(store, ROUND) == {"pending": 12, "invalid": 1}
    _run(store, w)
    (a_d,) = _admission_of(w, "d")
    with pytest.raises(PeerError) as e:
        admissions.retry(store, down, w["folk"], a_d.admission_id, actor="anna", package_uid=w["t"]["pt1"].uid)
    assert e.value.transient
    assert _queue(store)[a_d.admission_id].status == "open"


def _fail_transiently(monkeypatch, ladok, admission_ids):
    from adapters.http import PeerError

    real = ladok.place

    def place(p):
        if admission_ids is None or p.anmalningsnummer in admission_ids:
            raise PeerError("ladok", "POST /studiedeltagande/tillfallesantagning: HTTP 503", status=503,
                            transient=True)
        return real(p)

    monkeypatch.setattr(ladok, "place", place)


def test_an_admission_failing_transiently_five_times_while_others_are_placed_goes_to_ovrigt(store, world,
                                                                                          monkeypatch):
    w = world
    admissions.fetch(store, w["nya"], ROUND)
    (a,) = _admission_of(w, "c")
    _fail_transiently(monkeypatch, w["ladok"], {a.admission_id})
    first = admissions.place(store, w["ladok"], w["folk"], ROUND)
    assert first["placed"] == 5 and first["retry"] == 1
    for n in range(2, 5):  # only the failing one is left; Ladok placed the others after it began failing
        assert admissions.place(store, w["ladok"], w["folk"], ROUND)["retry"] == 1
        with store.transaction() as s:
            assert s.get(NyaAdmission, a.admission_id).transient_failures == n
    fifth = admissions.place(store, w["ladok"], w["folk"], ROUND)
    assert fifth["retry"] == 0 and fifth["unhandled"] == 1 and fifth["hinder:ovrigt"] == 1
    u = _queue(store)[a.admission_id]
    assert u.hinder == "ovrigt" and "5 tillfälliga fel i rad" in u.reason and "HTTP 503" in u.reason
    with store.transaction() as s:
        row = s.get(NyaAdmission, a.admission_id)
        assert row.state == "unhandled" and row.transient_failures == 0 and row.claimed_by is None


def test_in_an_outage_admissions_stay_pending_and_are_shown_as_long_pending(store, world, monkeypatch):
    """Ladok refuses every placement with 503, seven runs in a row: nothing is queued as ovrigt
    (the trouble is Ladok's, not the admissions'), and the operators' overview shows them."""
    from brygga import views

    w = world
    admissions.fetch(store, w["nya"], ROUND)
    _fail_transiently(monkeypatch, w["ladok"], None)
    for _ in range(7):
        counts = admissions.place(store, w["ladok"], w["folk"], ROUND)
        assert counts["placed"] == 0 and counts["retry"] == 9 and "hinder:ovrigt" not in counts
    assert admissions.summary(store, ROUND)["pending"] == 9
    shown = views.long_pending(store, older_than=dt.timedelta(0))[ROUND]
    assert shown["count"] == 9 and shown["transient_failures"] == 7 and "HTTP 503" in shown["last_error"]


def test_a_failing_lookup_before_the_placement_never_counts_towards_ovrigt(store, world, monkeypatch):
    """After a run that placed everything, one admission is pending again and the student search
    fails for it six runs in a row: the trouble is the lookup's, not the placement's, so no
    transient failure is counted and it is not queued as ovrigt."""
    from adapters.http import PeerError

    w = world
    admissions.fetch(store, w["nya"], ROUND)
    assert admissions.place(store, w["ladok"], w["folk"], ROUND)["placed"] == 6
    (a,) = _admission_of(w, "c")
    with store.transaction() as s:
        assert s.get(NyaAdmission, a.admission_id).placed_at is not None
        s.get(NyaAdmission, a.admission_id).state = "pending"

    def search(pnrs, **kw):
        raise PeerError("ladok", "GET /studentinformation/student/filtrera: HTTP 503", status=503, transient=True)

    monkeypatch.setattr(w["ladok"], "students_by_personnummer", search)
    for _ in range(6):
        counts = admissions.place(store, w["ladok"], w["folk"], ROUND)
        assert counts["retry"] == 1 and "hinder:ovrigt" not in counts
    with store.transaction() as s:
        row = s.get(NyaAdmission, a.admission_id)
        assert row.state == "pending" and row.transient_failures == 0 and row.failing_since is None
