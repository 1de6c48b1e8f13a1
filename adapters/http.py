"""HTTP plumbing shared by the adapters: a keep-alive client from a PeerConfig, and errors that say
whether a retry can help.

The client is a thin layer on urllib3's connection pool. ``requests`` costs about 1.4 ms of CPU per
call against 0.4 ms for urllib3 (measured against the simulators, see docs/architecture.md), which
decides whether 100k admissions can be placed in minutes; the adapters only need a small part of
its API, which ``Client``/``Response`` keep (``request/get/post``, ``status_code``, ``content``,
``raw``, ``close``).
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlencode

import urllib3
from urllib3.util.retry import Retry

from brygga.connections import PeerConfig
from brygga.personnummer import mask

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class PeerError(RuntimeError):
    """A peer refused or failed a request. ``transient`` = worth retrying later."""

    def __init__(self, peer: str, message: str, *, status: int | None = None, transient: bool = False):
        super().__init__(mask(f"{peer}: {message}"))
        self.peer, self.status, self.transient = peer, status, transient


def if_found(call, *args, default=None):
    """``call(*args)``, or ``default`` when the peer answers 404 (not there); other errors propagate."""
    try:
        return call(*args)
    except PeerError as e:
        if e.status != 404:
            raise
        return default


class TransportError(Exception):
    """The request did not get an HTTP answer (connection refused/reset, timeout, TLS)."""


class _Stream:
    """A streamed body for a mapping's reader: a connection lost half-way is a transient PeerError
    like any other transport failure, not a raw urllib3 exception."""

    decode_content = True  # kept for callers written against requests' ``raw``

    def __init__(self, r: urllib3.BaseHTTPResponse, peer: str):
        self._r, self._peer = r, peer

    def read(self, n: int = -1) -> bytes:
        try:
            return self._r.read(None if n is None or n < 0 else n)
        except urllib3.exceptions.HTTPError as e:
            raise PeerError(self._peer, f"reply broken off: {type(e).__name__}: {e}", transient=True) from None


class Response:
    """The part of a response the adapters use. Close it (or read ``content``) to free the connection."""

    __slots__ = ("_r", "_content", "_peer", "status_code", "headers")

    def __init__(self, r: urllib3.BaseHTTPResponse, preloaded: bool, peer: str = "peer"):
        self._r, self._peer = r, peer
        self.status_code = r.status
        self.headers = r.headers
        self._content = r.data if preloaded else None

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = self._r.read()
            self._r.release_conn()
        return self._content

    @property
    def raw(self) -> _Stream:
        """The body as a stream (``read(n)``), decoded (gzip) as it is read."""
        return _Stream(self._r, self._peer)

    def close(self) -> None:
        if self._content is None:
            try:
                self._r.drain_conn()
            finally:
                self._r.release_conn()


class Client:
    def __init__(self, peer: PeerConfig, *, pool: int = 8, retries: bool = True):
        tls: dict[str, Any] = {}
        verify = peer.verify
        if verify is False:
            tls["cert_reqs"] = "CERT_NONE"
        else:
            tls["cert_reqs"] = "CERT_REQUIRED"
            if isinstance(verify, str):
                tls["ca_certs"] = verify
        if peer.client_cert:
            tls["cert_file"], tls["key_file"] = peer.client_cert
        # Idempotent requests are retried on connection errors and 502/503/504 with backoff; a POST
        # only when the connection failed before it was sent (connect errors). ``other=0``: urllib3
        # counts e.g. a TLS error on a reused connection as "other" and would resend any method.
        # Everything else is the outbox's business.
        self.retries = Retry(total=3, connect=3, read=2, other=0, backoff_factor=0.3,
                             status_forcelist=(502, 503, 504), allowed_methods=IDEMPOTENT, raise_on_status=False,
                             redirect=0) if retries else Retry(0, redirect=0)
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=pool, retries=self.retries, **tls)
        self.peer_name = peer.name
        self.headers: dict[str, str] = {}
        if peer.login:
            self.headers.update(urllib3.make_headers(basic_auth=f"{peer.login}:{peer.password or ''}"))

    def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None, data: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float | None = None,
                stream: bool = False) -> Response:
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        try:
            r = self.pool.request(method, url, body=data, headers={**self.headers, **(headers or {})},
                                  timeout=timeout, preload_content=not stream, redirect=False)
        except urllib3.exceptions.HTTPError as e:
            raise TransportError(f"{type(e).__name__}: {e}") from None
        return Response(r, not stream, self.peer_name)

    def get(self, url: str, **kw) -> Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw) -> Response:
        return self.request("POST", url, **kw)


def session(peer: PeerConfig, *, pool: int = 8, retries: bool = True) -> Client:
    """A keep-alive client for one peer (``pool`` connections: one per concurrent worker)."""
    return Client(peer, pool=pool, retries=retries)


def transport_error(peer: str, exc: Exception) -> PeerError:
    return PeerError(peer, str(exc), transient=True)
