"""Återbud Ladok → NyA: ``sd:AterbudEvent`` entered in Ladok (by staff or the student) followed in
Ladok's feed with the shared feed follower (checkpoint ``ladok-aterbud``), one ``ReportAterbud``
item per NyA admission enqueued in the same transaction as the inbox and the checkpoint, and the
outbox sent to NyA. No echo: an återbud NyA already knows is never reported back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brygga import tracing
from brygga.flows.aterbud.rules import (
    ACTOR,
    DESTINATION,
    EXTERNT_SYSTEM,
    FLOW,
    KIND,
    LADOK_SOURCE,
    entered_by,
    idempotency_key,
)
from brygga.flows.aterbud.settings import SETTING_STUDENTS_MAY_ENTER
from brygga.flows.kit import outbox
from brygga.flows.kit.feed import Batch, FeedFollower
from brygga.flows.ports import Ladok, Nya
from brygga.logmask import get_logger
from brygga.records import AterbudReport, LadokEvent
from brygga.states import OUTBOX_WAITING, InboxStatus
from brygga.store import Store, ops
from brygga.store.models import NyaAdmission, OutboxMessage, utcnow
from mappings.base import RecordError

log = get_logger("brygga.flows.aterbud")


class AterbudFeed(FeedFollower):
    """Återbud entered in Ladok, from the feed: a batch's AterbudEvents as outbox rows for NyA."""

    flow, which = FLOW, 1
    consumer = "the återbud sync"
    gap_id = "aterbud-feed-gap"
    consequence = "Återbud entered in Ladok in the gap were not reported to NyA: reconcile them by hand"
    audit_start = False

    def __init__(self, store: Store, ladok: Ladok, **kw: Any):
        super().__init__(store, ladok, **kw)
        self.counts: Counter[str] = Counter()

    def keep(self, item: Any) -> bool:
        if item.__class__ is LadokEvent:
            return bool(item.event_type == "AterbudEvent")
        return isinstance(item, RecordError) and (item.kind or "") == "AterbudEvent"

    def apply(self, s: Session, batch: Batch, prepared: Any) -> None:
        _enqueue(s, batch, self.counts)


