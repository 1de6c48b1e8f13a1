"""The merit sync's reading side: Ladok's feed → merits of NyA applicants → the ledger and the
outbox, through the shared feed follower (checkpoint, ledger, outbox and inbox rows in one
transaction per batch). Retractions in the feed withdraw their merits (``ledger.retract``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from brygga.flows.kit import feed, identity
from brygga.flows.kit.feed import Batch, FeedFollower
from brygga.flows.merits import applicants as applicants_mod
from brygga.flows.merits import ledger
from brygga.flows.merits.applicants import Applicants
from brygga.flows.merits.grades import GradeBook
from brygga.flows.merits.lookups import Enricher
from brygga.flows.merits.rules import (
    CHECKPOINT,
    FLOW,
    KIND,
    MERIT_TYPES,
    RETRACTIONS,
    SOURCE,
    retraction_ref,
    to_merit,
)
from brygga.flows.ports import Ladok, Nya
from brygga.logmask import get_logger
from brygga.records import Merit
from brygga.store import Store, ops
from brygga.store.models import InboxMessage, utcnow

log = get_logger("brygga.flows.merits")

_MISSING = object()


#: An unreadable archive page is moved past after this many runs met it (merits can be reconciled
#: from Ladok; the sync must not stop for every applicant because of one page).
SKIP_UNREADABLE_AFTER = 3


@dataclasses.dataclass
class _Candidates:
    """What a batch becomes, decided outside the transaction (Ladok lookups, who applies)."""

    merits: list[Merit]
    rejected: dict[str, str]  # HandelseUID -> quarantine reason
    considered: list[str]  # HandelseUIDs of the merit and retraction events looked at
    renumbered: list[identity.Renumbering] = dataclasses.field(default_factory=list)  # new personnummer
    retracted: dict[str, str] = dataclasses.field(default_factory=dict)  # HandelseUID -> the merit taken back
    event_at: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)  # merit ref -> in Ladok
    handelse: dict[str, str] = dataclasses.field(default_factory=dict)  # merit ref -> HandelseUID


class MeritFeed(FeedFollower):
    """The merit sync's reading of the feed: a batch's merits of applicants and its retractions
    found outside the transaction (``prepare``), then put in the ledger with the inbox in the
    follower's transaction (``apply``)."""

    flow = FLOW
    consumer = "the merit sync"
    consequence = "Merit events in the gap were not sent to NyA: reconcile the applicants' merits from Ladok"
    skip_unreadable_after = SKIP_UNREADABLE_AFTER

    def __init__(self, store: Store, ladok: Ladok, nya: Nya, *, applicants: Applicants,
                 enricher: Enricher | None = None, **kw: Any):
        super().__init__(store, ladok, **kw)
        self.nya = nya
        self.enricher = enricher or Enricher(ladok, GradeBook(ladok, store))
        self.applicants = applicants
        self.counts: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()

    def prepare(self, batch: Batch) -> _Candidates:
        return _candidates(batch, self.enricher, self.applicants, self.nya, self.ignored, self.counts)

    def apply(self, s: Session, batch: Batch, prepared: _Candidates) -> None:
        _apply(s, batch, prepared, self.counts)


