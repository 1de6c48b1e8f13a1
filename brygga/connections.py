"""The peers' Connections for the operator CLI and ``make run``: the embedded defaults (the local
simulators) and a peer from the environment. The peers and their typed settings are in
:mod:`brygga.config` (re-exported here); in Airflow, task code reads the Connections
(``brygga.dagkit.peer``); credentials live only there.
"""

from __future__ import annotations

from typing import Any

from brygga.config import (
    PEERS,
    SIMULATOR_EXTRA,
    SIMULATOR_SECRETS,
    STORE_CONN_ID,
    Peer,
    PeerConfig,
    default_peer,
    from_connection,
)

__all__ = ["PEERS", "STORE_CONN_ID", "Peer", "PeerConfig", "cli_peer", "connections_document", "default_peer",
           "from_connection"]


def cli_peer(name: str) -> PeerConfig:
    """A peer for the operator CLI, from the same Connection Airflow uses when it is given as
    ``AIRFLOW_CONN_BRYGGA_<NAME>`` (JSON, certificates and credentials in its extra), else
    ``BRYGGA_<NAME>_URL``, else the embedded simulator — which is refused when ``BRYGGA_STORE_URL``
    points at another store, so an operator never acts on a real store against a simulator."""
    import json
    import os

    conn = os.environ.get(f"AIRFLOW_CONN_{PEERS[name].conn_id.upper()}")
    if conn:
        c = json.loads(conn)
        extra = c.get("extra") or {}
        return from_connection(name, conn_type=c.get("conn_type"), host=c.get("host"), port=c.get("port"),
                               schema=c.get("schema"), login=c.get("login"), password=c.get("password"),
                               extra=json.loads(extra) if isinstance(extra, str) else extra)
    url = os.environ.get(f"BRYGGA_{name.upper()}_URL")
    if url:
        return PeerConfig(name, url)
    if os.environ.get("BRYGGA_STORE_URL"):
        raise SystemExit(f"brygga: BRYGGA_STORE_URL is set but no {name} peer: set AIRFLOW_CONN_"
                         f"{PEERS[name].conn_id.upper()} (JSON) or BRYGGA_{name.upper()}_URL")
    return default_peer(name)


def _var() -> Any:
    from brygga.paths import var_dir

    return var_dir()


def connections_document(host: str = "127.0.0.1", store: str | None = None,
                         schedule_format: str = "timeedit") -> dict[str, Any]:
    """The embedded-default Connections, in the format of ``airflow connections import``; with
    ``schedule_format="lis"`` the scheduling Connection is the local RabbitMQ (AMQP 1.0, its
    default guest login) that ``make run-lis`` starts, the other formats write to var/."""
    from brygga.store.db import store_url

    doc: dict[str, Any] = {
        p.conn_id: {"conn_type": "http", "host": host, "port": p.default_port, "description": p.description,
                    "extra": {"timeout": 30}}  # (http is the default scheme: no short "http" value for
                                                 # Airflow's masker to warn about in every task)
        for p in PEERS.values()
    }
    # the scheduling system: TimeEdit's REST API (the simulator; its API key is the password), the
    # term it gets, where OneRoster packages and TimeEdit files go when the format is switched
    doc[PEERS["schema"].conn_id]["extra"].update(
        {"format": "timeedit", "terms": ["HT2027"], "directory": str(_var() / "oneroster"),
         **SIMULATOR_EXTRA["schema"]})
    doc[PEERS["schema"].conn_id]["password"] = SIMULATOR_SECRETS["schema"]
    if schedule_format == "lis":  # IMS LIS records, one AMQP 1.0 message each, to a queue
        doc[PEERS["schema"].conn_id].update(
            {"port": 5672, "login": "guest", "password": "guest",
             "description": "IMS LIS 2.0 records over AMQP 1.0 (the local RabbitMQ of make run-lis)"})
        doc[PEERS["schema"].conn_id]["extra"].update(
            {"format": "lis", "transport": "amqp", "scheme": "amqp", "address": "/queue/ladok-lis"})  # /queue/: the broker declares it
    elif schedule_format != "timeedit":
        doc[PEERS["schema"].conn_id]["extra"]["format"] = schedule_format
    # the archive: who the packages are from (arkivbildare, inlämnare), the closing delay after a
    # study period's end, the largest part of a package; a package's upload has its own deadline
    doc[PEERS["arkiv"].conn_id]["extra"].update(
        {"archival_creator": ["Lärosätet (exempel)", "2021000000"],
         "submitter": ["Lärosätet (exempel), Brygga", "2021000000"], "closing_days": 90,
         "degrees_from": "2020-01-01",
         "max_part_bytes": 512 * 1024 * 1024, "upload_timeout": 600})
    # the mail server alerts go through (make run: aiosmtpd on :8725 keeping every mail in var/mail)
    doc["brygga_smtp"] = {"conn_type": "smtp", "host": host, "port": 8725,
                          "description": "Mail server for alerts (make run: a local sink, mails in var/mail)",
                          "extra": {"from_email": "brygga@localhost", "disable_tls": True, "disable_ssl": True,
                                    "timeout": 10}}
    doc[STORE_CONN_ID] = {
        "conn_type": "generic",
        "description": "Brygga's own store (SQLAlchemy URL in extra.sqlalchemy_url)",
        "extra": {"sqlalchemy_url": store_url(store)},
    }
    return doc
