"""Following one of NyA's streams of a round (admissions, villkor changes, återbud) from a checkpoint
by sequence: the one sequence follower, as a class with hooks, beside the feed follower.

A flow subclasses ``SequenceFollower``, declares its ``flow`` and which of its checkpoints
(``which``), and implements ``open(from_sequence)`` (the stream from its gateway) and
``apply(session, part, prepared)``; it may implement ``prepare(part)`` (its peer calls, outside any
transaction). ``follow()`` reads the reply as it arrives, in chunks of ``chunk`` records, and
commits each chunk in ONE transaction holding the flow's effects and the checkpoint moved to just
after the chunk's last good record, after a guard that nobody else moved it meanwhile
(``CheckpointMoved``). When the reply is read to its end the checkpoint moves to its
``NextSequence``. A crash between chunks re-reads from the last committed one (the flows' inboxes
and upserts make a repeat harmless); memory holds one chunk, whatever the size of the reply.

A reply that cannot be read (not well-formed, a DTD, another operation's reply, a ``NextSequence``
that is not a number) keeps what was read before the break, moves the checkpoint to just after it,
is quarantined with its position (``quarantine_reply``: one row per position, every run that meets
it counted) and raises, so Airflow alerts and retries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from itertools import islice
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from adapters.http import UnreadableReply
from brygga.flows.kit.feed import CheckpointMoved
from brygga.flows.kit.flow import Flow
from brygga.flows.kit.quarantine import quarantine_reply
from brygga.flows.ports import SequenceReply
from brygga.store import Store, ops
from mappings.base import RecordError

R = TypeVar("R")


@dataclasses.dataclass
class Progress:
    """What one ``follow`` did."""

    start: int  # the sequence it read from
    position: int  # where the checkpoint stands now
    read: int = 0  # records read (bad ones included)
    chunks: int = 0


class SequenceFollower(Generic[R]):
    """One of NyA's per-round streams, read from its checkpoint. Subclasses set ``flow`` and
    ``which`` (the index of the checkpoint in ``flow.checkpoints``) and implement ``open`` and
    ``apply``; ``prepare`` is optional."""

    flow: Flow
    which = 0
    chunk = 2000

    def __init__(self, store: Store, round_code: str, *, chunk: int | None = None,
                 after_commit: Callable[[dict[str, Any]], None] | None = None):
        self.store, self.round = store, round_code
        self.checkpoint = self.flow.checkpoint(round_code, which=self.which)
        self.chunk = chunk or self.chunk
        self.after_commit = after_commit  # called after each commit (tests crash there)

    # ------------------------------------------------------------------ the hooks
    def open(self, from_sequence: int) -> AbstractContextManager[SequenceReply[R]]:
        """The round's stream from ``from_sequence`` (0: from its start)."""
        raise NotImplementedError

    def prepare(self, part: list[R | RecordError]) -> Any:
        """A chunk's peer calls, outside any transaction; handed to ``apply``."""
        return None

    def apply(self, s: Session, part: list[R | RecordError], prepared: Any) -> None:
        """A chunk's effects, in the transaction that moves the checkpoint past it."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the loop
    def position(self) -> int:
        with self.store.transaction() as s:
            cp = ops.checkpoint_get(s, self.checkpoint)
            return cp.page if cp is not None and cp.page else 0

    def follow(self) -> Progress:
        """Read the stream from the checkpoint to its end, committing chunk by chunk."""
        start = self.position()
        done = Progress(start=start, position=start)
        with self.open(start) as reply:
            records = iter(reply)
            while True:
                part: list[R | RecordError] = []
                try:
                    part.extend(islice(records, self.chunk))
                except UnreadableReply as e:
                    self._commit(part, done, broken=e)
                    raise
                if not part:
                    break
                self._commit(part, done)
            end = reply.next_sequence
        if end is not None and end != done.position:
            self._commit([], done, end=end)
        return done

    def _commit(self, part: list[R | RecordError], done: Progress, *, end: int | None = None,
                broken: UnreadableReply | None = None) -> None:
        """One chunk's effects and the checkpoint just after its last good record (or ``end``); with
        ``broken``, the unreadable reply quarantined at that position too."""
        prepared = self.prepare(part) if part else None
        last = max((seq for x in part if (seq := getattr(x, "sequence", None)) is not None
                    and not isinstance(x, RecordError)), default=None)
        upto = end if end is not None else max(done.position, last + 1 if last is not None else 0)
        with self.store.transaction() as s:
            now = self.position_in(s)
            if now != done.position:
                raise CheckpointMoved(f"checkpoint {self.checkpoint} moved from {done.position} to {now} while "
                                      "reading; chunk dropped")
            if part:
                self.apply(s, part, prepared)
            if upto != now or part:
                ops.checkpoint_set(s, self.checkpoint, upto, None, add_seen=len(part))
            if broken is not None:
                quarantine_reply(s, broken, checkpoint=self.checkpoint, resume=upto, kept=done.read + len(part))
        done.read += len(part)
        done.chunks += 1 if part else 0
        done.position = upto
        if self.after_commit is not None and (part or end is not None):
            self.after_commit({"round": self.round, "next_sequence": upto})

    def position_in(self, s: Session) -> int:
        cp = ops.checkpoint_get(s, self.checkpoint)
        return cp.page if cp is not None and cp.page else 0
