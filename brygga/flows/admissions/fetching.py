"""Admission fetch: a round's admitted-and-accepted admissions read from NyA (``GetAdmissions`` from
the round's stored sequence, streamed) into ``nya_admission``, keyed by NyA's AdmissionId.

A new admission becomes ``pending``; a re-sent one (its sequence moved: accepted, villkor lifted,
återbud) updates the stored record. The reply is read by the kit's sequence follower, chunk by
chunk: each chunk's rows and the round's checkpoint (just after the chunk; NyA's NextSequence at
the end) in one transaction, so a re-read after a crash only rewrites the same rows. Records NyA sent broken are quarantined, and queued when they carry
an AdmissionId an operator could act on."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from brygga import tracing
from brygga.flows.admissions.hinder import HINDER
from brygga.flows.admissions.queue import queue, resolve, rounds_with_pending
from brygga.flows.admissions.rules import ACTOR, FLOW, checkpoint_name
from brygga.flows.kit.quarantine import unreadable
from brygga.flows.kit.sequence import SequenceFollower
from brygga.flows.ports import Nya, SequenceReply
from brygga.logmask import get_logger
from brygga.records import Admission
from brygga.states import AdmissionState, Hinder
from brygga.store import Store, ops
from brygga.store.models import NyaAdmission, table, utcnow
from mappings.base import RecordError

__all__ = ["CHUNK", "AdmissionStream", "checkpoint_name", "fetch", "rounds_to_import", "store_admissions"]

log = get_logger("brygga.flows.admissions")

CHUNK = 2000
_ADMISSION_FIELDS = tuple(f.name for f in dataclasses.fields(Admission))


class AdmissionStream(SequenceFollower[Admission]):
    """A round's accepted admissions from NyA into ``nya_admission``, chunk by chunk (the round's
    checkpoint moves with each chunk)."""

    flow = FLOW
    chunk = CHUNK

    def __init__(self, store: Store, nya: Nya, round_code: str, **kw: Any):
        super().__init__(store, round_code, **kw)
        self.nya = nya
        self.counts = {"read": 0, "new": 0, "updated": 0, "invalid": 0, "declined": 0}

    def open(self, from_sequence: int) -> AbstractContextManager[SequenceReply[Admission]]:
        return self.nya.admissions(self.round, from_sequence)

    def apply(self, s: Session, part: list[Admission | RecordError], prepared: Any) -> None:
        store_admissions(s, self.round, part, self.counts)


def rounds_to_import(store: Store, nya: Nya, chosen: str | None = None) -> list[str]:
    """The rounds a run imports: the one chosen, else every open round and any round that still
    has admissions waiting (e.g. after an outage at its close)."""
    if chosen:
        return [chosen]
    with unreadable(store, consumer="the admission import"):
        open_rounds = nya.open_rounds()
    return sorted(set(open_rounds) | set(rounds_with_pending(store)))


def fetch(store: Store, nya: Nya, round_code: str, *, chunk: int = CHUNK) -> dict[str, int]:
    """Read new and changed accepted admissions of ``round_code`` into the store."""
    stream = AdmissionStream(store, nya, round_code, chunk=chunk)
    done = stream.follow()
    log.info("fetched admissions of %s from sequence %s: %s", round_code, done.start, stream.counts)
    return stream.counts


def _row(a: Admission) -> dict[str, Any]:
    conditions = [{"code": c.code, "text": c.text, "lifted": c.lifted} for c in a.conditions]
    record = {name: getattr(a, name) for name in _ADMISSION_FIELDS}  # asdict() deep-copies: 3x slower
    record["conditions"] = [{**c, "lifted_date": x.lifted_date} for c, x in zip(conditions, a.conditions, strict=True)]
    return dict(
        admission_id=a.admission_id, round=a.round, sequence=a.sequence, personnummer=a.personnummer,
        offer_id=a.offer_id, utbildningskod=a.utbildningskod, tillfalleskod=a.tillfalleskod,
        programme_internal=a.programme_internal, package_id=a.package_id, fee_liable=a.fee_liable,
        application_fee_paid=a.application_fee_paid,
        conditions=conditions, aterbud_date=a.aterbud_date, record=record,
    )


def admissions_by_id(s: Session, ids: Iterable[str], *, chunk: int = 1000) -> dict[str, NyaAdmission]:
    """The rows of ``ids`` in a few queries (bounded IN lists), by admission id."""
    ids = list(ids)
    out: dict[str, NyaAdmission] = {}
    for i in range(0, len(ids), chunk):
        out.update((r.admission_id, r) for r in s.scalars(
            select(NyaAdmission).where(NyaAdmission.admission_id.in_(ids[i:i + chunk]))))
    return out


def store_admissions(s: Session, round_code: str, batch: list[Any], counts: dict[str, int]) -> None:
    """One chunk of a reply: new rows in one executemany, changed rows updated, bad ones set aside."""
    good: list[Admission] = []
    bad: list[RecordError] = []
    seen: set[str] = set()
    for a in batch:
        if isinstance(a, Admission) and a.round != round_code:  # (the mapping bounds and types every value)
            a = RecordError(a.admission_id, "Round", f"{a.round} in a reply for {round_code}", "Admission")
        rid = a.admission_id if isinstance(a, Admission) else a.record_id
        if rid in seen:  # the same id twice in one reply: the first counts
            continue
        seen.add(rid)
        (good if isinstance(a, Admission) else bad).append(a)
    counts["read"] += len(batch)
    existing = admissions_by_id(s, seen)
    new_rows = []
    for a in good:
        row = existing.get(a.admission_id)
        if row is None:
            new_rows.append(_new(a, counts))
        elif a.sequence > row.sequence or row.state == AdmissionState.INVALID:
            _update(s, row, a, counts)
    if new_rows:  # a Core executemany: the ORM's bulk insert costs ~2x the CPU for the same rows
        now = utcnow()
        s.connection().execute(insert(table(NyaAdmission)), [
            {**r, "state": r.get("state", AdmissionState.PENDING), "attempts": 0, "created_at": now,
             "updated_at": now, "traceparent": tracing.new()} for r in new_rows])  # its trace starts here
    for e in bad:
        _set_aside(s, round_code, e, existing.get(e.record_id), counts)


def _new(a: Admission, counts: dict[str, int]) -> dict[str, Any]:
    values = _row(a)
    if a.aterbud_date:  # återbud before it ever reached Ladok: never place it
        values["state"] = AdmissionState.DECLINED
        counts["declined"] += 1
    counts["new"] += 1
    return values


def _update(s: Session, row: NyaAdmission, a: Admission, counts: dict[str, int]) -> None:
    """NyA re-sent the admission: its record as it is now, the villkor Ladok has kept as they are."""
    in_ladok = {c["code"] for c in row.conditions or [] if c.get("in_ladok")}
    for k, v in _row(a).items():
        setattr(row, k, v)
    row.conditions = [{**c, "in_ladok": c["code"] in in_ladok} for c in row.conditions]
    if row.state == AdmissionState.INVALID:  # NyA corrected it: place it, and close its queue entry
        row.state = AdmissionState.PENDING
        resolve(s, a.admission_id, "rättad i NyA", ACTOR)
    if a.aterbud_date and row.state in (AdmissionState.PENDING, AdmissionState.UNHANDLED):
        row.state = AdmissionState.DECLINED
        resolve(s, a.admission_id, "återbud", ACTOR)
        counts["declined"] += 1
    counts["updated"] += 1


def _set_aside(s: Session, round_code: str, e: RecordError, row: NyaAdmission | None,
               counts: dict[str, int]) -> None:
    """A record NyA sent broken: quarantined; queued as invalid when it has a usable AdmissionId
    (without one it is only quarantined: nothing an operator could re-try, and never stored under
    its sequence or a cut-down id)."""
    counts["invalid"] += 1
    hinder = Hinder.PERSONNUMMER_OGILTIGT if e.field == "Personnummer" else Hinder.OGILTIG_ANTAGNING
    ops.quarantine(s, source="nya", message_id=e.record_id, kind="Admission", reason=str(e))
    if not e.has_id:
        return
    if row is None:
        s.add(NyaAdmission(admission_id=e.record_id, round=round_code, sequence=0, state=AdmissionState.INVALID,
                           conditions=[], record={}, attempts=0, last_error=str(e), traceparent=tracing.new()))
    elif row.state in (AdmissionState.PLACED, AdmissionState.HANDLED, AdmissionState.DECLINED):
        return
    else:
        row.state, row.last_error = AdmissionState.INVALID, str(e)
    queue(s, e.record_id, round_code, None, None, None, hinder, f"{HINDER[hinder]}: {e.field}: {e.rule}", [], {})
