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
import os
import re
import select
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from io import BytesIO
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote, urlencode

import pycurl

from brygga.connections import PeerConfig
from brygga.personnummer import mask

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
RETRY_STATUS = frozenset({502, 503, 504})
#: A kept-alive connection idle longer than this is not reused: load balancers and firewalls drop
#: idle connections (commonly after 60 s), often without a FIN that libcurl's check could see.
IDLE_MAX = 50.0
#: A streamed reply pauses libcurl while this many bytes wait for the reader.
STREAM_BUFFER = 1 << 20
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_URL = re.compile(r"((?i:https?)://[^/?#\s]+)([^#]*)")
_UNSAFE = re.compile(r"[^A-Za-z0-9/%:@!$&'()*+,;=\-._~?]")
#: libcurl errors that happen before anything of the request was sent.
_NOT_SENT = frozenset({pycurl.E_COULDNT_RESOLVE_PROXY, pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_CONNECT})
_TLS_VERIFY = frozenset({pycurl.E_PEER_FAILED_VERIFICATION, getattr(pycurl, "E_SSL_CACERT", 60)})
_UNREADABLE = frozenset({pycurl.E_UNSUPPORTED_PROTOCOL, 8})  # 8: CURLE_WEIRD_SERVER_REPLY (pycurl names it E_FTP_...)

T = TypeVar("T")


class PeerError(RuntimeError):
    """A peer refused or failed a request. ``transient`` = worth retrying later."""

    def __init__(self, peer: str, message: str, *, status: int | None = None, transient: bool = False):
        super().__init__(mask(f"{peer}: {message}"))
        self.peer, self.status, self.transient = peer, status, transient


def if_found(call: Callable[..., T], *args: Any, default: Any = None) -> T | Any:
    """``call(*args)``, or ``default`` when the peer answers 404 (not there); other errors propagate."""
    try:
        return call(*args)
    except PeerError as e:
        if e.status != 404:
            raise
        return default


class TransportError(Exception):
    """The request did not get an HTTP answer (connection refused/reset, timeout, TLS, a broken reply)."""


def transport_error(peer: str, exc: Exception) -> PeerError:
    return PeerError(peer, str(exc), transient=True)


