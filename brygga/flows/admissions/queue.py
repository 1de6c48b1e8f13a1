"""The unhandled-admission queue (ej hanterade antagningar): putting an admission in it with its
hinder and resolving it. What operators list and count of it is in ``brygga.views.queue``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brygga.flows.admissions.hinder import HINDER
from brygga.flows.admissions.rules import ACTOR
from brygga.limits import bounded
from brygga.states import AdmissionState, Hinder, QueueStatus
from brygga.store import Store, ops
from brygga.store.models import NyaAdmission, UnhandledAdmission, utcnow


def queue(s: Session, admission_id: str, round_code: str, personnummer: str | None, tillfalle_uid: str | None,
          tillfalleskod: str | None, hinder: str, reason: str, candidates: list[Any], record: dict[str, Any]) -> None:
    """Put the admission in the queue (or update its entry there) with its hinder, audited."""
    u = s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id == admission_id)).first()
    programme = bounded(str(record.get("programme_code")), 32) if record.get("programme_code") else None
    if u is None:
        s.add(UnhandledAdmission(nya_admission_id=admission_id, round=round_code, personnummer=personnummer,
                                 utbildningstillfalle_uid=tillfalle_uid, tillfalleskod=tillfalleskod, hinder=hinder,
                                 reason=reason, candidates=candidates, admission=record, status=QueueStatus.OPEN,
                                 programme_code=programme))
    else:
        u.hinder, u.reason, u.candidates, u.status, u.resolved_at = hinder, reason, candidates, QueueStatus.OPEN, None
        u.utbildningstillfalle_uid = tillfalle_uid or u.utbildningstillfalle_uid
        u.programme_code = programme or u.programme_code
    ops.audit(s, ACTOR, "admission.unhandled", "nya_admission", admission_id, hinder=hinder, reason=reason)


def resolve(s: Session, admission_id: str, resolution: str, actor: str) -> None:
    """Close the admission's open queue entry, if it has one."""
    u = s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id == admission_id)).first()
    if u is not None and u.status == QueueStatus.OPEN:
        u.status, u.resolution, u.resolved_by, u.resolved_at = QueueStatus.RESOLVED, resolution, actor, utcnow()


def placed_while_declined(s: Session, placed: dict[str, dict[str, Any]], counts: dict[str, int]) -> None:
    """An återbud declined the admission while Ladok was placing it: it is in Ladok without its
    återbud. Record the placement and queue it so staff enter the återbud (rare race)."""
    if not placed:
        return
    raced = list(s.scalars(select(NyaAdmission).where(NyaAdmission.admission_id.in_(list(placed)),
                                                      NyaAdmission.state == AdmissionState.DECLINED)))
    for row in raced:
        b = placed[row.admission_id]
        row.state, row.antagning_uid, row.package_uid = AdmissionState.UNHANDLED, b["antagning_uid"], b["package_uid"]
        row.student_uid, row.utbildningstillfalle_uid = b["student_uid"], b["utbildningstillfalle_uid"]
        reason = f"{HINDER[Hinder.ATERBUD_UNDER_PLACERING]} ({row.aterbud_date})"
        queue(s, row.admission_id, row.round, row.personnummer, row.utbildningstillfalle_uid, row.tillfalleskod,
              Hinder.ATERBUD_UNDER_PLACERING, reason, [], row.record)
        counts["placed"] -= 1
        counts["unhandled"] += 1


def summary(store: Store, round_code: str | None = None) -> dict[str, int]:
    """Admissions per state (for the DAG log and the CLI)."""
    with store.transaction() as s:
        q = select(NyaAdmission.state, func.count()).group_by(NyaAdmission.state)
        if round_code:
            q = q.where(NyaAdmission.round == round_code)
        return {k: n for k, n in s.execute(q)}


def rounds_with_pending(store: Store) -> list[str]:
    with store.transaction() as s:
        return sorted(s.scalars(select(NyaAdmission.round).where(
            NyaAdmission.state == AdmissionState.PENDING).distinct()))
