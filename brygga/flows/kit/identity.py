"""A student's new personnummer in Ladok, carried into Brygga's own records.

Ladok says a student's number changed with a ``LokalStudentEvent`` that has ``TidigarePersonnummer``
(an interimspersonnummer or a samordningsnummer replaced by a personnummer, a corrected number).
Whoever follows the feed hands such events to ``renumberings`` (outside the transaction) and the
result to ``renumber`` (in its transaction): the admissions, the queue entries and the återbud cases
that carry the old number carry the new one, the admission records kept for ompröva too, and the
audit log says so (with both numbers masked)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from brygga import personnummer as pnr
from brygga.records import LadokEvent
from brygga.store import ops
from brygga.store.models import AterbudCase, NyaAdmission, UnhandledAdmission

EVENT = "LokalStudentEvent"


@dataclasses.dataclass(frozen=True)
class Renumbering:
    handelse_uid: str
    student_uid: str | None
    old: str
    new: str


def renumberings(events: Iterable[LadokEvent]) -> tuple[list[Renumbering], dict[str, str]]:
    """The number changes among ``events`` (in feed order) and, by HandelseUID, why a change event
    could not be read (a number that is not one: for the quarantine)."""
    found: list[Renumbering] = []
    bad: dict[str, str] = {}
    for e in events:
        if e.event_type != EVENT:
            continue
        old_raw, new_raw = e.fields.get("TidigarePersonnummer"), e.fields.get("Personnummer")
        if not isinstance(old_raw, str) or not old_raw.strip():
            continue  # a new student, or a change of something else
        try:
            old, new = pnr.canonical(old_raw.strip()), pnr.canonical(str(new_raw or "").strip())
        except pnr.InvalidPersonnummer as err:
            bad[e.handelse_uid] = f"{EVENT} with TidigarePersonnummer: {err}"
            continue
        if old != new:
            found.append(Renumbering(e.handelse_uid, e.student_uid, old, new))
    return found, bad


def renumber(s: Session, changes: list[Renumbering], actor: str) -> int:
    """Move the rows of each change's old number to its new one; the rows moved."""
    moved = 0
    for c in changes:
        n = 0
        for model in (NyaAdmission, UnhandledAdmission, AterbudCase):
            result = s.connection().execute(update(model).where(model.personnummer == c.old).values(personnummer=c.new))
            n += result.rowcount or 0
        for row in s.scalars(select(NyaAdmission).where(NyaAdmission.personnummer == c.new)):
            row.record = _with_number(row.record, c)
        for q in s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.personnummer == c.new)):
            q.admission = _with_number(q.admission, c)
        if n:
            ops.audit(s, actor, "student.personnummer_changed", "student", c.student_uid or "?",
                      previous=pnr.mask(c.old), personnummer=pnr.mask(c.new), rows=n, handelse_uid=c.handelse_uid)
        moved += n
    return moved


def _with_number(record: Any, c: Renumbering) -> Any:
    if isinstance(record, dict) and record.get("personnummer") == c.old:
        return {**record, "personnummer": c.new}
    return record
