"""Admission import NyA → Ladok, behörighetsvillkor (``conditions.py``): NyA's changes applied in
Ladok. Against the simulators over HTTP, on both stores (the world:
``tests/flows/admissions_world.py``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from brygga.flows import admissions
from brygga.store.models import (
    NyaAdmission,
    Quarantine,
)
from tests.flows.admissions_world import (
    ROUND,
    _admission_of,
    _ladok_admission,
    _run,
    world,  # noqa: F401 - the fixture
)


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
