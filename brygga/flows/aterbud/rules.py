"""The återbud rules: the 3-week rule for cases, what an återbud from NyA calls for given what
Brygga knows of its admission, which Ladok hinder makes which case, who entered an återbud in
Ladok. Pure: no peer, no store."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from brygga.flows.kit.flow import Flow
from brygga.records import LadokEvent, NyaAterbud
from brygga.states import AdmissionState, CaseAction, CaseCause, InboxStatus
from mappings.base import RecordError

#: NyA's återbud stream per round (checkpoint 0), Ladok's feed (checkpoint 1); inbox sources: NyA
#: AterbudId, Ladok HandelseUID of AterbudEvents.
FLOW = Flow("aterbud-sync", "brygga_aterbud", checkpoints=("nya-aterbud:{round}", "ladok-aterbud"),
            destination="nya", kinds=("aterbud",), sources=("nya-aterbud", "ladok-aterbud"))
ACTOR = FLOW.actor
NYA_SOURCE, LADOK_SOURCE = FLOW.sources
LADOK_CHECKPOINT = FLOW.checkpoint(which=1)
DESTINATION = FLOW.destination
KIND = FLOW.kinds[0]
EXTERNT_SYSTEM = "NyA"  # sd:ExterntSystem on the återbud Brygga writes to Ladok
EARLY_AVBROTT_DAYS = 21  # avbrott before study start + 21 days is early (registration withdrawn)

#: Ladok's hinder keys that refuse an återbud.
HINDER_ATERBUD_FINNS = "studiedeltagande.hinder.aterbud.finns"
HINDER_REGISTRERAD = "studiedeltagande.hinder.registrerad"
HINDER_AVBROTT_FINNS = "studiedeltagande.hinder.avbrott.finns"

#: A Ladok hinder refusing an återbud -> the case it makes.
CASE_OF_HINDER: dict[str, CaseCause] = {
    HINDER_ATERBUD_FINNS: CaseCause.ALREADY_ATERBUD,
    HINDER_REGISTRERAD: CaseCause.REGISTERED,
    HINDER_AVBROTT_FINNS: CaseCause.AVBROTT_EXISTS,
}


def checkpoint_name(round_code: str) -> str:
    return FLOW.checkpoint(round_code)


def idempotency_key(admission_id: str) -> str:
    """One återbud per NyA admission: the same admission is never reported twice."""
    return f"nya:aterbud:{admission_id}"


def as_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def suggested_action(cause: str, reported_at: dt.date | str | None, study_start: dt.date | str | None) -> str:
    """The action the guide prescribes for a case: registered → avbrott from the date the återbud
    was reported, early (registration withdrawn) when that date is before study start + 21 days
    (day 20 early, day 21 ordinary — Ladok's own boundary); återbud/avbrott already there → none."""
    if cause == CaseCause.REGISTERED:
        rep, start = as_date(reported_at), as_date(study_start)
        if rep is not None and start is not None and rep < start + dt.timedelta(days=EARLY_AVBROTT_DAYS):
            return CaseAction.EARLY_AVBROTT
        return CaseAction.AVBROTT
    if cause in (CaseCause.NOT_ACCEPTED, CaseCause.PLACED_MEANWHILE, CaseCause.NOT_IN_LADOK):
        return CaseAction.ATERBUD
    return CaseAction.NONE


@dataclasses.dataclass
class Outcome:
    """What to commit for one NyA återbud (decided outside the transaction)."""

    aterbud_id: str
    status: str  # inbox status
    action: str  # applied|already_applied|case|declined|already_declined|echo|not_in_ladok|quarantined
    admission_id: str | None = None
    aterbud_date: str | None = None
    case: dict[str, Any] | None = None
    reason: str | None = None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


def triage(item: NyaAterbud | RecordError, row: dict[str, Any] | None) -> Outcome | None:
    """The outcome an återbud has without asking Ladok, or None when Ladok must be asked.

    ``row``: what the store knows of its admission (``state``, ``antagning_uid`` ...), or None."""
    if isinstance(item, RecordError):
        return Outcome(item.record_id, InboxStatus.QUARANTINED, "quarantined", reason=str(item))
    base: dict[str, Any] = dict(aterbud_id=item.aterbud_id, admission_id=item.admission_id, aterbud_date=item.date)
    if item.origin == "ladok":  # Ladok's own återbud, reported by us: never applied back (no loop)
        return Outcome(status=InboxStatus.SKIPPED, action="echo", **base)
    state = (row or {}).get("state")
    if state in (AdmissionState.PENDING, AdmissionState.UNHANDLED, AdmissionState.INVALID):
        return Outcome(status=InboxStatus.PROCESSED, action="declined", **base)
    if state == AdmissionState.DECLINED:
        return Outcome(status=InboxStatus.SKIPPED, action="already_declined", **base)
    return None


def entered_by(e: LadokEvent) -> str:
    """Who entered an återbud in Ladok, from what the AterbudEvent carries: ``system:<name>`` when
    a system sent it (``ExterntSystem``: NyA), ``system:ladok`` when Ladok made it itself
    (``AutomatisktAterbud``), ``student`` when the acting user is the student (the EventContext's
    ``AnvandareUID`` is the event's ``StudentUID``: the student web), else ``staff``."""
    f = e.fields
    externt = f.get("ExterntSystem")
    if isinstance(externt, str) and externt.strip():
        return f"system:{externt.strip()}"
    if str(f.get("AutomatisktAterbud") or "").strip().lower() == "true":
        return "system:ladok"
    raw = f.get("EventContext")
    ctx: dict[str, Any] = raw if isinstance(raw, dict) else {}
    actor = ctx["AnvandareUID"].strip() if isinstance(ctx.get("AnvandareUID"), str) else ""
    student = e.student_uid or (ctx["StudentUID"] if isinstance(ctx.get("StudentUID"), str) else None)
    if actor and student and actor == student:
        return "student"
    return "staff"
