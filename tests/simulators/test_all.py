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
