"""Health checks behind the ``brygga_healthcheck`` DAG: the store's schema, and every peer answering
through the adapters' own HTTP client (so its TLS, client certificate, proxy and deadline are the
ones the flows use)."""

from __future__ import annotations

import time

from brygga.config import PeerConfig
from brygga.store import Store, migrate


class Unhealthy(RuntimeError):
    pass


def check_store(store: Store) -> dict:
    current, head = migrate.current(store), migrate.head()
    if current != head:
        raise Unhealthy(f"store schema is at {current!r}, expected {head!r}: run `brygga db upgrade`")
    return {"dialect": store.dialect, "revision": current}


def check_peer(peer: PeerConfig) -> dict:
    """Reachable = answers HTTP at its base URL without a server error; Ladok: the certificate is
    accepted (the authenticated probe, ``anvandare/autentiserad``, answers who it is)."""
    from adapters.http import PeerError, TransportError, session

    if peer.name == "ladok":
        from adapters.ladok import LadokAdapter

        t0 = time.perf_counter()
        try:
            user = LadokAdapter(peer).user(rights=False)
        except PeerError as e:
            raise Unhealthy(f"ladok at {peer.base_url}: the authenticated probe failed: {e}") from None
        return {"peer": peer.name, "status": 200, "user": user.username,
                "ms": round((time.perf_counter() - t0) * 1000, 1)}

    t0 = time.perf_counter()
    client = session(peer, pool=1, retries=False)
    try:
        r = client.get(peer.base_url + "/")
        _ = r.content  # read: the connection is released
    except TransportError as e:
        raise Unhealthy(f"{peer.name} at {peer.base_url} unreachable: {e}") from None
    finally:
        client.close()
    if r.status_code >= 500:
        raise Unhealthy(f"{peer.name} at {peer.base_url} answered HTTP {r.status_code}")
    return {"peer": peer.name, "status": r.status_code, "ms": round((time.perf_counter() - t0) * 1000, 1)}
