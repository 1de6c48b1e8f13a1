"""The merit sync's ledger (``nya_merit``): one row per Ladok merit, whichever path found it — the
feed (live) or the snapshot taken when its student applied — so NyA gets each version of a merit
once, and a merit Ladok takes back is withdrawn.

* ``queue`` records merits and queues what NyA does not have yet: a new merit (version 1), a
  changed one (version + 1); the same content already queued or held is not queued again.
* ``retract`` marks merits Ladok took back and queues their withdrawal (version + 1).
* The sender (``send.py``) asks ``stale`` before it sends: a queued version that is no longer
  the merit's latest, or a withdrawal of a merit NyA never held, is cancelled instead — so a
  retraction of a merit not yet sent sends nothing at all. It records what NyA holds (``held``).

All of it runs in the caller's transaction: with the feed's checkpoint, or the snapshot's claim."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from brygga import tracing
from brygga.flows.merits.rules import DESTINATION, KIND, WITHDRAW_KIND, content_hash, idempotency_key, withdraw_key
from brygga.records import Merit
from brygga.store import ops
from brygga.store.models import NyaMerit, OutboxMessage, utcnow

_MERIT_FIELDS = tuple(f.name for f in dataclasses.fields(Merit))
_CHUNK = 500


def rows_of(s: Session, refs: Iterable[str]) -> dict[str, NyaMerit]:
    refs = list(dict.fromkeys(refs))
    out: dict[str, NyaMerit] = {}
    for i in range(0, len(refs), _CHUNK):
        out.update((r.ref, r) for r in s.scalars(select(NyaMerit).where(NyaMerit.ref.in_(refs[i:i + _CHUNK]))))
    return out


def queue(s: Session, merits: list[Merit], *, kind: str, source: str, correlation: str,
          event_at: dict[str, dt.datetime] | None = None, extra: dict[str, Any] | None = None) -> Counter[str]:
    """Record ``merits`` (each ``merit_id`` its Ladok reference) and queue, as outbox rows of
    ``kind``, those NyA does not have in this content: ``queued``, or ``already`` (the same content
    queued or held)."""
    counts: Counter[str] = Counter()
    rows = rows_of(s, (m.merit_id for m in merits))
    now = utcnow()
    new: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    for m in merits:
        ref, h = m.merit_id, content_hash(m)
        row = rows.get(ref)
        merit = {f: getattr(m, f) for f in _MERIT_FIELDS}
        if row is None:
            version, merit_id = 1, ref
            new.append({"ref": ref, "merit_id": ref, "personnummer": m.personnummer, "type": m.type,
                        "content_hash": h, "content": merit, "version": 1, "state": "present", "held": False,
                        "source": source, "event_at": (event_at or {}).get(ref), "created_at": now, "updated_at": now})
            rows[ref] = NyaMerit(ref=ref, merit_id=ref, content_hash=h, version=1, state="present")  # (this batch)
        elif row.state == "present" and row.content_hash == h:
            counts["already"] += 1
            continue
        else:
            row.version, row.state, row.content_hash, row.content = row.version + 1, "present", h, merit
            row.personnummer, row.type = m.personnummer, m.type
            version, merit_id = row.version, row.merit_id
        merit = dict(merit)
        merit["merit_id"] = merit_id  # what NyA knows it by (a legacy HandelseUID for merits sent before 0013)
        when = (event_at or {}).get(ref)
        outbox.append({"destination": DESTINATION, "kind": kind, "idempotency_key": idempotency_key(ref, version),
                       "correlation": correlation, "payload": {"merit": merit, "ref": ref, "version": version,
                                                               "event_at": when.isoformat() if when else None,
                                                               **(extra or {})},
                       "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
                       "traceparent": tracing.new()})  # the merit's trace starts where Brygga read it
        counts["queued"] += 1
    ops.insert_new(s, NyaMerit, ["ref"], new)
    ops.insert_new(s, OutboxMessage, ["idempotency_key"], outbox)
    return counts


def retract(s: Session, refs: list[str], *, correlation: str, reason: str, held_in_nya: bool = False) -> Counter[str]:
    """Merits Ladok took back: marked withdrawn and their withdrawal queued (``withdrawn``); one
    Brygga never recorded, or already withdrawn, is ``not_held`` — unless ``held_in_nya`` (the
    reconciliation saw NyA hold it): then it is withdrawn again."""
    counts: Counter[str] = Counter()
    rows = rows_of(s, refs)
    now = utcnow()
    outbox: list[dict[str, Any]] = []
    for ref in dict.fromkeys(refs):
        row = rows.get(ref)
        if row is None or (row.state == "withdrawn" and not held_in_nya):
            counts["not_held"] += 1
            continue
        if held_in_nya:
            row.held = True
        row.version, row.state, row.content_hash = row.version + 1, "withdrawn", None
        outbox.append({"destination": DESTINATION, "kind": WITHDRAW_KIND,
                       "idempotency_key": withdraw_key(ref, row.version), "correlation": correlation,
                       "payload": {"ref": ref, "merit_id": row.merit_id, "version": row.version, "reason": reason},
                       "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
                       "traceparent": tracing.new()})
        counts["withdrawn"] += 1
    ops.insert_new(s, OutboxMessage, ["idempotency_key"], outbox)
    return counts


def resend(s: Session, refs: list[str], *, correlation: str) -> Counter[str]:
    """Merits NyA lacks or holds in another version (the reconciliation found it): their latest
    content queued again as a new version (``queued``); one withdrawn or unknown is ``not_present``."""
    counts: Counter[str] = Counter()
    rows = rows_of(s, refs)
    now = utcnow()
    outbox: list[dict[str, Any]] = []
    for ref in dict.fromkeys(refs):
        row = rows.get(ref)
        if row is None or row.state != "present" or not row.content:
            counts["not_present"] += 1
            continue
        row.version += 1
        merit = {**row.content, "merit_id": row.merit_id}
        outbox.append({"destination": DESTINATION, "kind": KIND, "idempotency_key": idempotency_key(ref, row.version),
                       "correlation": correlation, "payload": {"merit": merit, "ref": ref, "version": row.version,
                                                               "event_at": None, "resent": True},
                       "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
                       "traceparent": tracing.new()})
        counts["queued"] += 1
    ops.insert_new(s, OutboxMessage, ["idempotency_key"], outbox)
    return counts


def stale(s: Session, group: list[OutboxMessage]) -> tuple[list[OutboxMessage], dict[int, str]]:
    """Of a group about to be sent: the rows still to send, and why the others need not be
    (superseded by a later version; a withdrawal of a merit NyA does not hold)."""
    rows = rows_of(s, (m.payload["ref"] for m in group))
    keep: list[OutboxMessage] = []
    drop: dict[int, str] = {}
    for m in group:
        row = rows.get(m.payload["ref"])
        if row is None or row.version != m.payload["version"]:
            drop[m.id] = "superseded: Ladok changed or took back the merit before it was sent"
        elif m.kind == WITHDRAW_KIND and not row.held:
            drop[m.id] = "taken back before NyA held it: nothing to withdraw"
        else:
            keep.append(m)
    return keep, drop


def mark_held(s: Session, refs: Iterable[str], held: bool) -> None:
    refs = list(refs)
    for i in range(0, len(refs), _CHUNK):
        s.execute(update(NyaMerit).where(NyaMerit.ref.in_(refs[i:i + _CHUNK])).values(held=held)
                  .execution_options(synchronize_session=False))
