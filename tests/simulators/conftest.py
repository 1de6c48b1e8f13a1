"""Fixtures shared by the simulator tests (each test module runs its own simulator)."""

from __future__ import annotations

import pytest
import requests

from brygga import xmlsafe


@pytest.fixture(scope="module")
def http():
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="module")
def schema(request):
    """The XSD of the simulator under test: the ``SCHEMA_PATH`` of the requesting test module."""
    return xmlsafe.load_schema(request.module.SCHEMA_PATH)
