"""Following Ladok's Atom feed from a named checkpoint: the one feed follower every flow that reads
the feed uses (the merit sync, återbud Ladok → NyA, the schedule export), as a class with hooks.

A flow subclasses ``FeedFollower``, declares its ``flow`` (checkpoint and actor), ``consumer`` and
``consequence``, and implements ``apply(session, batch, prepared)``; it may override ``keep(item)``
(which entries it wants) and ``prepare(batch)`` (its peer lookups, outside any transaction).
``follow()`` reads the feed forward from the checkpoint (archive page + the id of the last entry
handled on it), oldest first along ``next-archive``, optionally a few pages ahead in a thread.
Entries are gathered into a ``Batch``; each batch is committed in ONE transaction that holds the
flow's effects (``apply``: outbox, inbox, quarantine, audit rows), the gaps found and the new
checkpoint, after a guard that nobody else moved the checkpoint meanwhile (``CheckpointMoved``). A crash before a commit leaves the checkpoint where it was (the batch is
read again; the callers' inboxes and idempotency keys make that harmless); a crash after it has
everything committed once.

The checkpoint stands on the page's last entry of any kind, so unknown types and bad entries on
the ``recent`` page (read again on every poll) are counted once. When the checkpoint's page has
been pruned (the feed moved on while Brygga was away) the oldest page still served is found, and
the gap is quarantined (``feed-gap``) and audited with its page range.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from adapters.ladok import FeedGone, UnreadablePage
from brygga.flows.kit.feed_pages import Entry, archived, oldest_available, page_entries, page_or_none, pages
from brygga.flows.kit.flow import Flow
from brygga.flows.ports import Ladok
from brygga.logmask import get_logger
from brygga.records import FeedPage, LadokEvent
from brygga.store import Store, ops
from mappings.base import RecordError

log = get_logger("brygga.flows.feed")


class CheckpointMoved(RuntimeError):
    """Another worker advanced the checkpoint while this one was reading: this batch is dropped."""


# ----------------------------------------------------------------------------- batches

@dataclasses.dataclass(frozen=True)
class Gap:
    """Where the follower had to start somewhere other than its checkpoint."""

    resumed_at: int | None
    checkpoint_page: int | None = None  # None: the first run (no checkpoint yet)
    checkpoint_entry: str | None = None


@dataclasses.dataclass
class Batch:
    """Entries read since the last commit, and where the checkpoint goes when they are committed."""

    events: list[LadokEvent] = dataclasses.field(default_factory=list)
    errors: list[RecordError] = dataclasses.field(default_factory=list)  # entries the mapping refused
    skipped: Counter[str] = dataclasses.field(default_factory=Counter)  # unknown event types, once per entry
    entries: int = 0  # every entry read, whatever it became
    gaps: list[Gap] = dataclasses.field(default_factory=list)
    page: int | None = None
    entry_id: str | None = None
    pages: int = 0

    def add(self, page: FeedPage, entries: list[Entry], keep: Callable[[Any], bool] | None) -> None:
        """Take a page's entries, those ``keep`` accepts (all by default)."""
        self.entries += len(entries)
        if keep is None and entries is getattr(page, "entries", None):  # the whole page as it is
            self.events.extend(page.events)
            self.errors.extend(page.errors)
            self.skipped.update(page.skipped)
            return
        for _, item in entries:
            if item.__class__ is str:
                self.skipped[item] += 1
            elif keep is None or keep(item):
                (self.events if item.__class__ is LadokEvent else self.errors).append(item)


@dataclasses.dataclass
class Followed:
    """What one ``follow`` did."""

    pages: int = 0
    entries: int = 0
    events: int = 0
    unknown_types: int = 0
    gaps: int = 0
    page: int | None = None  # where the checkpoint stands now
    caught_up: bool = False
    skipped_pages: list[int] = dataclasses.field(default_factory=list)  # unreadable pages moved past


