"""The schedule export as operators see it: per scheduling system (target) what Brygga has
exported (objects by kind and state), its outbox batches, the last runs, and the plans the guard
holds (a run that would end too much of its scope) with the first of their removals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from brygga.store import Store
from brygga.store.models import AuditLog, OutboxMessage, ScheduleObject, SchedulePlan, ScheduleRemoval
from brygga.views.common import masked

KIND_TEXT = {"instance": "utbildningstillfällen", "group": "studentgrupper", "student": "studenter",
             "membership": "medlemskap"}
STATE_TEXT = {"active": "aktiva", "deactivated": "inaktiverade", "deleted": "borttagna", "rejected": "avvisade",
              "drift": "avvikande (skickas igen)"}
ACTION_TEXT = {"delete": "tas bort", "deactivate": "inaktiveras"}
PLAN_TEXT = {"held": "väntar på godkännande", "approved": "godkänd", "rejected": "avvisad",
             "superseded": "ersatt av en senare körning", "staging": "körs", "released": "släppt"}


def schedule_state(store: Store, *, sample: int = 50, runs: int = 10) -> dict[str, Any]:
    with store.transaction() as s:
        objects: dict[str, dict[str, dict[str, int]]] = {}
        for target, kind, status, n in s.execute(
                select(ScheduleObject.target, ScheduleObject.kind, ScheduleObject.status, func.count())
                .group_by(ScheduleObject.target, ScheduleObject.kind, ScheduleObject.status)):
            objects.setdefault(target, {}).setdefault(kind, {})[status] = n
        batches: dict[str, dict[str, int]] = {}
        for dest, status, n in s.execute(
                select(OutboxMessage.destination, OutboxMessage.status, func.count())
                .where(OutboxMessage.destination.like("schema:%"))
                .group_by(OutboxMessage.destination, OutboxMessage.status)):
            batches.setdefault(dest.partition(":")[2], {})[status] = n
        plans = []
        for p in s.scalars(select(SchedulePlan).where(SchedulePlan.status.not_in(("staging", "released")))
                           .order_by(SchedulePlan.id.desc()).limit(20)):
            rows = s.execute(select(ScheduleRemoval.action, ScheduleRemoval.kind, ScheduleRemoval.ext_id,
                                    ScheduleRemoval.instance_uid).where(ScheduleRemoval.plan_id == p.id)
                             .order_by(ScheduleRemoval.id).limit(sample)).all() if p.status == "held" else []
            plans.append({"id": p.id, "target": p.target, "mode": p.mode, "terms": p.terms,
                          "organisation": p.organisation, "status": p.status,
                          "status_text": PLAN_TEXT.get(p.status, p.status), "removals": p.removals,
                          "scope_objects": p.scope_objects,
                          "share": round(100 * p.removals / p.scope_objects) if p.scope_objects else 100,
                          "counts": p.counts, "reason": p.reason, "created_at": p.created_at,
                          "decided_at": p.decided_at, "decided_by": p.decided_by, "run_id": p.run_id,
                          "sample": [{"action": ACTION_TEXT.get(a, a), "kind": KIND_TEXT.get(k, k), "ext_id": e,
                                      "instance_uid": i} for a, k, e, i in rows]})
        recent = [{"at": a.at, "action": a.action.removeprefix("schedule."), "target": a.object_id,
                   "detail": a.detail} for a in s.scalars(
            select(AuditLog).where(AuditLog.action.in_(("schedule.full", "schedule.delta")))
            .order_by(AuditLog.id.desc()).limit(runs))]
    targets = sorted(set(objects) | set(batches))
    return masked({"targets": [{"target": t, "objects": objects.get(t, {}), "batches": batches.get(t, {})}
                               for t in targets],
                   "plans": plans, "held": sum(p["status"] == "held" for p in plans), "runs": recent})
