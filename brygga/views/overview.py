"""The overview: what each flow has waiting or set aside, and where every checkpoint stands."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from brygga.store import Store
from brygga.store.models import (
    AterbudCase,
    FeedCheckpoint,
    NyaAdmission,
    OutboxMessage,
    Publication,
    Quarantine,
    UnhandledAdmission,
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