def ladok_to_nya(store: Store, ladok: Ladok, *, max_pages: int = 500, batch_size: int = 1000,
                 after_commit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Follow Ladok's feed from the ``ladok-aterbud`` checkpoint and enqueue återbud for NyA."""
    f = AterbudFeed(store, ladok, max_pages=max_pages, batch_size=batch_size, after_commit=after_commit)
    done = f.follow()
    summary = {"pages": done.pages, "events": done.entries, **{k: f.counts[k] for k in (
        "aterbud_events", "enqueued", "echo", "not_nya", "already_seen", "quarantined", "student_not_allowed")},
        "gaps": done.gaps, "page": done.page, "skipped_pages": done.skipped_pages}
    log.info("återbud Ladok → NyA: %s", summary)
    return summary


def _enqueue(s: Session, batch: Batch, counts: Counter[str]) -> None:
    """A batch's återbud events as outbox rows, in the follower's transaction."""
    events = batch.events
    students_may_enter = bool(ops.setting_get(s, SETTING_STUDENTS_MAY_ENTER, True))
    seen = ops.inbox_seen(s, LADOK_SOURCE, [e.handelse_uid for e in events]) if events else set()
    rows: dict[str, NyaAdmission] = {}
    antagningar = list({e.fields.get("TillfallesantagningUID") for e in events})
    if antagningar:
        for r in s.scalars(select(NyaAdmission).where(NyaAdmission.antagning_uid.in_(antagningar))):
            if r.antagning_uid:
                rows.setdefault(r.antagning_uid, r)
    inbox: list[tuple[str, str, str]] = []
    messages: list[dict[str, Any]] = []
    done_here: set[str] = set()
    for e in events:
        if e.handelse_uid in seen or e.handelse_uid in done_here:
            counts["already_seen"] += 1
            continue
        done_here.add(e.handelse_uid)
        counts["aterbud_events"] += 1
        message = _report(s, e, rows.get(e.fields.get("TillfallesantagningUID") or ""), students_may_enter, counts)
        if message is not None:
            messages.append(message)
        inbox.append((e.handelse_uid, "aterbud-event",
                      InboxStatus.PROCESSED if message is not None else InboxStatus.SKIPPED))
    counts["enqueued"] += ops.outbox_enqueue(s, messages)
    for m in messages:
        ops.audit(s, ACTOR, "aterbud.enqueued", "nya_admission", m["payload"]["report"]["admission_id"],
                  handelse_uid=m["payload"]["handelse_uid"], entered_by=m["payload"]["entered_by"],
                  date=m["payload"]["report"]["date"])
    ops.inbox_record(s, LADOK_SOURCE, inbox)
    for err in batch.errors:
        counts["quarantined"] += 1
        ops.quarantine(s, source="ladok", message_id=err.record_id, kind="AterbudEvent", reason=str(err))


def _report(s: Session, e: LadokEvent, row: NyaAdmission | None, students_may_enter: bool,
            counts: Counter[str]) -> dict[str, Any] | None:
    """The outbox row reporting one återbud event to NyA, or None when NyA is not to be told."""
    f = e.fields
    auid = f.get("TillfallesantagningUID")
    if row is None:
        counts["not_nya"] += 1  # not an admission from NyA: nothing to tell NyA
        return None
    if row.aterbud_date or ((f.get("ExterntSystem") or None) == EXTERNT_SYSTEM and not row.package_uid):
        counts["echo"] += 1  # NyA already has it (it came from NyA, or NyA accepted our report): no echo
        return None
    who = entered_by(e)
    if who == "student" and not students_may_enter:
        counts["student_not_allowed"] += 1
        ops.audit(s, ACTOR, "aterbud.student_entered_while_not_allowed", "nya_admission", row.admission_id,
                  handelse_uid=e.handelse_uid, antagning_uid=auid,
                  note="återbud entered by the student in Ladok although the university's setting says "
                       "students may not; it is in Ladok, so NyA is told; check Ladok's setting")
    date = str(f.get("Aterbudsdatum") or e.updated[:10])[:10]
    return {
        "destination": DESTINATION, "kind": KIND, "idempotency_key": idempotency_key(row.admission_id),
        "correlation": f"aterbud:{row.round}", "traceparent": tracing.child(row.traceparent),  # the admission's trace
        "payload": {"round": row.round, "report": {"admission_id": row.admission_id, "date": date,
                                                   "source_reference": f"ladok:tillfallesantagning:{auid}"},
                    "handelse_uid": e.handelse_uid, "entered_by": who, "antagning_uid": auid},
    }


class AterbudSender(outbox.OutboxSender):
    """The outbox's återbud to NyA, one request per round. Registered and duplicate (NyA already
    had one) are both done; rejected is quarantined."""

    destination, kind, prefix = DESTINATION, KIND, "aterbud"

    def __init__(self, store: Store, nya: Nya, **kw: Any):
        super().__init__(store, **kw)
        self.nya = nya

    def send(self, group: list[OutboxMessage], rid: str) -> outbox.Results:
        reports = [AterbudReport(**m.payload["report"]) for m in group]
        return self.nya.report_aterbud(reports, group[0].payload["round"], rid)

    def settle(self, s: Session, group: list[OutboxMessage], results: outbox.Results, outcomes: Counter[str],
               rid: str) -> None:
        def reported(m: OutboxMessage, outcome: str, reason: str | None) -> None:
            adm = m.payload["report"]["admission_id"]
            row = s.get(NyaAdmission, adm)
            if row is not None and not row.aterbud_date:
                row.aterbud_date = m.payload["report"]["date"]
            ops.audit(s, ACTOR, "aterbud.reported", "nya_admission", adm, outcome=outcome, reason=reason,
                      request_id=rid)

        outbox.settle(s, group, results, outcomes, key=lambda m: m.payload["report"]["admission_id"],
                      ok=("registered", "duplicate"), missing="NyA did not answer for this admission",
                      max_attempts=self.max_attempts, base_seconds=self.base_seconds, on_ok=reported)


def send_pending(store: Store, nya: Nya, *, batch: int = 1000, max_attempts: int = 8,
                 base_seconds: float = 30.0, after_send: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Send the due återbud to NyA, one ReportAterbud per round (at most ``batch`` items)."""
    outcomes, requests, failure = AterbudSender(store, nya, batch=batch, max_attempts=max_attempts,
                                                base_seconds=base_seconds, after_send=after_send).run()
    if failure is not None:
        log.warning("återbud send: NyA failing, %s item(s) backed off: %s", outcomes["failed"], failure)
        raise failure
    summary = {"requests": requests, **{k: outcomes[k] for k in ("registered", "duplicate", "rejected", "failed",
                                                                  "dead")}}
    log.info("återbud send: %s", summary)
    return summary


def pending_count(store: Store) -> int:
    """Återbud waiting to be sent to NyA (the DAG's health figure)."""
    with store.transaction() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.destination == DESTINATION, OutboxMessage.kind == KIND,
            OutboxMessage.status.in_(OUTBOX_WAITING))) or 0


def report_for_drift(store: Store, *, drift_id: int, admission_id: str, date: str, antagning_uid: str | None,
                     actor: str) -> dict[str, Any]:
    """Tell NyA of an återbud Ladok has and NyA lacks (the reconciliation found it): queued once per
    drift; ``send_pending`` sends it (NyA keeps one återbud per admission: a repeat is a duplicate)."""
    with store.transaction() as s:
        row = s.get(NyaAdmission, admission_id)
        if row is None:
            raise KeyError(f"no admission {admission_id}")
        ops.insert_new(s, OutboxMessage, ["idempotency_key"], [{
            "destination": DESTINATION, "kind": KIND, "idempotency_key": f"{idempotency_key(admission_id)}:drift:{drift_id}",
            "correlation": f"aterbud:{row.round}", "status": "pending", "attempts": 0,
            "next_attempt_at": utcnow(), "created_at": utcnow(), "traceparent": tracing.child(row.traceparent),
            "payload": {"round": row.round, "report": {"admission_id": admission_id, "date": date[:10],
                                                       "source_reference": f"ladok:tillfallesantagning:{antagning_uid}"},
                        "handelse_uid": None, "entered_by": "reconciliation", "antagning_uid": antagning_uid},
        }])
        ops.audit(s, actor, "aterbud.report_queued", "nya_admission", admission_id, drift_id=drift_id, date=date[:10])
    return {"admission_id": admission_id, "queued": True}
