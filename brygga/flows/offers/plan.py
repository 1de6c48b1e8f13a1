"""The offer export's rules: what an offer is made of, which instances are offered, and the plan
of a publication — new / changed / unchanged / withdrawn / invalid against what NyA already has.
Pure: plain data in, plain data out."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import Any

from brygga.flows.kit.flow import Flow
from brygga.records import Offer, Utbildningstillfalle

FLOW = Flow("offer-export", "brygga_offer_export", destination="nya", kinds=("offer", "offer-withdraw"))
KINDS = ("ordinary", "programme-internal")  # what a publication offers: courses, or courses inside programmes
DESTINATION = FLOW.destination
_OFFER_FIELDS = tuple(f.name for f in dataclasses.fields(Offer))


def offer_dict(offer: Offer) -> dict[str, Any]:
    """The offer as JSON-able fields (all scalars: a shallow copy, unlike ``dataclasses.asdict``)."""
    return {f: getattr(offer, f) for f in _OFFER_FIELDS}


def _hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def content_hash(offer: Offer) -> str:
    return _hash(offer_dict(offer))


def idempotency_key(round_code: str, kind: str, offer_id: str, content: str, *, withdraw: bool = False) -> str:
    """The outbox key of one offer (or its withdrawal) in one version: the same content is sent once."""
    return f"nya:{'withdraw' if withdraw else 'offer'}:{round_code}:{kind}:{offer_id}:{content}"


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
        offer_id=programme_offer_id(programme.uid, t.uid) if programme else t.uid,
        utbildningskod=t.utbildningskod or "", tillfalleskod=t.tillfalleskod or "",
        name_sv=t.name_sv or "", credits=t.credits or "", start=t.start or "", end=t.end or "",
        studietakt=t.studietakt or 0, places=places, name_en=t.name_en, studieort=t.studieort,
        programme_code=programme.utbildningskod if programme else None,
        package_id=programme.uid if programme else None,
    )


def plan(publication_id: int, offers: Iterable[Offer], invalid: dict[str, str], not_offered: Iterable[str],
         published: dict[str, tuple[str, str]], whole_round: bool) -> list[dict[str, Any]]:
    """The publication's items: one per offer (new / changed / unchanged, or invalid with the
    mapping's reason), and a withdrawal for what NyA has from us but should not have (cancelled or
    un-advertised instances; for a whole-round publication also instances no longer in the round).

    ``published``: {offer id: (content hash, active|withdrawn)} of what NyA has. A new or changed
    item keeps the offer it stands for in ``payload``; unchanged items and withdrawals have none."""
    by_id = {o.offer_id: o for o in offers}
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
            action = "new" if p is None or p[1] == "withdrawn" else "unchanged" if p[0] == h else "changed"
            row.update(action=action, status="planned" if action != "unchanged" else "done")
            if action == "unchanged":
                row["payload"] = None  # NyA has it already; nothing to send or to keep twice
        rows.append(row)
    gone = set(not_offered)
    if whole_round:
        gone |= {oid for oid, p in published.items() if p[1] == "active" and oid not in by_id}
    for oid in sorted(gone):
        p = published.get(oid)
        if p is not None and p[1] == "active" and oid not in by_id:
            rows.append({"publication_id": publication_id, "offer_id": oid, "tillfalleskod": None,
                         "action": "withdrawn", "content_hash": p[0], "status": "planned",
                         "payload": None, "message": None})
    return rows