class Headers(dict[str, str]):
    """Reply headers by lower-case name (``headers["Content-Type"]`` and ``.get`` ignore case)."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


def _parse_head(head: bytes) -> Headers:
    """The headers of the final reply (libcurl hands on interim 1xx heads and trailers too)."""
    lines = head.split(b"\r\n")
    start = 0
    for i, line in enumerate(lines):
        if line[:5] == b"HTTP/":
            start = i + 1
    out = Headers()
    for line in lines[start:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if sep and name.strip():
            key = name.strip().lower()
            value = value.strip()
            out[key] = f"{out[key]}, {value}" if key in out else value
    return out


class _Failed(Exception):
    """One attempt failed without a usable reply; ``sent``: the request may have reached the peer."""

    def __init__(self, message: str, *, sent: bool, timed_out: bool = False):
        super().__init__(message)
        self.sent, self.timed_out = sent, timed_out


def _describe(code: int, message: str) -> str:
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return f"timed out: {message}"
    if code in _TLS_VERIFY:
        return f"TLS: the peer's certificate could not be verified (CERTIFICATE_VERIFY_FAILED): {message}"
    if code in _UNREADABLE:
        return f"unreadable reply: {message}"
    if code == pycurl.E_SEND_FAIL_REWIND:
        return f"connection lost after the request was sent; not resent: {message}"
    return message or f"libcurl error {code}"


class _Decoder:
    """Content-Encoding gzip / deflate, decoded here rather than by libcurl, whose decoder stops
    after the first gzip member and takes a cut body for a whole one."""

    def __init__(self, coding: str):
        self.wbits = 31 if coding in ("gzip", "x-gzip") else 15  # zlib's names for gzip / deflate
        self.z = zlib.decompressobj(self.wbits)
        self.ended = False

    def feed(self, data: bytes, last: bool) -> bytes:
        if self.ended:
            return b""
        self.ended = last
        try:
            out = self.z.decompress(data)
            while self.wbits == 31 and self.z.eof and self.z.unused_data:  # the next gzip member
                rest, self.z = self.z.unused_data, zlib.decompressobj(31)
                out += self.z.decompress(rest)
            if last:
                out += self.z.flush()
                if not self.z.eof:
                    raise _Failed("compressed body cut short", sent=True)
        except zlib.error as e:
            raise _Failed(f"undecodable body: {e}", sent=True) from None
        return out


def _decoder(head: bytes) -> _Decoder | None:
    """A decoder for the final reply's Content-Encoding, None for none (the common case: two
    substring searches)."""
    low = head.lower()
    at = low.find(b"\ncontent-encoding:", max(0, low.rfind(b"\r\nhttp/")))
    if at < 0:
        return None
    coding = low[at + 18:low.find(b"\r", at + 1)].decode("latin-1").strip()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip", "deflate"):
        return _Decoder(coding)
    raise _Failed(f"unsupported Content-Encoding {coding!r}", sent=True)


#: Bumped in a forked child: connections made before the fork are the parent's.
_generation = [0]
os.register_at_fork(after_in_child=lambda: _generation.__setitem__(0, _generation[0] + 1))


class _Easy:
    """A libcurl easy handle and the options last set on it, set again only when they change
    (most requests of a worker look alike: only the URL differs)."""

    __slots__ = ("curl", "lines", "method", "connect_ms", "timeout_ms", "fresh", "head", "body")

    def __init__(self, curl: pycurl.Curl):
        self.curl, self.method = curl, ""
        self.lines: list[str] | None = None
        self.connect_ms = self.timeout_ms = self.fresh = -1
        self.head: list[bytes] = []
        self.body: list[bytes] = []
        curl.setopt(pycurl.HEADERFUNCTION, self.head.append)
        curl.setopt(pycurl.WRITEFUNCTION, self.body.append)

    def configure(self, url: str, lines: list[str], method: str, data: bytes | None, connect_ms: int,
                  timeout_ms: int, fresh: int) -> BytesIO | None:
        c = self.curl
        c.setopt(pycurl.URL, url)
        if lines is not self.lines:
            c.setopt(pycurl.HTTPHEADER, lines)
            self.lines = lines
        upload = None
        if data is not None or method != self.method or method in ("POST", "PUT"):
            upload = self._method(method, data)
        if connect_ms != self.connect_ms or timeout_ms != self.timeout_ms or fresh != self.fresh:
            c.setopt(pycurl.CONNECTTIMEOUT_MS, connect_ms)
            c.setopt(pycurl.TIMEOUT_MS, timeout_ms)
            c.setopt(pycurl.FRESH_CONNECT, fresh)
            self.connect_ms, self.timeout_ms, self.fresh = connect_ms, timeout_ms, fresh
        self.head.clear()
        self.body.clear()
        return upload

    def _method(self, method: str, data: bytes | None) -> BytesIO | None:
        c = self.curl
        self.method = method
        c.setopt(pycurl.HTTPGET, 1)  # resets POST / NOBODY from the handle's last request
        c.unsetopt(pycurl.CUSTOMREQUEST)
        if method == "HEAD":
            c.setopt(pycurl.NOBODY, 1)
            return None
        if data is None and method not in ("POST", "PUT"):
            if method != "GET":
                c.setopt(pycurl.CUSTOMREQUEST, method)
            return None
        upload = BytesIO(data or b"")
        c.setopt(pycurl.POST, 1)
        c.setopt(pycurl.POSTFIELDSIZE_LARGE, len(data or b""))
        # A read callback with no way to rewind: libcurl cannot resend the body on its own.
        c.setopt(pycurl.READFUNCTION, upload.read)
        if method != "POST":
            c.setopt(pycurl.CUSTOMREQUEST, method)
        return upload


class _Local:
    """One worker thread's connections to one peer: a CurlMulti, whose connection cache is the
    worker's pool; the handle for ordinary requests (run to their end in ``run``) and spare ones
    for streamed replies (moved on by their readers); and when the host was last used.

    Ordinary requests go through the multi too, rather than ``easy.perform()`` (which costs the same
    CPU, bench/http_client.py): one connection cache serves both kinds."""

    def __init__(self, client: Client):
        self.generation = _generation[0]
        self.client = client
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_MAXCONNECTS, max(2, client.maxsize))
        self.easy = self.new_easy()
        self.spare: list[_Easy] = []
        self.running: dict[int, _Transfer] = {}
        self.last_key: str | None = None  # the host of the last request, and when it ended
        self.last_time = 0.0
        self.last_socket = -1  # the socket of the last request's connection

    def new_easy(self) -> _Easy:
        curl = pycurl.Curl()
        for opt, value in self.client._options:
            curl.setopt(opt, value)
        return _Easy(curl)

    def stream_easy(self) -> _Easy:
        return self.spare.pop() if self.spare else self.new_easy()

    def run(self, curl: pycurl.Curl, deadline: float) -> None:
        """One ordinary request to its end (streamed transfers on the multi move on too); a failure
        raises ``_Failed``."""
        m = self.multi
        m.add_handle(curl)
        try:
            others = sum(not t.done for t in self.running.values()) if self.running else 0
            while True:
                ret, active = m.perform()
                if ret == pycurl.E_CALL_MULTI_PERFORM:
                    continue
                if active <= others:  # a transfer ended: ours, or a stream's
                    queued = 1
                    while queued:
                        queued, ok, failed = m.info_read()
                        for c in ok:
                            if c is curl:
                                self.last_socket = curl.getinfo(pycurl.ACTIVESOCKET)  # known while in the multi
                                return
                            self._ended(c, 0, "")
                        for c, code, message in failed:
                            if c is curl:
                                raise _failure(curl, code, message)
                            self._ended(c, code, message)
                    others = sum(not t.done for t in self.running.values())
                left = deadline - time.monotonic()
                if left <= 0:  # libcurl's own timeout ends it first; this is the backstop
                    raise _Failed("timed out waiting for the reply", sent=True, timed_out=True)
                m.select(min(left, 1.0))
        finally:
            m.remove_handle(curl)

    def _ended(self, curl: pycurl.Curl, code: int, message: str) -> None:
        t = self.running.get(id(curl))
        if t is not None:
            t.ended(code, message)

    def dropped(self) -> bool:
        """True when the idle connection has something to read: the peer closed it (or misbehaves).
        libcurl checks this itself only for connections idle over a second; a POST that went out on
        such a connection could not be told from one the peer received."""
        if self.last_socket < 0:
            return False
        p = select.poll()
        try:
            p.register(self.last_socket, select.POLLIN)
        except (OSError, ValueError):
            return False
        return bool(p.poll(0))

    def perform(self) -> None:
        """Let libcurl move every streamed transfer on as far as it can without waiting."""
        m = self.multi
        ret, _ = m.perform()
        while ret == pycurl.E_CALL_MULTI_PERFORM:
            ret, _ = m.perform()
        while True:  # note the transfers that ended
            queued, ok, failed = m.info_read()
            for curl in ok:
                self._ended(curl, 0, "")
            for curl, code, message in failed:
                self._ended(curl, code, message)
            if not queued:
                return

    def sleep(self, wait: float) -> None:
        """Wait up to ``wait`` s for a socket of a transfer to be ready (libcurl's threaded resolver
        has one too, so a name being looked up is waited for as well)."""
        self.multi.select(wait)

    def close(self) -> None:
        for t in list(self.running.values()):
            t.discard()
        for easy in self.spare:
            easy.curl.close()
        self.spare.clear()
        self.easy.curl.close()
        self.multi.close()


class _Transfer:
    """A streamed request on an easy handle of the worker's multi: its reply head, body and end."""

    __slots__ = ("local", "easy", "curl", "key", "body", "buffered", "paused", "done", "code", "message",
                 "upload", "decoder")

    def __init__(self, local: _Local, easy: _Easy, key: str, upload: BytesIO | None):
        self.local, self.easy, self.curl, self.key, self.upload = local, easy, easy.curl, key, upload
        self.body: list[bytes] = []
        self.buffered = 0
        self.paused = self.done = False
        self.code, self.message = 0, ""
        self.decoder: _Decoder | None | bool = False  # False: not known until the head is in
        self.curl.setopt(pycurl.WRITEFUNCTION, self._write)
        local.running[id(self.curl)] = self
        local.multi.add_handle(self.curl)

    def _write(self, data: bytes) -> int | None:
        if self.buffered >= STREAM_BUFFER:
            self.paused = True
            return pycurl.WRITEFUNC_PAUSE  # libcurl keeps ``data`` and hands it on again after unpause
        self.body.append(data)
        self.buffered += len(data)
        return None

    def ended(self, code: int, message: str) -> None:
        self.done, self.code, self.message = True, code, message

    def wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        """Drive the multi until ``ready()`` or the transfer ended; an end that failed before
        ``ready()`` raises ``_Failed`` (a failure after it is the reader's to see)."""
        local = self.local
        local.perform()
        while not ready() and not self.done:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Failed(f"timed out {what}", sent=True, timed_out=True)
            local.sleep(min(left, 1.0))
            local.perform()
        if self.done and self.code and not ready():
            raise _failure(self.curl, self.code, self.message)

    def has_body(self) -> bool:
        return bool(self.body)

    def has_head(self) -> bool:
        head = self.easy.head
        return bool(self.body) or self.curl.getinfo(pycurl.RESPONSE_CODE) >= 200 and head[-1:] == [b"\r\n"]

    def take(self) -> list[bytes]:
        """The pieces of body read so far and not yet taken, decoded; raises ``_Failed`` for a bad
        encoding. Taking them lets a paused libcurl go on."""
        pieces, self.body = self.body, []
        self.buffered = 0
        if self.paused and not self.done:
            self.paused = False
            self.curl.pause(pycurl.PAUSE_CONT)  # may hand on the held piece at once, into the new list
        if self.decoder is False:
            self.decoder = _decoder(b"".join(self.easy.head))
        if isinstance(self.decoder, _Decoder):
            return [self.decoder.feed(b"".join(pieces), self.done and not self.code and not self.body)]
        return pieces

    def release(self) -> None:
        """Back to the pool: the easy handle becomes a spare, its connection stays in the cache."""
        local, curl = self.local, self.curl
        if local.running.pop(id(curl), None) is None:
            return
        local.last_socket = curl.getinfo(pycurl.ACTIVESOCKET)  # only known while the handle is in the multi
        local.last_key, local.last_time = self.key, time.monotonic()
        local.multi.remove_handle(curl)
        curl.setopt(pycurl.WRITEFUNCTION, self.easy.body.append)
        local.spare.append(self.easy)

    def discard(self) -> None:
        """An unfinished or broken transfer: removing it from the multi closes its connection."""
        local, curl = self.local, self.curl
        if local.running.pop(id(curl), None) is None:
            return
        curl.setopt(pycurl.FORBID_REUSE, 1)
        local.multi.remove_handle(curl)
        curl.close()


