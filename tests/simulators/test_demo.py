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
