import pytest

from simulators._server import serve_in_thread


@pytest.fixture(scope="module")
def ladok_sim():
    from simulators.ladok.app import create_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState

    state = LadokState(page_size=50)
    seed_catalogue(state, 3, 12, 3, "HT2027")
    with serve_in_thread(create_app(state)) as srv:
        srv.state = state
        yield srv


@pytest.fixture(scope="module")
def nya_sim():
    from simulators.nya.app import create_app
    from simulators.nya.state import NyaState, seed

    state = seed(NyaState(), 5, offers=20, applicants=600, select=True)
    with serve_in_thread(create_app(state)) as srv:
        srv.state = state
        yield srv
