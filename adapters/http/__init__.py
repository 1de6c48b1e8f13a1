"""HTTP for the adapters, on libcurl (pycurl): one keep-alive client per peer, errors that say
whether a retry can help, and replies streamed into the mapping readers.

libcurl does the protocol: request writing, framing (length, chunked, end of connection),
keep-alive and dead-connection checks, interim 1xx replies, HTTP/2 over TLS, TLS itself (CA bundle,
client certificate, CRL) and proxies (``http_proxy`` / ``HTTPS_PROXY`` / ``NO_PROXY``, or the
Connection's ``proxy`` / ``no_proxy``). This module keeps what Brygga decides:

* A connection that cannot be made is retried for every method (nothing was sent).
* An idempotent request (GET, HEAD, PUT, DELETE) is also retried when the connection fails after
  sending, and on 502/503/504, with backoff.
* A POST that was sent is never resent: its effect may have happened, which is the outbox's
  business. libcurl itself would resend a request on a kept-alive connection that died without a
  byte of reply; the body is therefore given through a read callback that cannot rewind, so such a
  POST fails (``SEND_FAIL_REWIND``) instead of going out twice; and before a POST the last
  connection is checked for a close by the peer, which libcurl checks only after a second idle.
* Deadlines: ``timeout`` (Connection extra, seconds) bounds a whole exchange, retries included;
  a streamed reply must start within it, may not stall longer than it while its reader waits, and
  must end within ``stream_timeout``. A timed-out exchange is not retried.
* Paths and queries are percent-encoded as UTF-8; header values with line breaks are refused;
  gzip / deflate bodies are decoded here (every gzip member; a cut body is an error).

No thread per request: each worker thread has one ``CurlMulti`` per peer, whose connection cache is
the worker's pool. An ordinary request runs on it to its end; a streamed body is read by driving it
from the reader's ``read(n)``, and libcurl is paused while more than ``STREAM_BUFFER`` bytes wait
for the reader, so memory stays flat whatever the size of the reply. See docs/architecture.md
(HTTP) for the measurements behind these choices.
"""

from __future__ import annotations

import base64
import re
import ssl
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

import pycurl

from adapters.http import ratelimit
from adapters.http.curl import STREAM_BUFFER, FileBody, _decoder, _Easy, _Failed, _generation, _Local, _Transfer
from adapters.http.errors import (
    PeerError,
    TransportError,
    UnreadableReply,
    if_found,
    reading,
    retry_after,
    status_error,
    transport_error,
)
from adapters.http.errors import retry_after as errors_retry_after
from adapters.http.reply import Headers, Response
from brygga.config import PeerConfig

__all__ = ["segment", "IDEMPOTENT", "IDLE_MAX", "RETRY_STATUS", "STREAM_BUFFER", "Client", "Headers", "PeerError", "Response",
           "TransportError", "UnreadableReply", "if_found", "reading", "retry_after", "session", "status_error", "transport_error"]

