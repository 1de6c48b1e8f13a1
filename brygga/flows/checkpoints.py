"""Operator actions on where flows stand: set a checkpoint (read a feed again from a page, move a
round's NyA stream past a reply that cannot be read), release (dismiss) a quarantined row once
handled, and retry one: an outbox message given up on goes back to the outbox, to be sent on the
flow's next run. Every action is audited with the actor, the reason and what it was before."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from brygga.logmask import get_logger
from brygga.store import Store, ops
from brygga.store.models import CheckpointHistory, NyaAdmission, OutboxMessage, Quarantine, utcnow

log = get_logger("brygga.flows.checkpoints")


def set_position(store: Store, name: str, position: int, *, actor: str, reason: str,
                 entry_id: str | None = None) -> dict[str, Any]:
    """Set checkpoint ``name`` to ``position`` (a feed page, read from its start or after
    ``entry_id``; or the NyA sequence a round's stream reads from next). The checkpoint must exist."""
    if position < 0:
        raise ValueError("position must be >= 0")
    if not reason.strip():
        raise ValueError("a reason is required")
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, name)
        if cp is None:
            raise KeyError(f"no checkpoint {name!r} (brygga checkpoints list)")
        before = {"position": cp.page, "entry_id": cp.entry_id}
        ops.checkpoint_set(s, name, position, entry_id)
        ops.audit(s, actor, "checkpoint.set", "feed_checkpoint", name, before=before, position=position,
                  entry_id=entry_id, reason=reason)
    log.info("checkpoint %s set to %s by %s (was %s): %s", name, position, actor, before, reason)
    return {"name": name, "position": position, "entry_id": entry_id, "before": before}


def release(store: Store, quarantine_id: int, *, actor: str, note: str) -> dict[str, Any]:
    """Mark a quarantined row handled (released), with who and why."""
    if not note.strip():
        raise ValueError("a note is required")
    with store.transaction() as s:
        q = s.get(Quarantine, quarantine_id)
        if q is None:
            raise KeyError(f"no quarantined row {quarantine_id}")
        if q.released_at is not None:
            return {"id": q.id, "released_at": q.released_at.isoformat(), "already": True}
        q.released_at = utcnow()
        ops.audit(s, actor, "quarantine.release", "quarantine", str(q.id), source=q.source, kind=q.kind,
                  message_id=q.message_id, note=note)
        return {"id": q.id, "released_at": q.released_at.isoformat(), "already": False}


def _dead_letter(s: Any, q: Quarantine) -> OutboxMessage | None:
    """The outbox message a quarantined row stands for, if it is one given up on."""
    if not q.message_id:
        return None
    return s.scalars(select(OutboxMessage).where(OutboxMessage.destination == q.source,
                                                 OutboxMessage.idempotency_key == q.message_id,
                                                 OutboxMessage.status == "dead")).first()


def retryable(store: Store, quarantine_ids: Iterable[int]) -> set[int]:
    """Which of these open quarantined rows can be retried (an outbox message given up on)."""
    ids = list(quarantine_ids)
    if not ids:
        return set()
    with store.transaction() as s:
        rows = s.execute(select(Quarantine.id).join(OutboxMessage, (OutboxMessage.destination == Quarantine.source)
                                                    & (OutboxMessage.idempotency_key == Quarantine.message_id))
                         .where(Quarantine.id.in_(ids), Quarantine.released_at.is_(None),
                                OutboxMessage.status == "dead")).all()
        return {i for (i,) in rows}


def retry(store: Store, quarantine_id: int, *, actor: str, note: str = "") -> dict[str, Any]:
    """Send a message given up on again: its outbox row back to pending (attempts from zero), the
    quarantined row released. Retrying a row already released changes nothing. Input that is read
    again anyway (a feed page, a NyA reply at a checkpoint) or a record the sender must correct
    cannot be retried here (``ValueError`` says what to do instead)."""
    with store.transaction() as s:
        q = s.get(Quarantine, quarantine_id)
        if q is None:
            raise KeyError(f"no quarantined row {quarantine_id}")
        if q.released_at is not None:
            return {"id": q.id, "already": True}
        m = _dead_letter(s, q)
        if m is None:
            raise ValueError(f"quarantined row {quarantine_id} ({q.source}, {q.kind}) is not a message given up on: "
                             "it is read again when its sender corrects it, or move its checkpoint; dismiss it when handled")
        before = {"status": m.status, "attempts": m.attempts}
        m.status, m.attempts, m.next_attempt_at = "pending", 0, utcnow()
        q.released_at = utcnow()
        ops.audit(s, actor, "quarantine.retry", "quarantine", str(q.id), source=q.source, kind=q.kind,
                  message_id=q.message_id, outbox_id=m.id, before=before, note=note)
        return {"id": q.id, "outbox_id": m.id, "already": False}


# -- replay from a point in time --------------------------------------------------------------------

#: The Ladok feed followers that can be replayed from a time: checkpoint -> the inbox source that
#: decides what was already handled (None: the follower's effect is idempotent by itself — the
#: schedule export's marks; what it sends is decided by the content hashes).
REPLAYABLE: dict[str, str | None] = {"ladok-merits": "ladok", "ladok-aterbud": "ladok-aterbud", "schedule": None}


