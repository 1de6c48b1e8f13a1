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

import contextlib
import dataclasses
import datetime as dt
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from brygga.config import ScheduleSettings
from brygga.flows.kit.flow import NotConfigured
from brygga.flows.ports import Ladok, Scheduling
from brygga.flows.schedule import ACTOR, guard, model, queue, reading
from brygga.flows.schedule.drift import mark_drift
from brygga.flows.schedule.queue import Held, HeldMap
from brygga.logmask import get_logger
from brygga.records import Utbildningstillfalle
from brygga.store import Store, ops
from brygga.store.models import ScheduleDirty, ScheduleObject, Setting, utcnow

log = get_logger("brygga.flows.schedule")
DELTA_LIMIT = 2000  # marked instances looked at per delta run
LOCAL = zoneinfo.ZoneInfo("Europe/Stockholm")


@dataclasses.dataclass(frozen=True)
class Scope:
    """What is exported: instances starting in ``terms`` (``HT2027``), of ``organisation`` if given."""

    terms: tuple[str, ...]
    organisation: str | None = None

    @classmethod
    def of(cls, settings: ScheduleSettings, terms: list[str] | None = None, organisation: str | None = None) -> Scope:
        """The form's terms and unit, else the Connection's."""
        t = [x.strip() for x in terms or [] if x.strip()]
        return cls(tuple(t) if t else settings.terms, (organisation or "").strip() or settings.organisation)

    def keeps(self, t: Utbildningstillfalle) -> bool:
        return model.in_scope(t, self.terms, self.organisation)

    def covers(self, term: str | None, organisation: str | None) -> bool:
        """Whether an object exported with this term and unit lies in this scope (one exported
        before Brygga kept them, term None, counts as inside)."""
        return term is None or (term in self.terms and (not self.organisation or organisation == self.organisation))


CHUNK = 500  # instances read, built and committed together: memory stays flat in the term's size


def plan(store: Store, ladok: Ladok, schedule: Scheduling, *, mode: str, scope: Scope,
         dry_run: bool = False, reconcile: bool = False, run_id: str | None = None,
         actor: str = ACTOR, workers: int = reading.WORKERS,
         chunk: int = CHUNK, after_chunk: Any = None) -> dict[str, Any]:
    """Read, build, diff and (unless ``dry_run``) enqueue, ``chunk`` instances at a time, each
    chunk in one transaction; returns what would change / changed. A full run's removals pass
    the guard (``guard.py``): held for an operator's approval when they are too many.
    ``after_chunk(n)`` is called after the n-th chunk's transaction (tests). While it enqueues,
    the store says so (``planning_state``): a sender beside it sends each chunk once committed."""
    with _done_if_it_fails(store, schedule.target, run_id, dry_run):
        return _plan(store, ladok, schedule, mode=mode, scope=scope, dry_run=dry_run, reconcile=reconcile,
                     run_id=run_id, actor=actor, workers=workers, chunk=chunk, after_chunk=after_chunk)


