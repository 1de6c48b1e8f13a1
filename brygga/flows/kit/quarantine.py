"""What a flow does with a peer's reply it cannot read (not well-formed, a DTD, another operation's
reply, a field the contract types that is not of its type): it is quarantined, named by peer and
operation, one open row per position with every run that meets it counted, and the task fails,
so Airflow alerts and retries.

A stream's reply (``quarantine_reply``, used by the sequence follower) keeps the records read
before the break and its checkpoint moves to just after the last good one; it never moves past
what could not be read: when the peer has corrected it, the next run reads on; an operator moves
past it with ``brygga checkpoints set <checkpoint> <sequence>`` (audited). A reply that is not a
stream (the open rounds, a round's applicants) is quarantined by ``unreadable`` with the run
that needed it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.orm import Session

from adapters.http import UnreadableReply
from brygga.logmask import get_logger
from brygga.store import Store, ops

log = get_logger("brygga.flows")

PEER_NAMES = {"nya": "NyA", "ladok": "Ladok", "folkbokforing": "the population register",
              "schema": "the scheduling system", "arkiv": "the archive"}


def _peer(e: UnreadableReply) -> str:
    return PEER_NAMES.get(e.peer, e.peer)


def quarantine_reply(s: Session, e: UnreadableReply, *, checkpoint: str, resume: int, kept: int) -> None:
    """Quarantine an unreadable reply of a stream that checkpoint ``checkpoint`` now resumes at ``resume``."""
    reason = (f"{_peer(e)}'s {e.operation} reply cannot be read (from sequence {resume}): {e}. {kept} record(s) "
              f"before it were kept; {checkpoint} stands at {resume}. If {_peer(e)} does not correct it, move past "
              f"it with: brygga checkpoints set {checkpoint} <sequence>")
    row = ops.quarantine_again(s, source=e.peer, message_id=f"{checkpoint}:{resume}", kind=f"{e.operation}-reply",
                               reason=reason)
    log.error("%s (attempt %s)", reason, row.attempts)


@contextlib.contextmanager
def unreadable(store: Store, *, consumer: str) -> Iterator[None]:
    """Around a call whose reply is not a stream: an unreadable reply is quarantined (one open row
    per peer and operation, its attempts counted) and raised."""
    try:
        yield
    except UnreadableReply as e:
        reason = (f"{_peer(e)}'s {e.operation} reply cannot be read: {e}. {consumer[:1].upper()}{consumer[1:]} "
                  "stopped before using it; it runs again when the reply can be read.")
        with store.transaction() as s:
            row = ops.quarantine_again(s, source=e.peer, message_id=f"{e.peer}:{e.operation}",
                                       kind=f"{e.operation}-reply", reason=reason)
            attempts = row.attempts
        log.error("%s (attempt %s)", reason, attempts)
        raise
