"""The merit sync's reading side: Ladok's feed → merits of NyA applicants → the outbox, through the
shared feed follower (checkpoint, outbox and inbox rows in one transaction per batch)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from brygga.flows.kit import feed, identity
from brygga.flows.kit.feed import Batch, FeedFollower
from brygga.flows.merits.grades import GradeBook
from brygga.flows.merits.lookups import Applicants, Enricher
from brygga.flows.merits.rules import (
    CHECKPOINT,
    DESTINATION,
    FLOW,
    KIND,
    MERIT_TYPES,
    SOURCE,
    idempotency_key,
    to_merit,
)
from brygga.flows.ports import Ladok, Nya
from brygga.logmask import get_logger
from brygga.records import Merit
from brygga.store import Store, ops
from brygga.store.models import InboxMessage, OutboxMessage, utcnow

log = get_logger("brygga.flows.merits")

_MISSING = object()
_MERIT_FIELDS = tuple(f.name for f in dataclasses.fields(Merit))


#: An unreadable archive page is moved past after this many runs met it (merits can be reconciled
#: from Ladok; the sync must not stop for every applicant because of one page).
SKIP_UNREADABLE_AFTER = 3


@dataclasses.dataclass
class _Candidates:
    """What a batch becomes, decided outside the transaction (Ladok and NyA lookups)."""

    merits: list[Merit]
    rejected: dict[str, str]  # HandelseUID -> quarantine reason
    considered: list[str]  # HandelseUIDs of the merit events looked at
    renumbered: list[identity.Renumbering] = dataclasses.field(default_factory=list)  # new personnummer


class MeritFeed(FeedFollower):
    """The merit sync's reading of the feed: a batch's merits of applicants found outside the
    transaction (``prepare``), then queued with the inbox in the follower's transaction (``apply``)."""

    flow = FLOW
    consumer = "the merit sync"
    consequence = "Merit events in the gap were not sent to NyA: reconcile the applicants' merits from Ladok"
    skip_unreadable_after = SKIP_UNREADABLE_AFTER

    def __init__(self, store: Store, ladok: Ladok, nya: Nya, *, enricher: Enricher | None = None,
                 applicants: Applicants | None = None, **kw: Any):
        super().__init__(store, ladok, **kw)
        self.nya = nya
        self.enricher = enricher or Enricher(ladok, GradeBook(ladok, store))
        self.applicants = applicants or Applicants(nya, store)
        self.counts: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()

    def prepare(self, batch: Batch) -> _Candidates:
        return _candidates(batch, self.enricher, self.applicants, self.nya, self.ignored, self.counts)

    def apply(self, s: Session, batch: Batch, prepared: _Candidates) -> None:
        _apply(s, batch, prepared, self.counts)


