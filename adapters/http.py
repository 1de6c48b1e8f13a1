"""HTTP plumbing shared by the adapters: sessions from a PeerConfig, errors that say whether a
retry can help."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from brygga.connections import PeerConfig
from brygga.personnummer import mask


class PeerError(RuntimeError):
    """A peer refused or failed a request. ``transient`` = worth retrying later."""

    def __init__(self, peer: str, message: str, *, status: int | None = None, transient: bool = False):
        super().__init__(mask(f"{peer}: {message}"))
        self.peer, self.status, self.transient = peer, status, transient


def session(peer: PeerConfig, *, pool: int = 8) -> requests.Session:
    """A keep-alive session. Idempotent requests are retried on connection errors and 502/503/504
    with backoff; everything else is the caller's (outbox) business."""
    s = requests.Session()
    retry = Retry(total=3, connect=3, read=2, backoff_factor=0.3, status_forcelist=(502, 503, 504),
                  allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE"}), raise_on_status=False)
    adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=retry)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.verify = peer.verify
    if peer.client_cert:
        s.cert = peer.client_cert
    if peer.login:
        s.auth = (peer.login, peer.password or "")
    return s


def transport_error(peer: str, exc: requests.RequestException) -> PeerError:
    return PeerError(peer, f"{type(exc).__name__}: {exc}", transient=True)
