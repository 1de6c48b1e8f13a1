"""Offer export (utbud) to NyA: what to publish for an admission round, the diff against what NyA
already has, and sending through the outbox.

A publication runs in four steps, each safe to repeat (the DAG makes them tasks):
``start`` records who asked for what; ``collect`` reads the instances from Ladok, validates them
with the configured mapping and stores the diff (new / changed / unchanged / withdrawn / invalid);
``enqueue`` + ``send`` put the changes in the outbox (idempotency key = round, kind, instance and
content hash) and send them in batches whose RequestId is derived from their keys, so a re-run
sends nothing new and a crash resumes where it stopped; ``finish`` closes the history row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from sqlalchemy import delete, insert, select

from adapters.http import PeerError
from adapters.ladok import LadokAdapter
from adapters.nya import NyaAdapter
from brygga.logmask import get_logger
from brygga.records import Offer, Utbildningstillfalle
from brygga.store import Store, ops
from brygga.store.models import OutboxMessage, Publication, PublicationItem, PublishedOffer, utcnow
from mappings import registry

log = get_logger("brygga.flows.offers")

KINDS = {"ordinary": "offer", "programme-internal": "programme-offer"}
DESTINATION = "nya"
BATCH = 500
# Concurrent GETs to Ladok in collect (the adapter's keep-alive pool holds 8); the brygga_ladok
# Connection's extra "concurrency" lowers it (1 = one request at a time) if Ladok asks us to.
FETCH_WORKERS = 8


def offer_dict(offer: Offer) -> dict[str, Any]:
    """The offer as JSON-able fields (all scalars: a shallow copy, unlike ``dataclasses.asdict``)."""
    return {f: getattr(offer, f) for f in _OFFER_FIELDS}


_OFFER_FIELDS = tuple(f.name for f in dataclasses.fields(Offer))


def _hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def content_hash(offer: Offer) -> str:
    return _hash(offer_dict(offer))


def offerable(t: Utbildningstillfalle) -> bool:
    """Cancelled (inställt) or no longer advertised instances are not offered (and get withdrawn)."""
    return not t.installt and t.utannonserat


def programme_offer_id(programme_uid: str, course_uid: str) -> str:
    """A course may sit in several programme packages, and each package gets its own programme-
    internal offer: its id is a UUID derived from (package, course). Admissions to it name the
    package (PackageId) and the course's Tillfalleskod, which is how the import finds the course."""
    return str(uuid.uuid5(uuid.UUID(programme_uid), course_uid))


def to_offer(t: Utbildningstillfalle, places: int, programme: Utbildningstillfalle | None = None) -> Offer:
    return Offer(
        offer_id=programme_offer_id(programme.uid, t.uid) if programme else t.uid, utbildningskod=t.utbildningskod or "", tillfalleskod=t.tillfalleskod or "",
        name_sv=t.name_sv or "", credits=t.credits or "", start=t.start or "", end=t.end or "",
        studietakt=t.studietakt, places=places, name_en=t.name_en, studieort=t.studieort,
        programme_code=programme.utbildningskod if programme else None,
        package_id=programme.uid if programme else None,
    )


# ----------------------------------------------------------------------------- steps

def start(store: Store, *, round_code: str, kind: str, codes: list[str], dry_run: bool,
          triggered_by: str | None, run_id: str | None = None, places: int = 30) -> int:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (expected one of {sorted(KINDS)})")
    with store.transaction() as s:
        pub = Publication(round=round_code, kind=kind, selection={"codes": codes, "places": places},
                          dry_run=dry_run, triggered_by=triggered_by or "unknown", run_id=run_id)
        s.add(pub)
        s.flush()
        ops.audit(s, triggered_by or "unknown", "publication.start", "publication", str(pub.id),
                  round=round_code, kind=kind, dry_run=dry_run, codes=codes)
        return pub.id


def _fetch(ladok: LadokAdapter, uids: Iterable[str], workers: int) -> list[Utbildningstillfalle]:
    """One GET per instance (only the single GET carries the round and the package), ``workers`` at
    a time over the adapter's keep-alive pool; in the order of ``uids``. A failed GET fails the step."""
    uids = list(uids)
    if workers <= 1 or len(uids) < 2:
        return [ladok.tillfalle(u) for u in uids]
    with ThreadPoolExecutor(max_workers=min(workers, len(uids)), thread_name_prefix="ladok-get") as pool:
        return list(pool.map(ladok.tillfalle, uids))


