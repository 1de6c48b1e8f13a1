"""Quarantined input as operators see it: newest first, counted per source."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from brygga.personnummer import mask
from brygga.store import Store
from brygga.store.models import Quarantine
from brygga.views.common import Page, iso, paged, where_equal


def quarantine_row(q: Quarantine, *, payload: bool = False) -> dict[str, Any]:
    row = {"id": q.id, "source": q.source, "message_id": mask(q.message_id or ""), "kind": q.kind,
           "reason": mask(q.reason), "attempts": q.attempts, "created_at": iso(q.created_at),
           "last_seen_at": iso(q.last_seen_at), "released_at": iso(q.released_at)}
    if payload:
        row["payload"] = mask(q.payload or "")
    return row


def list_quarantine(store: Store, *, open_only: bool = True, source: str | None = None, kind: str | None = None,
                    limit: int | None = None, offset: int | None = None) -> Page:
    """Quarantined input, newest first (open rows only by default)."""
    with store.transaction() as s:
        q = where_equal(select(Quarantine), ((Quarantine.source, source), (Quarantine.kind, kind)))
        if open_only:
            q = q.where(Quarantine.released_at.is_(None))
        rows, total, lim, off = paged(s, q, limit, offset, (Quarantine.id.desc(),))
        return Page([quarantine_row(r) for r in rows], total, lim, off)


def quarantine_counts(store: Store) -> dict[str, int]:
    with store.transaction() as s:
        return {str(k): n for k, n in s.execute(select(Quarantine.source, func.count()).where(
            Quarantine.released_at.is_(None)).group_by(Quarantine.source).order_by(Quarantine.source))}