def _when(updated: str) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(updated.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _newest(page: Any) -> dt.datetime | None:
    times = [t for t in (_when(e.updated) for e in page.events) if t is not None]
    return max(times) if times else None


#: A feed's ``updated`` is written to the millisecond or the second: an event a moment after
#: ``since`` may carry an earlier stamp. The search and the dry run look from this much before
#: (reading a few events more is harmless: the inbox skips what was handled).
PRECISION = dt.timedelta(seconds=1)


def find_page(ladok: Any, since: dt.datetime) -> tuple[int, int, int]:
    """(the first archive page with an event updated at or after ``since`` — less the feed's
    precision —, the newest page's number, pages read): a binary search over the pages Ladok
    serves, by their newest event's ``updated``. A page pruned from the feed counts as older."""
    from adapters.ladok import FeedGone

    since = since - PRECISION
    first = ladok.feed_page(first=True).number or 1
    last = ladok.feed_page().number or first
    lo, hi, reads = first, last, 2
    while lo < hi:
        mid = (lo + hi) // 2
        reads += 1
        try:
            newest = _newest(ladok.feed_page(mid))
        except FeedGone:
            newest = None
        if newest is None or newest < since:
            lo = mid + 1
        else:
            hi = mid
    return lo, last, reads


def replay_since(store: Store, ladok: Any, name: str, since: dt.datetime, *, actor: str, reason: str,
                 dry_run: bool = False) -> dict[str, Any]:
    """Read Ladok's feed again for follower ``name`` from ``since`` (a time with its offset):
    the page is found by its events' times; a dry run reads every page from there and lists the
    events since then per type, and how many the follower already handled (its inbox: those are
    not done again) and would handle now; the run sets the checkpoint to that page, audited.
    Nothing already acknowledged is sent again: the inbox and the outbox's keys decide."""
    if name not in REPLAYABLE:
        raise KeyError(f"{name!r} cannot be replayed from a time; these can: {', '.join(REPLAYABLE)}")
    if since.tzinfo is None:
        raise ValueError("since: a time with its offset (2027-08-20T14:00+02:00)")
    if not reason.strip():
        raise ValueError("a reason is required")
    page, last, reads = find_page(ladok, since)
    out: dict[str, Any] = {"checkpoint": name, "since": since.isoformat(), "page": page, "last_page": last,
                           "pages_searched": reads, "dry_run": dry_run}
    if dry_run:
        events = [e for n in range(page, last + 1) for e in ladok.feed_page(n).events
                  if (t := _when(e.updated)) is not None and t >= since - PRECISION]
        source = REPLAYABLE[name]
        with store.transaction() as s:
            seen = ops.inbox_seen(s, source, [e.handelse_uid for e in events]) if source and events else set()
        out.update(events=len(events), per_type=dict(Counter(e.event_type for e in events)),
                   already_handled=len(seen) if source else None,
                   to_handle=len(events) - len(seen) if source else len(events))
        log.info("replay of %s since %s (dry run): %s", name, since.isoformat(), out)
        return out
    out["before"] = set_position(store, name, page, actor=actor, reason=f"replay since {since.isoformat()}: {reason}")["before"]
    with store.transaction() as s:
        ops.audit(s, actor, "checkpoint.replay", "feed_checkpoint", name, since=since.isoformat(), page=page,
                  reason=reason)
    return out


#: NyA's sequence streams, per round (checkpoint name prefixes). A NyA record carries no time of
#: its own that every stream has, so "since 14:00" is read from where Brygga's stream stood then
#: (``checkpoint_history``): what Brygga read after that time is read again.
NYA_STREAMS = ("nya-admissions:", "nya-villkor:", "nya-aterbud:", "nya-applicants:")


def replay_sequence_since(store: Store, name: str, since: dt.datetime, *, actor: str, reason: str,
                          dry_run: bool = False) -> dict[str, Any]:
    """Read NyA's stream ``name`` (``nya-admissions:HT2027`` …) again from the position it stood at
    ``since``; before its first recorded position, from the stream's start. A dry run says from
    where and, for admissions, how many of the round's records Brygga holds from there on (read
    again, they change nothing unless NyA changed them: the admission's state and the inbox
    decide). The run sets the checkpoint, audited. Nothing acknowledged is sent twice."""
    if not name.startswith(NYA_STREAMS):
        raise KeyError(f"{name!r} is no NyA stream; these are: {', '.join(p + '<omgång>' for p in NYA_STREAMS)}")
    if since.tzinfo is None:
        raise ValueError("since: a time with its offset (2027-08-20T14:00+02:00)")
    if not reason.strip():
        raise ValueError("a reason is required")
    since = since.astimezone(dt.UTC)  # the store keeps UTC (SQLite compares the text)
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, name)
        if cp is None:
            raise KeyError(f"no checkpoint {name!r} (brygga checkpoints list)")
        current = cp.page
        then = s.scalars(select(CheckpointHistory).where(CheckpointHistory.name == name, CheckpointHistory.at <= since)
                         .order_by(CheckpointHistory.at.desc(), CheckpointHistory.id.desc()).limit(1)).first()
        position = min(then.position if then is not None else 0, current)
        out: dict[str, Any] = {"checkpoint": name, "since": since.isoformat(), "position": position,
                               "current": current, "from_start": then is None, "dry_run": dry_run}
        if name.startswith("nya-admissions:"):
            out["held_from_there"] = s.scalar(select(func.count()).select_from(NyaAdmission).where(
                NyaAdmission.round == name.split(":", 1)[1], NyaAdmission.sequence >= position))
    if dry_run:
        log.info("replay of %s since %s (dry run): %s", name, since.isoformat(), out)
        return out
    out["before"] = set_position(store, name, position, actor=actor,
                                 reason=f"replay since {since.isoformat()}: {reason}")["before"]
    with store.transaction() as s:
        ops.audit(s, actor, "checkpoint.replay", "feed_checkpoint", name, since=since.isoformat(), position=position,
                  reason=reason)
    return out
