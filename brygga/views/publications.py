"""The offer export's publications: the history, one publication with its items and NyA's
answers, and the plan as officers check it (per offer, each field that differs from what NyA has)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brygga.flows.offers.plan import idempotency_key
from brygga.store import Store
from brygga.store.models import AuditLog, OutboxMessage, Publication, PublicationItem
from brygga.views.common import MAX_LIMIT, Page, masked, paged


def publication_row(p: Publication) -> dict[str, Any]:
    sel = dict(p.selection or {})
    sel.pop("offers", None)  # older rows kept the offers here; the items have them
    return masked({
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
        rows, total, lim, off = paged(s, q, limit, offset, (Publication.id.desc(),))
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
        items, total, lim, off = paged(s, q, limit, offset, (PublicationItem.id,))
        outbox = _outbox_for(s, p, items)
        rows = []
        for it in items:
            m = outbox.get(it.offer_id)
            rows.append(masked({
                "offer_id": it.offer_id, "tillfalleskod": it.tillfalleskod, "action": it.action,
                "status": it.status, "nya_answer": it.message, "content_hash": it.content_hash,
                "payload": it.payload,
                "outbox": None if m is None else {"status": m.status, "attempts": m.attempts,
                                                  "last_error": m.last_error, "sent_at": m.sent_at},
            }))
        audit = [masked({"at": a.at, "actor": a.actor, "action": a.action, "detail": a.detail})
                 for a in s.scalars(select(AuditLog).where(AuditLog.object_type == "publication",
                                                           AuditLog.object_id == str(publication_id))
                                    .order_by(AuditLog.id))]
        return {"publication": publication_row(p), "counts": {"action": counts_action, "status": counts_status},
                "items": Page(rows, total, lim, off).__dict__, "audit": audit}


def _outbox_for(s: Session, p: Publication, items: list[PublicationItem]) -> dict[str, OutboxMessage]:
    """The outbox messages of the shown items, found by their idempotency keys."""
    keys = {idempotency_key(p.round, p.kind, it.offer_id, it.content_hash or "", withdraw=it.action == "withdrawn"):
            it.offer_id for it in items if it.action in ("new", "changed", "withdrawn")}
    out: dict[str, OutboxMessage] = {}
    ks = list(keys)
    for i in range(0, len(ks), 500):
        for m in s.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key.in_(ks[i:i + 500]))):
            out[keys[m.idempotency_key]] = m
    return out


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
        groups.setdefault(it.action, []).append(masked({
            "offer_id": it.offer_id, "tillfalleskod": it.tillfalleskod, "status": it.status, "message": it.message,
            "name": new.get("name_sv") or old.get("name_sv"), "code": new.get("utbildningskod") or old.get("utbildningskod"),
            "fields": fields, "known_before": bool(old), "offer": new or old}))
    return {"groups": groups, "unchanged": unchanged, "published_as": later}
