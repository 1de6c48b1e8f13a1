"""A live demo round for ``make run`` (issue 32 §6): what a newcomer should find on every console
page a minute after start, made by Brygga's own flows against the simulators — not rows written
into Brygga's store.

``add_demo(ladok, nya, register)`` adds to the open round HT2027 (Ladok instances, NyA offers,
applicants admitted and accepted) one admission for each hinder the admission import meets:

* a course that lies in two programmes of the student's study plan (kunde.inte.placeras.i.plan,
  two candidate packages: ompröva in one places it);
* a cancelled instance (utbildningstillfälle inställt);
* a course the student already started on an earlier instance (redan påbörjat);
* a personnummer the population register does not know (personnummer okänt), and one with a
  wrong check digit (quarantined with its reason, and queued);
* an offer whose instance Ladok does not have (utbildningstillfälle saknas);
* plus ordinary admissions that place, one with a behörighetsvillkor, and one not yet accepted.

For the statistics, a **history** set beside them: 24 more admissions, eight each of a cancelled
instance (DEM600), an instance Ladok lacks (DEM998) and a personnummer the register does not know
(DEM700). ``history(store)`` (run by ``make run``'s demo step once the import has queued them) marks
two thirds handled through the queue's own action (audited, actor ``demo``) and then spreads those
entries over the last two weeks — the one thing the demo writes into Brygga's store itself, said so
in an audit row (``demo.history``) — so Statistik has days to show.

``Actor`` then plays the people after the import has placed them (a thread of the simulators'
process, every few seconds): a placed student registers and gives an återbud in NyA ten days into
the course (the återbud sync opens an återbudsärende: registered, suggested tidigt avbrott), a
study administrator enters another student's återbud in Ladok (reported to NyA), and a third
student's placement is removed in Ladok (the reconciliation's drift: admission missing in Ladok).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal
from typing import Any

from brygga import personnummer as pnr_mod

ROUND = "HT2027"
HISTORY = ("91006", "91998", "91007")  # the history set's tillfälleskoder: cancelled, missing, unknown person


def unknown_personnummer(taken: set[str]) -> str:
    """A valid personnummer none of ``taken`` has (the population register does not know it)."""
    for n in range(100, 999):
        p = pnr_mod.with_check_digit(f"19850312{n:03d}")
        if p not in taken:
            return p
    raise RuntimeError("no free personnummer")


def add_demo(ladok: Any, nya: Any, register: Any) -> dict[str, Any]:
    """Add the demo round to the seeded simulators' states; returns who is who (for ``Actor``)."""
    from simulators.ladok.catalogue import term_start
    from simulators.ladok.state import Placering
    from simulators.nya.state import ENG6, MATH4, Applicant, Offer

    start, end = term_start(ROUND)
    people = [p for p in register.all() if not p.samordningsnummer]
    plain = [p for p in people if not p.skyddad][-40:]  # the register's last: no other seed uses them
    taken = {p.personnummer for p in people}

    def course(kod: str, tkod: str, first: dt.date = start, **kw: Any) -> Any:
        u = ladok.add_utbildning(kod, f"Demokurs {kod}", f"Demo course {kod}", "7.5", "kurs", [("0010", "Tentamen", "7.5")])
        return ladok.add_tillfalle(u, tkod, first, end, omgangar=[ROUND], **kw)

    def programme(kod: str, tkod: str, courses: list[Any]) -> Any:
        u = ladok.add_utbildning(kod, f"Demoprogram {kod}", f"Demo programme {kod}", "180", "program")
        return ladok.add_tillfalle(u, tkod, start, dt.date(start.year + 3, 6, 5), omgangar=[ROUND],
                                   ingaende=[t.uid for t in courses])

    plain_course = course("DEM100", "91001")
    earlier = course("DEM200", "91900", first=dt.date(start.year, 1, 18))
    again = course("DEM200", "91901")
    shared = course("DEM300", "91002")
    cancelled = course("DEM500", "91005", installt=True)
    p1, p2 = programme("DEMPA", "92001", [shared]), programme("DEMPB", "92002", [shared])

    students = {p.personnummer: ladok.etablera_student(p.personnummer, p.fornamn, p.efternamn, emit=False)
                for p in plain[:6]}
    a, b, c, d, e, f = plain[:6]
    for prog in (p1, p2):  # D has both programmes in the study plan: the course fits two packages
        ladok.placera(Placering(students[d.personnummer].uid, prog.uid, f"DEMO-OLD-{d.personnummer}-{prog.kod}"))
    old = ladok.placera(Placering(students[e.personnummer].uid, earlier.uid, f"DEMO-OLD-{e.personnummer}"))[0]
    ladok.registrera(old.uid)  # E started DEM200 in the spring
    ladok.placements_created = 0

    def offer(t: Any = None, kod: str = "", tkod: str = "") -> Offer:
        uid = t.uid if t else str(uuid.uuid5(uuid.NAMESPACE_URL, f"brygga-demo-missing-{tkod}"))
        return Offer(uid, "ordinary", kod or t.utbildning.kod, tkod or t.kod, f"Demokurs {kod or t.utbildning.kod}",
                     None, Decimal("7.5"), start, end, "Umeå", 100, 30)

    offers = {"plain": offer(plain_course), "again": offer(again), "shared": offer(shared),
              "cancelled": offer(cancelled), "missing": offer(kod="DEM999", tkod="91999")}
    nya.publish_offers(ROUND, "ordinary", list(offers.values()))
    new = plain[6:12]
    unknown = unknown_personnummer(taken)
    invalid = new[0].personnummer[:-1] + str((int(new[0].personnummer[-1]) + 1) % 10)

    def applicant(p: Any, o: Offer, pnr: str | None = None, cond: tuple[Any, ...] = (), accept: bool = True) -> Applicant:
        return Applicant(pnr or p.personnummer, p.fornamn, p.efternamn, [o.offer_id], 10.0, conditions=cond,
                         auto_accept=accept)

    nya.add_applicants(ROUND, [
        applicant(a, offers["plain"]), applicant(b, offers["plain"], cond=(MATH4,)), applicant(c, offers["plain"]),
        applicant(d, offers["shared"]), applicant(e, offers["again"]), applicant(f, offers["cancelled"]),
        applicant(new[1], offers["plain"], cond=(ENG6,)), applicant(new[2], offers["missing"]),
        applicant(new[3], offers["plain"], pnr=unknown), applicant(new[4], offers["plain"], pnr=invalid),
        applicant(new[5], offers["plain"], accept=False),
    ])
    history_course, history_cancelled = course("DEM700", HISTORY[2]), course("DEM600", HISTORY[0], installt=True)
    more = {"cancelled": offer(history_cancelled), "missing": offer(kod="DEM998", tkod=HISTORY[1]),
            "plain": offer(history_course)}
    nya.publish_offers(ROUND, "ordinary", list(more.values()))
    unknowns: list[str] = []
    for _ in range(8):
        unknowns.append(unknown_personnummer(taken | set(unknowns)))
    older = plain[12:28]
    nya.add_applicants(ROUND, [applicant(p, more["cancelled"]) for p in older[:8]]
                       + [applicant(p, more["missing"]) for p in older[8:16]]
                       + [applicant(older[i], more["plain"], pnr=u) for i, u in enumerate(unknowns)])
    nya.run_selection(ROUND)
    return {"registers": c.personnummer, "staff_aterbud": a.personnummer, "lost": b.personnummer,
            "course": plain_course, "start": start}


