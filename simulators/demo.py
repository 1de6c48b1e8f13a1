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