def sync_once(store: Store, ladok: Ladok, nya: Nya, *, max_pages: int = 500,
              batch_size: int = 1000, enricher: Enricher | None = None, applicants: Applicants | None = None,
              read_ahead_pages: int = 4,
              after_commit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Read the feed from the checkpoint up to the newest page (at most ``max_pages`` pages) and
    enqueue the merits; returns counts. Pages are fetched ``read_ahead_pages`` ahead in a thread
    (0: none). ``after_commit`` is called after each batch's commit (tests crash there)."""
    f = MeritFeed(store, ladok, nya, enricher=enricher, applicants=applicants, max_pages=max_pages,
                  batch_size=batch_size, read_ahead=read_ahead_pages, after_commit=after_commit)
    done = f.follow()
    counts = f.counts
    summary = {
        "pages": done.pages, "events": done.events, "merits": counts["merits"],
        "already_seen": counts["already_seen"], "not_applicant": counts["not_applicant"],
        "unknown_student": counts["unknown_student"], "quarantined": counts["quarantined"],
        "not_merit": sum(f.ignored.values()), "unknown_types": done.unknown_types,
        "gaps": done.gaps, "lookups": f.enricher.requests, "page": done.page, "caught_up": done.caught_up,
        "skipped_pages": done.skipped_pages, "renumbered": counts["renumbered"],
    }
    log.info("merit sync: %s", summary)
    return summary


def _candidates(batch: Batch, enricher: Enricher, applicants: Applicants, nya: Nya, ignored: Counter[str],
                counts: Counter[str]) -> _Candidates:
    """The merits of a batch's events. REST calls happen here, outside any transaction. The loop
    runs for every feed event, so the common cases (not a merit type; student known from the cache)
    cost a dict lookup each."""
    found = _Candidates([], {}, [])
    seen_here: set[str] = set()
    applicant_set = applicants.load()
    students = enricher.students
    # A student's new personnummer (LokalStudentEvent.TidigarePersonnummer): Brygga's records follow.
    found.renumbered, bad_numbers = identity.renumberings(batch.events)
    found.rejected.update(bad_numbers)
    for c in found.renumbered:
        if c.student_uid:
            students[c.student_uid] = c.new
    for e in batch.events:
        etype = e.event_type
        if etype not in MERIT_TYPES:
            ignored[etype] += 1
            continue
        huid = e.handelse_uid
        if huid in seen_here:
            counts["already_seen"] += 1
            continue
        seen_here.add(huid)
        found.considered.append(huid)
        uid = e.student_uid
        pnr = students.get(uid, _MISSING) if uid else None
        if pnr is _MISSING and uid:
            pnr = enricher.personnummer(uid)
        if pnr is None:
            counts["unknown_student"] += 1
        elif pnr not in applicant_set:
            counts["not_applicant"] += 1
        else:
            m = to_merit(e, pnr, enricher)
            if isinstance(m, str):
                found.rejected[huid] = m
            else:
                found.merits.append(m)
    _drop_invalid(found, nya)
    return found


def _drop_invalid(found: _Candidates, nya: Nya) -> None:
    """What NyA's contract would refuse, refused now rather than at sending time."""
    if not found.merits:
        return
    invalid = nya.invalid_merits(found.merits)
    for merit_id, why in invalid.items():
        found.rejected[merit_id] = f"not a valid NyA merit: {why}"
    if invalid:
        found.merits = [m for m in found.merits if m.merit_id not in invalid]


def _apply(s: Session, batch: Batch, found: _Candidates, counts: Counter[str]) -> None:
    """The batch's effects, in the follower's transaction: outbox and inbox rows, quarantine."""
    seen = ops.inbox_seen(s, SOURCE, found.considered) if found.considered else set()
    counts["already_seen"] += len(seen)
    new = [m for m in found.merits if m.merit_id not in seen] if seen else found.merits
    counts["merits"] += len(new)
    keys = [idempotency_key(m.merit_id) for m in new]
    correlation = f"merits:{batch.page}:{hashlib.sha256(chr(10).join(keys).encode()).hexdigest()[:16]}"
    page, at = batch.page, utcnow()
    ops.insert_new(s, OutboxMessage, ["idempotency_key"], [
        {"destination": DESTINATION, "kind": KIND, "idempotency_key": k, "correlation": correlation,
         "payload": {"merit": {f: getattr(m, f) for f in _MERIT_FIELDS}, "event_page": page},
         "status": "pending", "attempts": 0, "next_attempt_at": at, "created_at": at}
        for k, m in zip(keys, new, strict=True)
    ])
    ops.insert_new(s, InboxMessage, ["source", "message_id"], [
        {"source": SOURCE, "message_id": m.merit_id, "kind": "merit", "status": "processed", "received_at": at}
        for m in new
    ])
    if found.renumbered:
        counts["renumbered"] += identity.renumber(s, found.renumbered, FLOW.actor)
    for huid, reason in found.rejected.items():
        if huid not in seen:
            counts["quarantined"] += 1
            ops.quarantine(s, source=SOURCE, message_id=huid, kind="merit-event", reason=reason)
    for err in batch.errors:
        counts["quarantined"] += 1
        ops.quarantine(s, source=SOURCE, message_id=err.record_id, kind=err.kind or "feed-entry", reason=str(err))


def reset_checkpoint(store: Store, page: int, *, actor: str, reason: str = "replay") -> dict[str, Any]:
    """Operator action: read the feed again from ``page`` (inclusive). Safe: already handled events
    are in the inbox and their merits have idempotency keys, so nothing is sent twice."""
    return feed.reset_checkpoint(store, CHECKPOINT, page, actor=actor, reason=reason)
