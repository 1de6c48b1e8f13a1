"""A peer's reply as the adapters see it: its status, its headers (by lower-case name) and its
body — read whole (``content``) or streamed into a mapping's reader (``raw.read(n)``)."""

from __future__ import annotations

import time
from collections import deque
from io import BytesIO
from typing import IO, Any

from adapters.http.curl import _Failed, _failure, _Transfer
from adapters.http.errors import PeerError


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
