"""Where is this student? Every record Brygga keeps of one person across the flows, on one page
(issue 32 §2): their NyA admissions and what Brygga did with each in Ladok, the unhandled queue,
återbud and their cases, the merits sent and whether NyA holds them, the applicant snapshot, the
scheduling system's objects, the archive packages of their instances, drift, and the audit trail.
Found by personnummer (posted, never in a URL), by a Ladok uid (student, tillfällesantagning) or a
NyA admission id. Read only; the page masks every personnummer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from brygga.store import Store
from brygga.store.models import (
    ArchivePackage,
    AterbudCase,
    Drift,
    NyaAdmission,
    NyaApplicant,
    NyaMerit,
    OutboxMessage,
    ScheduleObject,
    UnhandledAdmission,
)
from brygga.tracing import trace_id
from brygga.views.audit import search_audit
from brygga.views.common import iso


def find_person(store: Store, ident: str) -> str | None:
    """The personnummer behind a Ladok uid (a student or a tillfällesantagning) or a NyA admission
    id, as Brygga's store knows it; None when it knows none."""
    ident = ident.strip()
    if not ident:
        return None
    A = NyaAdmission
    with store.transaction() as s:
        return s.scalar(select(A.personnummer).where(
            or_(A.admission_id == ident, A.student_uid == ident, A.antagning_uid == ident),
            A.personnummer.is_not(None)).limit(1))


def trace(store: Store, personnummer: str) -> dict[str, Any]:
    """Every record of one person, section by section (each newest first)."""
    with store.transaction() as s:
        adm = list(s.scalars(select(NyaAdmission).where(NyaAdmission.personnummer == personnummer)
                             .order_by(NyaAdmission.created_at.desc())))
        students = sorted({a.student_uid for a in adm if a.student_uid})
        instances = sorted({a.utbildningstillfalle_uid for a in adm if a.utbildningstillfalle_uid})
        out: dict[str, Any] = {
            "students": students,
            "admissions": [{"id": a.admission_id, "round": a.round, "state": a.state, "code": a.utbildningskod,
                            "tillfalleskod": a.tillfalleskod, "instance": a.utbildningstillfalle_uid,
                            "antagning": a.antagning_uid, "package": a.package_uid, "placed_at": iso(a.placed_at),
                            "aterbud": a.aterbud_date, "conditions": a.conditions or [], "error": a.last_error,
                            "created_at": iso(a.created_at), "updated_at": iso(a.updated_at),
                            "trace": trace_id(a.traceparent)} for a in adm],
            "queue": [{"id": u.nya_admission_id, "round": u.round, "hinder": u.hinder, "reason": u.reason,
                       "status": u.status, "created_at": iso(u.created_at), "resolved_at": iso(u.resolved_at),
                       "resolution": u.resolution}
                      for u in s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.personnummer == personnummer)
                                         .order_by(UnhandledAdmission.id.desc()))],
            "cases": [{"id": c.id, "admission": c.nya_admission_id, "cause": c.cause, "action": c.suggested_action,
                       "status": c.status, "created_at": iso(c.created_at)}
                      for c in s.scalars(select(AterbudCase).where(AterbudCase.personnummer == personnummer)
                                         .order_by(AterbudCase.id.desc()))],
            "merits": [{"ref": m.ref, "type": m.type, "version": m.version, "state": m.state, "held": m.held,
                        "source": m.source, "event_at": iso(m.event_at), "updated_at": iso(m.updated_at)}
                       for m in s.scalars(select(NyaMerit).where(NyaMerit.personnummer == personnummer)
                                          .order_by(NyaMerit.updated_at.desc()))],
            "applications": [{"round": p.round, "snapshot": p.snapshot, "merits": p.merits,
                              "created_at": iso(p.created_at), "snapshot_at": iso(p.snapshot_at)}
                             for p in s.scalars(select(NyaApplicant).where(NyaApplicant.personnummer == personnummer))],
            "drift": [{"id": d.id, "kind": d.kind, "round": d.round, "status": d.status, "subject": d.subject}
                      for d in s.scalars(select(Drift).where(Drift.personnummer == personnummer)
                                         .order_by(Drift.id.desc()))],
            "schedule": [], "archive": [],
        }
        if students:
            members = or_(*(ScheduleObject.ext_id.like(f"%:{uid}") for uid in students))
            out["schedule"] = [{"target": o.target, "kind": o.kind, "ext_id": o.ext_id, "status": o.status,
                                "version": o.version, "term": o.term, "updated_at": iso(o.updated_at)}
                               for o in s.scalars(select(ScheduleObject).where(
                                   or_(ScheduleObject.kind == "student", ScheduleObject.kind == "membership"),
                                   or_(ScheduleObject.ext_id.in_(students), members))
                                   .order_by(ScheduleObject.target, ScheduleObject.kind, ScheduleObject.ext_id))]
        if instances:
            out["archive"] = [{"package": p.package_id, "instance": p.subject_uid, "part": p.part, "parts": p.parts,
                               "status": p.status, "received_at": iso(p.received_at)}
                              for p in s.scalars(select(ArchivePackage).where(ArchivePackage.subject_uid.in_(instances))
                                                 .order_by(ArchivePackage.id))]
        out["messages"] = _messages(s, [a["id"] for a in out["admissions"]], [m["ref"] for m in out["merits"]])
    out["audit"] = search_audit(store, personnummer=personnummer, limit=200)["rows"]
    out["found"] = any(out[k] for k in ("admissions", "queue", "cases", "merits", "applications", "drift"))
    return out


def _messages(s: Any, admissions: list[str], merits: list[str]) -> list[dict[str, Any]]:
    """The outbox messages this person's records caused (återbud reported to NyA, merits sent and
    withdrawn), newest first, each with its trace id: what the page offers to send again."""
    keys = ([f"nya:aterbud:{a}" for a in admissions], [f"nya:aterbud:{a}:%" for a in admissions]
            + [f"nya:merit:{r}:%" for r in merits] + [f"nya:merit-withdraw:{r}:%" for r in merits])
    if not keys[0] and not keys[1]:
        return []
    key = OutboxMessage.idempotency_key
    found = s.scalars(select(OutboxMessage).where(or_(key.in_(keys[0]), *(key.like(k) for k in keys[1])))
                      .order_by(OutboxMessage.id.desc()).limit(200))
    return [{"id": m.id, "kind": m.kind, "key": m.idempotency_key, "status": m.status, "attempts": m.attempts,
             "created_at": iso(m.created_at), "sent_at": iso(m.sent_at), "error": m.last_error,
             "trace": trace_id(m.traceparent)} for m in found]
