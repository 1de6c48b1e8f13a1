"""The admission import's test world: NyA, Ladok and the population register as simulators over
HTTP and one hand-built round that covers every hinder: a new student (established with the
register's address), a protected one (established without), existing students, a course in two of
the student's packages, a programme-internal admission without and with the package in the plan, a student who
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
from brygga import views
from brygga.store.models import AuditLog, FeedCheckpoint, NyaAdmission, Quarantine, UnhandledAdmission
from simulators._server import serve_in_thread

ROUND = "HT2027"
START, END = dt.date(2027, 8, 30), dt.date(2028, 1, 16)


def _unknown_pnr(taken: set[str]) -> str:
    from simulators.demo import unknown_personnummer

    return unknown_personnummer(taken)


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
