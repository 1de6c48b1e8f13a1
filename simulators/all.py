"""All simulators in one process, seeded consistently (``brygga simulators``, used by ``make run``).

The same ``seed`` drives the people in NyA's applicants, the population register and Ladok's
students, so an applicant not yet in Ladok is found in the population register.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading

from brygga.connections import PEERS
from simulators._server import serve_in_thread


def build_apps(seed: int = 1, *, people: int = 5000, courses: int = 40, programmes: int = 6):
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
    ladok.seed_students(200, seed)  # the register's first 200 people are already students
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
    return {
        "ladok": ladok_app(ladok),
        "nya": nya_app(nya),
        "folkbokforing": fbf_app(FolkbokforingState(seed=seed, people=people)),
        "schema": schema_app(),
        "arkiv": arkiv_app(),
    }


def run_all(host: str = "127.0.0.1", seed: int = 1) -> None:
    servers = []
    for name, app in build_apps(seed).items():
        srv = serve_in_thread(app, host=host, port=PEERS[name].default_port, log_level="info")
        print(f"{name:14s} {srv.url}", flush=True)
        servers.append(srv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for s in servers:
            s.stop()
