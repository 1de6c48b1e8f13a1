"""The errors of HTTP to a peer: a peer that refused or failed (``PeerError``, with ``transient`` =
worth retrying later) and a request that got no HTTP answer at all (``TransportError``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from brygga.personnummer import mask

T = TypeVar("T")


class PeerError(RuntimeError):
    """A peer refused or failed a request. ``transient`` = worth retrying later."""

    def __init__(self, peer: str, message: str, *, status: int | None = None, transient: bool = False):
        super().__init__(mask(f"{peer}: {message}"))
        self.peer, self.status, self.transient = peer, status, transient


class UnreadableReply(PeerError):
    """A peer answered, but Brygga cannot read the reply: refused (a DTD), not well-formed (a
    control character, a text node over 10 MB, cut short), or another operation's reply. Names the
    peer, the operation, how far the reply was read and the parser's message. A reply that is not
    well-formed may be a cut connection (transient); a refused or unexpected one is not."""

    def __init__(self, peer: str, operation: str, error: Exception, *, transient: bool, read_bytes: int | None = None):
        size = f" after {read_bytes} bytes" if read_bytes is not None else ""
        super().__init__(peer, f"{operation}: unreadable reply{size}: {error}", transient=transient)
        self.operation, self.reason, self.read_bytes = operation, str(error), read_bytes


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
