"""Admission import NyA → Ladok against the three simulators over HTTP, on both stores.

One hand-built world covers every hinder: a new student (established with the register's address),
a protected one (established without), existing students, a course in two of the student's
packages, a programme-internal admission without and with the package in the plan, a student who
has already started the education, an unknown and an invalid personnummer, an instance missing
in Ladok and a cancelled one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from adapters.folkbokforing import FolkbokforingAdapter
from adapters.ladok import LadokAdapter
from adapters.nya import NyaAdapter
from brygga import personnummer as pnr_mod
from brygga.connections import PeerConfig
from brygga.flows import admissions
from brygga.store.models import AuditLog, FeedCheckpoint, NyaAdmission, Quarantine, UnhandledAdmission
from simulators._server import serve_in_thread

ROUND = "HT2027"
START, END = dt.date(2027, 8, 30), dt.date(2028, 1, 16)


def _unknown_pnr(taken: set[str]) -> str:
    for n in range(100, 999):
        p = pnr_mod.with_check_digit(f"19850312{n:03d}")
        if p not in taken:
            return p
    raise AssertionError("no free personnummer")


@pytest.fixture
def world():
    with make_world() as w:
        yield w


@contextlib.contextmanager
def make_world():
    from simulators.folkbokforing.app import create_app as folk_app
    from simulators.folkbokforing.state import FolkbokforingState
    from simulators.ladok.app import create_app as ladok_app
    from simulators.ladok.state import LadokState, Placering
    from simulators.nya.app import create_app as nya_app
    from simulators.nya.state import ENG6, MATH4, Applicant, NyaState, Offer

    L = LadokState()
    folk = FolkbokforingState(seed=21, people=400)
    people = folk.all()
    protected = next(p for p in people if p.skyddad)
    plain = [p for p in people if not p.skyddad and not p.samordningsnummer]
    new, *existing = plain[:12]
    unknown = _unknown_pnr({p.personnummer for p in people})
    invalid = new.personnummer[:-1] + str((int(new.personnummer[-1]) + 1) % 10)

    def course(kod, tkod, start=START, **kw):
        u = L.add_utbildning(kod, f"Kurs {kod}", f"Course {kod}", "7.5", "kurs", [("0010", "Tentamen", "7.5")])
        return L.add_tillfalle(u, tkod, start, END, omgangar=[ROUND], **kw)

    def programme(kod, tkod, ingaende):
        u = L.add_utbildning(kod, f"Program {kod}", f"Programme {kod}", "180", "program")
        return L.add_tillfalle(u, tkod, START, dt.date(2030, 6, 5), omgangar=[ROUND], ingaende=[t.uid for t in ingaende])

    t1 = course("TDA100", "11001")
    t2old = course("TDA200", "12000", start=dt.date(2027, 1, 18))
    t2 = course("TDA200", "12001")
    t3 = course("TDA300", "13001")
    t4 = course("TDA400", "14001")
    t5 = course("TDA500", "15001", installt=True)
    t6 = course("TDA600", "16001")
    pt1, pt2 = programme("TKDAT", "21001", [t3]), programme("TKITE", "22001", [t3])
    pt3, pt4 = programme("TKMAS", "23001", [t4]), programme("TKELT", "24001", [t6])

    st = {p.personnummer: L.etablera_student(p.personnummer, p.fornamn, p.efternamn, emit=False)
          for p in existing}
    c, d, e, f, g, m, n, late = existing[:8]
    for who, prog in ((d, pt1), (d, pt2), (f, pt3)):
        L.placera(Placering(st[who.personnummer].uid, prog.uid, f"OLD-{who.personnummer}-{prog.kod}"))
    old = L.placera(Placering(st[g.personnummer].uid, t2old.uid, f"OLD-{g.personnummer}"))[0]
    L.registrera(old.uid)

    N = NyaState()
    N.put_round(ROUND, "open")

    def offer(t, kind="ordinary", package=None, kod=None, tkod=None):
        # (an offer of an instance Ladok does not have still has a UID: NyA's contract wants one)
        return Offer(t.uid if t else str(uuid.uuid5(uuid.NAMESPACE_URL, f"missing-{tkod}")), kind, kod or t.utbildning.kod, tkod or t.kod,
                     "Namn", None, Decimal("7.5"), START, END, "Göteborg", 100, 30,
                     *(("TKMAS", package) if package else ()))

    ordinary = {k: offer(t) for k, t in (("t1", t1), ("t2", t2), ("t3", t3), ("t5", t5), ("t6", t6), ("pt4", pt4))}
    ordinary["missing"] = offer(None, kod="XYZ999", tkod="99999")
    N.publish_offers(ROUND, "ordinary", list(ordinary.values()))
    internal = Offer(str(uuid.uuid5(uuid.NAMESPACE_URL, "pi-t4")), "programme-internal", t4.utbildning.kod, t4.kod, "Namn", None, Decimal("7.5"), START,
                     END, "Göteborg", 100, 30, "TKMAS", pt3.uid)
    N.publish_offers(ROUND, "programme-internal", [internal])

    def applicant(p, *offers_, pnr=None, fee=False, paid=True, cond=(), accept=True):
        return Applicant(pnr or p.personnummer, p.fornamn, p.efternamn, [o.offer_id for o in offers_], 10.0,
                         fee_liable=fee, application_fee_paid=paid, conditions=cond, auto_accept=accept)

    N.add_applicants(ROUND, [
        applicant(new, ordinary["t1"], fee=True, paid=True, cond=(ENG6,)),
        applicant(protected, ordinary["t1"]),
        applicant(c, ordinary["t1"], cond=(MATH4,)),
        applicant(d, ordinary["t3"]),
        applicant(e, internal),
        applicant(f, internal),
        applicant(g, ordinary["t2"]),
        applicant(m, ordinary["pt4"], ordinary["t6"], cond=(ENG6,)),
        applicant(n, ordinary["missing"]),
        applicant(n, ordinary["t5"], pnr=existing[8].personnummer),
        applicant(new, ordinary["t1"], pnr=unknown),
        applicant(new, ordinary["t1"], pnr=invalid),
        applicant(late, ordinary["t1"], accept=False),
    ])
    N.run_selection(ROUND)
    # The villkor is on M's programme admission only (NyA puts an applicant's villkor on every choice).
    rs = N.rounds[ROUND]
    course_adm = rs.admissions[rs.admission_by_key[(m.personnummer, ordinary["t6"].offer_id)]]
    course_adm.conditions.clear()
    course_adm.xml = None
    rs.changes[:] = [c for c in rs.changes if c.admission_id != course_adm.admission_id]

    with serve_in_thread(ladok_app(L)) as ls, serve_in_thread(nya_app(N)) as ns, serve_in_thread(folk_app(folk)) as fs:
        yield {
            "ladok": LadokAdapter(PeerConfig("ladok", ls.url)), "nya": NyaAdapter(PeerConfig("nya", ns.url)),
            "folk": FolkbokforingAdapter(PeerConfig("folkbokforing", fs.url)), "L": L, "N": N,
            "t": {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5, "t6": t6, "pt1": pt1, "pt2": pt2, "pt3": pt3,
                  "pt4": pt4},
            "p": {"new": new, "protected": protected, "c": c, "d": d, "e": e, "f": f, "g": g, "m": m, "n": n,
                  "late": late, "unknown": unknown, "invalid": invalid, "cancelled": existing[8]},
        }


def _run(store, w):
    counts = admissions.fetch(store, w["nya"], ROUND)
    placed = admissions.place(store, w["ladok"], w["folk"], ROUND, workers=4)
    return counts, placed


def _admission_of(w, key, offer_id=None):
    pnr = w["p"][key] if isinstance(w["p"][key], str) else w["p"][key].personnummer
    rs = w["N"].rounds[ROUND]
    return [a for a in rs.admissions.values() if a.personnummer == pnr and (offer_id is None or a.offer_id == offer_id)]


def _ladok_admission(w, admission_id):
    return w["L"].by_anmalningsnummer.get(admission_id)


def _queue(store):
    with store.transaction() as s:
        return {u.nya_admission_id: u for u in s.scalars(select(UnhandledAdmission))}


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
    assert admissions.count_unhandled(store, round_code=ROUND) == {k: len(v) for k, v in by_hinder.items()}
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
    listed = admissions.list_unhandled(store, round_code=ROUND, hinder="personnummer.okant")
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


def test_operator_retry_with_package_free_standing_and_handled(store, world):
    w = world
    _run(store, w)
    t = w["t"]
    (a_d,) = _admission_of(w, "d")
    (a_e,) = _admission_of(w, "e")
    (a_g,) = _admission_of(w, "g")

    with pytest.raises(ValueError):
        admissions.retry(store, w["ladok"], w["folk"], a_d.admission_id, actor="op", package_uid=t["pt1"].uid,
                         fristaende=True)
    # A package that does not contain the course: still unhandled, the reason says why.
    res = admissions.retry(store, w["ladok"], w["folk"], a_d.admission_id, actor="anna", package_uid=t["pt3"].uid)
    assert res["outcome"] == "unhandled" and res["hinder"] == "kunde.inte.placeras.i.plan"
    res = admissions.retry(store, w["ladok"], w["folk"], a_d.admission_id, actor="anna", package_uid=t["pt1"].uid)
    assert res["outcome"] == "placed" and res["package_uid"] == t["pt1"].uid
    assert _ladok_admission(w, a_d.admission_id).paket.tillfalle is t["pt1"]

    res = admissions.retry(store, w["ladok"], w["folk"], a_e.admission_id, actor="anna", fristaende=True)
    assert res["outcome"] == "placed" and res["package_uid"] is None
    assert _ladok_admission(w, a_e.admission_id).paket is None

    admissions.mark_handled(store, a_g.admission_id, actor="bertil", note="tillfällesbyte gjort")
    again = admissions.retry(store, w["ladok"], w["folk"], a_g.admission_id, actor="anna")
    assert again["outcome"] == "handled" and again["already"]  # a repeated action is not an error

    queue = _queue(store)
    assert queue[a_d.admission_id].status == "resolved" and queue[a_d.admission_id].resolved_by == "anna"
    assert queue[a_e.admission_id].resolution == "ompröva: fristående"
    assert queue[a_g.admission_id].status == "manual" and queue[a_g.admission_id].resolution == "tillfällesbyte gjort"
    assert "redan.paborjat" not in admissions.count_unhandled(store, round_code=ROUND)
    with store.transaction() as s:
        actions = [(a.actor, a.action) for a in s.scalars(select(AuditLog).where(
            AuditLog.object_id.in_([a_d.admission_id, a_e.admission_id, a_g.admission_id])).order_by(AuditLog.id))]
    assert actions.count(("anna", "admission.retry")) == 3 and ("bertil", "admission.handled") in actions
    # Placed admissions are not re-placed by the next import run.
    assert _run(store, w)[1]["placed"] == 0


def test_villkor_lifted_in_nya_removed_in_ladok_and_manual_removal_not_sent_back(store, world):
    from simulators.nya.state import Condition

    w = world
    _run(store, w)
    L, N = w["L"], w["N"]
    rs = N.rounds[ROUND]
    (a_new,) = _admission_of(w, "new")
    (a_c,) = _admission_of(w, "c")
    (a_m_course,) = _admission_of(w, "m", w["t"]["t6"].uid)
    la_new, la_c = _ladok_admission(w, a_new.admission_id), _ladok_admission(w, a_c.admission_id)

    # Staff remove C's villkor by hand in Ladok; NyA lifts both.
    L.lyft_villkor(la_c.uid, "VILLKOR-MA4", manuellt=True)
    N.lift_condition(ROUND, a_new.admission_id, "VILLKOR-ENG6")
    N.lift_condition(ROUND, a_c.admission_id, "VILLKOR-MA4")
    changes_before = len(rs.changes)
    # NyA adds a villkor after placement.
    adm = rs.admissions[a_m_course.admission_id]
    cond = Condition("VILLKOR-MA4", "Matematik 4")
    adm.conditions.append(cond)
    N._condition_event(rs, adm, cond, "added", dt.date.today())

    replies_before = len(N.replies)
    counts = admissions.sync_conditions(store, w["nya"], w["ladok"], ROUND)
    assert counts["lifted"] == 1 and counts["already_removed"] == 1 and counts["added"] == 1
    assert la_new.aktuella_villkor() == [] and la_c.villkor["VILLKOR-MA4"].manuellt
    assert [v.kod for v in _ladok_admission(w, a_m_course.admission_id).aktuella_villkor()] == ["VILLKOR-MA4"]
    # Nothing went back to NyA: its condition stream only has its own two lifts and the addition.
    assert len(rs.changes) == changes_before + 1
    assert len(N.replies) == replies_before  # no mutating request reached NyA

    again = admissions.sync_conditions(store, w["nya"], w["ladok"], ROUND)
    assert again["read"] == 0 and again["lifted"] == again["added"] == 0
    # The re-read admissions (their sequence moved) do not put the lifted villkor back.
    _run(store, w)
    assert la_new.aktuella_villkor() == []


def test_aterbud_before_placement_is_never_placed(store, world):
    w = world
    (a_c,) = _admission_of(w, "c")
    w["N"].register_aterbud(ROUND, admission_id=a_c.admission_id)
    _run(store, w)
    assert _ladok_admission(w, a_c.admission_id) is None
    with store.transaction() as s:
        assert s.get(NyaAdmission, a_c.admission_id).state == "declined"
        assert s.scalar(select(func.count()).select_from(NyaAdmission).where(NyaAdmission.state == "placed")) == 5


def test_operator_cli_count_list_retry_handled(store, world, capsys, monkeypatch):
    from brygga import cli

    w = world
    _run(store, w)
    url = store.engine.url.render_as_string(hide_password=False)
    assert cli.main(["admissions", "--url", url, "count", "--round", ROUND]) == 0
    out = capsys.readouterr().out
    assert "kunde.inte.placeras.i.plan" in out and out.strip().endswith("total")
    total = int(out.strip().splitlines()[-1].split()[0])
    assert total == sum(admissions.count_unhandled(store, round_code=ROUND).values()) == 7

    assert cli.main(["admissions", "--url", url, "list", "--hinder", "personnummer.okant"]) == 0
    out = capsys.readouterr().out
    assert pnr_mod.mask(w["p"]["unknown"]) in out and w["p"]["unknown"] not in out and "1 admission(s)" in out

    (a_d,) = _admission_of(w, "d")
    monkeypatch.setenv("BRYGGA_LADOK_URL", w["ladok"].base)
    monkeypatch.setenv("BRYGGA_FOLKBOKFORING_URL", w["folk"].base)
    assert cli.main(["admissions", "--url", url, "--actor", "cecilia", "ompröva", a_d.admission_id,
                     "--package", w["t"]["pt2"].uid]) == 0
    assert _ladok_admission(w, a_d.admission_id).paket.tillfalle is w["t"]["pt2"]
    (a_g,) = _admission_of(w, "g")
    assert cli.main(["admissions", "--url", url, "--actor", "cecilia", "handled", a_g.admission_id,
                     "--note", "byte"]) == 0
    capsys.readouterr()
    assert cli.main(["admissions", "--url", url, "count"]) == 0
    assert int(capsys.readouterr().out.strip().splitlines()[-1].split()[0]) == 5


def test_aterbud_arriving_while_placing_is_queued_not_lost(store, world, monkeypatch):
    """The återbud flow declines a pending admission while Ladok is placing it: the placement is
    recorded and the admission queued so staff enter the återbud (it must not vanish)."""
    w = world
    admissions.fetch(store, w["nya"], ROUND)
    (a_c,) = _admission_of(w, "c")
    real = admissions.placing._place_all

    def place_then_decline(items, *args):
        real(items, *args)
        with store.transaction() as s:
            row = s.get(NyaAdmission, a_c.admission_id)
            row.state, row.aterbud_date = "declined", "2027-08-01"

    monkeypatch.setattr(admissions.placing, "_place_all", place_then_decline)
    counts = admissions.place(store, w["ladok"], w["folk"], ROUND)
    assert counts["placed"] == 5
    assert _ladok_admission(w, a_c.admission_id) is not None
    u = _queue(store)[a_c.admission_id]
    assert u.hinder == "aterbud.under.placering" and "2027-08-01" in u.reason
    with store.transaction() as s:
        row = s.get(NyaAdmission, a_c.admission_id)
        assert row.state == "unhandled" and row.antagning_uid == _ladok_admission(w, a_c.admission_id).uid


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


def test_a_villkor_change_ladok_refuses_is_quarantined_and_the_rest_go_on(store, world):
    from simulators.nya.state import Condition

    w = world
    _run(store, w)
    N, rs = w["N"], w["N"].rounds[ROUND]
    admissions.sync_conditions(store, w["nya"], w["ladok"], ROUND)
    (a_c,) = _admission_of(w, "c")
    (a_new,) = _admission_of(w, "new")
    with store.transaction() as s:  # the tillfällesantagning is gone in Ladok
        s.get(NyaAdmission, a_c.admission_id).antagning_uid = "00000000-0000-4000-8000-000000000000"
    cond = Condition("VILLKOR-SV3", "Svenska 3")
    adm = rs.admissions[a_c.admission_id]
    adm.conditions.append(cond)
    N._condition_event(rs, adm, cond, "added", dt.date.today())
    N.lift_condition(ROUND, a_new.admission_id, "VILLKOR-ENG6")
    counts = admissions.sync_conditions(store, w["nya"], w["ladok"], ROUND)
    assert counts["refused"] == 1 and counts["lifted"] == 1
    assert _ladok_admission(w, a_new.admission_id).aktuella_villkor() == []
    with store.transaction() as s:
        q = s.scalars(select(Quarantine).where(Quarantine.kind == "ConditionChange")).one()
        assert a_c.admission_id in q.reason and "VILLKOR-SV3" in q.reason
    assert admissions.sync_conditions(store, w["nya"], w["ladok"], ROUND)["read"] == 0  # checkpoint moved on


def test_unreadable_records_without_an_id_or_too_long_never_block_the_round(store):
    """Two records without AdmissionId, a duplicated id and one the mapping found bad in one chunk:
    the two without an id only quarantined, the bad one queued, the good admission stored (on
    PostgreSQL too, where VARCHAR lengths are enforced). Over-long values are the mapping's to
    refuse (test_hostile_batch_has_the_same_outcome_on_both_stores)."""
    from brygga.records import Admission
    from mappings.base import RecordError

    def adm(aid, kod="TDA100"):
        return Admission(aid, 5, ROUND, "199001011239", "A", "B", "o1", kod, "11001", False, True, True, False)

    batch = [RecordError("sequence:3", "AdmissionId", "required field missing", "Admission", has_id=False),
             RecordError("sequence:4", "AdmissionId", "required field missing", "Admission", has_id=False),
             adm("HT2027-A1"), adm("HT2027-A1"),
             RecordError("HT2027-A2", "Utbildningskod", "longer than 20 characters", "Admission")]
    counts = {"read": 0, "new": 0, "updated": 0, "invalid": 0, "declined": 0}
    with store.transaction() as s:
        admissions.fetching.store_admissions(s, ROUND, batch, counts)
    assert counts["new"] == 1 and counts["invalid"] == 3
    with store.transaction() as s:
        assert {r.admission_id: r.state for r in s.scalars(select(NyaAdmission))} == {
            "HT2027-A1": "pending", "HT2027-A2": "invalid"}  # never stored under "sequence:3"
        assert sorted(s.scalars(select(Quarantine.message_id))) == ["HT2027-A2", "sequence:3", "sequence:4"]
        assert list(s.scalars(select(UnhandledAdmission.nya_admission_id))) == ["HT2027-A2"]


def _hostile(w) -> list[str]:
    """Admissions as a broken NyA might send them, beside the world's good ones."""
    t1 = w["t"]["t1"]
    person = w["p"]["c"].personnummer
    good = {"Round": ROUND, "Personnummer": person, "GivenName": "Ada", "FamilyName": "Berg", "OfferId": t1.uid,
            "Utbildningskod": "TDA100", "Tillfalleskod": "11001", "ProgrammeInternal": "false", "Admitted": "true",
            "Accepted": "true", "FeeLiable": "false"}

    def adm(aid, extra="", **fields):
        values = {**good, **fields}
        body = "".join(f"<{k}>{v}</{k}>" for k, v in values.items() if v is not None)
        head = f"<AdmissionId>{aid}</AdmissionId>" if aid is not None else ""
        return f"<Admission>{head}<Sequence>{{sequence}}</Sequence>{body}{extra}</Admission>"

    def aterbud(date):
        return f"<Aterbud><AterbudId>AB-9</AterbudId><Date>{date}</Date><Origin>applicant</Origin></Aterbud>"

    return [
        adm("HT2027-H1", aterbud("2027-08-01+02:00")),  # valid (xs:date with a zone): a calendar day
        adm("HT2027-H2", Round=ROUND + "X" * 40),
        adm("H" * 200),
        adm(None),
        adm("HT2027-H5", aterbud("2027-02-30")),
        adm("HT2027-H6", GivenName="Å" * 400),
        adm("HT2027-H7", Utbildningskod="TDA" * 14),
        adm("HT2027-H8", "<Condition><Code>" + "K" * 30 + "</Code><Text>t</Text><Lifted>false</Lifted></Condition>"),
        adm("HT2027-H9", Personnummer=person[:-1] + str((int(person[-1]) + 1) % 10)),
        adm("HT2027-H10", Round="VT2028"),
        adm("HT2027-H11", aterbud("not-a-date")),
    ]