def _candidates(ladok: LadokAdapter, round_code: str, codes: list[str], workers: int) -> list[Utbildningstillfalle]:
    if codes:
        uids: dict[str, None] = {}
        for code in codes:
            for key in ("tillfalleskod", "utbildningskod"):
                uids.update(dict.fromkeys(ladok.search_tillfallen(**{key: code})))
        return [t for t in _fetch(ladok, uids, workers) if round_code in t.rounds]
    return _fetch(ladok, ladok.search_tillfallen(round_code=round_code), workers)


def _offers(ladok: LadokAdapter, kind: str, tillfallen: list[Utbildningstillfalle], places: int,
            workers: int = 1) -> tuple[list[Offer], list[Utbildningstillfalle]]:
    """(offers to publish, instances that must not be offered)."""
    if kind == "ordinary":
        return ([to_offer(t, places) for t in tillfallen if offerable(t)],
                [t for t in tillfallen if not offerable(t)])
    # programme-internal: the course instances inside the round's programme packages
    programmes = [t for t in tillfallen if t.is_programme]
    wanted = dict.fromkeys(c for p in programmes for c in p.course_uids)
    courses = dict(zip(wanted, _fetch(ladok, wanted, workers)))
    offers, not_offered = [], []
    for programme in programmes:
        for cuid in programme.course_uids:
            course = courses[cuid]
            offer = to_offer(course, places, programme)
            if offerable(programme) and offerable(course):
                offers.append(offer)
            else:
                not_offered.append(dataclasses.replace(course, uid=offer.offer_id))
    return offers, not_offered


def collect(store: Store, ladok: LadokAdapter, publication_id: int, *, workers: int | None = None
            ) -> dict[str, int]:
    """Read and validate the selection, store the diff against what NyA has. Idempotent.

    A new or changed item keeps the offer it stands for in ``publication_item.payload`` (what
    ``send`` sends), an invalid one the offer that failed validation; unchanged items and
    withdrawals have none.
    """
    if workers is None:
        workers = int(ladok.peer.extra.get("concurrency") or FETCH_WORKERS)
    with store.transaction() as s:
        pub = s.get(Publication, publication_id)
        round_code, kind, codes = pub.round, pub.kind, pub.selection.get("codes") or []
        places = int(pub.selection.get("places") or 30)
    tillfallen = _candidates(ladok, round_code, codes, workers)
    offers, not_offered = _offers(ladok, kind, tillfallen, places, workers)
    mapping = registry.select("nya", KINDS[kind], ladok.peer.extra.get("mappings"))
    # Validate in the batches they are sent in: one PublishOffer takes at most 5000 offers (XSD),
    # so a whole large round in one document would fail as a document, not per record.
    invalid: dict[str, str] = {}
    for i in range(0, len(offers), BATCH):
        _, errors = mapping.write(offers[i:i + BATCH], round_code=round_code, request_id="validation")
        invalid.update((e.record_id, str(e)) for e in errors)
    by_id = {o.offer_id: o for o in offers}

    with store.transaction() as s:
        s.execute(delete(PublicationItem).where(PublicationItem.publication_id == publication_id))
        published = {oid: (h, status) for oid, h, status in s.execute(
            select(PublishedOffer.offer_id, PublishedOffer.content_hash, PublishedOffer.status)
            .where(PublishedOffer.round == round_code, PublishedOffer.kind == kind))}
        rows: list[dict[str, Any]] = []
        for oid, o in by_id.items():
            payload = offer_dict(o)
            h = _hash(payload)
            row = {"publication_id": publication_id, "offer_id": oid, "tillfalleskod": o.tillfalleskod,
                   "content_hash": h, "payload": payload, "message": None}
            if oid in invalid:
                row.update(action="invalid", status="invalid", message=invalid[oid])
            else:
                p = published.get(oid)
                action = ("new" if p is None or p[1] == "withdrawn" else
                          "unchanged" if p[0] == h else "changed")
                row.update(action=action, status="planned" if action != "unchanged" else "done")
                if action == "unchanged":
                    row["payload"] = None  # NyA has it already; nothing to send or to keep twice
            rows.append(row)
        # Withdraw what NyA has from us but should not have: cancelled / un-advertised instances,
        # and (for a whole-round publication) instances no longer in the round.
        gone = {t.uid for t in not_offered}
        if not codes:
            gone |= {oid for oid, p in published.items() if p[1] == "active" and oid not in by_id}
        for oid in sorted(gone):
            p = published.get(oid)
            if p is not None and p[1] == "active" and oid not in by_id:
                rows.append({"publication_id": publication_id, "offer_id": oid, "tillfalleskod": None,
                             "action": "withdrawn", "content_hash": p[0], "status": "planned",
                             "payload": None, "message": None})
        for i in range(0, len(rows), BATCH):
            s.execute(insert(PublicationItem), rows[i:i + BATCH])
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["action"]] = counts.get(r["action"], 0) + 1
        pub = s.get(Publication, publication_id)
        pub.counts = counts
        if "offers" in (pub.selection or {}):  # kept there by earlier versions; the items have it now
            pub.selection = {k: v for k, v in pub.selection.items() if k != "offers"}
    return counts