def _plan(store: Store, ladok: Ladok, schedule: Scheduling, *, mode: str, scope: Scope, dry_run: bool,
          reconcile: bool, run_id: str | None, actor: str, workers: int, chunk: int,
          after_chunk: Any) -> dict[str, Any]:
    if mode not in ("delta", "full"):
        raise ValueError("mode is delta or full")
    if not scope.terms:
        raise ValueError("no term to export: set the brygga_schema Connection's extra.terms (e.g. [\"HT2027\"]) "
                         "or choose terms in the trigger form")
    target = schedule.target
    started = utcnow()
    if mode == "delta":
        with store.transaction() as s:
            first = not ops.setting_get(s, _FULL_DONE + target)
        if first:  # no full export to this system has finished yet: this run is one
            log.info("schedule export: no full export to %s has finished yet; this run exports the whole scope",
                     target)
            mode = "full"
    if not dry_run:
        guard.resume(store, schedule)  # what an approval or a run that died left half released
    drifted = 0
    if reconcile and mode == "full" and not dry_run:
        drifted = mark_drift(store, schedule)
    if mode == "full":
        uids = reading.term_uids(ladok, scope.terms)
        marked: list[str] = []
    else:
        with store.transaction() as s:
            marked = list(s.scalars(select(ScheduleDirty.instance_uid).where(ScheduleDirty.marked_at <= started)
                                    .order_by(ScheduleDirty.marked_at).limit(DELTA_LIMIT)))
        uids = marked
    counts: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    students: set[str] = set()  # student objects built in this run (one per student, whatever the chunk)
    kept: set[str] = set()  # instances not fully read in this run: nothing of theirs ended
    pending: list[model.Change] = []  # dry run: validated together at the end (references across chunks)
    resend = (*model.RESEND, "rejected") if reconcile else model.RESEND  # the nightly run retries refusals
    watch = None if dry_run or mode != "full" else guard.Guard(
        store, schedule, mode="reconcile" if reconcile else "full", terms=scope.terms,
        organisation=scope.organisation, covers=scope.covers, run_id=run_id)

    def commit(changes: list[model.Change], held: HeldMap, errors: list[Any] = ()) -> None:  # type: ignore[assignment]
        counts.update(f"{c.action}.{c.obj.kind}" for c in changes)
        if dry_run:
            pending.extend(changes)
            return
        with store.transaction() as s:
            planning_mark(s, target, run_id or "")  # a sender beside this run keeps going while it moves
            if watch is not None:
                watch.stage(s, [c for c in changes if c.action != "upsert"], held)
                changes = [c for c in changes if c.action == "upsert"]
            totals.update(queue.enqueue(s, schedule, changes, held))
            for e in errors:
                _quarantine(s, e)

    threads = reading.pool(workers)  # one set of worker threads (and their connections) for every chunk
    if not dry_run:
        with store.transaction() as s:
            planning_mark(s, target, run_id or "")
    try:
        for i in range(0, len(uids), chunk):
            part = uids[i:i + chunk]
            # (reading the next chunk while this one is written was tried: on 2 cores the threads'
            # contention for the GIL cost what the overlap saved, bench/README.md)
            got = reading.read(store, ladok, part, workers=threads, known=students, scope=scope.keeps)
            built = [o for o in model.build(got.instances, got.participants, got.emails)
                     if o.kind != "student" or o.ext_id not in students]
            students.update(o.ext_id for o in built if o.kind == "student")
            with store.transaction() as s:
                held = queue.held(s, target, instances=part, students=[o.ext_id for o in built if o.kind == "student"])
            kept |= got.kept
            read_in, gone, outside = {t.uid for t in got.instances}, set(got.missing), set(got.outside)
            # what may end: an instance read in scope ends what it no longer has; one Ladok no longer
            # has ends whole; one that left this run's scope ends only if it was exported in it
            removable = [k for k, h in held.items()
                         if h.instance_uid in read_in and h.instance_uid not in got.kept or h.instance_uid in gone
                         or h.instance_uid in outside and scope.covers(h.term, h.organisation)]
            commit(model.diff(built, held, removable=removable, resend=resend), held, got.errors)
            totals.update(instances=len(got.instances), participants=len(got.participants), objects=len(built),
                          email_lookups=got.lookups, invalid=len(got.errors))
            if after_chunk is not None:
                after_chunk(i // chunk + 1)
    finally:
        if threads is not None:
            threads.shutdown()
    if mode == "full":  # what the scope no longer has: instances gone from it, students in no group
        for changes, held in _ended(store, target, set(uids), students, kept, scope, chunk):
            commit(changes, held)
    summary: dict[str, Any] = {
        "mode": mode, "target": target, "terms": list(scope.terms), "organisation": scope.organisation,
        **{k: totals[k] for k in ("instances", "participants", "objects", "email_lookups", "invalid")},
        "changes": dict(sorted(counts.items())), "drifted": drifted, "dry_run": dry_run, "marked": len(marked),
    }
    if dry_run:
        results, refused = schedule.validate([queue.payload(c) for c in pending]) if pending else ({}, [])
        summary["would_be_refused"] = {**{k: r for k, (o, r) in results.items() if o == "rejected"},
                                       **{e.record_id: f"{e.field}: {e.rule}" for e in refused}}
        log.info("schedule export (dry run): %s", {k: v for k, v in summary.items() if k != "would_be_refused"})
        return summary
    if watch is not None:
        summary["guard"] = watch.finish(actor)
    summary.update(enqueued=totals["enqueued"], refused=totals["refused"], batches=totals["batches"])
    with store.transaction() as s:
        for i in range(0, len(marked), 500):
            s.execute(delete(ScheduleDirty).where(ScheduleDirty.instance_uid.in_(marked[i:i + 500]),
                                                  ScheduleDirty.marked_at <= started))
        if mode == "full" and not ops.setting_get(s, _FULL_DONE + target):
            ops.setting_set(s, _FULL_DONE + target, started.isoformat(), actor)
        if reconcile and mode == "full":
            ops.setting_set(s, _RECONCILED + target, started.isoformat(), actor)
        planning_mark(s, target, run_id or "", done=True)
        ops.audit(s, actor, f"schedule.{mode}", "schedule_object", target,
                  **{k: summary[k] for k in ("terms", "instances", "objects", "changes", "drifted")})
    log.info("schedule export: %s", summary)
    return summary


_FULL_DONE = "schedule.full_export_done."  # + target: when the first full export to it finished
_RECONCILED = "schedule.reconciled."  # + target: when the last reconciliation with it finished
RECONCILE_AT = dt.time(2, 0)  # local time: the nightly reconciliation is due from then

_PLANNING = "schedule.planning."  # + target: a run is putting changes in the outbox (its run id, last chunk)
#: A run whose last chunk is older than this is taken as gone (killed): a sender beside it stops
#: waiting (the run's retry marks again; the send after the run delivers what is left).
PLANNING_STALE = dt.timedelta(minutes=5)


def planning_mark(s: Session, target: str, run_id: str, *, done: bool = False) -> None:
    """Note that run ``run_id`` is enqueuing for ``target`` (refreshed with each chunk, in its
    transaction) or that it ended (``done``). Not audited: a run's own progress, not a setting."""
    key = _PLANNING + target
    row = s.get(Setting, key)
    if row is None:
        s.add(Setting(key=key, value={"run_id": run_id, "done": done}, updated_at=utcnow(), updated_by=ACTOR))
    else:
        row.value, row.updated_at = {"run_id": run_id, "done": done}, utcnow()


@dataclasses.dataclass(frozen=True)
class Planning:
    """The last run that enqueued for a target: its id, whether it ended, whether it still moves."""
    run_id: str
    done: bool
    stale: bool


def planning_state(store: Store, target: str, now: dt.datetime | None = None) -> Planning | None:
    with store.transaction() as s:
        row = s.get(Setting, _PLANNING + target)
        if row is None:
            return None
        at = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=dt.UTC)
        return Planning(str(row.value.get("run_id", "")), bool(row.value.get("done")),
                        (now or utcnow()) - at >= PLANNING_STALE)