def _outcome(store):
    with store.transaction() as s:
        states = {r.admission_id: (r.state, r.aterbud_date) for r in s.scalars(select(NyaAdmission))}
        queue = {u.nya_admission_id: (u.hinder, u.reason) for u in s.scalars(select(UnhandledAdmission))}
        quarantine = sorted((q.message_id, q.reason) for q in s.scalars(select(Quarantine)))
    return states, queue, quarantine


def test_hostile_batch_has_the_same_outcome_on_both_stores(empty_store_factory):
    """The same hostile GetAdmissions reply, fetched and placed on SQLite and on PostgreSQL (where
    VARCHAR lengths are enforced): every bad record quarantined with its reason, queued only under
    a usable AdmissionId, and every good admission handled exactly as in a run without them."""
    from brygga.store import migrate

    outcomes, counts = {}, {}
    for backend in ("clean", "sqlite", "postgresql"):
        store = empty_store_factory("sqlite" if backend == "clean" else backend)
        migrate.upgrade(store)
        with make_world() as w:
            if backend != "clean":
                w["N"].add_raw_admissions(ROUND, _hostile(w))
            counts[backend], _ = _run(store, w)
            admissions.sync_conditions(store, w["nya"], w["ladok"], ROUND)
            outcomes[backend] = _outcome(store)
    assert outcomes["sqlite"] == outcomes["postgresql"] and counts["sqlite"] == counts["postgresql"]
    states, queue, quarantine = outcomes["postgresql"]
    clean_states, clean_queue, _ = outcomes["clean"]
    assert {k: v for k, v in states.items() if "-H" not in k} == clean_states  # the rest of the batch went on
    assert {k: v for k, v in queue.items() if "-H" not in k} == clean_queue
    assert states["HT2027-H1"] == ("declined", "2027-08-01")
    bad = {f"HT2027-H{n}" for n in (2, 5, 6, 7, 8, 9, 10, 11)}
    assert {k for k, v in states.items() if k.startswith("HT2027-H")} == bad | {"HT2027-H1"}
    assert all(states[k] == ("invalid", None) for k in bad)
    assert {k: v[0] for k, v in queue.items() if k in bad} == {
        **{k: "ogiltig.antagning" for k in bad}, "HT2027-H9": "personnummer.ogiltigt"}
    reasons = dict(quarantine)
    assert "Round" in reasons["HT2027-H2"] and "Aterbud/Date" in reasons["HT2027-H5"]
    assert "longer than 300" in reasons["HT2027-H6"] and "longer than 20" in reasons["HT2027-H7"]
    assert "VT2028 in a reply for HT2027" in reasons["HT2027-H10"]
    no_id = [m for m, _ in quarantine if not m.startswith("HT2027-")]
    assert len(no_id) == 2 and any(m.startswith("sequence:") for m in no_id)
    assert all(len(m) <= 100 for m in no_id) and not any(m in states for m in no_id)  # quarantined only
    assert counts["postgresql"]["invalid"] == counts["clean"]["invalid"] + 10