class FeedFollower:
    """One feed consumer: its checkpoint, what it keeps of each page, what a batch does, how gaps
    are explained. Subclasses set:

    * ``flow`` — the flow's descriptor: the checkpoint (its ``which``-th) and the actor of audit rows;
    * ``consumer`` — names it in messages ("the merit sync");
    * ``consequence`` — completes a gap's reason: what was not done for the pruned pages and what
      staff do about it (e.g. "Merit events in the gap were not sent to NyA: reconcile the
      applicants' merits from Ladok");
    * ``gap_id``, ``audit_start``, ``skip_unreadable_after`` (move past an unreadable archive page
      after this many attempts; None: an operator does);

    and implement ``apply``; ``keep`` and ``prepare`` are optional."""

    flow: Flow
    which = 0  # which of the flow's checkpoints is the feed's
    consumer: str
    consequence: str
    gap_id = "feed-gap"
    audit_start = True
    skip_unreadable_after: int | None = None

    def __init__(self, store: Store, ladok: Ladok, *, max_pages: int = 500, batch_size: int = 1000,
                 read_ahead: int = 0, after_commit: Callable[[dict[str, Any]], None] | None = None):
        self.store, self.ladok = store, ladok
        self.checkpoint, self.actor = self.flow.checkpoint(which=self.which), self.flow.actor
        self.max_pages, self.batch_size, self.read_ahead = max_pages, batch_size, read_ahead
        self.after_commit = after_commit  # called after each commit (tests crash there)
        # the whole page as it is when the flow keeps every entry (no call per entry)
        self._keep = None if type(self).keep is FeedFollower.keep else self.keep

    # ------------------------------------------------------------------ the hooks
    def keep(self, item: Any) -> bool:
        """Whether the flow wants an entry (a ``LadokEvent`` or a ``RecordError``)."""
        return True

    def prepare(self, batch: Batch) -> Any:
        """The batch's peer lookups, outside any transaction; handed to ``apply``."""
        return None

    def apply(self, s: Session, batch: Batch, prepared: Any) -> None:
        """The batch's effects, in the transaction that moves the checkpoint."""
        raise NotImplementedError

    def position(self) -> tuple[int | None, str | None]:
        with self.store.transaction() as s:
            cp = ops.checkpoint_get(s, self.checkpoint)
            return (cp.page, cp.entry_id) if cp is not None and cp.page else (None, None)

    def _first(self, start_page: int | None, start_entry: str | None) -> tuple[FeedPage, Gap | None]:
        if start_page is None:  # a new follower starts at the oldest page served, as the public consumers do
            try:
                first = self.ladok.feed_page(first=True)
            except FeedGone:
                first = oldest_available(self.ladok)
            return first, Gap(first.number)
        page = page_or_none(self.ladok, start_page)
        if page is not None:
            return page, None
        first = oldest_available(self.ladok)
        return first, Gap(first.number, start_page, start_entry)

    def follow(self) -> Followed:
        """Read from the checkpoint up to the newest page (at most ``max_pages``) and commit the
        batches."""
        start_page, start_entry = self.position()
        expected = (start_page, start_entry)
        done = Followed(page=start_page)
        try:
            first, gap = self._first(start_page, start_entry)
        except UnreadablePage as e:
            if self._unreadable(e, expected, done):
                return done
            raise
        batch = Batch(gaps=[gap] if gap else [])
        page: FeedPage | None = None
        read = pages(self.ladok, first, max_pages=self.max_pages, ahead=self.read_ahead)
        try:
            while True:
                try:
                    page = next(read)
                except StopIteration:
                    break
                except UnreadablePage as e:  # the pages before it are committed; it is quarantined
                    expected = self._commit(batch, expected, done)
                    batch = Batch()
                    if self._unreadable(e, expected, done):
                        break  # moved past it: the next run reads on from the page after
                    raise
                except Exception:  # a peer failed mid-walk: what was read is committed, then the error
                    self._commit(batch, expected, done)
                    raise
                number = page.number
                entries, last = page_entries(page, start_entry if number == start_page else None)
                batch.add(page, entries, self._keep)
                batch.pages += 1
                done.pages += 1
                batch.page = number
                batch.entry_id = last if last is not None else start_entry if number == start_page else None
                if len(batch.events) >= self.batch_size:
                    expected = self._commit(batch, expected, done)
                    batch = Batch()
            self._commit(batch, expected, done)
        finally:
            read.close()
        done.caught_up = not done.skipped_pages and page is not None and not page.next_archive
        return done

    def _unreadable(self, e: UnreadablePage, expected: tuple[int | None, str | None], done: Followed) -> bool:
        """Quarantine an unreadable page (one row per page, its attempts counted). Move past it
        only when ``skip_unreadable_after`` attempts are reached and it is an archive page (the
        next page exists, so it will never change); returns whether it was moved past."""
        reason = (f"Ladok feed page {e.page or 'recent'} cannot be read ({e.size} bytes): {e.reason}. "
                  f"{self.consumer[:1].upper()}{self.consumer[1:]} stopped before it; the pages before it are "
                  "committed.")
        with self.store.transaction() as s:
            row = ops.quarantine_again(s, source="ladok", message_id=f"{self.checkpoint}:page:{e.page or 'recent'}",
                                       kind="feed-page", reason=reason, payload=e.excerpt)
            attempts = row.attempts
        limit = self.skip_unreadable_after
        if limit is None or attempts < limit or e.page is None or not archived(self.ladok, e.page):
            log.error("%s: %s (attempt %s; %s)", self.checkpoint, reason, attempts,
                      f"an operator moves past it: brygga checkpoints set {self.checkpoint} "
                      f"{(e.page or 0) + 1} --reason …" if limit is None else
                      f"moved past after {limit} attempts once it is an archive page")
            return False
        with self.store.transaction() as s:
            now = ops.checkpoint_get(s, self.checkpoint)
            if now is not None and (now.page, now.entry_id) != expected and now.page:
                raise CheckpointMoved(f"checkpoint {self.checkpoint} moved while reading; page {e.page} not skipped")
            skip_page(s, self.checkpoint, e.page, actor=self.actor,
                      reason=f"unreadable after {attempts} attempts: {e.reason}")
        done.skipped_pages.append(e.page)
        done.page = e.page + 1
        log.error("%s: moved past unreadable feed page %s after %s attempts: %s. %s", self.checkpoint, e.page,
                  attempts, e.reason, self.consequence)
        return True

    def _commit(self, batch: Batch, expected: tuple[int | None, str | None],
                done: Followed) -> tuple[int | None, str | None]:
        """One batch: prepare outside, then effects + gaps + checkpoint in one transaction."""
        position = (batch.page, batch.entry_id)
        if batch.page is None or (position == expected and not batch.events and not batch.errors
                                  and not batch.gaps):
            return expected  # nothing read, or nothing new: no transaction
        prepared = self.prepare(batch)
        with self.store.transaction() as s:
            cp = ops.checkpoint_get(s, self.checkpoint)
            now = (cp.page, cp.entry_id) if cp is not None and cp.page else (None, None)
            if now != expected:
                raise CheckpointMoved(f"checkpoint {self.checkpoint} moved from {expected} to {now} while "
                                      "reading; batch dropped")
            self.apply(s, batch, prepared)
            for gap in batch.gaps:
                self._record_gap(s, gap)
            ops.checkpoint_set(s, self.checkpoint, batch.page, batch.entry_id, add_seen=len(batch.events))
        done.entries += batch.entries
        done.events += len(batch.events)
        done.unknown_types += sum(batch.skipped.values())
        done.gaps += sum(1 for g in batch.gaps if g.checkpoint_page is not None)
        done.page = batch.page
        if self.after_commit is not None:
            self.after_commit({"page": batch.page, "entry_id": batch.entry_id})
        return position

    def _record_gap(self, s: Session, gap: Gap) -> None:
        if gap.checkpoint_page is None:  # the first run
            if self.audit_start:
                ops.audit(s, self.actor, "feed.start", "feed_checkpoint", self.checkpoint, page=gap.resumed_at)
            return
        first, resumed = gap.checkpoint_page, gap.resumed_at
        pruned = f"{first}..{resumed - 1}" if resumed and resumed - 1 > first else f"{first}"
        reason = (f"Ladok feed moved on while {self.consumer} was away: archive page(s) {pruned} were pruned "
                  f"before they were read (checkpoint page {first}, last entry {gap.checkpoint_entry or '-'}); "
                  f"resumed at page {resumed}. {self.consequence}, then release this row.")
        ops.quarantine(s, source="ladok", message_id=f"{self.gap_id}:{first}-{resumed}", kind="feed-gap",
                       reason=reason)
        ops.audit(s, self.actor, "feed.gap", "feed_checkpoint", self.checkpoint, from_page=first,
                  resumed_at=resumed, entry_id=gap.checkpoint_entry)
        log.warning("%s: %s", self.checkpoint, reason)

    def reset(self, page: int, *, actor: str, reason: str = "replay") -> dict[str, Any]:
        return reset_checkpoint(self.store, self.checkpoint, page, actor=actor, reason=reason)


