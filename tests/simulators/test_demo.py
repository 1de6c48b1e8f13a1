"""make run's demo round (issue 32 §6): Brygga's own flows, run over the demo's simulators, put an
admission in every hinder, quarantine the wrong personnummer, and — once the demo's people act —
open an återbudsärende, report a Ladok återbud to NyA and leave a drift for the reconciliation. On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from adapters.folkbokforing import FolkbokforingAdapter
from adapters.ladok import LadokAdapter
from adapters.nya import NyaAdapter
from brygga.connections import PeerConfig
from brygga.flows import admissions, aterbud, reconciliation
from brygga.store.models import AterbudCase, Quarantine, UnhandledAdmission
from simulators._server import serve_in_thread
from simulators.demo import ROUND, Actor, add_demo
from simulators.folkbokforing.app import create_app as folk_app
from simulators.folkbokforing.state import FolkbokforingState
from simulators.ladok.app import create_app as ladok_app
from simulators.ladok.state import LadokState
from simulators.nya.app import create_app as nya_app
from simulators.nya.state import NyaState


def test_the_demo_round_shows_every_hinder_a_quarantine_a_case_and_a_reported_aterbud(store):
    L, N, register = LadokState(), NyaState(), FolkbokforingState(seed=1, people=400)
    N.put_round(ROUND, "open")
    who = add_demo(L, N, register)
    with serve_in_thread(ladok_app(L)) as ls, serve_in_thread(nya_app(N)) as ns, \
            serve_in_thread(folk_app(register)) as fs:
        ladok, nya = LadokAdapter(PeerConfig("ladok", ls.url)), NyaAdapter(PeerConfig("nya", ns.url))
        folk = FolkbokforingAdapter(PeerConfig("folkbokforing", fs.url))
        admissions.fetch(store, nya, ROUND)
        placed = admissions.place(store, ladok, folk, ROUND, workers=2)
        assert placed["placed"] >= 4
        with store.transaction() as s:
            hinder = {u.hinder for u in s.scalars(select(UnhandledAdmission))}
            quarantined = [q.reason for q in s.scalars(select(Quarantine))]
        assert {"kunde.inte.placeras.i.plan", "utbildningstillfalle.installt", "redan.paborjat",
                "personnummer.okant", "utbildningstillfalle.saknas"} <= hinder, hinder
        assert quarantined  # the wrong check digit, with its reason

        actor = Actor(L, N, who)
        assert actor.act() == {"registered", "staff", "lost"}  # C registered and gave an återbud; A's in Ladok
        assert actor.act() == {"registered", "staff", "lost"}  # done once
        aterbud.nya_to_ladok(store, nya, ladok)
        queued = aterbud.ladok_to_nya(store, ladok)
        sent = aterbud.send_pending(store, nya)
        with store.transaction() as s:
            (case,) = s.scalars(select(AterbudCase)).all()
        assert (case.cause, case.suggested_action, case.status) == ("registered", "early_avbrott", "open")
        assert queued["enqueued"] == 1 and sent["registered"] == 1
        rs = N.rounds[ROUND]
        assert [x.origin for x in rs.aterbud if x.personnummer == who["staff_aterbud"]] == ["ladok"]
        found = reconciliation.reconcile(store, nya, ladok, actor="brygga:reconciliation")
        assert found["found"].get("admission.missing_in_ladok") == 1, found["found"]  # B's lost placement


def test_the_demo_history_gives_statistik_days_made_by_the_queues_own_action(store):
    """The history set goes through the real import into the queue; ``history`` marks two thirds
    handled with the queue's action (audited, actor demo) and spreads them over the last two
    weeks: Statistik has several days of opened and handled entries and handling times. Once."""
    from brygga.store.models import AuditLog
    from brygga.views import statistics
    from simulators.demo import HISTORY, history

    L, N, register = LadokState(), NyaState(), FolkbokforingState(seed=1, people=400)
    N.put_round(ROUND, "open")
    add_demo(L, N, register)
    with serve_in_thread(ladok_app(L)) as ls, serve_in_thread(nya_app(N)) as ns, \
            serve_in_thread(folk_app(register)) as fs:
        admissions.fetch(store, NyaAdapter(PeerConfig("nya", ns.url)), ROUND)
        admissions.place(store, LadokAdapter(PeerConfig("ladok", ls.url)),
                         FolkbokforingAdapter(PeerConfig("folkbokforing", fs.url)), ROUND, workers=2)
    with store.transaction() as s:
        queued = {u.tillfalleskod: u.hinder for u in s.scalars(select(UnhandledAdmission).where(
            UnhandledAdmission.tillfalleskod.in_(HISTORY)))}
    assert queued == {"91006": "utbildningstillfalle.installt", "91998": "utbildningstillfalle.saknas",
                      "91007": "personnummer.okant"}
    assert history(store) == {"handled": 16, "moved": 24}
    assert history(store) == {"handled": 0, "moved": 0}
    daily = statistics.daily(store, days=20)
    queue = daily[(daily["kind"] == "queue") & ((daily["opened"] > 0) | (daily["resolved"] > 0))]
    assert queue["day"].nunique() >= 5 and int(queue["resolved"].sum()) >= 16
    assert len(statistics.handling_times(store)) >= 3
    with store.transaction() as s:
        actions = [(a.actor, a.action) for a in s.scalars(select(AuditLog).where(AuditLog.actor == "demo"))]
    assert actions.count(("demo", "admission.handled")) == 16 and ("demo", "demo.history") in actions
