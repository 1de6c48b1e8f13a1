"""The guard against mass removal: a full (or reconciling) run whose removals — instances and
groups deactivated, memberships and students deleted — would end more than a share of its scope's
live objects (``removal_guard_share``, default 10 %) or more than ``removal_guard_count`` objects
is **held**. Its other changes go as usual; its removals wait in ``schedule_removal`` as a plan
(``schedule_plan``) shown in the console, and go to the outbox only when an operator approves it
(audited), as the offer export's Publicera does. A wrong scope, or a half-empty reply from Ladok,
must not empty a university's schedule (Canvas's SIS import has the same safety valve,
``change_threshold``).

During a run its removals are staged under a plan in state ``staging``; at the end they are
released at once when within the limits, else the plan becomes ``held``. A run that dies leaves a
staging plan, which the next full run drops. A newer full run supersedes an older held plan (it
found the scope anew). Approving releases each removal whose object is still as planned (the
same version, not ended since); a later change wins.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from brygga.flows.ports import Scheduling
from brygga.flows.schedule import model, queue
from brygga.logmask import get_logger
from brygga.store import Store, ops
from brygga.store.models import ScheduleObject, SchedulePlan, ScheduleRemoval, utcnow

log = get_logger("brygga.flows.schedule")
ENDED = ("deleted", "deactivated")
CHUNK = 2000


class Guard:
    """The removals of one full run, staged until the run's end."""

    def __init__(self, store: Store, schedule: Scheduling, *, mode: str, terms: tuple[str, ...],
                 organisation: str | None, covers: Any, run_id: str | None):
        self.store, self.schedule, self.target = store, schedule, schedule.target
        self.settings = schedule.settings
        self.staged: Counter[str] = Counter()
        with store.transaction() as s:
            stale = list(s.scalars(select(SchedulePlan.id).where(SchedulePlan.target == self.target,
                                                                 SchedulePlan.status == "staging")))
            _drop(s, stale)
            live = 0
            for term, org, n in s.execute(select(ScheduleObject.term, ScheduleObject.organisation, func.count()).where(
                    ScheduleObject.target == self.target, ScheduleObject.status.not_in(ENDED))
                    .group_by(ScheduleObject.term, ScheduleObject.organisation)):
                if term is not None and covers(term, org):
                    live += n
            live += s.scalar(select(func.count()).select_from(ScheduleObject).where(
                ScheduleObject.target == self.target, ScheduleObject.kind == "student",
                ScheduleObject.status.not_in(ENDED))) or 0
            plan = SchedulePlan(target=self.target, mode=mode, terms=list(terms), organisation=organisation,
                                status="staging", removals=0, scope_objects=live, counts={}, run_id=run_id,
                                created_at=utcnow())
            s.add(plan)
            s.flush()
            self.plan_id, self.scope_objects = plan.id, live

    def stage(self, s: Any, removals: list[model.Change], current: queue.HeldMap) -> None:
        """Keep removals of this run (in the chunk's transaction) instead of enqueuing them."""
        if not removals:
            return
        s.execute(insert(ScheduleRemoval), [
            {"plan_id": self.plan_id, "action": c.action, "kind": c.obj.kind, "ext_id": c.obj.ext_id,
             "instance_uid": c.obj.instance_uid, "version": current[c.obj.key].version} for c in removals])
        self.staged.update(f"{c.action}.{c.obj.kind}" for c in removals)

    def limit(self) -> int:
        """The most objects a run may end unheld."""
        share = int(self.scope_objects * self.settings.removal_guard_share)
        count = self.settings.removal_guard_count
        return share if count is None else min(share, count)

    def finish(self, actor: str) -> dict[str, Any]:
        """Release the staged removals, or hold them. Returns what the summary says of it."""
        total = sum(self.staged.values())
        with self.store.transaction() as s:
            older = list(s.scalars(select(SchedulePlan.id).where(
                SchedulePlan.target == self.target, SchedulePlan.status == "held", SchedulePlan.id != self.plan_id)))
            if older:
                _drop(s, older, status="superseded", actor=actor)
            plan = s.get(SchedulePlan, self.plan_id)
            assert plan is not None
            plan.removals, plan.counts = total, dict(sorted(self.staged.items()))
            if total == 0:
                s.delete(plan)
            elif total <= self.limit():
                plan.status = "released"  # the row goes when its removals are in the outbox
            else:
                plan.status = "held"
                share = total / self.scope_objects if self.scope_objects else 1.0
                plan.reason = (f"The run would end {total} of the scope's {self.scope_objects} live objects "
                               f"({share:.0%}); the guard allows {self.limit()} "
                               f"(removal_guard_share {self.settings.removal_guard_share:.0%}"
                               + (f", removal_guard_count {self.settings.removal_guard_count}"
                                  if self.settings.removal_guard_count is not None else "") + ").")
                ops.audit(s, actor, "schedule.removals_held", "schedule_plan", str(self.plan_id), target=self.target,
                          removals=total, scope_objects=self.scope_objects, counts=plan.counts)
        if total and total <= self.limit():
            release(self.store, self.schedule, self.plan_id)
        held = total > self.limit()
        if held:
            log.warning("schedule export: %s removals held for approval (plan %s): more than the guard allows (%s)",
                        total, self.plan_id, self.limit())
        return {"plan": self.plan_id, "removals": total, "held": held, "limit": self.limit()}