def _failure(easy: pycurl.Curl, code: int, message: str) -> _Failed:
    sent = code not in _NOT_SENT and easy.getinfo(pycurl.REQUEST_SIZE) > 0
    return _Failed(_describe(code, message), sent=sent, timed_out=code == pycurl.E_OPERATION_TIMEDOUT)


class _Stream:
    """A streamed body for a mapping's reader: ``read(n)`` drives libcurl until ``n`` bytes are in or
    the reply ended. A reply broken off half-way is a transient PeerError like any transport failure.
    The pieces libcurl hands on are kept as they are and joined once, into what ``read`` returns."""

    def __init__(self, response: Response):
        self._resp = response
        self._pieces: deque[bytes] = deque()
        self._size = 0

    def _pull(self, t: _Transfer) -> None:
        for piece in t.take():
            if piece:
                self._pieces.append(piece)
                self._size += len(piece)

    def read(self, n: int | None = -1) -> bytes:
        r = self._resp
        want = -1 if n is None else n
        t = r._transfer
        if t is not None:
            try:
                while want < 0 or self._size < want:
                    if t.body:
                        self._pull(t)
                    elif t.done:
                        if t.code:
                            raise _failure(t.curl, t.code, t.message)
                        self._pull(t)  # the decoder's tail (and its check that nothing was cut)
                        r._finish()
                        break
                    else:
                        stalled_by = time.monotonic() + r._stall
                        t.wait(t.has_body, min(stalled_by, r._deadline),
                               "waiting for the rest of the reply" if stalled_by < r._deadline else
                               "before the reply ended (stream deadline)")
            except _Failed as e:
                r._abort()
                raise PeerError(r._peer, f"reply broken off: {e}", transient=True) from None
        pieces = self._pieces
        if want < 0 or self._size <= want:
            out = b"".join(pieces)
            pieces.clear()
            self._size = 0
            return out
        taken: list[bytes] = []
        need = want
        while need:
            piece = pieces[0]
            if len(piece) <= need:
                taken.append(pieces.popleft())
                need -= len(piece)
            else:
                taken.append(piece[:need])
                pieces[0] = piece[need:]
                need = 0
        self._size -= want
        return taken[0] if len(taken) == 1 else b"".join(taken)