@contextlib.contextmanager
def _done_if_it_fails(store: Store, target: str, run_id: str | None, dry_run: bool) -> Iterator[None]:
    """A run that fails marks itself done, so the sender beside it stops waiting at once."""
    try:
        yield
    except BaseException:
        if not dry_run:
            with store.transaction() as s:
                planning_mark(s, target, run_id or "", done=True)
        raise


def run(store: Store, ladok: Ladok, schedule: Scheduling, *, mode: str, terms: list[str] | None = None,
        organisation: str | None = None, dry_run: bool = False, scheduled: bool = False, run_id: str | None = None,
        actor: str = ACTOR, now: dt.datetime | None = None, tz: dt.tzinfo = LOCAL) -> dict[str, Any]:
    """One run as the DAG asks for it: ``mode`` delta / full / reconcile — a scheduled run that is
    the first from 02:00 local time without a reconciliation that night reconciles —, the form's
    terms and unit or the Connection's (none at all: ``NotConfigured``). What the system would
    refuse is logged (the first 50) and counted in the summary."""
    with _done_if_it_fails(store, schedule.target, run_id, dry_run):  # the sender beside it need not wait
        if scheduled and reconcile_due(store, schedule.target, now or dt.datetime.now(dt.UTC), tz):
            mode = "reconcile"
        scope = Scope.of(schedule.settings, terms, organisation)
        if not scope.terms:  # configuration, not a peer: no retry makes it right
            raise NotConfigured("no term to export: choose terms in the trigger form or set the brygga_schema "
                                "Connection's extra.terms (e.g. [\"HT2027\"])")
    summary = plan(store, ladok, schedule, mode="delta" if mode == "delta" else "full", scope=scope,
                   dry_run=dry_run, reconcile=mode == "reconcile", run_id=run_id, actor=actor)
    refused = summary.get("would_be_refused") or {}
    for key, reason in list(refused.items())[:50]:
        log.warning("would be refused: %s: %s", key, reason)
    return {**summary, "would_be_refused": len(refused)}


