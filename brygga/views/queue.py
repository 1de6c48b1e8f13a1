"""The unhandled-admission queue (ej hanterade antagningar) as officers work it: listed, counted,
sorted and filtered, one admission with what NyA sent and its history, the ids of a filtered set
(bulk ompröva), and admissions that have been pending long (a peer failing them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from brygga.personnummer import mask
from brygga.states import HINDER_ADVICE, HINDER_TEXT, QueueStatus
from brygga.store import Store
from brygga.store.models import AuditLog, NyaAdmission, UnhandledAdmission, as_utc, utcnow
from brygga.views.common import clamp_limit, counts_by, iso, masked, paged, where_equal


def unhandled_row(u: UnhandledAdmission) -> dict[str, Any]:
    """One ej hanterad antagning as operators see it."""
    return masked({
        "id": u.id, "nya_admission_id": u.nya_admission_id, "round": u.round,
        "personnummer": u.personnummer, "tillfalleskod": u.tillfalleskod,
        "utbildningskod": (u.admission or {}).get("utbildningskod"),
        "utbildningstillfalle_uid": u.utbildningstillfalle_uid, "hinder": u.hinder,
        "hinder_text": HINDER_TEXT.get(u.hinder, u.hinder), "reason": u.reason, "advice": HINDER_ADVICE.get(u.hinder),
        "candidates": u.candidates or [], "status": u.status, "created_at": u.created_at,
        "updated_at": u.updated_at, "resolved_by": u.resolved_by, "resolution": u.resolution,
    })


def list_unhandled(store: Store, *, round: str | None = None, hinder: str | None = None,
                   status: str | None = None, limit: int | None = None, offset: int | None = None,
                   oldest_first: bool = False) -> dict[str, Any]:
    """Ej hanterade antagningar (newest first, or oldest first as the CLI lists them);
    ``counts_per_hinder`` honours round and status (not hinder)."""
    U = UnhandledAdmission
    with store.transaction() as s:
        q = where_equal(select(U), ((U.round, round), (U.hinder, hinder), (U.status, status)))
        order = (U.id,) if oldest_first else (U.created_at.desc(), U.id.desc())
        rows, total, lim, off = paged(s, q, limit, offset, order)
        per_hinder = counts_by(s, U, U.hinder, ((U.round, round), (U.status, status)))
        per_status = counts_by(s, U, U.status, ((U.round, round), (U.hinder, hinder)))
        rounds = [r for (r,) in s.execute(select(U.round).distinct().order_by(U.round))]
        return {
            "rows": [unhandled_row(u) for u in rows],
            "total": total, "limit": lim, "offset": off,
            "counts_per_hinder": per_hinder, "counts_per_status": per_status, "rounds": rounds,
            "filters": {"round": round, "hinder": hinder, "status": status},
        }


def count_unhandled(store: Store, *, round: str | None = None, status: str | None = None) -> dict[str, int]:
    """Queued admissions per hinder."""
    U = UnhandledAdmission
    with store.transaction() as s:
        return counts_by(s, U, U.hinder, ((U.round, round), (U.status, status)))


#: The keys the queue list can be sorted by (``_order`` maps them to columns)
QUEUE_SORTS = ("age", "round", "hinder", "instance", "programme")
BULK_MAX = 500  # admissions one bulk ompröva may take (one review DAG run)


def queue_query(*, round: str | None = None, hinder: str | None = None, status: str | None = QueueStatus.OPEN,
                instance: str | None = None, programme: str | None = None, older_than_days: int | None = None,
                now: dt.datetime | None = None) -> Any:
    """The filtered queue as a SELECT of ``UnhandledAdmission`` (no order)."""
    U = UnhandledAdmission
    q = where_equal(select(U), ((U.round, round), (U.hinder, hinder), (U.status, status), (U.tillfalleskod, instance)))
    if programme:
        q = q.where(U.programme_code == programme)
    if older_than_days:
        q = q.where(U.created_at < (now or utcnow()) - dt.timedelta(days=older_than_days))
    return q


def _order(sort: str, desc: bool) -> tuple[Any, ...]:
    U = UnhandledAdmission
    col = {"age": U.created_at, "round": U.round, "hinder": U.hinder, "instance": U.tillfalleskod,
           "programme": U.programme_code}.get(sort, U.created_at)
    # "age" ascending = oldest first (the longest waiting on top: how officers work the list)
    first = col.desc() if desc else col.asc()
    return (first, U.id.desc() if desc else U.id.asc())


def unhandled_page(store: Store, *, sort: str = "age", desc: bool = False, limit: int | None = None,
                   offset: int | None = None, now: dt.datetime | None = None, **filters: Any) -> dict[str, Any]:
    """One page of the queue, with the counts per hinder (honouring the other filters) and the
    values the filter menus offer."""
    U = UnhandledAdmission
    lim, off = clamp_limit(limit), max(int(offset or 0), 0)
    with store.transaction() as s:
        q = queue_query(now=now, **filters)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = list(s.scalars(q.order_by(*_order(sort, desc)).limit(lim).offset(off)))
        others = {k: v for k, v in filters.items() if k != "hinder"}
        per_hinder = {str(h): n for h, n in s.execute(
            queue_query(now=now, **others).with_only_columns(U.hinder, func.count()).group_by(U.hinder).order_by(U.hinder))}
        rounds = [r for (r,) in s.execute(select(U.round).distinct().order_by(U.round))]
    now = now or utcnow()
    out = []
    for u in rows:
        r = unhandled_row(u)
        r["programme_code"] = u.programme_code
        r["age_days"] = max((now - as_utc(u.created_at)).days, 0)
        out.append(r)
    return {"rows": out, "total": total, "limit": lim, "offset": off, "counts_per_hinder": per_hinder,
            "rounds": rounds, "sort": sort, "desc": desc}


def queue_ids(store: Store, *, limit: int = BULK_MAX, **filters: Any) -> tuple[list[str], int]:
    """The admission ids of a filtered set, oldest first (at most ``limit``) and how many match."""
    U = UnhandledAdmission
    with store.transaction() as s:
        q = queue_query(**filters)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        ids = [i for (i,) in s.execute(q.with_only_columns(U.nya_admission_id).order_by(U.created_at, U.id).limit(limit))]
    return ids, total


def admission_detail(store: Store, admission_id: str) -> dict[str, Any] | None:
    """One queued admission: the queue entry, what NyA sent, Brygga's state of it and its history."""
    with store.transaction() as s:
        u = s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id == admission_id)).first()
        if u is None:
            return None
        a = s.get(NyaAdmission, admission_id)
        history = [masked({"id": h.id, "at": h.at, "actor": h.actor, "action": h.action, "detail": h.detail})
                   for h in s.scalars(select(AuditLog).where(AuditLog.object_type == "nya_admission",
                                                             AuditLog.object_id == admission_id).order_by(AuditLog.id))]
        entry = unhandled_row(u)
        nya = masked({k: v for k, v in (u.admission or {}).items() if k not in ("given_name", "family_name")})
        state = None if a is None else masked({
            "state": a.state, "attempts": a.attempts, "last_error": a.last_error, "antagning_uid": a.antagning_uid,
            "package_uid": a.package_uid, "student_uid": a.student_uid, "placed_at": a.placed_at,
            "fee_liable": a.fee_liable, "conditions": a.conditions})
        return {"entry": entry, "nya": nya, "state": state, "history": history}


def long_pending(store: Store, *, older_than: dt.timedelta = dt.timedelta(hours=6)) -> dict[str, Any]:
    """Admissions still pending after ``older_than`` (a peer has been failing them): per round,
    how many, the oldest, and the last error (masked). The overview and the import's report show it."""
    cutoff = utcnow() - older_than
    with store.transaction() as s:
        rows = s.execute(select(NyaAdmission.round, func.count(), func.min(NyaAdmission.created_at),
                                func.max(NyaAdmission.transient_failures))
                         .where(NyaAdmission.state == "pending", NyaAdmission.created_at < cutoff)
                         .group_by(NyaAdmission.round).order_by(NyaAdmission.round)).all()
        out = {}
        for round_code, n, oldest, failures in rows:
            last = s.scalars(select(NyaAdmission.last_error).where(
                NyaAdmission.round == round_code, NyaAdmission.state == "pending", NyaAdmission.created_at < cutoff,
                NyaAdmission.last_error.is_not(None)).limit(1)).first()
            out[round_code] = {"count": n, "oldest": iso(oldest), "transient_failures": failures,
                               "last_error": mask(last) if last else None}
        return out
