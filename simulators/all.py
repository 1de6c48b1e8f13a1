"""All simulators in one process, seeded consistently (``python -m simulators``, used by ``make run``).

The same ``seed`` drives the people in NyA's applicants, the population register and Ladok's
students, so an applicant not yet in Ladok is found in the population register.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading

from brygga.connections import PEERS
from simulators._server import serve_in_thread


def build_apps(seed: int = 1, *, people: int = 5000, courses: int = 40, programmes: int = 6, admissions: int = 0,
               demo: bool = False, actors: list | None = None):
    """The simulators' apps, seeded. ``admissions``: besides, N applicants admitted to the course
    instances of HT2027 and accepted in NyA (one admission each), 30 % of them already students in
    Ladok, and a degree (an UtfardatBevisEvent in Ladok's feed) for N/20 of those (the scale-out check).
    ``demo``: the demo round of ``simulators.demo`` (make run); its ``Actor`` is appended to
    ``actors`` (started by the caller)."""
    from simulators.arkiv.app import create_app as arkiv_app
    from simulators.folkbokforing.app import create_app as fbf_app
    from simulators.folkbokforing.state import FolkbokforingState
    from simulators.ladok.app import create_app as ladok_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState
    from simulators.nya.app import create_app as nya_app
    from simulators.nya.state import NyaState
    from simulators.nya.state import seed as nya_seed
    from simulators.schema.app import create_app as schema_app

    ladok = LadokState()
    seed_catalogue(ladok, seed, courses, programmes, "HT2027")
    people = max(people, admissions)
    # the register's first people are already students (200, or 30 % of the admissions)
    already = ladok.seed_students(max(200, admissions * 3 // 10), seed)
    # students of earlier terms already in the instances (the scheduling system's groups); other
    # people than NyA's applicants, so the admission import never meets them
    enrolled = ladok.seed_students(300, seed + 1000)
    ladok.seed_deltagande(enrolled, [t for t in ladok.tillfallen.values() if not t.installt], 25, seed)
    # a past term whose instances have ended, with results: what the archive export packages
    seed_catalogue(ladok, seed + 500, 6, 0, "VT2026")
    ended = [t for t in ladok.tillfallen.values() if t.startperiod == "VT2026" and not t.installt]
    ladok.seed_deltagande(enrolled, ended, 20, seed + 500)
    ladok.seed_resultat(ended, seed + 500)
    programmes = [t for t in ladok.tillfallen.values() if t.utbildning.typ == "program"]
    for i, student in enumerate(enrolled[:12]):  # degrees issued in June 2026 (the archive export's)
        ladok.utfarda_bevis(student.uid, dt.date(2026, 6, 10 + i), programmes[i % len(programmes)].uid, emit=False)
    nya = nya_seed(NyaState(), seed)
    nya.register_people = people  # applicants are people the register knows
    if admissions:
        _admitted(nya, ladok, admissions, seed)
        # merits for the merit sync: a degree on a programme of their study plan, issued to the
        # first N/20 applicants who are students (Ladok issues a degree only on a plan's programme)
        from simulators.ladok.state import Placering

        programmes_ht = [t for t in ladok.tillfallen.values() if t.utbildning.typ == "program" and not t.installt]
        for i, student in enumerate(already[: admissions // 20]):
            programme = programmes_ht[i % len(programmes_ht)]
            ladok.placera(Placering(student.uid, programme.uid, f"ALUMN-{i:06d}"))
            ladok.utfarda_bevis(student.uid, dt.date(2026, 6, 1) + dt.timedelta(days=i % 28), programme.uid)
        ladok.placements_created = 0  # the counters are the admission import's
    register = FolkbokforingState(seed=seed, people=people)
    if demo:
        from simulators.demo import Actor, add_demo

        who = add_demo(ladok, nya, register)
        if actors is not None:
            actors.append(Actor(ladok, nya, who))
    return {
        "ladok": ladok_app(ladok),
        "nya": nya_app(nya),
        "folkbokforing": fbf_app(register),
        "schema": schema_app(),
        "arkiv": arkiv_app(),
    }


def _admitted(nya, ladok, n: int, seed: int) -> None:
    """``n`` accepted admissions in HT2027, one per person of the register, on the course instances
    (NyA's OfferId is the Ladok instance's UID, as the offer export publishes it)."""
    from decimal import Decimal

    from simulators import datagen
    from simulators.nya.state import ENG6, Applicant, Offer

    courses = [t for t in ladok.tillfallen.values()
               if t.startperiod == "HT2027" and t.utbildning.typ == "kurs" and not t.installt]
    nya.publish_offers("HT2027", "ordinary", [
        Offer(t.uid, "ordinary", t.utbildning.kod, t.kod, t.utbildning.sv, None, Decimal(t.utbildning.omfattning),
              t.start, t.slut, None, 100, n) for t in courses])
    nya.add_applicants("HT2027", [
        Applicant(p.personnummer, p.fornamn, p.efternamn, [courses[i % len(courses)].uid], 10.0,
                  fee_liable=i % 20 == 0, conditions=(ENG6,) if i % 10 == 0 else (), auto_accept=True)
        for i, p in enumerate(datagen.people(n, seed))])
    nya.run_selection("HT2027")


def run_all(host: str = "127.0.0.1", seed: int = 1, admissions: int = 0, demo: bool = False) -> None:
    servers = []
    actors: list = []
    for name, app in build_apps(seed, admissions=admissions, demo=demo, actors=actors).items():
        srv = serve_in_thread(app, host=host, port=PEERS[name].default_port, log_level="info")
        print(f"{name:14s} {srv.url}", flush=True)
        servers.append(srv)
    for actor in actors:
        actor.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for s in servers:
            s.stop()