def reconcile_due(store: Store, target: str, now: dt.datetime, tz: dt.tzinfo) -> bool:
    """Whether a scheduled run should reconcile: it is 02:00 local time or later and no
    reconciliation with ``target`` finished since today's 02:00. Kept in the store, so a night
    whose 02:00 run was missed (a long run, a restart) still gets one, and the night the clocks go
    back (02:00 twice) gets one, not two."""
    local = now.astimezone(tz)
    if local.time() < RECONCILE_AT:
        return False
    with store.transaction() as s:
        last = ops.setting_get(s, _RECONCILED + target)
    tonight = dt.datetime.combine(local.date(), RECONCILE_AT, tzinfo=tz)
    return last is None or dt.datetime.fromisoformat(last) < tonight


def _quarantine(s: Session, e: Any) -> None:
    """What Ladok sent that breaks the rules, one open row per record however often it is read."""
    what = {"Utbildningstillfalle": "instance", "Kontaktuppgifter": "contact details of student"}.get(e.kind,
                                                                                                    "participant")
    consequence = {"instance": "what the scheduling system has of it stays as it is",
                   "contact details of student": "the student goes out without an e-mail address"}.get(
        what, "left out of the schedule export; the instance's group keeps its members")
    ops.quarantine_again(s, source="ladok", message_id=e.record_id, kind=f"schedule-{what.split()[0]}",
                         reason=f"Ladok {what} {e.record_id}: {e.field}: {e.rule}; {consequence} until Ladok's "
                                "data can be read")


_ENDED = ("deleted", "deactivated")


def _ended(store: Store, target: str, read: set[str], students: set[str], kept: set[str], scope: Scope,
           chunk: int) -> Any:
    """Changes, chunk by chunk, that end what a full run did not build: the objects of instances
    exported in this scope that its terms no longer have, and students in no group (of this
    scope, of another scope, or of an instance kept as it was)."""
    with store.transaction() as s:
        gone = sorted({u for u, term, org in s.execute(
            select(ScheduleObject.instance_uid, ScheduleObject.term, ScheduleObject.organisation).where(
                ScheduleObject.target == target, ScheduleObject.instance_uid.is_not(None),
                ScheduleObject.status.not_in(_ENDED)).distinct())
            if u is not None and u not in read and scope.covers(term, org)})
    for i in range(0, len(gone), chunk):
        with store.transaction() as s:
            held = queue.held(s, target, instances=gone[i:i + chunk])
        yield model.diff([], held, removable=list(held)), held
    members = students | _members_elsewhere(store, target, scope, kept)
    last = ""
    while True:
        with store.transaction() as s:
            rows = s.execute(select(ScheduleObject.ext_id, ScheduleObject.content_hash, ScheduleObject.status,
                                    ScheduleObject.version, ScheduleObject.outbox_id)
                             .where(ScheduleObject.target == target, ScheduleObject.kind == "student",
                                    ScheduleObject.ext_id > last).order_by(ScheduleObject.ext_id).limit(5000)).all()
        if not rows:
            return
        last = rows[-1][0]
        ended: HeldMap = {f"student:{e}": Held(h, st, None, None, None, v, ob) for e, h, st, v, ob in rows
                          if e not in members and st not in _ENDED}
        if ended:
            yield model.diff([], ended, removable=list(ended)), ended


def _members_elsewhere(store: Store, target: str, scope: Scope, kept: set[str]) -> set[str]:
    """The students of live memberships this run did not look at: outside its scope, or of an
    instance it kept as it was."""
    t = ScheduleObject
    outside = and_(t.term.is_not(None), or_(t.term.not_in(scope.terms), t.organisation.is_(None),
                                            t.organisation != scope.organisation)) if scope.organisation \
        else t.term.not_in(scope.terms)
    found: set[str] = set()
    ids = sorted(kept)
    with store.transaction() as s:
        q = select(t.ext_id).where(t.target == target, t.kind == "membership", t.status.not_in(_ENDED))
        for ext in s.scalars(q.where(outside)):
            found.add(ext.partition(":")[2])
        for i in range(0, len(ids), 500):
            for ext in s.scalars(q.where(t.instance_uid.in_(ids[i:i + 500]))):
                found.add(ext.partition(":")[2])
    return found