def test_aterbud_decided_before_a_concurrent_placement_opens_a_case(store, world, monkeypatch):
    """The återbud flow decides 'decline' for a pending admission, then the import places it before
    the återbud flow commits: the placement stands and staff get an återbudsärende to enter it."""
    from brygga.flows import aterbud
    from brygga.store.models import AterbudCase

    w = world
    admissions.fetch(store, w["nya"], ROUND)
    (a_c,) = _admission_of(w, "c")
    w["N"].register_aterbud(ROUND, admission_id=a_c.admission_id)
    real = aterbud.from_nya._decide

    def decide_then_placed(item, row, *a, **k):
        out = real(item, row, *a, **k)
        if getattr(item, "admission_id", None) == a_c.admission_id:
            with store.transaction() as s:
                r = s.get(NyaAdmission, a_c.admission_id)
                r.state, r.antagning_uid = "placed", "11111111-1111-4111-8111-111111111111"
        return out

    monkeypatch.setattr(aterbud.from_nya, "_decide", decide_then_placed)
    aterbud.nya_to_ladok(store, w["nya"], w["ladok"])
    with store.transaction() as s:
        assert s.get(NyaAdmission, a_c.admission_id).state == "placed"
        case = s.scalars(select(AterbudCase).where(AterbudCase.nya_admission_id == a_c.admission_id)).one()
        assert (case.cause, case.suggested_action, case.status) == ("placed_meanwhile", "aterbud", "open")