def segment(value: object) -> str:
    """A value as one URL path segment: every reserved character percent-encoded ("/" too), and the
    dot segments "." and ".." (which a client or server would resolve) encoded as %2E. A villkor code
    ".." stays a code, never a step up the path."""
    text = quote(str(value), safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
RETRY_STATUS = frozenset({429, 502, 503, 504})  # retried (idempotent requests), after Retry-After if given
#: A kept-alive connection idle longer than this is not reused: load balancers and firewalls drop
#: idle connections (commonly after 60 s), often without a FIN that libcurl's check could see.
IDLE_MAX = 50.0
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_URL = re.compile(r"((?i:https?)://[^/?#\s]+)([^#]*)")
_UNSAFE = re.compile(r"[^A-Za-z0-9/%:@!$&'()*+,;=\-._~?]")


def _ca_bundle() -> str | None:
    """The system's CA bundle. The libcurl that pycurl's wheel brings looks in a Red Hat path."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    try:
        import certifi

        return certifi.where()
    except ImportError:
        return None


class Client:
    """A keep-alive client for one peer. Thread-safe: each worker thread has its own connections."""

    def __init__(self, peer: PeerConfig, *, pool: int = 8, retries: bool = True):
        self.peer_name = peer.name
        self.maxsize = pool
        self.retries = 3 if retries else 0
        self.backoff = 0.3
        self.timeout, self.stream_timeout = peer.timeout, peer.stream_timeout
        self.headers: dict[str, str] = {}
        if peer.login:
            token = base64.b64encode(f"{peer.login}:{peer.password or ''}".encode()).decode("ascii")
            self.headers["Authorization"] = f"Basic {token}"
        self._options = self._fixed_options(peer, pool)
        self._bucket = ratelimit.bucket(f"{peer.name}:{peer.base_url}", peer.settings.rate_per_second,
                                        peer.settings.rate_burst)
        self._header_cache: dict[tuple[Any, ...], list[str]] = {}
        self._tls = threading.local()
        self._locals: list[_Local] = []
        self._lock = threading.Lock()

    @staticmethod
    def _fixed_options(peer: PeerConfig, pool: int) -> list[tuple[int, Any]]:
        """The options every easy handle of this peer gets once: TLS, proxy, keep-alive, decoding."""
        opts: list[tuple[int, Any]] = [
            (pycurl.NOSIGNAL, 1), (pycurl.TCP_NODELAY, 1), (pycurl.TCP_KEEPALIVE, 1),
            (pycurl.HTTP_CONTENT_DECODING, 0), (pycurl.USERAGENT, "brygga"),
            (pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS), (pycurl.MAXAGE_CONN, max(1, int(IDLE_MAX))),
            (pycurl.MAXCONNECTS, max(2, pool)), (pycurl.BUFFERSIZE, 256 * 1024),
            (pycurl.PATH_AS_IS, 1),  # the path as built (segments encoded by ``segment``), never re-resolved
        ]
        verify = peer.verify
        if verify is False:
            opts += [(pycurl.SSL_VERIFYPEER, 0), (pycurl.SSL_VERIFYHOST, 0)]
        else:
            bundle = verify if isinstance(verify, str) else _ca_bundle()
            if bundle:
                opts.append((pycurl.CAINFO, bundle))
        if peer.client_cert:
            cert, key = peer.client_cert
            opts += [(pycurl.SSLCERT, cert), (pycurl.SSLKEY, key)]
        if peer.crl:
            opts.append((pycurl.CRLFILE, peer.crl))
        if peer.proxy is not None:  # else libcurl takes http_proxy / HTTPS_PROXY / NO_PROXY from the environment
            opts.append((pycurl.PROXY, peer.proxy))
        if peer.no_proxy is not None:
            opts.append((pycurl.NOPROXY, peer.no_proxy))
        return opts

    def _local(self) -> _Local:
        try:
            local = self._tls.local
            if local.generation == _generation[0]:
                return local
        except AttributeError:  # first use in this thread
            pass
        local = self._tls.local = _Local(self)  # a new thread, or a forked child: connections of its own
        with self._lock:
            # the connections of threads that ended (a pool per task or chunk) are closed, not kept
            # for the client's life: memory and sockets stay bounded by the threads alive
            dead = [x for x in self._locals if not x.owner.is_alive() and x.generation == _generation[0]]
            self._locals = [x for x in self._locals if x not in dead] + [local]
        for x in dead:
            x.close()
        return local

    def close(self) -> None:
        with self._lock:
            locals_, self._locals = self._locals, []
        for local in locals_:
            if local.generation == _generation[0]:
                local.close()
        self._tls = threading.local()

    # ---------------------------------------------------------------- requests
    @staticmethod
    def _target(url: str, params: Mapping[str, Any] | list[tuple[str, Any]] | None) -> tuple[str, str]:
        """(the URL with its path and query percent-encoded as UTF-8, as urllib3 did; scheme://host)."""
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        m = _URL.match(url)
        if m is None:
            raise TransportError(f"not an http(s) URL: {url}")
        key, rest = m.group(1), m.group(2)
        if not rest.isascii() or _UNSAFE.search(rest):
            path, _, query = rest.partition("?")
            rest = quote(path or "/", safe=_PATH_SAFE) + (f"?{quote(query, safe=_QUERY_SAFE)}" if query else "")
        return key + (rest or "/"), key

    def _header_lines(self, headers: Mapping[str, str] | None, body: bool) -> list[str]:
        cache_key = (tuple(headers.items()) if headers else (), body)
        lines = self._header_cache.get(cache_key)
        if lines is not None:
            return lines
        merged: dict[str, tuple[str, str]] = {}  # by lower-case name: a caller's header replaces ours
        for k, v in (*self.headers.items(), *(headers or {}).items()):
            merged[k.lower()] = (k, str(v))
        merged.pop("content-length", None)  # libcurl writes the length of what it sends
        lines = []
        for k, v in merged.values():
            if any(c in k or c in v for c in "\r\n\0") or not k or ":" in k:
                raise ValueError(f"refused header {k!r}: empty name or a line break/NUL in it")
            lines.append(f"{k}: {v}" if v else f"{k};")
        lines.append("Expect:")  # no 100-continue round trip before a body
        if body and "content-type" not in merged:
            lines.append("Content-Type:")  # libcurl would claim a form
        if len(self._header_cache) < 64:
            self._header_cache[cache_key] = lines
        return lines

    def request(self, method: str, url: str, *, params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
                data: bytes | BinaryIO | None = None, headers: Mapping[str, str] | None = None,
                timeout: float | None = None,
                stream: bool = False) -> Response:
        method = method.upper()
        payload: bytes | FileBody | None = data if data is None or isinstance(data, bytes) else FileBody(data)
        target, key = self._target(url, params)
        lines = self._header_lines(headers, data is not None or method in ("POST", "PUT"))
        timeout = self.timeout if timeout is None else float(timeout)
        start = time.monotonic()
        deadline = start + timeout  # the whole exchange, retries included
        limit = max(timeout, self.stream_timeout) if stream else timeout
        idempotent = method in IDEMPOTENT
        attempt = 0
        connect_ms, limit_ms = int(timeout * 1000) or 1, int(limit * 1000) or 1
        while True:
            if self._bucket is not None:  # the peer's rate limit, every attempt
                self._bucket.take()
            local = self._local()
            easy = local.stream_easy() if stream else local.easy
            now = start
            if attempt:  # what is left of the exchange's time
                now = time.monotonic()
                connect_ms, limit_ms = max(1, int((deadline - now) * 1000)), max(1, int((start + limit - now) * 1000))
            fresh = (local.last_key == key and now - local.last_time > IDLE_MAX) or not idempotent and local.dropped()
            upload = easy.configure(target, lines, method, payload, connect_ms, limit_ms, 1 if fresh else 0)
            try:
                if stream:
                    response = self._stream(local, easy, key, upload, deadline, start + limit, timeout)
                else:  # an ordinary request: run to its end on the thread's handle
                    curl = easy.curl
                    local.run(curl, deadline)
                    local.last_key, local.last_time = key, now  # (idle since about then: ms off in 50 s)
                    head = b"".join(easy.head)
                    body = easy.body
                    content = body[0] if len(body) == 1 else b"".join(body)
                    body.clear()
                    if b"ncoding" in head or b"NCODING" in head:  # Content-Encoding, whatever its case
                        decoder = _decoder(head)
                        if decoder is not None:
                            content = decoder.feed(content, True)
                    response = Response(curl.getinfo(pycurl.RESPONSE_CODE), head, self.peer_name, content)
            except _Failed as e:
                if (idempotent or not e.sent) and not e.timed_out and attempt < self.retries:
                    attempt += 1
                    if self._sleep(attempt, deadline):
                        continue
                raise TransportError(str(e)) from None
            if idempotent and response.status_code in RETRY_STATUS and attempt < self.retries:
                try:
                    _ = response.content  # the (small) error body, read whole: the connection stays usable
                except PeerError:
                    pass
                if self._sleep(attempt + 1, deadline, response.headers.get("retry-after")):
                    attempt += 1
                    continue
            return response

    def _stream(self, local: _Local, easy: _Easy, key: str, upload: Any, deadline: float,
                stream_deadline: float, stall: float) -> Response:
        """A streamed request: on the thread's multi, returned once the head is in; the reader
        drives the rest."""
        t = _Transfer(local, easy, key, upload)
        try:
            t.wait(t.has_head, deadline, "waiting for the reply")
        except _Failed:
            t.discard()
            raise
        return Response(t.curl.getinfo(pycurl.RESPONSE_CODE), b"".join(easy.head), self.peer_name, transfer=t,
                        deadline=stream_deadline, stall=stall)

    def _sleep(self, attempt: int, deadline: float, retry_after: str | None = None) -> bool:
        """Back off before attempt ``attempt``; False when that would pass the exchange's deadline."""
        delay = self.backoff * 2 ** (attempt - 1)
        asked = errors_retry_after(retry_after)  # seconds or an HTTP date; garbage: our own backoff
        if asked is not None:
            delay = min(asked, 30.0)
        if time.monotonic() + delay >= deadline:
            return False
        time.sleep(delay)
        return True

    def get(self, url: str, **kw: Any) -> Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Response:
        return self.request("POST", url, **kw)


def session(peer: PeerConfig, *, pool: int = 8, retries: bool = True) -> Client:
    """A keep-alive client for one peer (``pool``: connections each worker thread keeps)."""
    return Client(peer, pool=pool, retries=retries)
