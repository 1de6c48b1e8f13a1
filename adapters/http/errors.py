"""The errors of HTTP to a peer: a peer that refused or failed (``PeerError``, with ``transient`` =
worth retrying later) and a request that got no HTTP answer at all (``TransportError``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from brygga.personnummer import mask
from brygga.xmlsafe import MalformedXML, UnreadableXML

T = TypeVar("T")


class PeerError(RuntimeError):
    """A peer refused or failed a request. ``transient`` = worth retrying later; ``retry_after``:
    the seconds the peer asked us to wait first (``Retry-After``), if it said."""

    def __init__(self, peer: str, message: str, *, status: int | None = None, transient: bool = False,
                 retry_after: float | None = None):
        super().__init__(mask(f"{peer}: {message}"))
        self.peer, self.status, self.transient, self.retry_after = peer, status, transient, retry_after


#: HTTP statuses a retry later can help: the peer was busy, limited us or could not answer in time.
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), None if absent or odd."""
    if not value or not value.strip():
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        import datetime as dt
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(v)
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None


def status_error(peer: str, what: str, status: int, headers: Any = None, detail: str = "") -> PeerError:
    """The error for a reply of ``status`` that is not the answer asked for: transient for a busy,
    limiting or failing peer (5xx, 408, 425, 429, with its ``Retry-After``), permanent otherwise
    (a 4xx: the request itself is wrong; 404 is "not there", see ``if_found``)."""
    after = retry_after(headers.get("retry-after")) if headers is not None else None
    return PeerError(peer, f"{what}: HTTP {status}" + (f": {detail}" if detail else ""), status=status,
                     transient=status >= 500 or status in TRANSIENT_STATUS, retry_after=after)


class UnreadableReply(PeerError):
    """A peer answered, but Brygga cannot read the reply: refused (a DTD), not well-formed (a
    control character, a text node over 10 MB, cut short), or another operation's reply. Names the
    peer, the operation, how far the reply was read and the parser's message. A reply that is not
    well-formed may be a cut connection (transient); a refused or unexpected one is not."""

    def __init__(self, peer: str, operation: str, error: Exception, *, transient: bool, read_bytes: int | None = None):
        size = f" after {read_bytes} bytes" if read_bytes is not None else ""
        super().__init__(peer, f"{operation}: unreadable reply{size}: {error}", transient=transient)
        self.operation, self.reason, self.read_bytes = operation, str(error), read_bytes


@contextlib.contextmanager
def reading(peer: str, operation: str, size: int | None = None, *, transient: bool | None = None,
            also: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Around reading a peer's reply: what cannot be read (not well-formed, a DTD, another
    operation's reply; and ``also``, e.g. a JSON error) raises ``UnreadableReply`` naming the peer
    and the operation. Transient when it may be a cut connection (not well-formed), unless
    ``transient`` says otherwise for every kind."""
    try:
        yield
    except UnreadableXML as e:
        raise UnreadableReply(peer, operation, e, read_bytes=size,
                              transient=isinstance(e, MalformedXML) if transient is None else transient) from e
    except also as e:
        raise UnreadableReply(peer, operation, e, read_bytes=size,
                              transient=True if transient is None else transient) from e


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