def test_an_admission_corrected_in_nya_leaves_the_queue_and_is_placed(store, world):
    w = world
    _run(store, w)
    (a_bad,) = _admission_of(w, "invalid")
    assert _queue(store)[a_bad.admission_id].status == "open"
    rs = w["N"].rounds[ROUND]
    adm = rs.admissions[a_bad.admission_id]
    good = w["p"]["e"].personnummer  # NyA corrects the number (to a student in Ladok)
    rs.applicants[good] = rs.applicants.pop(adm.personnummer)
    adm.personnummer = good
    w["N"]._touch(rs, adm)
    counts, placed = _run(store, w)
    assert counts["updated"] == 1 and placed["placed"] == 1
    u = _queue(store)[a_bad.admission_id]
    assert (u.status, u.resolution) == ("resolved", "rättad i NyA")


def _ladok_requests(w, monkeypatch):
    """The (method, path) of every request the Ladok adapter sends from now on."""
    sent, real = [], w["ladok"]._request

    def spy(method, path, service, **kw):
        sent.append((method, path))
        return real(method, path, service, **kw)

    monkeypatch.setattr(w["ladok"], "_request", spy)
    return sent


def _student_requests(sent):
    search = sum(1 for m, p in sent if p == "/studentinformation/student/filtrera")
    lookups = sum(1 for m, p in sent if p.startswith("/studentinformation/student/personnummer/"))
    established = sum(1 for m, p in sent if (m, p) == ("POST", "/studentinformation/student"))
    return search, lookups, established


