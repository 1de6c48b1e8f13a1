"""The console's read model beyond ``brygga.views``: the unhandled queue sorted and filtered the
way officers work it, one admission with its history, the field-level diff of a publication, and
the audit trail searched. Every string that leaves here is masked (``views._masked``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, and_, cast, func, or_, select

from brygga.states import QueueStatus
from brygga.store import Store
from brygga.store.models import (
    AterbudCase,
    AuditLog,
    NyaAdmission,
    OutboxMessage,
    Publication,
    PublicationItem,
    Quarantine,
    UnhandledAdmission,
    as_utc,
    utcnow,
)
from brygga.views import MAX_LIMIT, _filters, _limit, _masked, unhandled_row

#: The keys the queue list can be sorted by (``_order`` maps them to columns)
QUEUE_SORTS = ("age", "round", "hinder", "instance", "programme")
BULK_MAX = 500  # admissions one bulk ompröva may take (one review DAG run)


def queue_query(*, round: str | None = None, hinder: str | None = None, status: str | None = QueueStatus.OPEN,
                instance: str | None = None, programme: str | None = None, older_than_days: int | None = None,
                now: dt.datetime | None = None) -> Any:
    """The filtered queue as a SELECT of ``UnhandledAdmission`` (no order)."""
    U = UnhandledAdmission
    q = _filters(select(U), ((U.round, round), (U.hinder, hinder), (U.status, status), (U.tillfalleskod, instance)))
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
    lim, off = _limit(limit), max(int(offset or 0), 0)
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
        history = [_masked({"id": h.id, "at": h.at, "actor": h.actor, "action": h.action, "detail": h.detail})
                   for h in s.scalars(select(AuditLog).where(AuditLog.object_type == "nya_admission",
                                                             AuditLog.object_id == admission_id).order_by(AuditLog.id))]
        entry = unhandled_row(u)
        nya = _masked({k: v for k, v in (u.admission or {}).items() if k not in ("given_name", "family_name")})
        state = None if a is None else _masked({
            "state": a.state, "attempts": a.attempts, "last_error": a.last_error, "antagning_uid": a.antagning_uid,
            "package_uid": a.package_uid, "student_uid": a.student_uid, "placed_at": a.placed_at,
            "fee_liable": a.fee_liable, "conditions": a.conditions})
        return {"entry": entry, "nya": nya, "state": state, "history": history}


# ---------------------------------------------------------------- the offer export's diff

def _previous_payloads(s: Any, pub: Publication, offer_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What NyA holds of each offer: its payload in the newest earlier real publication that sent it."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(offer_ids), 500):
        chunk = offer_ids[i:i + 500]
        q = (select(PublicationItem.offer_id, PublicationItem.payload)
             .join(Publication, Publication.id == PublicationItem.publication_id)
             .where(Publication.round == pub.round, Publication.kind == pub.kind, Publication.dry_run.is_(False),
                    Publication.id < pub.id, PublicationItem.status == "sent", PublicationItem.payload.is_not(None),
                    PublicationItem.offer_id.in_(chunk))
             .order_by(PublicationItem.id))
        for oid, payload in s.execute(q):
            out[oid] = payload  # the newest wins (ordered by id)
    return out


DIFF_FIELDS = ("utbildningskod", "tillfalleskod", "name_sv", "name_en", "credits", "start", "end", "studietakt",
               "studieort", "places", "programme_code", "package_id")


def publication_diff(store: Store, publication_id: int, *, limit: int = MAX_LIMIT) -> dict[str, Any] | None:
    """The plan of a publication as officers check it: per new / changed / withdrawn / invalid
    offer the fields, and for a changed one each field that differs from what NyA has (old, new)."""
    with store.transaction() as s:
        pub = s.get(Publication, publication_id)
        if pub is None:
            return None
        items = list(s.scalars(select(PublicationItem).where(PublicationItem.publication_id == publication_id,
                                                             PublicationItem.action != "unchanged")
                               .order_by(PublicationItem.action, PublicationItem.tillfalleskod, PublicationItem.id)
                               .limit(limit)))
        unchanged = s.scalar(select(func.count()).select_from(PublicationItem).where(
            PublicationItem.publication_id == publication_id, PublicationItem.action == "unchanged")) or 0
        before = _previous_payloads(s, pub, [it.offer_id for it in items if it.action in ("changed", "withdrawn")])
        later = s.scalars(select(Publication.id).where(Publication.selection["plan_of"].as_integer() == publication_id)
                          .order_by(Publication.id.desc()).limit(1)).first()
    groups: dict[str, list[dict[str, Any]]] = {"new": [], "changed": [], "withdrawn": [], "invalid": []}
    for it in items:
        new, old = it.payload or {}, before.get(it.offer_id) or {}
        fields = [{"field": f, "old": old.get(f), "new": new.get(f),
                   "changed": it.action == "changed" and old.get(f) != new.get(f)}
                  for f in DIFF_FIELDS if f in new or f in old]
        if it.action == "changed" and old:
            fields = [f for f in fields if f["changed"]] or fields
        groups.setdefault(it.action, []).append(_masked({
            "offer_id": it.offer_id, "tillfalleskod": it.tillfalleskod, "status": it.status, "message": it.message,
            "name": new.get("name_sv") or old.get("name_sv"), "code": new.get("utbildningskod") or old.get("utbildningskod"),
            "fields": fields, "known_before": bool(old), "offer": new or old}))
    return {"groups": groups, "unchanged": unchanged, "published_as": later}


# ---------------------------------------------------------------- the audit trail

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
    return _masked({"id": a.id, "at": a.at, "actor": a.actor, "action": a.action, "object_type": a.object_type,
                    "object_id": a.object_id, "detail": a.detail})


def search_audit(store: Store, *, limit: int | None = None, offset: int | None = None, **filters: Any) -> dict[str, Any]:
    """Audit entries, newest first, filtered (``audit_query``)."""
    lim, off = _limit(limit), max(int(offset or 0), 0)
    with store.transaction() as s:
        q = audit_query(**filters)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = [audit_row(a) for a in s.scalars(q.order_by(AuditLog.id.desc()).limit(lim).offset(off))]
        actions = [a for (a,) in s.execute(select(AuditLog.action).distinct().order_by(AuditLog.action))]
    return {"rows": rows, "total": total, "limit": lim, "offset": off, "actions": actions}


def iter_audit(store: Store, *, chunk: int = 2000, **filters: Any):
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


# ---------------------------------------------------------------- quarantine and the overview

def quarantine_counts(store: Store) -> dict[str, int]:
    with store.transaction() as s:
        return {str(k): n for k, n in s.execute(select(Quarantine.source, func.count()).where(
            Quarantine.released_at.is_(None)).group_by(Quarantine.source).order_by(Quarantine.source))}


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