class Actor(threading.Thread):
    """The demo's people, once the admission import has placed them: C registers and gives an
    återbud in NyA ten days into the course; a study administrator enters A's återbud in Ladok;
    B's placement is removed in Ladok."""

    def __init__(self, ladok: Any, nya: Any, who: dict[str, Any], every: float = 3.0):
        super().__init__(daemon=True, name="demo-actor")
        self.ladok, self.nya, self.who, self.every = ladok, nya, who, every
        self.done: set[str] = set()
        self.stopped = threading.Event()

    def _placed(self, pnr: str) -> Any:
        with self.ladok.lock:
            student = self.ladok.by_pnr.get(pnr)
            return student and next((x for x in self.ladok.antagningar.values()
                                     if x.tillfalle.uid == self.who["course"].uid and x.student_uid == student.uid), None)

    def act(self) -> set[str]:
        """One look: do what is due; returns what has been done so far."""
        from simulators.ladok.state import ORSAK

        if "registered" not in self.done and (x := self._placed(self.who["registers"])) is not None:
            self.ladok.registrera(x.uid)
            self.nya.register_aterbud(ROUND, pnr=self.who["registers"], offer_id=self.who["course"].uid,
                                      date=self.who["start"] + dt.timedelta(days=10))
            self.done.add("registered")
        if "staff" not in self.done and (x := self._placed(self.who["staff_aterbud"])) is not None:
            self.ladok.aterbud(x.uid, self.who["start"] - dt.timedelta(days=5), ORSAK + "meddelat.av.studenten", None)
            self.done.add("staff")
        if "lost" not in self.done and (x := self._placed(self.who["lost"])) is not None:
            self.ladok.ta_bort_forvantat_deltagande(x.uid)  # Ladok loses B's placement: drift for Avstämning
            self.done.add("lost")
        return set(self.done)

    def run(self) -> None:
        while not self.stopped.wait(self.every) and len(self.done) < 3:
            try:
                self.act()
            except Exception as e:  # noqa: BLE001 - a demo step that cannot be done yet is tried again
                print(f"demo actor: {e}", flush=True)


