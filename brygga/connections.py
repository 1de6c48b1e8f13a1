"""The peers Brygga talks to and their embedded defaults (the local simulators).

Airflow-free: used by the CLI to write the Connections that ``make run`` imports, and by tests.
In Airflow, task code reads the Connections (``brygga.dagkit.peer``); credentials live only there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brygga.store.db import store_url


@dataclass(frozen=True)
class Peer:
    name: str
    conn_id: str
    default_port: int
    description: str


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        Peer("ladok", "brygga_ladok", 8701, "Ladok REST API and Atom feed (simulator by default)"),
        Peer("nya", "brygga_nya", 8702, "NyA SOAP service (simulator by default)"),
        Peer("folkbokforing", "brygga_folkbokforing", 8703, "Population register lookup (simulator by default)"),
        Peer("schema", "brygga_schema", 8704, "Scheduling system (schemaläggning)"),
        Peer("arkiv", "brygga_arkiv", 8705, "Digital archive (e-arkiv), E-ARK SIP delivery"),
    )
}
STORE_CONN_ID = "brygga_store"


@dataclass(frozen=True)
class PeerConfig:
    """What an adapter needs to reach its peer; built from an Airflow Connection or defaults."""

    name: str
    base_url: str
    login: str | None = None
    password: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verify(self) -> bool | str:
        return self.extra.get("verify", True)

    @property
    def client_cert(self) -> tuple[str, str] | None:
        cert, key = self.extra.get("cert"), self.extra.get("key")
        return (cert, key) if cert and key else None

    @property
    def timeout(self) -> float:
        """Seconds an exchange may take (retries included); a streamed reply must start within it
        and may not stall longer."""
        return float(self.extra.get("timeout", 30))

    @property
    def stream_timeout(self) -> float:
        """Seconds a streamed reply (a bulk answer read while it arrives) may take in all."""
        return float(self.extra.get("stream_timeout", 900))

    @property
    def proxy(self) -> str | None:
        """HTTP(S) proxy URL; None: libcurl takes ``http_proxy``/``HTTPS_PROXY`` from the environment,
        "": no proxy even if the environment names one."""
        return self.extra.get("proxy")

    @property
    def no_proxy(self) -> str | None:
        """Hosts reached without the proxy (comma-separated, as ``NO_PROXY``); None: the environment's."""
        return self.extra.get("no_proxy")

    @property
    def crl(self) -> str | None:
        """A PEM file of revoked certificates (CRL) the peer's certificate is checked against."""
        return self.extra.get("crl")


def default_peer(name: str, host: str = "127.0.0.1") -> PeerConfig:
    p = PEERS[name]
    return PeerConfig(name, f"http://{host}:{p.default_port}")


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


def from_connection(name: str, *, conn_type: str | None, host: str | None, port: int | None,
                    schema: str | None, login: str | None, password: str | None,
                    extra: dict[str, Any]) -> PeerConfig:
    scheme = extra.get("scheme") or ("https" if conn_type == "https" else "http")
    base = f"{scheme}://{host}" + (f":{port}" if port else "")
    if schema:
        base += "/" + schema.strip("/")
    return PeerConfig(name, base, login or None, password or None, dict(extra))


def _var() -> Any:
    from brygga.paths import var_dir

    return var_dir()


def connections_document(host: str = "127.0.0.1", store: str | None = None) -> dict[str, Any]:
    """The embedded-default Connections, in the format of ``airflow connections import``."""
    doc: dict[str, Any] = {
        p.conn_id: {"conn_type": "http", "host": host, "port": p.default_port, "description": p.description,
                    "extra": {"timeout": 30}}  # (http is the default scheme: no short "http" value for
                                                 # Airflow's masker to warn about in every task)
        for p in PEERS.values()
    }
    # the scheduling system: TimeEdit-style REST (the simulator), the term it gets, where
    # OneRoster packages go when the format is switched to oneroster
    doc[PEERS["schema"].conn_id]["extra"].update(
        {"format": "timeedit", "terms": ["HT2027"], "directory": str(_var() / "oneroster")})
    # the archive: who the packages are from (arkivbildare, inlämnare), the closing delay after a
    # study period's end, the largest part of a package; a package's upload has its own deadline
    doc[PEERS["arkiv"].conn_id]["extra"].update(
        {"archival_creator": ["Lärosätet (exempel)", "2021000000"],
         "submitter": ["Lärosätet (exempel), Brygga", "2021000000"], "closing_days": 90,
         "degrees_from": "2020-01-01",
         "max_part_bytes": 512 * 1024 * 1024, "upload_timeout": 600})
    doc[STORE_CONN_ID] = {
        "conn_type": "generic",
        "description": "Brygga's own store (SQLAlchemy URL in extra.sqlalchemy_url)",
        "extra": {"sqlalchemy_url": store_url(store)},
    }
    return doc
