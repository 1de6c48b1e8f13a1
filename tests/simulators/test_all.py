"""The combined simulators of ``make run`` agree on people: NyA's applicants are in the register."""

from simulators import datagen
from simulators.nya.state import NyaState, seed


def test_generated_applicants_are_people_the_register_knows():
    state = seed(NyaState(), 7, offers=3)
    state.register_people = 300
    assert state.generate_applicants("HT2027", 50) == 50
    register = {p.personnummer for p in datagen.people(300, 7)}
    applicants = set(state.round_state("HT2027").applicants)
    assert len(applicants) == 50 and applicants <= register
    state.reset()
    assert state.register_people == 300  # a university's setup survives a reset


def test_without_a_register_applicants_are_fresh_people():
    state = seed(NyaState(), 7, offers=3)
    state.generate_applicants("HT2027", 20)
    assert not set(state.round_state("HT2027").applicants) <= {p.personnummer for p in datagen.people(300, 7)}


def test_make_runs_ladok_has_enrolled_students_who_are_not_applicants():
    from simulators.all import build_apps

    apps = build_apps(1, people=2000)
    ladok = apps["ladok"].state.ladok
    enrolled = {a.student_uid for a in ladok.antagningar.values()}
    assert len(enrolled) > 100 and "schema" in apps
    pnrs = {ladok.students[u].personnummer for u in enrolled}
    assert not pnrs & {p.personnummer for p in datagen.people(2000, 1)}
