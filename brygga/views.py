"""The operator read model: one query per view of the store, shared by the CLI, the console's JSON
API and its HTML pages. Every string that leaves here has its personnummer masked
(``brygga.personnummer.mask``), free text (reasons, notes) included."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brygga.personnummer import mask
from brygga.states import ACTION_TEXT, CAUSE_TEXT, HINDER_TEXT
from brygga.store import Store
from brygga.store.models import (
    ArchivePackage,
    AterbudCase,
    AuditLog,
    FeedCheckpoint,
    NyaAdmission,
    OutboxMessage,
    Publication,
    PublicationItem,
    Quarantine,
    UnhandledAdmission,
    utcnow,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def _limit(limit: int | None) -> int:
    return max(1, min(int(limit or DEFAULT_LIMIT), MAX_LIMIT))


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, (dt.datetime, dt.date)) else v


def _masked(v: Any) -> Any:
    """Mask personnummer in strings, recursively in lists/dicts (payloads, counts, details)."""
    if isinstance(v, str):
        return mask(v)
    if isinstance(v, dict):
        return {k: _masked(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_masked(x) for x in v]
    return _iso(v)


def _page(s: Session, q: Any, limit: int | None, offset: int | None, order: Any) -> tuple[list[Any], int, int, int]:
    total = s.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
    lim, off = _limit(limit), max(int(offset or 0), 0)
    return list(s.execute(q.order_by(*order).limit(lim).offset(off)).scalars()), total, lim, off


def publication_row(p: Publication) -> dict[str, Any]:
    sel = dict(p.selection or {})
    sel.pop("offers", None)  # older rows kept the offers here; the items have them
    return _masked({
        "id": p.id, "round": p.round, "kind": p.kind, "dry_run": p.dry_run, "status": p.status,
        "triggered_by": p.triggered_by, "run_id": p.run_id, "selection": sel, "counts": p.counts or {},
        "started_at": p.started_at, "finished_at": p.finished_at,
    })


def list_publications(store: Store, *, round: str | None = None, kind: str | None = None,
                      status: str | None = None, dry_run: bool | None = None, triggered_by: str | None = None,
                      limit: int | None = None, offset: int | None = None) -> Page:
    with store.transaction() as s:
        q = select(Publication)
        for col, val in ((Publication.round, round), (Publication.kind, kind), (Publication.status, status),
                         (Publication.triggered_by, triggered_by), (Publication.dry_run, dry_run)):
            if val is not None and val != "":
                q = q.where(col == val)
        rows, total, lim, off = _page(s, q, limit, offset, (Publication.id.desc(),))
        return Page([publication_row(p) for p in rows], total, lim, off)


def publication_detail(store: Store, publication_id: int, *, action: str | None = None,
                       status: str | None = None, limit: int | None = None, offset: int | None = None
                       ) -> dict[str, Any] | None:
    """The publication, its items (filtered, paged) with NyA's answer, counts and audit trail."""
    with store.transaction() as s:
        p = s.get(Publication, publication_id)
        if p is None:
            return None
        base = select(PublicationItem).where(PublicationItem.publication_id == publication_id)
        counts_action = dict(s.execute(select(PublicationItem.action, func.count()).where(
            PublicationItem.publication_id == publication_id).group_by(PublicationItem.action)).all())
        counts_status = dict(s.execute(select(PublicationItem.status, func.count()).where(
            PublicationItem.publication_id == publication_id).group_by(PublicationItem.status)).all())
        q = base
        if action:
            q = q.where(PublicationItem.action == action)
        if status:
            q = q.where(PublicationItem.status == status)
        items, total, lim, off = _page(s, q, limit, offset, (PublicationItem.id,))
        outbox = _outbox_for(s, p, items)
        rows = []
        for it in items:
            m = outbox.get(it.offer_id)
            rows.append(_masked({
                "offer_id": it.offer_id, "tillfalleskod": it.tillfalleskod, "action": it.action,
                "status": it.status, "nya_answer": it.message, "content_hash": it.content_hash,
                "payload": it.payload,
                "outbox": None if m is None else {"status": m.status, "attempts": m.attempts,
                                                  "last_error": m.last_error, "sent_at": m.sent_at},
            }))
        audit = [_masked({"at": a.at, "actor": a.actor, "action": a.action, "detail": a.detail})
                 for a in s.scalars(select(AuditLog).where(AuditLog.object_type == "publication",
                                                           AuditLog.object_id == str(publication_id))
                                    .order_by(AuditLog.id))]
        return {"publication": publication_row(p), "counts": {"action": counts_action, "status": counts_status},
                "items": Page(rows, total, lim, off).__dict__, "audit": audit}