def history(store: Any, *, days: int = 14, seed: int = 1, now: dt.datetime | None = None) -> dict[str, int]:
    """Statistik's history: two thirds of the history set's queue entries marked handled through
    the queue's own action, then those (opened and handled) spread over the last ``days`` days;
    the rest stay open. Once (its audit row says it was done). Returns counts."""
    import random

    from sqlalchemy import select

    from brygga.flows import admissions
    from brygga.store import ops
    from brygga.store.models import AuditLog, NyaAdmission, UnhandledAdmission, utcnow

    rng = random.Random(seed)
    now = now or utcnow()
    with store.transaction() as s:
        if s.scalar(select(AuditLog.id).where(AuditLog.action == "demo.history").limit(1)) is not None:
            return {"handled": 0, "moved": 0}  # made once already
        ids = sorted(s.scalars(select(UnhandledAdmission.nya_admission_id).where(
            UnhandledAdmission.tillfalleskod.in_(HISTORY), UnhandledAdmission.status == "open")))
    if not ids:
        return {"handled": 0, "moved": 0}
    done = [aid for i, aid in enumerate(ids) if i % 3 != 2]  # two of every three, of every hinder
    for aid in done:
        admissions.mark_handled(store, aid, actor="demo", note="demo: hanterad för hand i Ladok")
    moved = 0
    with store.transaction() as s:
        for u in s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id.in_(ids))):
            opened = now - dt.timedelta(days=rng.uniform(1, days), hours=rng.uniform(0, 8))
            u.created_at = opened
            if u.nya_admission_id in done:
                u.resolved_at = u.updated_at = min(now, opened + dt.timedelta(hours=rng.uniform(2, 96)))
            row = s.get(NyaAdmission, u.nya_admission_id)
            if row is not None:
                row.created_at = opened
            moved += 1
        ops.audit(s, "demo", "demo.history", "store", None, moved=moved, handled=len(done), days=days,
                  note="make run's demo: these queue entries' times were moved into the last days for Statistik")
    return {"handled": len(done), "moved": moved}


if __name__ == "__main__":  # make run's demo step: python -m simulators.demo --history [--url URL]
    import argparse
    import json
    import os

    ap = argparse.ArgumentParser(description="the demo round's history for Statistik (make run)")
    ap.add_argument("--history", action="store_true", required=True)
    ap.add_argument("--url", default=os.environ.get("BRYGGA_STORE_URL"))
    args = ap.parse_args()
    from brygga.store import Store

    print(json.dumps(history(Store(args.url))))