class Response:
    """The part of a response the adapters use. Close it (or read ``content``) to free the connection."""

    __slots__ = ("_transfer", "_content", "_peer", "_raw", "_head", "_headers", "_deadline", "_stall",
                 "status_code")

    def __init__(self, status: int, head: bytes, peer: str, content: bytes | None = None,
                 transfer: _Transfer | None = None, deadline: float = 0.0, stall: float = 0.0):
        self.status_code, self._head, self._peer, self._content = status, head, peer, content
        self._headers: Headers | None = None
        self._raw: _Stream | BytesIO | None = None
        self._transfer, self._deadline, self._stall = transfer, deadline, stall

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = _parse_head(self._head)
        return self._headers

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = self.raw.read()
        return self._content

    @property
    def raw(self) -> IO[bytes] | _Stream:
        """The body as a stream (``read(n)``), decoded (gzip) as it is read."""
        if self._raw is None:
            self._raw = _Stream(self) if self._content is None else BytesIO(self._content)
        return self._raw

    def _finish(self) -> None:
        t, self._transfer = self._transfer, None
        if t is not None:
            t.release()

    def _abort(self) -> None:
        t, self._transfer = self._transfer, None
        if t is not None:
            t.discard()

    def close(self) -> None:
        """Free the connection: back to the pool when the body was read, else closed."""
        t = self._transfer
        if t is not None:
            if t.done and not t.body and not t.code:
                self._finish()
            else:
                self._abort()


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
            self._locals.append(local)
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
                data: bytes | None = None, headers: Mapping[str, str] | None = None, timeout: float | None = None,
                stream: bool = False) -> Response:
        method = method.upper()
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
            local = self._local()
            easy = local.stream_easy() if stream else local.easy
            now = start
            if attempt:  # what is left of the exchange's time
                now = time.monotonic()
                connect_ms, limit_ms = max(1, int((deadline - now) * 1000)), max(1, int((start + limit - now) * 1000))
            fresh = (local.last_key == key and now - local.last_time > IDLE_MAX) or not idempotent and local.dropped()
            upload = easy.configure(target, lines, method, data, connect_ms, limit_ms, 1 if fresh else 0)
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

    def _stream(self, local: _Local, easy: _Easy, key: str, upload: BytesIO | None, deadline: float,
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
        try:
            delay = max(0.0, min(float(int((retry_after or "").strip())), 30.0)) if retry_after else delay
        except ValueError:  # an HTTP date or garbage: our own backoff
            pass
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
