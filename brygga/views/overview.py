"""The overview: what each flow has waiting or set aside, and where every checkpoint stands."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from brygga.store import Store
from brygga.store.models import (
    AterbudCase,
    FeedCheckpoint,
    NyaAdmission,
    NyaApplicant,
    OutboxMessage,
    Publication,
    Quarantine,
    UnhandledAdmission,
    as_utc,
)
from brygga.views.common import counts_by, iso
from brygga.views.publications import publication_row
from brygga.views.queue import long_pending


def overview(store: Store) -> dict[str, Any]:
    with store.transaction() as s:
        out = {
            "publications": s.scalar(select(func.count()).select_from(Publication)),
            "last_publication": (lambda p: publication_row(p) if p else None)(
                s.scalars(select(Publication).order_by(Publication.id.desc()).limit(1)).first()),
            "unhandled_admissions": counts_by(s, UnhandledAdmission, UnhandledAdmission.status, ()),
            "aterbud_cases": counts_by(s, AterbudCase, AterbudCase.status, ()),
            "outbox": counts_by(s, OutboxMessage, OutboxMessage.status, ()),
            "quarantine_open": s.scalar(select(func.count()).select_from(Quarantine).where(
                Quarantine.released_at.is_(None))),
        }
    out["long_pending_admissions"] = long_pending(store)
    return out




#: The merit goal: a live merit in NyA within 30 s of Ladok recording it, at the 95th percentile.
MERIT_GOAL_SECONDS = 30.0


def merit_delivery(store: Store, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """How fast merits reach NyA: the age of the oldest live merit waiting, the 95th percentile of
    the last hour's live merits (Ladok's event time to NyA's answer; Brygga's queueing time when the
    event's is unknown), and the snapshot of new applicants (done, waiting; its merits waiting)."""
    now = now or dt.datetime.now(dt.UTC)
    hour_ago = now - dt.timedelta(hours=1)
    M = OutboxMessage
    with store.transaction() as s:
        oldest = s.scalar(select(func.min(M.created_at)).where(
            M.destination == "nya", M.kind == "merit", M.status.in_(("pending", "failed"))))
        latencies = []
        for payload, created, sent in s.execute(select(M.payload, M.created_at, M.sent_at).where(
                M.destination == "nya", M.kind == "merit", M.status == "sent", M.sent_at >= hour_ago)):
            start = as_utc(created)
            at = (payload or {}).get("event_at") if isinstance(payload, dict) else None
            if at:
                try:
                    start = as_utc(dt.datetime.fromisoformat(at))
                except ValueError:
                    pass
            latencies.append((as_utc(sent) - start).total_seconds())
        applicants = dict(s.execute(select(NyaApplicant.snapshot, func.count()).group_by(NyaApplicant.snapshot)).all())
        snapshot_waiting = s.scalar(select(func.count()).select_from(M).where(
            M.destination == "nya", M.kind == "merit-snapshot", M.status.in_(("pending", "failed"))))
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else None
    return {
        "oldest_waiting_seconds": (now - as_utc(oldest)).total_seconds() if oldest else None,
        "sent_last_hour": len(latencies), "p95_seconds": round(p95, 1) if p95 is not None else None,
        "goal_seconds": MERIT_GOAL_SECONDS, "within_goal": p95 is None or p95 <= MERIT_GOAL_SECONDS,
        "applicants_done": int(applicants.get("done", 0)) + int(applicants.get("no_student", 0)),
        "applicants_with_student": int(applicants.get("done", 0)),
        "applicants_waiting": int(applicants.get("pending", 0)), "snapshot_merits_waiting": int(snapshot_waiting or 0),
    }


def checkpoints(store: Store) -> list[dict[str, Any]]:
    """Every checkpoint: where each feed follower and each round's NyA stream stands."""
    with store.transaction() as s:
        return [{"name": c.name, "position": c.page, "entry_id": c.entry_id, "seen": c.events_seen,
                 "updated_at": iso(c.updated_at)} for c in s.scalars(select(FeedCheckpoint).order_by(FeedCheckpoint.name))]


def dead_letters(store: Store) -> dict[str, int]:
    """Outbox messages given up on, per destination."""
    with store.transaction() as s:
        return {str(k): n for k, n in s.execute(select(OutboxMessage.destination, func.count()).where(
            OutboxMessage.status == "dead").group_by(OutboxMessage.destination).order_by(OutboxMessage.destination))}


def pending_per_round(store: Store) -> dict[str, int]:
    """Admissions read from NyA and not placed yet, per round."""
    with store.transaction() as s:
        return {str(k): n for k, n in s.execute(select(NyaAdmission.round, func.count()).where(
            NyaAdmission.state == "pending").group_by(NyaAdmission.round).order_by(NyaAdmission.round))}
