"""A publication of the offer export, step by step, each safe to repeat (the DAG makes them tasks):
``start`` records who asked for what; ``collect`` reads the instances from Ladok, validates them
with the configured NyA mapping and stores the plan; ``enqueue`` + ``send`` put the changes through
the outbox (one request per batch, its RequestId derived from the rows' keys); ``finish`` closes
the history row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from adapters.nya import NyaContract
from brygga.flows.kit import outbox
from brygga.flows.kit.flow import NotConfigured
from brygga.flows.offers.plan import DESTINATION, KINDS, idempotency_key, offerable, plan, to_offer
from brygga.flows.ports import Ladok, Nya, OfferContract
from brygga.logmask import get_logger
from brygga.records import Offer, Utbildningstillfalle
from brygga.store import Store, ops
from brygga.store.models import OutboxMessage, Publication, PublicationItem, PublishedOffer, utcnow

log = get_logger("brygga.flows.offers")

BATCH = 500
# Concurrent GETs to Ladok in collect (the adapter's keep-alive pool holds 8); the brygga_ladok
# Connection's extra "concurrency" lowers it (1 = one request at a time) if Ladok asks us to.
FETCH_WORKERS = 8
SENT = ("created", "updated", "unchanged", "withdrawn")  # NyA's outcomes that mean it has our version


def start(store: Store, *, round_code: str, kind: str, codes: list[str], dry_run: bool,
          triggered_by: str | None, run_id: str | None = None, places: int = 30, plan_of: int | None = None,
          selection: str | None = None) -> int:
    """``plan_of``: the dry run whose plan this (real) publication must publish exactly.
    ``selection`` (the trigger form's): ``codes`` takes only ``codes`` (at least one), ``all`` every
    instance of the round; None: ``codes`` as given (empty: all)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (expected one of {sorted(KINDS)})")
    if selection is not None:
        codes = [c.strip() for c in codes if c.strip()] if selection == "codes" else []
        if selection == "codes" and not codes:  # a form filled in wrongly: no retry makes it right
            raise NotConfigured("selection 'codes' needs at least one code")
    chosen: dict[str, Any] = {"codes": codes, "places": places}
    if plan_of:
        chosen["plan_of"] = int(plan_of)
    with store.transaction() as s:
        pub = Publication(round=round_code, kind=kind, selection=chosen,
                          dry_run=dry_run, triggered_by=triggered_by or "unknown", run_id=run_id)
        s.add(pub)
        s.flush()
        ops.audit(s, triggered_by or "unknown", "publication.start", "publication", str(pub.id),
                  round=round_code, kind=kind, dry_run=dry_run, codes=codes)
        return pub.id


def _fetch(ladok: Ladok, uids: Iterable[str], workers: int) -> list[Utbildningstillfalle]:
    """One GET per instance (only the single GET carries the round and the package), ``workers`` at
    a time over the adapter's keep-alive pool; in the order of ``uids``. A failed GET fails the step."""
    uids = list(uids)
    if workers <= 1 or len(uids) < 2:
        return [ladok.tillfalle(u) for u in uids]
    with ThreadPoolExecutor(max_workers=min(workers, len(uids)), thread_name_prefix="ladok-get") as pool:
        return list(pool.map(ladok.tillfalle, uids))


def _candidates(ladok: Ladok, round_code: str, codes: list[str], workers: int) -> list[Utbildningstillfalle]:
    if codes:
        uids: dict[str, None] = {}
        for code in codes:
            for key in ("tillfalleskod", "utbildningskod"):
                found = ladok.search_tillfallen(tillfalleskod=code) if key == "tillfalleskod" else \
                    ladok.search_tillfallen(utbildningskod=code)
                uids.update(dict.fromkeys(found))
        return [t for t in _fetch(ladok, uids, workers) if round_code in t.rounds]
    return _fetch(ladok, ladok.search_tillfallen(round_code=round_code), workers)


def _offers(ladok: Ladok, kind: str, tillfallen: list[Utbildningstillfalle], places: int,
            workers: int = 1) -> tuple[list[Offer], list[str]]:
    """(offers to publish, offer ids of instances that must not be offered)."""
    if kind == "ordinary":
        return ([to_offer(t, places) for t in tillfallen if offerable(t)],
                [t.uid for t in tillfallen if not offerable(t)])
    # programme-internal: the course instances inside the round's programme packages
    programmes = [t for t in tillfallen if t.is_programme]
    wanted = dict.fromkeys(c for p in programmes for c in p.course_uids)
    courses = dict(zip(wanted, _fetch(ladok, wanted, workers), strict=True))
    offers, not_offered = [], []
    for programme in programmes:
        for cuid in programme.course_uids:
            offer = to_offer(courses[cuid], places, programme)
            if offerable(programme) and offerable(courses[cuid]):
                offers.append(offer)
            else:
                not_offered.append(offer.offer_id)
    return offers, not_offered


def collect(store: Store, ladok: Ladok, publication_id: int, *, nya: OfferContract | None = None,
            workers: int | None = None) -> dict[str, int]:
    """Read and validate the selection, store the plan against what NyA has. Idempotent.

    Validated as ``nya`` (its Connection's mappings) would send it, else by NyA's default contract."""
    if workers is None:
        workers = ladok.concurrency
    with store.transaction() as s:
        pub = ops.one(s, Publication, publication_id)
        round_code, kind, codes = pub.round, pub.kind, pub.selection.get("codes") or []
        places = int(pub.selection.get("places") or 30)
    offers, not_offered = _offers(ladok, kind, _candidates(ladok, round_code, codes, workers), places, workers)
    contract = nya if nya is not None else NyaContract()
    # Validate in the batches they are sent in: one PublishOffer takes at most 5000 offers (XSD),
    # so a whole large round in one document would fail as a document, not per record.
    invalid: dict[str, str] = {}
    for i in range(0, len(offers), BATCH):
        invalid.update(contract.invalid_offers(kind, offers[i:i + BATCH], round_code))
    with store.transaction() as s:
        s.execute(delete(PublicationItem).where(PublicationItem.publication_id == publication_id))
        published = {oid: (h, status) for oid, h, status in s.execute(
            select(PublishedOffer.offer_id, PublishedOffer.content_hash, PublishedOffer.status)
            .where(PublishedOffer.round == round_code, PublishedOffer.kind == kind))}
        rows = plan(publication_id, offers, invalid, not_offered, published, whole_round=not codes)
        for i in range(0, len(rows), BATCH):
            s.execute(insert(PublicationItem), rows[i:i + BATCH])
        counts = dict(Counter(r["action"] for r in rows))
        pub = ops.one(s, Publication, publication_id)
        pub.counts = counts
        if "offers" in (pub.selection or {}):  # kept there by earlier versions; the items have it now
            pub.selection = {k: v for k, v in pub.selection.items() if k != "offers"}
    return counts


def publish_conf(store: Store, dry_run_id: int) -> dict[str, Any]:
    """The trigger parameters of the real run that publishes a dry run's plan: the same round,
    kind, selection and places, ``plan_of`` naming the dry run (``plan_differences`` holds it to it)."""
    with store.transaction() as s:
        pub = s.get(Publication, dry_run_id)
        if pub is None:
            raise KeyError(f"no publication {dry_run_id}")
        if not pub.dry_run:
            raise ValueError(f"publication {dry_run_id} is not a dry run: it was published already")
        if pub.status != "done":
            raise ValueError(f"dry run {dry_run_id} is {pub.status}: publish a finished dry run")
        codes = list((pub.selection or {}).get("codes") or [])
        return {"round": pub.round, "kind": pub.kind, "selection": "codes" if codes else "all", "codes": codes,
                "dry_run": False, "places": int((pub.selection or {}).get("places") or 30), "plan_of": pub.id}


def plan_differences(store: Store, publication_id: int) -> list[str]:
    """How a real publication's plan differs from the dry run it is to publish (``plan_of``):
    offers whose action or content is not the same (empty: exactly that plan, or no ``plan_of``)."""
    with store.transaction() as s:
        pub = ops.one(s, Publication, publication_id)
        dry = (pub.selection or {}).get("plan_of")
        if not dry:
            return []

        def plan_of(pid: int) -> dict[str, tuple[str, str | None]]:
            return {oid: (action, h) for oid, action, h in s.execute(
                select(PublicationItem.offer_id, PublicationItem.action, PublicationItem.content_hash)
                .where(PublicationItem.publication_id == pid, PublicationItem.action != "unchanged"))}

        now, then = plan_of(publication_id), plan_of(int(dry))
    out = []
    for oid in sorted(set(now) | set(then)):
        a, b = then.get(oid), now.get(oid)
        if a != b:
            out.append(f"{oid}: {a[0] if a else 'not in the dry run'} -> {b[0] if b else 'not planned now'}"
                       + (" (content changed)" if a and b and a[0] == b[0] else ""))
    return out


def refuse(store: Store, publication_id: int, reason: str) -> None:
    """Close a publication that sends nothing because its plan is not the dry run's (``failed``)."""
    with store.transaction() as s:
        pub = ops.one(s, Publication, publication_id)
        pub.status, pub.finished_at = "failed", utcnow()
        ops.audit(s, pub.triggered_by or "unknown", "publication.refused", "publication", str(pub.id),
                  plan_of=(pub.selection or {}).get("plan_of"), reason=reason[:2000])


def enqueue(store: Store, publication_id: int) -> int:
    """Outbox rows for the planned changes of a (non dry-run) publication; returns new rows.

    A message names its item (publication, offer, content hash); the offer itself stays in
    ``publication_item.payload``, where ``send`` reads it."""
    with store.transaction() as s:
        pub = ops.one(s, Publication, publication_id)
        if pub.dry_run:
            return 0
        messages = []
        for oid, action, h in s.execute(
                select(PublicationItem.offer_id, PublicationItem.action, PublicationItem.content_hash)
                .where(PublicationItem.publication_id == publication_id, PublicationItem.status == "planned")
                .order_by(PublicationItem.id)):
            if action in ("new", "changed", "withdrawn"):
                withdraw = action == "withdrawn"
                payload = {"offer_id": oid, "publication_id": publication_id, **({} if withdraw else {"hash": h})}
                messages.append({"destination": DESTINATION, "kind": "offer-withdraw" if withdraw else "offer",
                                 "idempotency_key": idempotency_key(pub.round, pub.kind, oid, h or "", withdraw=withdraw),
                                 "correlation": f"offers:{pub.round}:{pub.kind}", "payload": payload})
        return ops.outbox_enqueue(s, messages)


def send(store: Store, nya: Nya, round_code: str, kind: str, *, batch: int = BATCH,
         max_attempts: int = 6) -> dict[str, int]:
    """Send due offer messages of (round, kind) in batches; resumes whatever an earlier run left.

    Raises PeerError when NyA could not be reached (after recording the attempt) so the task retries."""
    total: Counter[str] = Counter()
    for sender in (OfferSender, WithdrawalSender):
        outcomes, _, failure = sender(store, nya, round_code, kind, batch=batch, max_attempts=max_attempts).run()
        total.update(outcomes)
        if failure is not None:
            raise failure
    return {"sent": total["sent"], "rejected": total["rejected"]}


class OfferSender(outbox.OutboxSender):
    """A publication's offers (new and changed) to NyA, a batch per request; the offer itself is
    read from its publication item, and one that changed after it was queued is not sent."""

    destination, kind, prefix = DESTINATION, "offer", ""

    def __init__(self, store: Store, nya: Nya, round_code: str, offer_kind: str, **kw: Any):
        super().__init__(store, correlation=f"offers:{round_code}:{offer_kind}", **kw)
        self.nya, self.round, self.offer_kind = nya, round_code, offer_kind
        self.offers_of: dict[int, dict[str, Any]] = {}  # message id -> the offer it sends

    def ready(self, s: Session, group: list[OutboxMessage], outcomes: Counter[str]) -> list[OutboxMessage]:
        pairs, stale = _with_offers(group, _items(s, group))
        for m in stale:
            ops.outbox_mark_failed(s, m, "superseded: the offer changed after it was queued",
                                   max_attempts=self.max_attempts, permanent=True)
        outcomes["rejected"] += len(stale)
        self.offers_of.update((m.id, offer) for m, offer in pairs)
        return [m for m, _ in pairs]

    def send(self, group: list[OutboxMessage], rid: str) -> outbox.Results:
        return self.nya.publish_offers(self.offer_kind, [Offer(**self.offers_of[m.id]) for m in group], self.round, rid)

    def settle(self, s: Session, group: list[OutboxMessage], results: outbox.Results, outcomes: Counter[str],
               rid: str) -> None:
        sent, rejected = _apply_results(s, group, _items(s, group), results, self.round, self.offer_kind, self.kind,
                                        self.max_attempts)
        outcomes["sent"] += sent
        outcomes["rejected"] += rejected


class WithdrawalSender(OfferSender):
    """Offers withdrawn from NyA (cancelled or no longer advertised in Ladok)."""

    kind = "offer-withdraw"

    def ready(self, s: Session, group: list[OutboxMessage], outcomes: Counter[str]) -> list[OutboxMessage]:
        return group

    def send(self, group: list[OutboxMessage], rid: str) -> outbox.Results:
        return self.nya.withdraw_offers([m.payload["offer_id"] for m in group], self.round,
                                        "Inställt eller inte längre utannonserat i Ladok", rid)


def _oid(m: OutboxMessage) -> str:
    p = m.payload
    return p["offer_id"] if "offer_id" in p else p["offer"]["offer_id"]


def _items(s: Session, due: list[OutboxMessage]) -> dict[tuple[int, str], PublicationItem]:
    """The publication items of a batch of messages, in one query."""
    pids = {m.payload["publication_id"] for m in due}
    oids = {_oid(m) for m in due}
    return {(it.publication_id, it.offer_id): it for it in s.scalars(select(PublicationItem).where(
        PublicationItem.publication_id.in_(pids), PublicationItem.offer_id.in_(oids)))}


def _with_offers(due: list[OutboxMessage], items: dict[tuple[int, str], PublicationItem]
                 ) -> tuple[list[tuple[OutboxMessage, dict[str, Any]]], list[OutboxMessage]]:
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


def _apply_results(s: Session, due: list[Any], items: dict[tuple[int, str], PublicationItem],
                   results: dict[str, tuple[str, str | None]], round_code: str, kind: str, msg_kind: str,
                   max_attempts: int) -> tuple[int, int]:
    oids = [_oid(m) for m in due]
    published = {p.offer_id: p for p in s.scalars(select(PublishedOffer).where(
        PublishedOffer.round == round_code, PublishedOffer.kind == kind, PublishedOffer.offer_id.in_(oids)))}
    sent_ids, rejected = [], 0
    for m, oid in zip(due, oids, strict=True):
        outcome, reason = results.get(oid, ("missing", "NyA did not answer for this offer"))
        item = items.get((m.payload["publication_id"], oid))
        if outcome in SENT:
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


def publish(store: Store, nya: Nya, publication_id: int) -> dict[str, Any]:
    """A real publication's plan through the outbox to NyA (a dry run sends nothing). A run that
    must publish a dry run's plan (``plan_of``) and plans otherwise — Ladok changed since — is
    closed as failed, sending nothing (``NotConfigured``: the operator makes a new dry run)."""
    with store.transaction() as s:
        pub = ops.one(s, Publication, publication_id)
        dry_run, round_code, kind, plan_of = pub.dry_run, pub.round, pub.kind, (pub.selection or {}).get("plan_of")
    if dry_run:
        return {"sent": 0, "dry_run": True}
    differences = plan_differences(store, publication_id)
    if differences:
        reason = (f"the plan differs from dry run #{plan_of} in {len(differences)} offer(s) "
                  "(make a new dry run): " + "; ".join(differences[:20]))
        refuse(store, publication_id, reason)
        raise NotConfigured(reason)
    queued = enqueue(store, publication_id)
    return {"queued": queued, **send(store, nya, round_code, kind)}


def finish(store: Store, publication_id: int) -> dict[str, Any]:
    """Close the history row; returns the summary shown to the operator."""
    with store.transaction() as s:
        pub = ops.one(s, Publication, publication_id)
        items = list(s.execute(select(PublicationItem.action, PublicationItem.status, PublicationItem.tillfalleskod,
                                      PublicationItem.offer_id, PublicationItem.message)
                               .where(PublicationItem.publication_id == publication_id)
                               .order_by(PublicationItem.id)))
        statuses = {it.status for it in items}
        pub.status = "done" if pub.dry_run or statuses <= {"sent", "done", "invalid"} else "partial"
        pub.finished_at = utcnow()
        pub.counts = {**Counter(it.action for it in items),
                      **{f"status_{k}": sum(1 for i in items if i.status == k) for k in statuses}}
        ops.audit(s, pub.triggered_by or "unknown", "publication.finish", "publication", str(pub.id),
                  status=pub.status, counts=pub.counts)
        diff = [f"{it.action:9s} {it.tillfalleskod or '-':8s} {it.offer_id} {it.message or ''}".rstrip()
                for it in items if it.action != "unchanged"]
        return {"publication_id": pub.id, "round": pub.round, "kind": pub.kind, "dry_run": pub.dry_run,
                "status": pub.status, "counts": pub.counts, "diff": diff}