def _drop(s: Any, ids: list[int], *, status: str | None = None, actor: str | None = None) -> None:
    """Plans whose removals are given up: their rows deleted (a staging plan's with it)."""
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        s.execute(delete(ScheduleRemoval).where(ScheduleRemoval.plan_id.in_(part)))
        if status is None:
            s.execute(delete(SchedulePlan).where(SchedulePlan.id.in_(part)))
        else:
            s.execute(update(SchedulePlan).where(SchedulePlan.id.in_(part))
                      .values(status=status, decided_at=utcnow(), decided_by=actor))


def release(store: Store, schedule: Scheduling, plan_id: int) -> dict[str, int]:
    """Enqueue a plan's removals, chunk by chunk, each whose object is still as planned; the
    removal rows go with them. Returns counts (``enqueued``, ``skipped``: changed or ended since)."""
    target = schedule.target
    counts: Counter[str] = Counter()
    last = 0
    while True:
        with store.transaction() as s:
            rows = s.execute(select(ScheduleRemoval.id, ScheduleRemoval.action, ScheduleRemoval.kind,
                                    ScheduleRemoval.ext_id, ScheduleRemoval.instance_uid, ScheduleRemoval.version)
                             .where(ScheduleRemoval.plan_id == plan_id, ScheduleRemoval.id > last)
                             .order_by(ScheduleRemoval.id).limit(CHUNK)).all()
            if not rows:  # all released: a plan released unheld is not kept (the run's audit says it)
                s.execute(delete(SchedulePlan).where(SchedulePlan.id == plan_id, SchedulePlan.status == "released"))
                return dict(counts)
            last = rows[-1][0]
            current = queue.held(s, target, keys=[f"{k}:{e}" for _, _, k, e, _, _ in rows])
            changes = []
            for _, action, kind, ext, instance, version in rows:
                h = current.get(f"{kind}:{ext}")
                if h is None or h.version != version or h.status in ENDED:
                    counts["skipped"] += 1
                    continue
                changes.append(model.Change(action, model.ScheduleObject(kind, ext, {}, False, instance)))
            # deletes after deactivations, memberships before the students and groups they name
            changes.sort(key=lambda c: -model.ORDER[c.obj.kind])
            counts["enqueued"] += queue.enqueue(s, schedule, changes, current)["enqueued"]
            s.execute(delete(ScheduleRemoval).where(ScheduleRemoval.plan_id == plan_id,
                                                    ScheduleRemoval.id <= last))


def held_plans(store: Store, target: str | None = None) -> list[SchedulePlan]:
    with store.transaction() as s:
        q = select(SchedulePlan).where(SchedulePlan.status == "held").order_by(SchedulePlan.id.desc())
        if target:
            q = q.where(SchedulePlan.target == target)
        return list(s.scalars(q))


def removals(store: Store, plan_id: int, *, limit: int = 200) -> list[tuple[str, str, str, str | None]]:
    """The first removals of a plan: (action, kind, ext_id, instance uid)."""
    with store.transaction() as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(ScheduleRemoval.action, ScheduleRemoval.kind, ScheduleRemoval.ext_id, ScheduleRemoval.instance_uid)
            .where(ScheduleRemoval.plan_id == plan_id).order_by(ScheduleRemoval.id).limit(limit))]


def decide(store: Store, schedule: Scheduling, plan_id: int, *, approve: bool, actor: str,
           note: str | None = None) -> dict[str, Any]:
    """An operator's decision on a held plan: approved (its removals go to the outbox) or
    rejected (they are dropped; what the system has stays). Audited."""
    with store.transaction() as s:
        plan = s.get(SchedulePlan, plan_id, with_for_update=True)
        if plan is None or plan.status != "held":
            raise ValueError(f"plan {plan_id} is not held (it is {plan.status if plan else 'not there'})")
        if plan.target != schedule.target:
            raise ValueError(f"plan {plan_id} is for {plan.target}, not {schedule.target}")
        plan.status, plan.decided_at, plan.decided_by = ("approved" if approve else "rejected"), utcnow(), actor
        ops.audit(s, actor, "schedule.removals_approved" if approve else "schedule.removals_rejected",
                  "schedule_plan", str(plan_id), target=plan.target, removals=plan.removals, note=note)
        if not approve:
            s.execute(delete(ScheduleRemoval).where(ScheduleRemoval.plan_id == plan_id))
    out: dict[str, Any] = {"plan": plan_id, "approved": approve}
    if approve:
        out.update(release(store, schedule, plan_id))
        log.info("schedule export: plan %s approved by %s: %s", plan_id, actor, out)
    return out


def resume(store: Store, schedule: Scheduling) -> int:
    """Release what approved or released plans still hold (a run or an approval that died
    half-way). Returns how many removals went."""
    with store.transaction() as s:
        ids = list(s.scalars(select(SchedulePlan.id).where(
            SchedulePlan.target == schedule.target, SchedulePlan.status.in_(("approved", "released")),
            SchedulePlan.id.in_(select(ScheduleRemoval.plan_id).distinct()))))
    return sum(release(store, schedule, i).get("enqueued", 0) for i in ids)