def sync_once(store: Store, ladok: Ladok, nya: Nya, *, max_pages: int = 500,
              batch_size: int = 1000, enricher: Enricher | None = None, rounds: list[str] | None = None,
              read_ahead_pages: int = 4,
              after_commit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Read the open rounds' new applicants, then the feed from the checkpoint up to the newest
    page (at most ``max_pages`` pages), and queue the merits of applicants; returns counts. Pages
    are fetched ``read_ahead_pages`` ahead in a thread (0: none). ``after_commit`` is called after
    each batch's commit (tests crash there)."""
    new = applicants_mod.follow(store, nya, rounds)
    f = MeritFeed(store, ladok, nya, applicants=Applicants(store, new["rounds"]), enricher=enricher,
                  max_pages=max_pages, batch_size=batch_size, read_ahead=read_ahead_pages, after_commit=after_commit)
    done = f.follow()
    counts = f.counts
    summary = {
        "pages": done.pages, "events": done.events, "merits": counts["merits"],
        "already_seen": counts["already_seen"], "already_queued": counts["already_queued"],
        "not_applicant": counts["not_applicant"], "unknown_student": counts["unknown_student"],
        "quarantined": counts["quarantined"], "withdrawn": counts["withdrawn"],
        "not_merit": sum(f.ignored.values()), "unknown_types": done.unknown_types,
        "gaps": done.gaps, "lookups": f.enricher.requests, "page": done.page, "caught_up": done.caught_up,
        "skipped_pages": done.skipped_pages, "renumbered": counts["renumbered"],
        "new_applicants": new["new_applicants"],
    }
    log.info("merit sync: %s", summary)
    return summary


def _candidates(batch: Batch, enricher: Enricher, applicants: Applicants, nya: Nya, ignored: Counter[str],
                counts: Counter[str]) -> _Candidates:
    """The merits and retractions of a batch's events. REST calls happen here, outside any
    transaction. The loop runs for every feed event, so the common cases (not a merit type; student
    known from the cache) cost a dict lookup each."""
    found = _Candidates([], {}, [])
    seen_here: set[str] = set()
    students = enricher.students
    # A student's new personnummer (LokalStudentEvent.TidigarePersonnummer): Brygga's records follow.
    found.renumbered, bad_numbers = identity.renumberings(batch.events)
    found.rejected.update(bad_numbers)
    for c in found.renumbered:
        if c.student_uid:
            students[c.student_uid] = c.new
    events: list[tuple[Any, str]] = []
    for e in batch.events:
        etype = e.event_type
        if etype in RETRACTIONS:
            ref = retraction_ref(e)
            if ref and e.handelse_uid not in seen_here:
                seen_here.add(e.handelse_uid)
                found.considered.append(e.handelse_uid)
                found.retracted[e.handelse_uid] = ref
            continue
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
        if not isinstance(pnr, str):
            counts["unknown_student"] += 1
            continue
        events.append((e, pnr))
    applying = applicants.among({p for _, p in events})
    for e, pnr in events:
        if pnr not in applying:
            counts["not_applicant"] += 1
            continue
        m = to_merit(e, pnr, enricher)
        if isinstance(m, str):
            found.rejected[e.handelse_uid] = m
        else:
            if m.merit_id in found.handelse:  # the same merit twice in a batch: as the later event has it
                found.merits = [x for x in found.merits if x.merit_id != m.merit_id]
            found.merits.append(m)
            found.handelse[m.merit_id] = e.handelse_uid
            at = _when(e.updated)
            if at is not None:
                found.event_at[m.merit_id] = at
    _drop_invalid(found, nya)
    return found


def _when(updated: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(updated.replace("Z", "+00:00")) if updated else None
    except ValueError:
        return None


def _drop_invalid(found: _Candidates, nya: Nya) -> None:
    """What NyA's contract would refuse, refused now rather than at sending time."""
    if not found.merits:
        return
    invalid = nya.invalid_merits(found.merits)
    for merit_id, why in invalid.items():
        found.rejected[found.handelse.get(merit_id, merit_id)] = f"not a valid NyA merit: {why}"
    if invalid:
        found.merits = [m for m in found.merits if m.merit_id not in invalid]


def _apply(s: Session, batch: Batch, found: _Candidates, counts: Counter[str]) -> None:
    """The batch's effects, in the follower's transaction: ledger, outbox and inbox rows, quarantine."""
    seen = ops.inbox_seen(s, SOURCE, found.considered) if found.considered else set()
    counts["already_seen"] += len(seen)
    new = [m for m in found.merits if found.handelse[m.merit_id] not in seen] if seen else found.merits
    page, at = batch.page, utcnow()
    if new:
        keys = sorted(m.merit_id for m in new)
        correlation = f"merits:{page}:{hashlib.sha256(chr(10).join(keys).encode()).hexdigest()[:16]}"
        queued = ledger.queue(s, new, kind=KIND, source="feed", correlation=correlation, event_at=found.event_at,
                              extra={"event_page": page})
        counts["merits"] += queued["queued"]
        counts["already_queued"] += queued["already"]
    retracted = {h: ref for h, ref in found.retracted.items() if h not in seen}
    if retracted:
        done = ledger.retract(s, list(retracted.values()), correlation=f"merit-withdrawals:{page}",
                              reason="taken back in Ladok")
        counts["withdrawn"] += done["withdrawn"]
    ops.insert_new(s, InboxMessage, ["source", "message_id"], [
        {"source": SOURCE, "message_id": found.handelse[m.merit_id], "kind": "merit", "status": "processed",
         "received_at": at} for m in new] + [
        {"source": SOURCE, "message_id": h, "kind": "merit-retraction", "status": "processed", "received_at": at}
        for h in retracted])
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