def _outbox_for(s: Session, p: Publication, items: list[PublicationItem]) -> dict[str, OutboxMessage]:
    """The outbox messages of the shown items, found by their idempotency keys."""
    from brygga.flows.offers import idempotency_key

    keys = {idempotency_key(p.round, p.kind, it.offer_id, it.content_hash or "", withdraw=it.action == "withdrawn"):
            it.offer_id for it in items if it.action in ("new", "changed", "withdrawn")}
    out: dict[str, OutboxMessage] = {}
    ks = list(keys)
    for i in range(0, len(ks), 500):
        for m in s.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key.in_(ks[i:i + 500]))):
            out[keys[m.idempotency_key]] = m
    return out


def _filters(q: Any, cols: Iterable[tuple[Any, Any]]) -> Any:
    for col, val in cols:
        if val:
            q = q.where(col == val)
    return q


def _counts(s: Session, model: Any, group_col: Any, cols: Iterable[tuple[Any, Any]]) -> dict[str, int]:
    q = _filters(select(group_col, func.count()).select_from(model), cols).group_by(group_col)
    return {str(k): n for k, n in s.execute(q.order_by(group_col))}


def unhandled_row(u: UnhandledAdmission) -> dict[str, Any]:
    """One ej hanterad antagning as operators see it."""
    from brygga.flows.admissions.hinder import ADVICE

    return _masked({
        "id": u.id, "nya_admission_id": u.nya_admission_id, "round": u.round,
        "personnummer": u.personnummer, "tillfalleskod": u.tillfalleskod,
        "utbildningskod": (u.admission or {}).get("utbildningskod"),
        "utbildningstillfalle_uid": u.utbildningstillfalle_uid, "hinder": u.hinder,
        "hinder_text": HINDER_TEXT.get(u.hinder, u.hinder), "reason": u.reason, "advice": ADVICE.get(u.hinder),
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
        q = _filters(select(U), ((U.round, round), (U.hinder, hinder), (U.status, status)))
        order = (U.id,) if oldest_first else (U.created_at.desc(), U.id.desc())
        rows, total, lim, off = _page(s, q, limit, offset, order)
        per_hinder = _counts(s, U, U.hinder, ((U.round, round), (U.status, status)))
        per_status = _counts(s, U, U.status, ((U.round, round), (U.hinder, hinder)))
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
        return _counts(s, U, U.hinder, ((U.round, round), (U.status, status)))


def case_row(c: AterbudCase) -> dict[str, Any]:
    """One återbudsärende as operators see it (cause and suggested action also as text)."""
    return _masked({
        "id": c.id, "status": c.status, "round": c.round, "cause": c.cause, "cause_text": CAUSE_TEXT.get(c.cause, c.cause),
        "suggested_action": c.suggested_action, "suggested_action_text": ACTION_TEXT.get(c.suggested_action, ""),
        "reported_at": c.reported_at, "study_start": c.study_start, "education": c.education,
        "nya_aterbud_id": c.nya_aterbud_id, "nya_admission_id": c.nya_admission_id, "personnummer": c.personnummer,
        "utbildningstillfalle_uid": c.utbildningstillfalle_uid, "antagning_uid": c.antagning_uid,
        "created_at": c.created_at, "closed_by": c.closed_by, "note": c.note, "closed_at": c.closed_at,
    })


def list_aterbud(store: Store, *, status: str | None = None, round: str | None = None, cause: str | None = None,
                 limit: int | None = None, offset: int | None = None, oldest_first: bool = False) -> dict[str, Any]:
    """Återbudsärenden; counts per status (honouring round) and per cause (honouring both filters)."""
    A = AterbudCase
    with store.transaction() as s:
        q = _filters(select(A), ((A.status, status), (A.round, round), (A.cause, cause)))
        order = (A.id,) if oldest_first else (A.created_at.desc(), A.id.desc())
        rows, total, lim, off = _page(s, q, limit, offset, order)
        per_status = _counts(s, A, A.status, ((A.round, round),))
        per_cause = _counts(s, A, A.cause, ((A.status, status), (A.round, round)))
        rounds = [r for (r,) in s.execute(select(A.round).where(A.round.is_not(None)).distinct().order_by(A.round))]
        return {
            "rows": [case_row(a) for a in rows],
            "total": total, "limit": lim, "offset": off,
            "counts_per_status": per_status, "counts_per_cause": per_cause, "rounds": rounds,
            "filters": {"status": status, "round": round, "cause": cause},
        }


def get_case(store: Store, case_id: int) -> dict[str, Any] | None:
    with store.transaction() as s:
        c = s.get(AterbudCase, case_id)
        return None if c is None else case_row(c)


ARCHIVE_STATUS_TEXT = {"accepted": "arkiverat", "rejected": "avvisat", "pending": "väntar", "failed": "försöker igen",
                       "dead": "avvisat"}


def list_archive(store: Store, *, status: str | None = None, limit: int | None = None,
                 offset: int | None = None) -> dict[str, Any]:
    """The archive export: packages with their receipts (``status`` accepted/rejected), and the
    instances not delivered yet (outbox rows pending, failing or given up, with their last error)."""
    from brygga.flows.archive.delivery import DESTINATION, KIND

    P, M = ArchivePackage, OutboxMessage
    with store.transaction() as s:
        q = _filters(select(P), ((P.status, status),))
        rows, total, lim, off = _page(s, q, limit, offset, (P.id.desc(),))
        waiting = list(s.scalars(select(M).where(M.destination == DESTINATION, M.kind == KIND, M.status != "sent")
                                 .order_by(M.id).limit(MAX_LIMIT)))
        return {
            "rows": [{"package_id": p.package_id, "uid": p.subject_uid, "part": f"{p.part}/{p.parts}",
                      "status": p.status, "status_text": ARCHIVE_STATUS_TEXT.get(p.status, p.status),
                      "archive_id": p.archive_id, "size": p.size, "files": p.files, "reasons": _masked(p.reasons),
                      "received_at": _iso(p.received_at)} for p in rows],
            "total": total, "limit": lim, "offset": off,
            "counts_per_status": _counts(s, P, P.status, ()),
            "not_delivered": [{"uid": m.payload.get("uid"), "label": m.payload.get("label"), "status": m.status,
                               "status_text": ARCHIVE_STATUS_TEXT.get(m.status, m.status), "attempts": m.attempts,
                               "last_error": _masked(m.last_error), "since": _iso(m.created_at)} for m in waiting],
            "filters": {"status": status},
        }


def overview(store: Store) -> dict[str, Any]:
    with store.transaction() as s:
        out = {
            "publications": s.scalar(select(func.count()).select_from(Publication)),
            "last_publication": (lambda p: publication_row(p) if p else None)(
                s.scalars(select(Publication).order_by(Publication.id.desc()).limit(1)).first()),
            "unhandled_admissions": _counts(s, UnhandledAdmission, UnhandledAdmission.status, ()),
            "aterbud_cases": _counts(s, AterbudCase, AterbudCase.status, ()),
            "outbox": _counts(s, OutboxMessage, OutboxMessage.status, ()),
            "quarantine_open": s.scalar(select(func.count()).select_from(Quarantine).where(
                Quarantine.released_at.is_(None))),
        }
    out["long_pending_admissions"] = long_pending(store)
    return out




def checkpoints(store: Store) -> list[dict[str, Any]]:
    """Every checkpoint: where each feed follower and each round's NyA stream stands."""
    with store.transaction() as s:
        return [{"name": c.name, "position": c.page, "entry_id": c.entry_id, "seen": c.events_seen,
                 "updated_at": _iso(c.updated_at)} for c in s.scalars(select(FeedCheckpoint).order_by(FeedCheckpoint.name))]


def quarantine_row(q: Quarantine, *, payload: bool = False) -> dict[str, Any]:
    row = {"id": q.id, "source": q.source, "message_id": mask(q.message_id or ""), "kind": q.kind,
           "reason": mask(q.reason), "attempts": q.attempts, "created_at": _iso(q.created_at),
           "last_seen_at": _iso(q.last_seen_at), "released_at": _iso(q.released_at)}
    if payload:
        row["payload"] = mask(q.payload or "")
    return row


def list_quarantine(store: Store, *, open_only: bool = True, source: str | None = None, kind: str | None = None,
                    limit: int | None = None, offset: int | None = None) -> Page:
    """Quarantined input, newest first (open rows only by default)."""
    with store.transaction() as s:
        q = _filters(select(Quarantine), ((Quarantine.source, source), (Quarantine.kind, kind)))
        if open_only:
            q = q.where(Quarantine.released_at.is_(None))
        rows, total, lim, off = _page(s, q, limit, offset, (Quarantine.id.desc(),))
        return Page([quarantine_row(r) for r in rows], total, lim, off)


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
            out[round_code] = {"count": n, "oldest": _iso(oldest), "transient_failures": failures,
                               "last_error": mask(last) if last else None}
        return out
