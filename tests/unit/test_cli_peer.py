import json

import pytest

from brygga.connections import cli_peer


def test_cli_peer_from_the_airflow_connection_json(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BRYGGA_LADOK", json.dumps({
        "conn_type": "https", "host": "api.ladok.se", "port": 443,
        "extra": {"cert": "/etc/brygga/ladok.crt", "key": "/etc/brygga/ladok.key"}}))
    p = cli_peer("ladok")
    assert p.base_url == "https://api.ladok.se:443" and p.client_cert == ("/etc/brygga/ladok.crt", "/etc/brygga/ladok.key")


def test_cli_peer_refuses_the_simulator_with_a_real_store(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_BRYGGA_LADOK", raising=False)
    monkeypatch.delenv("BRYGGA_LADOK_URL", raising=False)
    monkeypatch.setenv("BRYGGA_STORE_URL", "postgresql://prod/brygga")
    with pytest.raises(SystemExit, match="no ladok peer"):
        cli_peer("ladok")
    monkeypatch.setenv("BRYGGA_LADOK_URL", "http://127.0.0.1:8701")
    assert cli_peer("ladok").base_url == "http://127.0.0.1:8701"
    monkeypatch.delenv("BRYGGA_STORE_URL")
    monkeypatch.delenv("BRYGGA_LADOK_URL")
    assert cli_peer("ladok").base_url.endswith(":8701")
