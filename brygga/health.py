"""Health checks behind the ``brygga_healthcheck`` DAG and ``brygga health``."""

from __future__ import annotations

import time

import requests

from brygga.connections import PeerConfig
from brygga.store import Store, migrate


class Unhealthy(RuntimeError):
    pass


def check_store(store: Store) -> dict:
    current, head = migrate.current(store), migrate.head()
    if current != head:
        raise Unhealthy(f"store schema is at {current!r}, expected {head!r}: run `brygga db upgrade`")
    return {"dialect": store.dialect, "revision": current}


def check_peer(peer: PeerConfig) -> dict:
    """Reachable = answers HTTP at its base URL without a server error."""
    t0 = time.perf_counter()
    try:
        r = requests.get(peer.base_url + "/", timeout=peer.timeout, verify=peer.verify, cert=peer.client_cert)
    except requests.RequestException as e:
        raise Unhealthy(f"{peer.name} at {peer.base_url} unreachable: {type(e).__name__}") from None
    if r.status_code >= 500:
        raise Unhealthy(f"{peer.name} at {peer.base_url} answered HTTP {r.status_code}")
    return {"peer": peer.name, "status": r.status_code, "ms": round((time.perf_counter() - t0) * 1000, 1)}
