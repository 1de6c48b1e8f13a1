"""Admission import NyA → Ladok, the unhandled queue (``queue.py``): återbud that race a placement.
Against the simulators over HTTP, on both stores (the world: ``tests/flows/admissions_world.py``)."""

from __future__ import annotations

from sqlalchemy import select

from brygga.flows import admissions
from brygga.store.models import (
    NyaAdmission,
)
from tests.flows.admissions_world import (
    ROUND,
    _admission_of,
    _ladok_admission,
    _queue,
    world,  # noqa: F401 - the fixture
)


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
