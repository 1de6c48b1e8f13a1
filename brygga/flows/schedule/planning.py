"""The schedule export's plan: Ladok's current state of some instances, built into objects
(``model.build``), compared with what the system has from us (``schedule_object``), and the
changes put in the outbox in ONE transaction with the new versions, so a crash loses or repeats
nothing and a re-run with nothing changed sends nothing.

- **delta** (every few minutes): the instances Ladok's feed marked (``schedule_dirty``).
- **full** (nightly, or by hand): every instance of the scope's terms; what is no longer there
  ends (instance and group deactivated, memberships and students deleted). With ``reconcile`` it
  also reads what the system holds and sends again whatever drifted from what we sent.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from adapters.ladok import LadokAdapter
from adapters.schema import ScheduleAdapter
from brygga.flows.schedule import KIND, destination, model, reading
from brygga.logmask import get_logger
from brygga.store import Store, ops
from brygga.store.models import ScheduleDirty, ScheduleObject, utcnow

log = get_logger("brygga.flows.schedule")
DELTA_LIMIT = 2000  # marked instances looked at per delta run


@dataclasses.dataclass(frozen=True)
class Scope:
    """What is exported: instances starting in ``terms`` (``HT2027``), of ``organisation`` if given."""

    terms: tuple[str, ...]
    organisation: str | None = None

    @classmethod
    def of(cls, extra: dict[str, Any], terms: list[str] | None = None, organisation: str | None = None) -> Scope:
        t = terms or extra.get("terms") or []
        return cls(tuple(t if isinstance(t, list) else str(t).split(",")), organisation or extra.get("organisation"))


def idempotency_key(target: str, kind: str, ext_id: str, version: int) -> str:
    raw = f"{target}\n{kind}\n{ext_id}\n{version}"
    return f"schedule:{target}:{hashlib.sha256(raw.encode()).hexdigest()}"


def _held(s: Session, target: str, *, instances: list[str] | None = None,
          students: set[str] | None = None) -> dict[str, tuple[str, str, str | None]]:
    q = select(ScheduleObject.kind, ScheduleObject.ext_id, ScheduleObject.content_hash, ScheduleObject.status,
               ScheduleObject.instance_uid).where(ScheduleObject.target == target)
    rows: list[Any] = []
    if instances is None and students is None:
        rows = list(s.execute(q))
    else:
        for i in range(0, len(instances or []), 500):
            rows += s.execute(q.where(ScheduleObject.instance_uid.in_(instances[i:i + 500])))  # type: ignore[index]
        ids = sorted(students or ())
        for i in range(0, len(ids), 500):
            rows += s.execute(q.where(ScheduleObject.kind == "student", ScheduleObject.ext_id.in_(ids[i:i + 500])))
    return {f"{k}:{e}": (h, st, iu) for k, e, h, st, iu in rows}


def plan(store: Store, ladok: LadokAdapter, schedule: ScheduleAdapter, *, mode: str, scope: Scope,
         dry_run: bool = False, reconcile: bool = False, run_id: str | None = None,
         actor: str = "airflow:brygga_schedule_export", workers: int = reading.WORKERS) -> dict[str, Any]:
    """Read, build, diff and (unless ``dry_run``) enqueue; returns what would change / changed."""
    if mode not in ("delta", "full"):
        raise ValueError("mode is delta or full")
    if not scope.terms:
        raise ValueError("no term to export: set the brygga_schema Connection's extra.terms (e.g. [\"HT2027\"]) "
                         "or choose terms in the trigger form")
    target = schedule.target
    started = utcnow()
    if mode == "full":
        uids = reading.term_uids(ladok, scope.terms)
        marked: list[str] = []
    else:
        with store.transaction() as s:
            marked = list(s.scalars(select(ScheduleDirty.instance_uid).where(ScheduleDirty.marked_at <= started)
                                    .order_by(ScheduleDirty.marked_at).limit(DELTA_LIMIT)))
        uids = marked
    got = reading.read(store, ladok, uids, workers=workers)
    instances = [t for t in got.instances if model.in_scope(t, scope.terms, scope.organisation)]
    built = model.build(instances, got.participants, got.emails)
    with store.transaction() as s:
        if mode == "full":
            held = _held(s, target)
            removable = [k for k, (_, st, _) in held.items() if st not in ("deleted", "deactivated")]
        else:
            held = _held(s, target, instances=uids, students={o.ext_id for o in built if o.kind == "student"})
            removable = [k for k, (_, _, iu) in held.items() if iu in set(uids)]
    changes = model.diff(built, held, removable=removable)
    drifted = 0
    if reconcile and mode == "full" and target == "timeedit":
        changes, drifted = _with_drift(schedule, built, held, changes)
    counts = Counter(f"{c.action}.{c.obj.kind}" for c in changes)
    summary: dict[str, Any] = {
        "mode": mode, "target": target, "terms": list(scope.terms), "organisation": scope.organisation,
        "instances": len(instances), "participants": len(got.participants), "objects": len(built),
        "changes": dict(sorted(counts.items())), "drifted": drifted, "email_lookups": got.lookups,
        "invalid": len(got.errors), "dry_run": dry_run, "marked": len(marked),
    }
    if dry_run:
        results, refused = schedule.validate([_payload(c, 0) for c in changes]) if changes else ({}, [])
        summary["would_be_refused"] = {**{k: r for k, (o, r) in results.items() if o == "rejected"},
                                       **{e.record_id: f"{e.field}: {e.rule}" for e in refused}}
        log.info("schedule export (dry run): %s", summary)
        return summary
    with store.transaction() as s:
        summary["enqueued"] = _enqueue(s, target, changes)
        for e in got.errors:
            ops.quarantine(s, source="ladok", message_id=e.record_id, kind="schedule-participant",
                           reason=f"Ladok participant {e.record_id}: {e.field}: {e.rule}; left out of the schedule export")
        if marked:
            for i in range(0, len(marked), 500):
                s.execute(delete(ScheduleDirty).where(ScheduleDirty.instance_uid.in_(marked[i:i + 500]),
                                                      ScheduleDirty.marked_at <= started))
        ops.audit(s, actor, f"schedule.{mode}", "schedule_object", target,
                  **{k: summary[k] for k in ("terms", "instances", "objects", "changes", "drifted")})
    log.info("schedule export: %s", summary)
    return summary


def _with_drift(schedule: ScheduleAdapter, built: list[model.ScheduleObject],
                held: dict[str, tuple[str, str, str | None]],
                changes: list[model.Change]) -> tuple[list[model.Change], int]:
    """Add an upsert for every object the system holds otherwise than we sent it (edited or lost
    there); ended objects it still holds active are ended again."""
    system = schedule.held()
    planned = {c.obj.key for c in changes}
    extra: list[model.Change] = []
    for o in built:
        if o.key in planned:
            continue
        there = system.get(o.key)
        if there is None or there != (o.content_hash, o.active) and not (not o.active and there[1] is False):
            extra.append(model.Change("upsert", o))
    for key, (_, status, iu) in held.items():
        there = system.get(key)
        if key in planned or there is None:
            continue
        kind, _, ext_id = key.partition(":")
        if status == "deleted":
            extra.append(model.Change("delete", model.ScheduleObject(kind, ext_id, {}, False, iu)))
        elif status == "deactivated" and there[1]:
            extra.append(model.Change("deactivate", model.ScheduleObject(kind, ext_id, {}, False, iu)))
    extra.sort(key=lambda c: (c.action != "upsert", model.ORDER[c.obj.kind] * (1 if c.action == "upsert" else -1)))
    return changes + extra, len(extra)


def _payload(c: model.Change, version: int) -> dict[str, Any]:
    return {"op": c.action, **c.obj.payload(), "hash": c.obj.content_hash, "version": version}


def _enqueue(s: Session, target: str, changes: list[model.Change]) -> int:
    """Bump each object's version and row, and enqueue its change under the new version's key."""
    if not changes:
        return 0
    now = utcnow()
    versions: dict[str, int] = {}
    keys = [c.obj.key for c in changes]
    by_kind: dict[str, list[str]] = {}
    for k in keys:
        kind, _, ext = k.partition(":")
        by_kind.setdefault(kind, []).append(ext)
    for kind, exts in by_kind.items():
        for i in range(0, len(exts), 500):
            for ext, v in s.execute(select(ScheduleObject.ext_id, ScheduleObject.version).where(
                    ScheduleObject.target == target, ScheduleObject.kind == kind,
                    ScheduleObject.ext_id.in_(exts[i:i + 500]))):
                versions[f"{kind}:{ext}"] = v
    status_of = {"upsert": None, "deactivate": "deactivated", "delete": "deleted"}
    new_rows, messages = [], []
    for c in changes:
        o = c.obj
        version = versions.get(o.key, 0) + 1
        status = status_of[c.action] or ("active" if o.active else "deactivated")
        if o.key in versions:
            s.execute(update(ScheduleObject).where(ScheduleObject.target == target, ScheduleObject.kind == o.kind,
                                                   ScheduleObject.ext_id == o.ext_id)
                      .values(content_hash=o.content_hash, status=status, version=version, updated_at=now,
                              **({"instance_uid": o.instance_uid} if o.instance_uid else {})))
        else:
            new_rows.append({"target": target, "kind": o.kind, "ext_id": o.ext_id, "instance_uid": o.instance_uid,
                             "content_hash": o.content_hash, "sent_hash": None, "version": version,
                             "status": status, "updated_at": now})
        messages.append({"destination": destination(target), "kind": KIND,
                         "idempotency_key": idempotency_key(target, o.kind, o.ext_id, version),
                         "correlation": f"schedule:{target}", "payload": _payload(c, version)})
    if new_rows:
        for i in range(0, len(new_rows), 1000):
            s.execute(insert(ScheduleObject), new_rows[i:i + 1000])
    return ops.outbox_enqueue(s, messages)