@pytest.mark.parametrize("batch, searches", [(admissions.LOOKUP_BATCH, 1), (4, 3)])
def test_students_are_found_with_one_search_per_batch(store, world, monkeypatch, batch, searches):
    """Nine students reach the student step (six in Ladok, two new, one unknown to the register):
    one student search per batch of numbers instead of nine lookups, with the same outcome."""
    w = world
    monkeypatch.setattr(admissions.resolving, "LOOKUP_BATCH", batch)
    sent = _ladok_requests(w, monkeypatch)
    _, placed = _run(store, w)
    assert placed["placed"] == 6 and placed["established"] == 2 and placed["unhandled"] == 6
    assert _student_requests(sent) == (searches, 0, 2)


def test_a_search_that_finds_no_one_still_places_existing_students_once(store, world, monkeypatch):
    """A Ladok whose search answers nothing (e.g. it ignores the repeated personnummer): the
    existing students are met by establishment's personnummer.finns and looked up one by one,
    never established twice, and only the two new students count as established."""
    w = world
    L, p = w["L"], w["p"]
    n_students = len(L.students)
    monkeypatch.setattr(w["ladok"], "students_by_personnummer", lambda pnrs, **kw: {})
    sent = _ladok_requests(w, monkeypatch)
    _, placed = _run(store, w)
    assert placed["placed"] == 6 and placed["established"] == 2
    assert len(L.students) == n_students + 2
    assert _student_requests(sent) == (0, 6, 8)  # 6 existing: 409 personnummer.finns, then the lookup
    for key in ("c", "f", "m"):
        for a in _admission_of(w, key):
            assert _ladok_admission(w, a.admission_id).student_uid == L.by_pnr[p[key].personnummer].uid