def _count(items: Iterable[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for it in items:
        counts[it.action] = counts.get(it.action, 0) + 1
    return counts


def enqueue(store: Store, publication_id: int) -> int:
    """Outbox rows for the planned changes of a (non dry-run) publication; returns new rows.

    A message names its item (publication, offer, content hash); the offer itself stays in
    ``publication_item.payload``, where ``send`` reads it.
    """
    with store.transaction() as s:
        pub = s.get(Publication, publication_id)
        if pub.dry_run:
            return 0
        messages = []
        for oid, action, h in s.execute(
                select(PublicationItem.offer_id, PublicationItem.action, PublicationItem.content_hash)
                .where(PublicationItem.publication_id == publication_id, PublicationItem.status == "planned")
                .order_by(PublicationItem.id)):
            if action in ("new", "changed"):
                messages.append({"destination": DESTINATION, "kind": "offer",
                                 "idempotency_key": f"nya:offer:{pub.round}:{pub.kind}:{oid}:{h}",
                                 "correlation": f"offers:{pub.round}:{pub.kind}",
                                 "payload": {"offer_id": oid, "publication_id": publication_id, "hash": h}})
            elif action == "withdrawn":
                messages.append({"destination": DESTINATION, "kind": "offer-withdraw",
                                 "idempotency_key": f"nya:withdraw:{pub.round}:{pub.kind}:{oid}:{h}",
                                 "correlation": f"offers:{pub.round}:{pub.kind}",
                                 "payload": {"offer_id": oid, "publication_id": publication_id}})
        return ops.outbox_enqueue(s, messages)


def _request_id(keys: list[str]) -> str:
    return "brygga-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:40]


def send(store: Store, nya: NyaAdapter, round_code: str, kind: str, *, batch: int = BATCH,
         max_attempts: int = 6) -> dict[str, int]:
    """Send due offer messages of (round, kind) in batches; resumes whatever an earlier run left.

    Raises PeerError when NyA could not be reached (after recording the attempt) so the task retries.
    """
    correlation = f"offers:{round_code}:{kind}"
    sent = rejected = 0
    transient: PeerError | None = None
    for msg_kind in ("offer", "offer-withdraw"):
        while transient is None:
            with store.transaction() as s:
                due = ops.outbox_due(s, DESTINATION, limit=batch, kind=msg_kind, correlation=correlation)
                if not due:
                    break
                items = _items(s, due)
                batch_in = due
                if msg_kind == "offer":
                    batch_in, stale = _with_offers(due, items)
                    for m in stale:
                        ops.outbox_mark_failed(s, m, "superseded: the offer changed after it was queued",
                                               max_attempts=max_attempts, permanent=True)
                    rejected += len(stale)
                    due = [m for m, _ in batch_in]
                    if not due:
                        continue
                keys = [m.idempotency_key for m in due]
                try:
                    results = _send_batch(nya, msg_kind, round_code, kind, batch_in, _request_id(keys))
                except PeerError as e:
                    for m in due:
                        ops.outbox_mark_failed(s, m, str(e), max_attempts=max_attempts, permanent=not e.transient)
                    if e.transient:
                        transient = e
                    continue
                s_count, r_count = _apply_results(s, due, items, results, round_code, kind, msg_kind, max_attempts)
                sent += s_count
                rejected += r_count
    if transient is not None:
        raise transient
    return {"sent": sent, "rejected": rejected}


def _oid(m: OutboxMessage) -> str:
    p = m.payload
    return p["offer_id"] if "offer_id" in p else p["offer"]["offer_id"]


def _items(s, due: list[OutboxMessage]) -> dict[tuple[int, str], PublicationItem]:
    """The publication items of a batch of messages, in one query."""
    pids = {m.payload["publication_id"] for m in due}
    oids = {_oid(m) for m in due}
    return {(it.publication_id, it.offer_id): it for it in s.scalars(select(PublicationItem).where(
        PublicationItem.publication_id.in_(pids), PublicationItem.offer_id.in_(oids)))}


def _with_offers(due: list[OutboxMessage], items: dict[tuple[int, str], PublicationItem]
                 ) -> tuple[list[tuple[OutboxMessage, dict]], list[OutboxMessage]]:
    """(message, offer) pairs to send, and messages whose item no longer holds the queued content."""
    ready, stale = [], []
    for m in due:
        offer = m.payload.get("offer")  # messages queued before the payload moved to the item
        if offer is None:
            it = items.get((m.payload["publication_id"], _oid(m)))
            if it is not None and it.payload is not None and it.content_hash == m.payload["hash"]:
                offer = it.payload
        if offer is None:
            stale.append(m)
        else:
            ready.append((m, offer))
    return ready, stale


def _send_batch(nya: NyaAdapter, msg_kind: str, round_code: str, kind: str, due: list,
                request_id: str) -> dict[str, tuple[str, str | None]]:
    """``due``: (message, offer) pairs for offers, messages for withdrawals."""
    if msg_kind == "offer":
        m = nya.mapping(KINDS[kind])
        body, errors = m.write([Offer(**offer) for _, offer in due], round_code=round_code, request_id=request_id)
        results = {e.record_id: ("rejected", str(e)) for e in errors}
        if len(errors) < len(due):
            with nya.call("PublishOffer", body) as reply:
                results.update(m.read_results(reply))
        return results
    m = nya.mapping("offer-withdraw")
    body, _ = m.write([x.payload["offer_id"] for x in due], round_code=round_code,
                      reason="Inställt eller inte längre utannonserat i Ladok", request_id=request_id)
    with nya.call("WithdrawOffer", body) as reply:
        return m.read_results(reply)


def _apply_results(s, due: list, items: dict[tuple[int, str], PublicationItem],
                   results: dict[str, tuple[str, str | None]], round_code: str, kind: str, msg_kind: str,
                   max_attempts: int) -> tuple[int, int]:
    oids = [_oid(m) for m in due]
    published = {p.offer_id: p for p in s.scalars(select(PublishedOffer).where(
        PublishedOffer.round == round_code, PublishedOffer.kind == kind, PublishedOffer.offer_id.in_(oids)))}
    sent_ids, rejected = [], 0
    for m, oid in zip(due, oids):
        outcome, reason = results.get(oid, ("missing", "NyA did not answer for this offer"))
        item = items.get((m.payload["publication_id"], oid))
        if outcome in ("created", "updated", "unchanged", "withdrawn"):
            sent_ids.append(m.id)
            row = published.get(oid)
            if row is None:
                row = published[oid] = PublishedOffer(round=round_code, kind=kind, offer_id=oid, content_hash="")
                s.add(row)
            row.publication_id = m.payload["publication_id"]
            if msg_kind == "offer":
                row.content_hash, row.status = m.payload["hash"], "active"
            else:
                row.status = "withdrawn"
            if item is not None:
                item.status, item.message = "sent", outcome
        else:
            rejected += 1
            ops.outbox_mark_failed(s, m, f"NyA {outcome}: {reason}", max_attempts=max_attempts,
                                   permanent=outcome == "rejected")
            if item is not None:
                item.status, item.message = "rejected", f"{outcome}: {reason}"
    ops.outbox_mark_sent(s, sent_ids, response="ok")
    return len(sent_ids), rejected


def finish(store: Store, publication_id: int) -> dict[str, Any]:
    """Close the history row; returns the summary shown to the operator."""
    with store.transaction() as s:
        pub = s.get(Publication, publication_id)
        items = list(s.execute(select(PublicationItem.action, PublicationItem.status, PublicationItem.tillfalleskod,
                                      PublicationItem.offer_id, PublicationItem.message)
                               .where(PublicationItem.publication_id == publication_id)
                               .order_by(PublicationItem.id)))
        statuses = {it.status for it in items}
        pub.status = "done" if pub.dry_run or statuses <= {"sent", "done", "invalid"} else "partial"
        pub.finished_at = utcnow()
        pub.counts = {**_count(items), **{f"status_{k}": sum(1 for i in items if i.status == k) for k in statuses}}
        ops.audit(s, pub.triggered_by or "unknown", "publication.finish", "publication", str(pub.id),
                  status=pub.status, counts=pub.counts)
        diff = [f"{it.action:9s} {it.tillfalleskod or '-':8s} {it.offer_id} {it.message or ''}".rstrip()
                for it in items if it.action != "unchanged"]
        return {"publication_id": pub.id, "round": pub.round, "kind": pub.kind, "dry_run": pub.dry_run,
                "status": pub.status, "counts": pub.counts, "diff": diff}
