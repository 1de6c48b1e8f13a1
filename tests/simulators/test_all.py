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


def test_the_scale_out_seed_gives_accepted_admissions_and_merits_the_sync_delivers(tmp_path):
    """``python -m simulators --admissions N`` (the CeleryExecutor check's seed): N accepted admissions
    in NyA and N/20 degrees in Ladok's feed, each a merit the merit sync delivers, none quarantined."""
    from adapters.ladok import LadokAdapter
    from adapters.nya import NyaAdapter
    from brygga.connections import PeerConfig
    from brygga.flows import merits
    from brygga.store import Store, migrate
    from simulators._server import serve_in_thread
    from simulators.all import build_apps

    apps = build_apps(1, people=500, admissions=400)
    ladok_state, nya_state = apps["ladok"].state.ladok, apps["nya"].state.nya
    assert ladok_state.placements_created == 0  # the counters are left to the admission import
    accepted = [a for a in nya_state.round_state("HT2027").admissions.values() if a.admitted and a.accepted]
    assert len(accepted) == 400
    servers = [serve_in_thread(apps["ladok"]), serve_in_thread(apps["nya"])]
    try:
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        migrate.upgrade(store)
        ladok, nya = (LadokAdapter(PeerConfig("ladok", servers[0].url)), NyaAdapter(PeerConfig("nya", servers[1].url)))
        got = merits.sync_once(store, ladok, nya)
        assert (got["merits"], got["quarantined"]) == (20, 0)
        assert merits.send_pending(store, nya)["accepted"] == 20
        assert len(nya_state.merits) == 20 and nya_state.merit_duplicates == 0
    finally:
        for s in servers:
            s.stop()
