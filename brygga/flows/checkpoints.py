"""Operator actions on where flows stand: set a checkpoint (read a feed again from a page, move a
round's NyA stream past a reply that cannot be read) and release a quarantined row once handled.
Every action is audited with the actor, the reason and what it was before."""

from __future__ import annotations

from typing import Any

from brygga.logmask import get_logger
from brygga.store import Store, ops
from brygga.store.models import Quarantine, utcnow

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
