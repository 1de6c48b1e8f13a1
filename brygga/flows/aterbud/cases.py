"""Återbudsärenden: what staff do with a case — carry out its suggested action in Ladok (avbrott /
tidigt avbrott / the återbud), or close it with a note. Every action is audited; a repeat does
nothing more (an avbrott already in Ladok counts as done, a closed case stays closed)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from adapters.ladok import Refused
from brygga.flows.aterbud.rules import (
    CASE_OF_HINDER,
    EXTERNT_SYSTEM,
    HINDER_ATERBUD_FINNS,
    HINDER_AVBROTT_FINNS,
    suggested_action,
)
from brygga.flows.ports import Ladok
from brygga.states import CaseAction, CaseCause, CaseStatus
from brygga.store import Store, ops
from brygga.store.models import AterbudCase, utcnow


class CaseError(RuntimeError):
    """An action on a case could not be carried out (the case is unchanged)."""


def state(c: AterbudCase) -> dict[str, Any]:
    """Where a case stands after an action (no personal data: the console and the CLI show the
    case itself through ``brygga.views.cases``)."""
    return {"id": c.id, "status": c.status, "cause": c.cause, "suggested_action": c.suggested_action,
            "closed_by": c.closed_by, "closed_at": c.closed_at.isoformat() if c.closed_at else None, "note": c.note}


def _close(s: Session, c: AterbudCase, actor: str, note: str) -> None:
    c.status, c.closed_at, c.closed_by, c.note = CaseStatus.CLOSED, utcnow(), actor, note or c.note
    ops.audit(s, actor, "aterbud_case.close", "aterbud_case", str(c.id), note=note)


def close_case(store: Store, case_id: int, *, actor: str, note: str = "") -> dict[str, Any]:
    """Close a case (after handling it in Ladok by hand). Closing a closed case changes nothing."""
    with store.transaction() as s:
        c = s.get(AterbudCase, case_id)
        if c is None:
            raise CaseError(f"no återbudsärende {case_id}")
        if c.status != CaseStatus.CLOSED:
            _close(s, c, actor, note)
        return state(c)


def apply_case(store: Store, ladok: Ladok, case_id: int, *, actor: str, note: str = "") -> dict[str, Any]:
    """Carry out the suggested action in Ladok, then close the case (audited).

    ``early_avbrott`` / ``avbrott``: avbrott from the date the återbud was reported (Ladok makes it
    early — registration withdrawn — before study start + 21 days); an avbrott already in Ladok
    counts as done. ``none``: just close. ``aterbud`` (not accepted automatically): the återbud in
    Ladok; if Ladok now refuses it the case takes that cause and stays open."""
    with store.transaction() as s:
        c = s.get(AterbudCase, case_id)
        if c is None:
            raise CaseError(f"no återbudsärende {case_id}")
        if c.status == CaseStatus.CLOSED:
            return {**state(c), "result": "already closed"}
        action, auid, reported = c.suggested_action, c.antagning_uid, c.reported_at
    result: dict[str, Any] = {"performed": action}
    if action in (CaseAction.EARLY_AVBROTT, CaseAction.AVBROTT):
        _avbrott(store, ladok, case_id, actor, action, auid, reported, result)
    elif action == CaseAction.ATERBUD:
        updated = _aterbud(store, ladok, case_id, actor, auid, reported, result)
        if updated is not None:
            return updated
    with store.transaction() as s:
        c = ops.one(s, AterbudCase, case_id)
        ops.audit(s, actor, "aterbud_case.apply", "aterbud_case", str(case_id), **result)
        if c.status != CaseStatus.CLOSED:
            _close(s, c, actor, note or f"suggested action carried out by Brygga: {action}")
        return {**state(c), "result": result}


def _avbrott(store: Store, ladok: Ladok, case_id: int, actor: str, action: str, auid: str | None,
             reported: dt.date | None, result: dict[str, Any]) -> None:
    if not auid or reported is None:
        raise CaseError(f"case {case_id} has no tillfällesantagning or date: handle it in Ladok by hand")
    try:
        r = ladok.avbrott(auid, reported, externreferens=f"brygga:aterbudsarende:{case_id}")
        result.update(avbrott_date=r["date"], early=r["early"], ladok_note=r["note"])
    except Refused as e:
        if e.hinder.key != HINDER_AVBROTT_FINNS:
            _audit_failure(store, actor, case_id, action, e)
            raise CaseError(f"Ladok refused the avbrott: {e.hinder.describe()}") from None
        result["already"] = "avbrott already recorded in Ladok"


def _aterbud(store: Store, ladok: Ladok, case_id: int, actor: str, auid: str | None,
             reported: dt.date | None, result: dict[str, Any]) -> dict[str, Any] | None:
    """The återbud in Ladok; a case Ladok now refuses takes the new cause (returned, still open)."""
    if not auid:
        raise CaseError(f"case {case_id} has no tillfällesantagning: handle it in Ladok by hand")
    try:
        ladok.aterbud(auid, reported or dt.date.today(), externt_system=EXTERNT_SYSTEM)
        result["aterbud"] = "applied"
        return None
    except Refused as e:
        key = e.hinder.key
        if key == HINDER_ATERBUD_FINNS:
            result["already"] = "återbud already recorded in Ladok"
            return None
        cause = CASE_OF_HINDER.get(key)
        if cause is None:
            _audit_failure(store, actor, case_id, CaseAction.ATERBUD, e)
            raise CaseError(f"Ladok refused the återbud: {e.hinder.describe()}") from None
    with store.transaction() as s:
        c = ops.one(s, AterbudCase, case_id)
        c.cause = cause
        c.suggested_action = suggested_action(cause, c.reported_at, c.study_start)
        ops.audit(s, actor, "aterbud_case.apply", "aterbud_case", str(case_id), performed=CaseAction.ATERBUD,
                  outcome="refused", hinder=key, new_cause=cause, new_suggested_action=c.suggested_action)
        return {**state(c), "result": f"Ladok refused the återbud ({key}); case updated"}


def _audit_failure(store: Store, actor: str, case_id: int, action: str, e: Refused) -> None:
    with store.transaction() as s:
        ops.audit(s, actor, "aterbud_case.apply", "aterbud_case", str(case_id), performed=action, outcome="refused",
                  hinder=e.hinder.key, text=e.hinder.text, fel_uid=e.hinder.fel_uid)


def open_for_drift(store: Store, *, drift_id: int, admission_id: str, round_code: str | None,
                   personnummer: str | None, reported_at: str | None, antagning_uid: str | None,
                   tillfalle_uid: str | None, education: str | None, actor: str) -> dict[str, Any]:
    """An återbudsärende for an återbud NyA has and Ladok lacks (the reconciliation found it):
    staff apply it in Ladok from the case ("apply") or close it. Once per drift."""
    key = f"drift:{drift_id}"
    with store.transaction() as s:
        existing = s.query(AterbudCase).filter(AterbudCase.nya_aterbud_id == key).first()
        if existing is not None:
            return {**state(existing), "already": True}
        c = AterbudCase(nya_aterbud_id=key, round=round_code, nya_admission_id=admission_id, personnummer=personnummer,
                        utbildningstillfalle_uid=tillfalle_uid, education=education,
                        reported_at=dt.date.fromisoformat(reported_at[:10]) if reported_at else None,
                        cause=CaseCause.NOT_IN_LADOK,
                        suggested_action=suggested_action(CaseCause.NOT_IN_LADOK, reported_at, None),
                        status=CaseStatus.OPEN, antagning_uid=antagning_uid)
        s.add(c)
        s.flush()
        ops.audit(s, actor, "aterbud_case.created", "aterbud_case", str(c.id), admission_id=admission_id,
                  cause=c.cause, suggested_action=c.suggested_action, drift_id=drift_id)
        return state(c)