def skip_page(s: Session, checkpoint: str, page: int, *, actor: str, reason: str) -> dict[str, Any]:
    """Move ``checkpoint`` past archive page ``page`` (to the start of ``page + 1``): the page is
    never read. Audited; the page's quarantine row stays open with the reason, for staff to
    reconcile what was on it."""
    cp = ops.checkpoint_get(s, checkpoint)
    before = {"page": cp.page, "entry_id": cp.entry_id} if cp else None
    ops.checkpoint_set(s, checkpoint, page + 1, None)
    ops.audit(s, actor, "feed.page-skipped", "feed_checkpoint", checkpoint, page=page, before=before, reason=reason)
    return {"skipped_page": page, "before": before}


def reset_checkpoint(store: Store, checkpoint: str, page: int, *, actor: str, reason: str = "replay") -> dict[str, Any]:
    """Operator action: read the feed again from ``page`` (inclusive). Safe when the consumer's
    effects are deduplicated (inbox, idempotency keys): nothing is done twice."""
    if page < 1:
        raise ValueError("replay_from_page must be >= 1")
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, checkpoint)
        before = {"page": cp.page, "entry_id": cp.entry_id} if cp else None
        ops.checkpoint_set(s, checkpoint, page, None)
        ops.audit(s, actor, "feed.replay", "feed_checkpoint", checkpoint, from_page=page, before=before,
                  reason=reason)
    log.info("%s: checkpoint reset to page %s by %s (was %s)", checkpoint, page, actor, before)
    return {"replay_from_page": page, "before": before}
