"""The schedule export's outbox: its changes in **batches**, each object encoded once.

A plan's changes become one outbox message (kind ``schedule-batch``) per batch of up to the
format's batch size (``schedule.batch``: 500 objects a TimeEdit request, 10,000 rows a OneRoster
package) and per lane (TimeEdit's upserts and its bulk deletes go to different endpoints). The
payload holds what sending needs and nothing to compute again: ``objects`` ([kind, ext_id, action,
version, instance_uid, retry] each) and ``items``, the wire form the gateway encoded when the
change was planned. Each object's row (``schedule_object``) is written in the same transaction,
pointing at the batch of its latest version (``outbox_id``): while that batch is unsent the
version is in flight.

* An object changed again while its previous version still waits in an unsent batch is taken out
  of that batch (the batch is cancelled when nothing is left): the system only ever gets an
  object's latest version, whatever the retries' order (a student who became protected never gets
  an older version's name).
* An object the format refuses (a value the system's columns would not take) is not sent: its row
  is ``rejected`` and one quarantine row names it, kept open (counted) while it is refused again
  and released when the system accepts the object (``retry``: its previous version was refused).
* A student who becomes protected (``scrub``): every batch still kept that carries the student
  (sent or not; retention purges sent payloads later) loses the student's item at once, so no
  name or e-mail stays; the next delta sends the protected form.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, Text, bindparam, func, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from brygga.flows.ports import Scheduling
from brygga.flows.schedule import destination, model
from brygga.store import ops
from brygga.store.models import OutboxMessage, ScheduleObject, utcnow
from mappings.base import RecordError

KIND = "schedule-batch"
#: The fields of a batch's objects: [kind, ext_id, action, version, instance_uid, retry]
KIND_I, EXT_I, ACTION_I, VERSION_I, INSTANCE_I, RETRY_I = range(6)
STATUS_OF = {"deactivate": "deactivated", "delete": "deleted"}
UNSENT = ("pending", "failed")


class Held(NamedTuple):
    """What Brygga exported of one object (its ``schedule_object`` row); ``model.diff`` reads its
    first three by position (hash, status, instance uid)."""

    content_hash: str
    status: str
    instance_uid: str | None
    term: str | None
    organisation: str | None
    version: int
    outbox_id: int | None


HeldMap = dict[str, Held]
_T = cast(Table, ScheduleObject.__table__)
_COLUMNS = (_T.c.kind, _T.c.ext_id, _T.c.content_hash, _T.c.status, _T.c.instance_uid, _T.c.term,
            _T.c.organisation, _T.c.version, _T.c.outbox_id)


def held(s: Session, target: str, *, instances: Iterable[str] | None = None, students: Iterable[str] | None = None,
         keys: Iterable[str] | None = None) -> HeldMap:
    """key -> Held of what was exported to ``target``: the objects of ``instances``, the students
    among ``students``, the objects of ``keys`` ("<kind>:<ext_id>"), or (none given) all."""
    q = select(*_COLUMNS).where(_T.c.target == target)
    rows: list[Any] = []
    if instances is None and students is None and keys is None:
        rows = list(s.execute(q))
    ids = sorted(instances or ())
    for i in range(0, len(ids), 500):
        rows += s.execute(q.where(_T.c.instance_uid.in_(ids[i:i + 500])))
    by_kind: dict[str, list[str]] = {}
    if students:
        by_kind["student"] = sorted(students)
    for k in keys or ():
        kind, _, ext = k.partition(":")
        by_kind.setdefault(kind, []).append(ext)
    for kind, exts in by_kind.items():
        for i in range(0, len(exts), 500):
            rows += s.execute(q.where(_T.c.kind == kind, _T.c.ext_id.in_(exts[i:i + 500])))
    return {f"{k}:{e}": Held(h, st, iu, term, org, v, ob) for k, e, h, st, iu, term, org, v, ob in rows}


def payload(c: model.Change) -> dict[str, Any]:
    """A change as the gateway encodes it."""
    return {"op": c.action, **c.obj.payload()}


def batch_key(target: str, objects: list[list[Any]]) -> str:
    raw = "\n".join([target, *(f"{o[KIND_I]}:{o[EXT_I]}:{o[VERSION_I]}" for o in objects)])
    return f"schedule:{target}:{hashlib.sha256(raw.encode()).hexdigest()}"


#: A changed object's row, one executemany per call (Core: no ORM bookkeeping per row); an
#: instance uid, term or unit is kept when the change has none (a deactivation).
_CHANGE = (update(_T).where(_T.c.target == bindparam("b_target"), _T.c.kind == bindparam("b_kind"),
                            _T.c.ext_id == bindparam("b_ext_id"))
           .values(content_hash=bindparam("b_content_hash"), status=bindparam("b_status"),
                   version=bindparam("b_version"), updated_at=bindparam("b_updated_at"),
                   outbox_id=bindparam("b_outbox_id"),
                   instance_uid=func.coalesce(bindparam("b_instance_uid"), _T.c.instance_uid),
                   term=func.coalesce(bindparam("b_term"), _T.c.term),
                   organisation=func.coalesce(bindparam("b_organisation"), _T.c.organisation)))


def enqueue(s: Session, schedule: Scheduling, changes: list[model.Change], current: HeldMap) -> dict[str, int]:
    """Bump each changed object's version and row and put its change, encoded, in a batch.
    ``current``: the rows held among the changes' objects (what the caller read; an object not in
    it is new). Returns counts: ``enqueued`` (objects in batches), ``refused`` (by the format),
    ``batches``."""
    if not changes:
        return {"enqueued": 0, "refused": 0, "batches": 0}
    target = schedule.target
    now = utcnow()
    lanes: dict[str, list[tuple[list[Any], Any]]] = {}
    rows: list[dict[str, Any]] = []
    where: dict[str, tuple[str, int]] = {}  # key -> (lane, index in lane): its batch, once inserted
    refused: list[RecordError] = []
    superseded: dict[int, set[str]] = {}
    for c in changes:
        o = c.obj
        h = current.get(o.key)
        version = (h.version if h else 0) + 1
        status = STATUS_OF.get(c.action) or ("active" if o.active else "deactivated")
        got = schedule.encode(payload(c))
        if isinstance(got, RecordError):
            refused.append(got)
            status = "rejected"
        elif got is not None:
            lane, item = got
            entry = [o.kind, o.ext_id, c.action, version, o.instance_uid, bool(h and h.status == "rejected")]
            where[o.key] = (lane, len(lanes.setdefault(lane, [])))
            lanes[lane].append((entry, item))
        if h is not None and h.outbox_id is not None:
            superseded.setdefault(h.outbox_id, set()).add(o.key)
        rows.append({"target": target, "kind": o.kind, "ext_id": o.ext_id, "instance_uid": o.instance_uid,
                     "term": o.term, "organisation": o.organisation, "content_hash": o.content_hash,
                     "version": version, "status": status, "updated_at": now, "outbox_id": None, "_old": h})
    _supersede(s, superseded)
    batch_ids: dict[str, list[int]] = {}
    size = max(1, schedule.batch)
    for lane, entries in lanes.items():
        ids = batch_ids[lane] = []
        for i in range(0, len(entries), size):
            part = entries[i:i + size]
            objects = [e for e, _ in part]
            m = OutboxMessage(destination=destination(target), kind=KIND, idempotency_key=batch_key(target, objects),
                              correlation=f"schedule:{target}", status="pending", attempts=0, next_attempt_at=now,
                              created_at=now, payload={"lane": lane, "objects": objects, "items": [x for _, x in part]})
            s.add(m)
            s.flush()
            ids.append(m.id)
    new_rows, changed = [], []
    for row in rows:
        old = row.pop("_old")
        key = f"{row['kind']}:{row['ext_id']}"
        if key in where:
            lane, i = where[key]
            row["outbox_id"] = batch_ids[lane][i // size]
        if old is None:
            new_rows.append(row)
        else:
            changed.append({f"b_{k}": v for k, v in row.items()})
    for i in range(0, len(changed), 1000):
        s.execute(_CHANGE, changed[i:i + 1000])
    ops.insert_many(s, ScheduleObject, new_rows)
    for e in refused:
        ops.quarantine_again(s, source=destination(target), message_id=e.record_id, kind="schedule-object",
                             reason=f"Brygga's mapping for {target} refused {e.record_id}: {e.field}: {e.rule}. Not "
                                    "sent; sent again when it changes in Ladok, and by the nightly reconciliation.")
    return {"enqueued": sum(len(v) for v in lanes.values()), "refused": len(refused),
            "batches": sum(len(v) for v in batch_ids.values())}


def _supersede(s: Session, superseded: dict[int, set[str]]) -> None:
    """Take the objects changed again out of the unsent batches that carry an older version."""
    ids = sorted(superseded)
    for i in range(0, len(ids), 500):
        for m in s.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids[i:i + 500]),
                                                       OutboxMessage.status.in_(UNSENT))):
            gone = superseded[m.id]
            keep = [(o, x) for o, x in zip(m.payload["objects"], m.payload["items"], strict=True)
                    if f"{o[KIND_I]}:{o[EXT_I]}" not in gone]
            if not keep:
                ops.outbox_cancel(s, [m.id], "superseded by a later version")
            else:
                m.payload = {**m.payload, "objects": [o for o, _ in keep], "items": [x for _, x in keep]}


def scrub(s: Session, students: set[str]) -> int:
    """Drop what the kept batches (of every target, in every state) carry of ``students``: their
    items become None — nothing to send — so no name or e-mail stays in Brygga's store. A batch not
    yet sent then leaves the student out; the next delta sends the protected form (the student's
    instances are marked by the same event). Returns how many batches were rewritten."""
    rewritten = 0
    text = sql_cast(OutboxMessage.payload, Text)
    for uid in sorted(students):
        for m in s.scalars(select(OutboxMessage).where(
                OutboxMessage.kind == KIND, OutboxMessage.purged_at.is_(None),
                text.like(f'%"student", "{uid}"%') | text.like(f'%"student","{uid}"%'))):
            items = list(m.payload.get("items") or [])
            hits = [i for i, o in enumerate(m.payload.get("objects") or [])
                    if o[KIND_I] == "student" and o[EXT_I] == uid and items[i] is not None]
            for i in hits:
                items[i] = None
            if hits:
                m.payload = {**m.payload, "items": items}
                rewritten += 1
    return rewritten
