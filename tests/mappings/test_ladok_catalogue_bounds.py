"""The bounds the schedule export relies on, checked where Ladok's replies are read: an instance
or a participant that breaks one is a RecordError naming it (and, for a participant, its
instance), never a value that reaches a bounded column."""

from __future__ import annotations

from lxml import etree

from brygga.records import Participant, Utbildningstillfalle
from mappings.base import RecordError
from mappings.ladok.rest import DeltagareV1, UtbildningstillfalleV1
from simulators.ladok import representations as rep
from simulators.ladok.catalogue import seed_catalogue
from simulators.ladok.state import LadokState


def _state() -> LadokState:
    state = LadokState()
    seed_catalogue(state, 2, 1, 0, "HT2027")
    return state


def _read_instance(t) -> Utbildningstillfalle | RecordError:
    (got,) = UtbildningstillfalleV1().read(etree.tostring(rep.utbildningstillfalle(t)))
    return got


def test_an_instance_within_its_bounds_is_read():
    t = next(iter(_state().tillfallen.values()))
    got = _read_instance(t)
    assert isinstance(got, Utbildningstillfalle) and got.uid == t.uid and got.organisation


def test_an_instance_uid_or_unit_over_its_bound_is_a_record_error():
    t = next(iter(_state().tillfallen.values()))
    t.uid = "u" * 65
    got = _read_instance(t)
    assert isinstance(got, RecordError) and got.field == "Uid" and not got.has_id and len(got.record_id) <= 64
    t.uid = "ok-uid"
    t.organisation = "O" * 65
    got = _read_instance(t)
    assert isinstance(got, RecordError) and got.field == "organisation" and got.record_id == "ok-uid"


def test_a_participant_error_names_its_instance():
    state = _state()
    students = state.seed_students(3, 1)
    tillfallen = [t for t in state.tillfallen.values() if not t.installt]
    state.seed_deltagande(students, tillfallen, 3, seed=1)
    students[0].fornamn = "N" * 150
    hits = [a for a in state.antagningar.values()]
    body = etree.tostring(rep.deltagare_sokresultat(len(hits), hits, state.students))
    total, got = DeltagareV1().read_search(body)
    bad = [g for g in got if isinstance(g, RecordError)]
    assert total == len(hits) and bad and all(g.field == "Student/Fornamn" for g in bad)
    assert {g.within for g in bad} <= {t.uid for t in tillfallen} and all(g.within for g in bad)
    assert sum(isinstance(g, Participant) for g in got) == len(hits) - len(bad)