def test_a_failed_search_leaves_its_admissions_pending(store, world, monkeypatch):
    """Ladok fails the student search (5xx): every admission of the batch is retried later, none
    is queued and no one is established; the catalogue hinder are still queued."""
    from adapters.http import PeerError

    w = world

    def fail(pnrs, **kw):
        raise PeerError("ladok", "GET /studentinformation/student/filtrera: HTTP 503", status=503, transient=True)

    monkeypatch.setattr(w["ladok"], "students_by_personnummer", fail)
    n_students = len(w["L"].students)
    _, placed = _run(store, w)
    assert placed == {"placed": 0, "established": 0, "unhandled": 2, "retry": 10,
                      "hinder:utbildningstillfalle.saknas": 1, "hinder:utbildningstillfalle.installt": 1}
    assert len(w["L"].students) == n_students
    assert admissions.summary(store, ROUND) == {"pending": 10, "unhandled": 2, "invalid": 1}


def test_an_unreadable_reply_keeps_what_came_before_and_waits_for_an_operator(store, world, capsys):
    """A control character in one admission of NyA's reply: the admissions before it are stored,
    the round's checkpoint moves to just after the last good one, the reply is quarantined with
    its position and the parser's message (each run counted), and the fetch fails without ever
    moving past it; an operator moves past it (audited) and the admissions after it are read."""
    from adapters.http import UnreadableReply
    from brygga import cli
    from brygga.store import ops

    w = world
    good_before = len(list(w["N"].admissions_since(ROUND, 0, only_accepted=True)[1]))
    (bad_seq,) = w["N"].add_raw_admissions(ROUND, ["<Admission><AdmissionId>HT2027-X1</AdmissionId>"
                                                   "<Sequence>{sequence}</Sequence><GivenName>\x01</GivenName>"
                                                   "</Admission>"])
    after = w["N"].accept(ROUND, w["p"]["late"].personnummer)  # a later change: sequence after the bad one
    assert after and after[0].sequence > bad_seq
    name = admissions.fetching.checkpoint_name(ROUND)
    for attempt in (1, 2):
        with pytest.raises(UnreadableReply) as e:
            admissions.fetch(store, w["nya"], ROUND)
        assert "GetAdmissions" in str(e.value) and "not well-formed" in str(e.value) and e.value.transient
        with store.transaction() as s:
            assert s.scalar(select(func.count()).select_from(NyaAdmission)) == good_before
            assert ops.checkpoint_get(s, name).page == bad_seq  # just after the last good admission
            (q,) = s.scalars(select(Quarantine).where(Quarantine.kind == "GetAdmissions-reply"))
            assert (q.attempts, q.message_id) == (attempt, f"{name}:{bad_seq}")
            assert "brygga checkpoints set" in q.reason and "line" in q.reason
    url = str(store.engine.url.render_as_string(hide_password=False))
    assert cli.main(["checkpoints", "set", name, str(bad_seq + 1), "--reason", "NyA ärende 4711", "--actor", "ops",
                     "--url", url]) == 0
    counts = admissions.fetch(store, w["nya"], ROUND)
    assert counts["new"] == 1
    with store.transaction() as s:
        assert s.get(NyaAdmission, after[0].admission_id).state == "pending"
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "checkpoint.set")).one()
        assert (audit.actor, audit.detail["before"]["position"], audit.detail["reason"]) == ("ops", bad_seq,
                                                                                           "NyA ärende 4711")
    assert cli.main(["quarantine", "list", "--url", url]) == 0
    assert "GetAdmissions-reply" in capsys.readouterr().out


