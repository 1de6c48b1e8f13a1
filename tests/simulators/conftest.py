"""Fixtures shared by the simulator tests (each test module runs its own simulator)."""

from __future__ import annotations

import pytest
import requests

from brygga import xmlsafe
from simulators._server import serve_in_thread


@pytest.fixture(scope="module")
def http():
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="module")
def schema(request):
    """The XSD of the simulator under test: the ``SCHEMA_PATH`` of the requesting test module."""
    return xmlsafe.load_schema(request.module.SCHEMA_PATH)


@pytest.fixture(scope="module")
def server(request, state):
    """The simulator under test on a free loopback port: the requesting module's ``create_app``
    over its ``state`` fixture."""
    with serve_in_thread(request.module.create_app(state)) as srv:
        yield srv
