"""libcurl plumbing of the adapters' HTTP client: one easy handle and the options last set on it,
each worker thread's CurlMulti (its connection pool), a streamed transfer driven by its reader with
libcurl paused while ``STREAM_BUFFER`` bytes wait, Content-Encoding decoding, and libcurl's errors
turned into Brygga's (sent or not, timed out or not)."""

from __future__ import annotations

import os
import select
import threading
import time
import zlib
from collections.abc import Callable
from io import BytesIO
from typing import TYPE_CHECKING, Any, BinaryIO

import pycurl

if TYPE_CHECKING:
    from adapters.http import Client

#: A streamed reply pauses libcurl while this many bytes wait for the reader.
STREAM_BUFFER = 1 << 20
#: libcurl errors that happen before anything of the request was sent.
_NOT_SENT = frozenset({pycurl.E_COULDNT_RESOLVE_PROXY, pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_CONNECT})
_TLS_VERIFY = frozenset({pycurl.E_PEER_FAILED_VERIFICATION, getattr(pycurl, "E_SSL_CACERT", 60)})
_UNREADABLE = frozenset({pycurl.E_UNSUPPORTED_PROTOCOL, 8})  # 8: CURLE_WEIRD_SERVER_REPLY (pycurl names it E_FTP_...)


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


class FileBody:
    """A request body read from an open binary file (a package on disk), from where the file
    stood when the request was made: memory stays flat whatever its size."""

    __slots__ = ("file", "start", "size")

    def __init__(self, file: BinaryIO):
        self.file, self.start = file, file.tell()
        self.size = os.fstat(file.fileno()).st_size - self.start

    def rewound(self) -> BinaryIO:
        self.file.seek(self.start)
        return self.file


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

    def configure(self, url: str, lines: list[str], method: str, data: bytes | FileBody | None, connect_ms: int,
                  timeout_ms: int, fresh: int) -> Any:
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

    def _method(self, method: str, data: bytes | FileBody | None) -> Any:
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
        if isinstance(data, FileBody):  # a file, streamed: from its start again on every attempt
            upload: Any = data.rewound()
            size = data.size
        else:
            upload = BytesIO(data or b"")
            size = len(data or b"")
        c.setopt(pycurl.POST, 1)
        c.setopt(pycurl.POSTFIELDSIZE_LARGE, size)
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
        self.owner = threading.current_thread()  # a dead owner's connections are closed by the next new thread
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

    def __init__(self, local: _Local, easy: _Easy, key: str, upload: Any):
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
