"""Återbud NyA → Ladok: every open round's återbud stream (``GetAterbud`` from the round's stored
NextSequence), deduplicated by AterbudId, applied on the tillfällesantagning the admission import
placed, or made an återbudsärende when Ladok refuses it.

The Ladok calls happen before a chunk's transaction and are safe to repeat; inbox rows, cases,
admission updates, audit and the round's checkpoint commit together."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.http import UnreadableReply, if_found
from adapters.ladok import Refused
from brygga.flows.aterbud.rules import (
    ACTOR,
    CASE_OF_HINDER,
    EXTERNT_SYSTEM,
    FLOW,
    HINDER_ATERBUD_FINNS,
    NYA_SOURCE,
    Outcome,
    as_date,
    suggested_action,
    triage,
)
from brygga.flows.aterbud.settings import SETTING_ACCEPT_FROM_NYA, settings
from brygga.flows.kit.quarantine import unreadable
from brygga.flows.kit.sequence import SequenceFollower
from brygga.flows.ports import Ladok, Nya, SequenceReply
from brygga.logmask import get_logger
from brygga.records import NyaAterbud, Utbildningstillfalle
from brygga.states import AdmissionState, CaseCause, CaseStatus, InboxStatus, QueueStatus
from brygga.store import Store, ops
from brygga.store.models import AterbudCase, NyaAdmission, UnhandledAdmission, utcnow
from mappings.base import RecordError

log = get_logger("brygga.flows.aterbud")


class _Lookups:
    """Cached Ladok lookups for a run (instances, students' plans)."""

    def __init__(self, ladok: Ladok):
        self.ladok = ladok
        self.tillfallen: dict[str, Utbildningstillfalle | None] = {}

    def tillfalle(self, uid: str | None) -> Utbildningstillfalle | None:
        if not uid:
            return None
        if uid not in self.tillfallen:
            self.tillfallen[uid] = if_found(self.ladok.tillfalle, uid)
        return self.tillfallen[uid]

    def find_antagning(self, personnummer: str, tillfalle_uid: str) -> str | None:
        """The student's tillfällesantagning on the instance, from Ladok (study plan), if any."""
        student = self.ladok.student_by_personnummer(personnummer)
        if student is None or not student.uid:
            return None
        nodes = if_found(self.ladok.study_plan, student.uid, default=[])
        hits = [n for n in nodes if n.tillfalle_uid == tillfalle_uid]
        hits.sort(key=lambda n: n.aterbud)  # one without återbud first
        return hits[0].antagning_uid if hits else None


def _education(t: Utbildningstillfalle | None, fallback: str | None) -> str | None:
    if t is None:
        return fallback
    return " ".join(x for x in (t.utbildningskod, t.name_sv) if x) or fallback


def _case(item: NyaAterbud, cause: str, antagning_uid: str, tillfalle_uid: str | None, row: dict[str, Any] | None,
          lookups: _Lookups) -> dict[str, Any]:
    t = lookups.tillfalle(tillfalle_uid)
    start = as_date(t.start) if t is not None else None
    reported = as_date(item.date)
    fallback = " ".join(x for x in ((row or {}).get("utbildningskod"), (row or {}).get("tillfalleskod")) if x) or None
    return {
        "nya_aterbud_id": item.aterbud_id, "round": None, "nya_admission_id": item.admission_id,
        "personnummer": item.personnummer, "utbildningstillfalle_uid": tillfalle_uid,
        "education": _education(t, fallback), "reported_at": reported, "cause": cause,
        "suggested_action": suggested_action(cause, reported, start), "antagning_uid": antagning_uid,
        "study_start": start,
    }


def _decide(item: NyaAterbud | RecordError, row: dict[str, Any] | None, accept: bool, ladok: Ladok,
            lookups: _Lookups) -> Outcome:
    decided = triage(item, row)
    lost_try = None
    if decided is not None and decided.action == "declined" and (row or {}).get("state") == AdmissionState.PENDING:
        # A pending admission may be in Ladok all the same: a placement that Ladok made and whose
        # process died before recording it (the fault-injection harness found one declined here
        # and left in Ladok without its återbud). Ladok's study plan decides.
        assert isinstance(item, NyaAterbud)
        lost_try = lookups.find_antagning(item.personnummer, item.offer_id)
    if decided is not None and lost_try is None:
        return decided
    assert isinstance(item, NyaAterbud)
    base: dict[str, Any] = dict(aterbud_id=item.aterbud_id, admission_id=item.admission_id, aterbud_date=item.date)
    state = (row or {}).get("state")
    antagning_uid = (row or {}).get("antagning_uid") if state in (AdmissionState.PLACED, AdmissionState.HANDLED) else None
    antagning_uid = antagning_uid or lost_try
    tillfalle_uid = (row or {}).get("utbildningstillfalle_uid") or item.offer_id
    if not antagning_uid:
        # Unknown to the store (placed by hand, or before Brygga): look for it in the student's
        # study plan by the offer's utbildningstillfälle (OfferId = Ladok UID).
        antagning_uid = lookups.find_antagning(item.personnummer, item.offer_id)
        tillfalle_uid = item.offer_id
        if not antagning_uid:
            return Outcome(status=InboxStatus.SKIPPED, action="not_in_ladok", reason=(
                "no tillfällesantagning in Ladok for this admission; it was never placed, and the admission "
                "import records it as declined when it reads the admission"), **base)
    if not accept:
        return Outcome(status=InboxStatus.PROCESSED, action="case", **base,
                       case=_case(item, CaseCause.NOT_ACCEPTED, antagning_uid, tillfalle_uid, row, lookups))
    try:
        ladok.aterbud(antagning_uid, item.date, externt_system=EXTERNT_SYSTEM)
        return Outcome(status=InboxStatus.PROCESSED, action="applied", detail={
            "antagning_uid": antagning_uid, **({"placed_by_a_lost_try": item.offer_id} if lost_try else {})}, **base)
    except Refused as e:
        key = e.hinder.key
        if key == HINDER_ATERBUD_FINNS:
            existing = ladok.existing_aterbud(antagning_uid)
            if existing is not None and existing.get("externt_system") == EXTERNT_SYSTEM:
                # Already applied from NyA: ours after a crash, or covered by its programme's återbud.
                return Outcome(status=InboxStatus.PROCESSED, action="already_applied",
                               detail={"antagning_uid": antagning_uid, "ladok_date": existing.get("date")}, **base)
        cause = CASE_OF_HINDER.get(key)
        if cause is None:
            return Outcome(status=InboxStatus.QUARANTINED, action="quarantined",
                           reason=f"Ladok refused the återbud on {antagning_uid}: {e}", **base)
        return Outcome(status=InboxStatus.PROCESSED, action="case", detail={"hinder": key},
                       case=_case(item, cause, antagning_uid, tillfalle_uid, row, lookups), **base)


def _row_dict(r: NyaAdmission) -> dict[str, Any]:
    return {k: getattr(r, k) for k in ("admission_id", "state", "antagning_uid", "utbildningstillfalle_uid",
                                       "utbildningskod", "tillfalleskod", "package_uid", "aterbud_date")}


class AterbudStream(SequenceFollower[NyaAterbud]):
    """One round's återbud from NyA, chunk by chunk: decided outside the transaction (Ladok is
    asked), then the inbox, cases, admission updates and audit with the round's checkpoint."""

    flow = FLOW
    chunk = 200

    def __init__(self, store: Store, nya: Nya, ladok: Ladok, round_code: str, *, accept: bool, lookups: _Lookups,
                 counts: Counter[str], **kw: Any):
        super().__init__(store, round_code, **kw)
        self.nya, self.ladok, self.accept, self.lookups, self.counts = nya, ladok, accept, lookups, counts

    def open(self, from_sequence: int) -> AbstractContextManager[SequenceReply[NyaAterbud]]:
        return self.nya.aterbud(self.round, from_sequence)

    def prepare(self, part: list[NyaAterbud | RecordError]) -> list[Outcome]:
        ids = [_id(x) for x in part]
        with self.store.transaction() as s:
            seen = ops.inbox_seen(s, NYA_SOURCE, ids) if ids else set()
            adm_ids = [x.admission_id for x in part if isinstance(x, NyaAterbud)]
            rows = {r.admission_id: _row_dict(r) for r in s.scalars(
                select(NyaAdmission).where(NyaAdmission.admission_id.in_(adm_ids)))} if adm_ids else {}
        outcomes: list[Outcome] = []
        for x, xid in zip(part, ids, strict=True):
            if xid in seen:
                self.counts["already_seen"] += 1
                continue
            row = rows.get(x.admission_id) if isinstance(x, NyaAterbud) else None
            outcomes.append(_decide(x, row, self.accept, self.ladok, self.lookups))  # Ladok: outside the transaction
        return outcomes

    def apply(self, s: Session, part: list[NyaAterbud | RecordError], outcomes: list[Outcome]) -> None:
        self.counts["read"] += len(part)
        again = ops.inbox_seen(s, NYA_SOURCE, [o.aterbud_id for o in outcomes]) if outcomes else set()
        fresh = [o for o in outcomes if o.aterbud_id not in again]
        self.counts["already_seen"] += len(outcomes) - len(fresh)
        for o in fresh:
            self.counts[o.action] += 1
            _apply_outcome(s, self.round, o)
        ops.inbox_record(s, NYA_SOURCE, [(o.aterbud_id, "aterbud", o.status) for o in fresh])


def _id(x: NyaAterbud | RecordError) -> str:
    return x.aterbud_id if isinstance(x, NyaAterbud) else x.record_id


def nya_to_ladok(store: Store, nya: Nya, ladok: Ladok, *, rounds: Iterable[str] | None = None,
                 chunk: int = 200, after_commit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Apply NyA's återbud of every open round (or ``rounds``) in Ladok; returns counts. A round
    whose reply cannot be read is quarantined there; the other rounds go on and the first such
    failure is raised at the end."""
    counts: Counter[str] = Counter()
    lookups = _Lookups(ladok)
    accept = settings(store)[SETTING_ACCEPT_FROM_NYA]
    failures: list[UnreadableReply] = []
    if rounds is None:
        with unreadable(store, consumer="the återbud sync"):
            rounds = nya.open_rounds()
    for round_code in rounds:
        try:
            AterbudStream(store, nya, ladok, round_code, accept=accept, lookups=lookups, counts=counts, chunk=chunk,
                          after_commit=after_commit).follow()
        except UnreadableReply as e:  # quarantined by the follower; the other rounds go on
            failures.append(e)
    if failures:
        raise failures[0]
    summary = {k: counts[k] for k in ("read", "applied", "already_applied", "case", "declined", "already_declined",
                                      "echo", "not_in_ladok", "quarantined", "already_seen")}
    log.info("återbud NyA → Ladok: %s", summary)
    return summary


def _apply_outcome(s: Session, round_code: str, o: Outcome) -> None:
    row = s.get(NyaAdmission, o.admission_id) if o.admission_id else None
    if row is not None and o.aterbud_date and not row.aterbud_date:
        row.aterbud_date = o.aterbud_date  # NyA knows about this återbud: never report it back
    if o.action == "quarantined":
        ops.quarantine(s, source="nya", message_id=o.aterbud_id, kind="Aterbud", reason=o.reason or "")
    elif o.action == "declined" and row is not None:
        _decline(s, round_code, row, o)
    elif o.action in ("applied", "already_applied", "not_in_ladok"):
        if row is not None and row.state == AdmissionState.PENDING and o.detail.get("placed_by_a_lost_try"):
            # the placement Ladok made for a process that died: recorded now (the placement run skips it)
            row.state, row.antagning_uid = AdmissionState.PLACED, o.detail["antagning_uid"]
            row.utbildningstillfalle_uid = o.detail["placed_by_a_lost_try"]
            row.placed_at, row.claimed_by, row.claimed_until = utcnow(), None, None
        extra = {"date": o.aterbud_date, **o.detail} if o.action == "applied" else (
            {"reason": o.reason} if o.action == "not_in_ladok" else o.detail)
        ops.audit(s, ACTOR, f"aterbud.{o.action}", "nya_admission", o.admission_id, aterbud_id=o.aterbud_id, **extra)
    elif o.action == "case" and o.case is not None:
        _open_case(s, o, {**o.case, "round": round_code}, o.detail)


def _decline(s: Session, round_code: str, row: NyaAdmission, o: Outcome) -> None:
    if row.state not in (AdmissionState.PENDING, AdmissionState.UNHANDLED, AdmissionState.INVALID):
        # The admission import placed it after we decided (the two DAGs run side by side): it is in
        # Ladok without its återbud. Never overwrite the placement; staff get a case to enter it.
        if row.state == AdmissionState.PLACED and row.antagning_uid:
            _open_case(s, o, dict(
                nya_aterbud_id=o.aterbud_id, round=round_code, nya_admission_id=row.admission_id,
                personnummer=row.personnummer, utbildningstillfalle_uid=row.utbildningstillfalle_uid,
                education=" ".join(x for x in (row.utbildningskod, row.tillfalleskod) if x) or None,
                reported_at=as_date(o.aterbud_date), cause=CaseCause.PLACED_MEANWHILE,
                suggested_action=suggested_action(CaseCause.PLACED_MEANWHILE, None, None),
                antagning_uid=row.antagning_uid), {})
        return
    old = row.state
    row.state = AdmissionState.DECLINED
    u = s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id == row.admission_id)).first()
    if u is not None and u.status == QueueStatus.OPEN:
        u.status, u.resolution, u.resolved_by, u.resolved_at = QueueStatus.RESOLVED, "återbud", ACTOR, utcnow()
    ops.audit(s, ACTOR, "aterbud.declined", "nya_admission", row.admission_id, aterbud_id=o.aterbud_id,
              previous_state=old)


def _open_case(s: Session, o: Outcome, fields: dict[str, Any], detail: dict[str, Any]) -> None:
    """An återbudsärende for the återbud, once (a repeat finds the one there)."""
    if s.scalars(select(AterbudCase).where(AterbudCase.nya_aterbud_id == o.aterbud_id)).first() is not None:
        return
    c = AterbudCase(**fields, status=CaseStatus.OPEN)
    s.add(c)
    s.flush()
    ops.audit(s, ACTOR, "aterbud_case.created", "aterbud_case", str(c.id), aterbud_id=o.aterbud_id,
              admission_id=o.admission_id, cause=c.cause, suggested_action=c.suggested_action, **detail)