def test_another_operations_reply_is_an_error_naming_peer_and_operation(store):
    """NyA answers GetAdmissions with a GetAterbudResponse: not 0 admissions and a moved checkpoint,
    but an error naming the peer and the operation; nothing is stored."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from adapters.http import UnreadableReply

    body = (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            b'<GetAterbudResponse xmlns="urn:brygga:nya:1"><Round>HT2027</Round><NextSequence>999</NextSequence>'
            b"</GetAterbudResponse></soap:Body></soap:Envelope>")

    async def soap(request):
        return Response(body, media_type="text/xml")

    with serve_in_thread(Starlette(routes=[Route("/nya/soap", soap, methods=["POST"])])) as srv:
        with pytest.raises(UnreadableReply) as e:
            admissions.fetch(store, NyaAdapter(PeerConfig("nya", srv.url)), ROUND)
    assert str(e.value).startswith("nya: GetAdmissions: unreadable reply") and not e.value.transient
    assert "GetAdmissionsResponse" in str(e.value)
    with store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(NyaAdmission)) == 0
        cp = s.get(FeedCheckpoint, admissions.fetching.checkpoint_name(ROUND))
        assert cp is None or cp.page != 999


def _count_posts(monkeypatch, ladok):
    """Every placement POST Ladok receives, by Anmalningsnummer."""
    import collections
    import threading

    posts: collections.Counter = collections.Counter()
    lock = threading.Lock()
    real = ladok.place

    def place(p):
        with lock:
            posts[p.anmalningsnummer] += 1
        return real(p)

    monkeypatch.setattr(ladok, "place", place)
    return posts


def test_two_placers_over_the_same_rows_send_each_placement_once(store, world, monkeypatch):
    """Placer A claims its first chunk; while it works on it, placer B runs over the same round.
    B takes only what A has not claimed, A finds B's done: every admission is POSTed to Ladok once
    and audited once."""
    w = world
    admissions.fetch(store, w["nya"], ROUND)
    posts = _count_posts(monkeypatch, w["ladok"])
    real, inner = admissions.placing.resolve_all, {}

    def resolve_then_let_b_run(items, *a, **k):
        real(items, *a, **k)
        if not inner:
            inner["a_chunk"] = len(items)
            inner["b"] = admissions.place(store, w["ladok"], w["folk"], ROUND, workers=2)

    monkeypatch.setattr(admissions.placing, "resolve_all", resolve_then_let_b_run)
    a = admissions.place(store, w["ladok"], w["folk"], ROUND, chunk=3, workers=2)
    b = inner["b"]
    assert a["placed"] > 0 and b["placed"] > 0
    assert a["placed"] + b["placed"] == admissions.summary(store, ROUND)["placed"] == 6
    assert posts and max(posts.values()) == 1, posts
    with store.transaction() as s:
        audited = [i for r in s.scalars(select(AuditLog).where(AuditLog.action == "admission.place"))
                   for i in (r.detail or {}).get("admissions", [])]
        assert len(audited) == len(set(audited)) == 6
        assert s.scalar(select(func.count()).select_from(NyaAdmission)
                        .where(NyaAdmission.claimed_by.is_not(None))) == 0


def _claim_all_pending(store, by, until):
    t = NyaAdmission.__table__
    with store.transaction() as s:
        return s.execute(t.update().where(t.c.state == "pending").values(claimed_by=by, claimed_until=until)).rowcount


def test_claims_of_a_dead_placer_on_this_host_are_given_back(store, world):
    """A placer killed mid-chunk (kill -9) leaves its claims: the next run on the same host sees
    the process is gone and gives them back at once, not after the lease."""
    import socket

    w = world
    admissions.fetch(store, w["nya"], ROUND)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=4)
    assert _claim_all_pending(store, f"{socket.gethostname()}:999999999:dead", later) == 12
    assert admissions.place(store, w["ladok"], w["folk"], ROUND)["placed"] == 6


def test_a_live_claim_is_respected_until_its_lease_lapses(store, world, monkeypatch):
    w = world
    admissions.fetch(store, w["nya"], ROUND)
    posts = _count_posts(monkeypatch, w["ladok"])
    now = dt.datetime.now(dt.timezone.utc)
    _claim_all_pending(store, "another-host:4242:live", now + dt.timedelta(minutes=4))
    assert admissions.place(store, w["ladok"], w["folk"], ROUND) == {"placed": 0, "established": 0,
                                                                      "unhandled": 0, "retry": 0}
    assert not posts
    _claim_all_pending(store, "another-host:4242:live", now - dt.timedelta(seconds=1))
    assert admissions.place(store, w["ladok"], w["folk"], ROUND)["placed"] == 6
    assert max(posts.values()) == 1


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
