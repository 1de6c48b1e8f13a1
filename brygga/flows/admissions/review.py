"""What operators do with a queued admission: ompröva (try again, optionally in a chosen package
or as free-standing) or mark it handled by hand in Ladok. Both audited, both safe to repeat."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from adapters.http import PeerError
from brygga.flows.admissions.hinder import HINDER
from brygga.flows.admissions.placing import place_one, placed_conditions
from brygga.flows.admissions.queue import placed_while_declined, queue, resolve
from brygga.flows.admissions.resolving import Catalogue, resolve_all
from brygga.flows.admissions.work import Work, work
from brygga.flows.ports import Ladok, PopulationRegister
from brygga.states import AdmissionState, Hinder, QueueStatus
from brygga.store import Store, ops
from brygga.store.models import NyaAdmission, UnhandledAdmission, utcnow

_RETRYABLE = (AdmissionState.UNHANDLED, AdmissionState.PENDING)


def retry(store: Store, ladok: Ladok, folk: PopulationRegister, admission_id: str, *, actor: str,
          package_uid: str | None = None, fristaende: bool = False) -> dict[str, Any]:
    """Re-try (ompröva) an unhandled admission, optionally in a chosen package or as free-standing."""
    if package_uid and fristaende:
        raise ValueError("choose a package or free-standing, not both")
    with store.transaction() as s:
        row = s.get(NyaAdmission, admission_id)
        if row is None:
            raise KeyError(f"no admission {admission_id}")
        if row.state in (AdmissionState.PLACED, AdmissionState.HANDLED):  # done already (a repeated action)
            return {"admission_id": admission_id, "outcome": row.state, "already": True, "hinder": None,
                    "reason": None, "antagning_uid": row.antagning_uid, "package_uid": row.package_uid}
        if row.state not in _RETRYABLE:
            raise ValueError(f"admission {admission_id} is {row.state}; only unhandled admissions can be re-tried")
        if not row.personnummer:
            raise ValueError(f"admission {admission_id} has no valid personnummer; correct it in NyA")
        w = work(row)
    catalogue = Catalogue(ladok)
    with ThreadPoolExecutor(max_workers=1) as pool:
        resolve_all([w], catalogue, ladok, folk, {}, pool)
    if w.outcome is None:
        place_one(w, ladok, catalogue, package_uid=package_uid, fristaende=fristaende)
    if w.outcome == "retry":  # Ladok or the register is down: nothing changed, try again later
        raise PeerError("ladok", f"ompröva {admission_id}: {w.reason}", transient=True)
    choice = f"kurspaketering {package_uid}" if package_uid else "fristående" if fristaende else "som den är"
    return _record_retry(store, w, actor, choice)


def _record_retry(store: Store, w: Work, actor: str, choice: str) -> dict[str, Any]:
    admission_id = w.admission_id
    with store.transaction() as s:
        row = ops.one(s, NyaAdmission, admission_id, with_for_update=True)
        if row.state == AdmissionState.DECLINED and w.outcome == "placed":  # an återbud came meanwhile
            placed_while_declined(s, {admission_id: {
                "antagning_uid": w.placement["uid"], "package_uid": w.placement.get("package_uid"),
                "student_uid": w.student_uid, "utbildningstillfalle_uid": w.instance.uid}}, {"placed": 1, "unhandled": 0})
            ops.audit(s, actor, "admission.retry", "nya_admission", admission_id, choice=choice,
                      outcome=Hinder.ATERBUD_UNDER_PLACERING)
            return {"admission_id": admission_id, "outcome": "unhandled", "hinder": Hinder.ATERBUD_UNDER_PLACERING,
                    "reason": HINDER[Hinder.ATERBUD_UNDER_PLACERING], "antagning_uid": w.placement["uid"],
                    "package_uid": w.placement.get("package_uid")}
        if row.state not in _RETRYABLE:
            raise ValueError(f"admission {admission_id} became {row.state} meanwhile; nothing written")
        row.attempts += 1
        row.student_uid = w.student_uid or row.student_uid
        if w.tillfalle:
            row.utbildningstillfalle_uid = w.tillfalle.uid
        if w.outcome == "placed":
            row.state, row.antagning_uid, row.package_uid = AdmissionState.PLACED, w.placement["uid"], w.placement.get("package_uid")
            row.placed_at = utcnow()
            row.conditions = placed_conditions(w)
            row.last_error = None
            resolve(s, admission_id, f"ompröva: {choice}", actor)
        else:
            row.state, row.last_error = AdmissionState.UNHANDLED, w.reason
            queue(s, admission_id, row.round, row.personnummer, row.utbildningstillfalle_uid, row.tillfalleskod,
                  w.hinder or Hinder.OVRIGT, w.reason or "", w.candidates, row.record)
        ops.audit(s, actor, "admission.retry", "nya_admission", admission_id, choice=choice,
                  outcome=w.outcome, hinder=w.hinder, reason=w.reason)
        return {"admission_id": admission_id, "outcome": w.outcome, "hinder": w.hinder, "reason": w.reason,
                "antagning_uid": row.antagning_uid, "package_uid": row.package_uid}


def mark_handled(store: Store, admission_id: str, *, actor: str, note: str = "") -> dict[str, Any]:
    """An operator placed (or settled) the admission by hand in Ladok."""
    with store.transaction() as s:
        row = s.get(NyaAdmission, admission_id, with_for_update=True)
        if row is None:
            raise KeyError(f"no admission {admission_id}")
        if row.state == AdmissionState.HANDLED:
            return {"admission_id": admission_id, "state": row.state, "already": True}
        if row.state not in (AdmissionState.UNHANDLED, AdmissionState.INVALID, AdmissionState.PENDING):
            raise ValueError(f"admission {admission_id} is {row.state}; nothing to hand-handle")
        row.state = AdmissionState.HANDLED
        u = s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id == admission_id)).first()
        if u is not None:
            u.status, u.resolution, u.resolved_by = QueueStatus.MANUAL, note or "hanterad manuellt", actor
            u.resolved_at = utcnow()
        ops.audit(s, actor, "admission.handled", "nya_admission", admission_id, note=note)
        return {"admission_id": admission_id, "state": row.state}


def place_again(store: Store, admission_id: str, *, actor: str, why: str) -> dict[str, Any]:
    """An admission Brygga placed (or an operator settled) that Ladok no longer has (the
    reconciliation found it): back to pending, so the next import places it again — idempotent in
    Ladok, whose Anmälningsnummer is NyA's AdmissionId."""
    with store.transaction() as s:
        row = s.get(NyaAdmission, admission_id, with_for_update=True)
        if row is None:
            raise KeyError(f"no admission {admission_id}")
        if row.state == AdmissionState.PENDING:
            return {"admission_id": admission_id, "state": row.state, "already": True}
        if row.state not in (AdmissionState.PLACED, AdmissionState.HANDLED):
            raise ValueError(f"admission {admission_id} is {row.state}; only a placed admission is placed again")
        previous = row.state
        row.state, row.antagning_uid, row.package_uid, row.placed_at = AdmissionState.PENDING, None, None, None
        row.attempts, row.transient_failures, row.failing_since, row.last_error = 0, 0, None, why
        row.conditions = [{**c, "in_ladok": False} for c in row.conditions or []]
        ops.audit(s, actor, "admission.place_again", "nya_admission", admission_id, previous_state=previous, why=why)
        return {"admission_id": admission_id, "state": row.state}


def to_queue(store: Store, admission_id: str, *, actor: str, hinder: str, reason: str) -> dict[str, Any]:
    """A placed admission an operator has to look at (placed in another package than NyA's): into
    the queue with its hinder, where ompröva and "handled" work as for any queued admission."""
    with store.transaction() as s:
        row = s.get(NyaAdmission, admission_id, with_for_update=True)
        if row is None:
            raise KeyError(f"no admission {admission_id}")
        if row.state == AdmissionState.UNHANDLED:
            return {"admission_id": admission_id, "state": row.state, "already": True}
        previous = row.state
        row.state, row.last_error = AdmissionState.UNHANDLED, reason
        queue(s, admission_id, row.round, row.personnummer, row.utbildningstillfalle_uid, row.tillfalleskod,
              hinder, reason, [], row.record)
        ops.audit(s, actor, "admission.to_queue", "nya_admission", admission_id, previous_state=previous,
                  hinder=hinder, reason=reason)
        return {"admission_id": admission_id, "state": row.state}
