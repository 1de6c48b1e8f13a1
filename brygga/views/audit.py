"""The audit trail searched: by actor, action, object, dates and by person (their admissions and
cases), newest first; in chunks for the CSV."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import String, and_, cast, func, or_, select

from brygga.store import Store
from brygga.store.models import AterbudCase, AuditLog, NyaAdmission, UnhandledAdmission
from brygga.views.common import clamp_limit, masked

AUDIT_OBJECTS = ("nya_admission", "aterbud_case", "publication", "quarantine", "feed_checkpoint", "setting")


def _person_entities(personnummer: str) -> Any:
    """The audit rows' (object_type, object_id) that concern one person: their admissions and cases."""
    admissions = select(NyaAdmission.admission_id).where(NyaAdmission.personnummer == personnummer)
    queued = select(UnhandledAdmission.nya_admission_id).where(UnhandledAdmission.personnummer == personnummer)
    cases = select(cast(AterbudCase.id, String)).where(AterbudCase.personnummer == personnummer)
    return or_(and_(AuditLog.object_type == "nya_admission",
                    or_(AuditLog.object_id.in_(admissions), AuditLog.object_id.in_(queued))),
               and_(AuditLog.object_type == "aterbud_case", AuditLog.object_id.in_(cases)))


def audit_query(*, actor: str | None = None, action: str | None = None, object_type: str | None = None,
                object_id: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
                personnummer: str | None = None) -> Any:
    A = AuditLog
    q = select(A)
    if actor:
        q = q.where(A.actor.ilike(f"%{actor}%"))
    if action:
        q = q.where(A.action.like(f"{action}%"))  # "admission" finds admission.retry, admission.handled ...
    if object_type:
        q = q.where(A.object_type == object_type)
    if object_id:
        q = q.where(A.object_id == object_id)
    if since:
        q = q.where(A.at >= since)
    if until:
        q = q.where(A.at < until)
    if personnummer:
        q = q.where(_person_entities(personnummer))
    return q


def audit_row(a: AuditLog) -> dict[str, Any]:
    return masked({"id": a.id, "at": a.at, "actor": a.actor, "action": a.action, "object_type": a.object_type,
                    "object_id": a.object_id, "detail": a.detail})


def search_audit(store: Store, *, limit: int | None = None, offset: int | None = None, **filters: Any) -> dict[str, Any]:
    """Audit entries, newest first, filtered (``audit_query``)."""
    lim, off = clamp_limit(limit), max(int(offset or 0), 0)
    with store.transaction() as s:
        q = audit_query(**filters)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = [audit_row(a) for a in s.scalars(q.order_by(AuditLog.id.desc()).limit(lim).offset(off))]
        actions = [a for (a,) in s.execute(select(AuditLog.action).distinct().order_by(AuditLog.action))]
    return {"rows": rows, "total": total, "limit": lim, "offset": off, "actions": actions}


def iter_audit(store: Store, *, chunk: int = 2000, **filters: Any) -> Iterator[dict[str, Any]]:
    """Every matching audit entry, newest first, read in chunks (the CSV export)."""
    last: int | None = None
    while True:
        with store.transaction() as s:
            q = audit_query(**filters)
            if last is not None:
                q = q.where(AuditLog.id < last)
            rows = list(s.scalars(q.order_by(AuditLog.id.desc()).limit(chunk)))
            out = [audit_row(a) for a in rows]
        if not out:
            return
        yield from out
        last = rows[-1].id


def failed_tasks(store: Store, *, within: dt.timedelta = dt.timedelta(hours=1), now: dt.datetime | None = None) -> int:
    """Task instances that failed for good (or ran past their deadline) within ``within``: the
    ``task.failed`` rows the DAGs' failure callback writes."""
    since = (now or dt.datetime.now(dt.UTC)) - within
    with store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "task.failed", AuditLog.at >= since)) or 0)
