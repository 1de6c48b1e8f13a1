"""Environments: which one Brygga runs against (the console's banner) and no production peer
paired with a test one (issue 32 §5): the rule, the tasks' refusal, the banner."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from brygga import console, dagkit
from brygga.certificates import pairing, peer_environment
from brygga.connections import PeerConfig


@pytest.mark.parametrize(("envs", "profile", "refused"), [
    ({"ladok": "produktion", "nya": "produktion"}, "produktion", False),
    ({"ladok": "integrationstest", "nya": "integrationstest"}, "integrationstest", False),
    ({"ladok": "lokal", "nya": "lokal"}, "lokal", False),
    ({"ladok": "produktion", "nya": "integrationstest"}, "blandad", True),  # a production Ladok, a test NyA
    ({"ladok": "test", "nya": "produktion"}, "blandad", True),  # the reverse
    ({"ladok": "lokal", "nya": "produktion"}, "blandad", True),
    ({"ladok": "integrationstest", "nya": "lokal"}, "blandad", False),  # two kinds of test: shown, not refused
    ({"ladok": "produktion", "nya": "okänd"}, "produktion", False),  # not known: shown, not refused
    ({}, "okänd", False),
])
def test_production_is_never_paired_with_test(envs, profile, refused):
    p = pairing(envs)
    assert p.profile == profile and bool(p.refused) is refused
    if refused:
        assert "produktion" in p.refused and "Brygga kör inte" in p.refused


def test_a_peers_environment_is_its_connections_or_lokal_for_a_simulator():
    assert peer_environment(PeerConfig("nya", "http://127.0.0.1:8702")) == "lokal"
    assert peer_environment(PeerConfig("nya", "https://nya.example")) == "okänd"
    assert peer_environment(PeerConfig("nya", "https://nya.example", extra={"environment": "produktion"})) == "produktion"
    with pytest.raises(Exception, match="environment"):
        PeerConfig("nya", "https://nya.example", extra={"environment": "prod"})  # only the known names


@pytest.fixture
def connections(monkeypatch):
    extras = {"brygga_ladok": {}, "brygga_nya": {}}
    hosts = {"brygga_ladok": ("https", "ladok.example"), "brygga_nya": ("https", "nya.example")}

    def conn(conn_id):
        scheme, host = hosts[conn_id]
        return SimpleNamespace(conn_type=scheme, host=host, port=443, schema=None, login=None, password=None,
                               extra_dejson=extras[conn_id])
    monkeypatch.setattr(dagkit, "_connection", conn)
    return extras


def test_a_task_refuses_a_mixed_pairing_before_it_calls_either_peer(connections):
    from airflow.sdk.exceptions import AirflowFailException

    connections["brygga_ladok"]["environment"] = "produktion"
    connections["brygga_nya"]["environment"] = "integrationstest"
    for make in (dagkit.ladok, dagkit.nya):
        with pytest.raises(AirflowFailException, match="Ladok är produktion men NyA är integrationstest"):
            make()
    connections["brygga_nya"]["environment"] = "produktion"
    assert dagkit.ladok().peer.base_url == "https://ladok.example:443"
    assert dagkit.environments().profile == "produktion"


def test_the_console_shows_the_environment_and_a_mixed_pairing(store):
    peers = {"ladok": PeerConfig("ladok", "https://ladok.example", extra={"environment": "integrationstest"}),
             "nya": PeerConfig("nya", "https://nya.example", extra={"environment": "integrationstest"})}

    def client():
        app = console.create_app(store, lambda r: console.Principal("anna", frozenset({"*"}), None), secret="s" * 32,
                                 airflow=console.Airflow(peer=peers.__getitem__))
        return TestClient(app)

    html = client().get("/").text
    assert 'id="environment"' in html and "Miljö: <strong>integrationstest</strong>" in html
    assert "Ladok integrationstest · NyA integrationstest" in html and "environment-refused" not in html
    peers["nya"] = PeerConfig("nya", "https://nya.example", extra={"environment": "produktion"})
    html = client().get("/").text
    assert "Miljö: <strong>blandad</strong>" in html and 'id="environment-refused"' in html
    assert "NyA är produktion men Ladok är integrationstest" in html
