"""Admission fetch: a round's admitted-and-accepted admissions read from NyA (``GetAdmissions`` from
the round's stored sequence, streamed) into ``nya_admission``, keyed by NyA's AdmissionId.

A new admission becomes ``pending``; a re-sent one (its sequence moved: accepted, villkor lifted,
återbud) updates the stored record. Rows are written in chunks; the round's checkpoint
(NextSequence) is written in the same transaction as the last chunk, so a re-read after a crash
only rewrites the same rows. Records NyA sent broken are quarantined, and queued when they carry
an AdmissionId an operator could act on."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from adapters.http import UnreadableReply
from adapters.nya import NyaAdapter
from brygga.flows.admissions.hinder import HINDER
from brygga.flows.admissions.queue import ACTOR, queue, resolve
from brygga.flows.unreadable import quarantine_reply
from brygga.logmask import get_logger
from brygga.records import Admission
from brygga.states import AdmissionState, Hinder
from brygga.store import Store, ops
from brygga.store.models import NyaAdmission, table, utcnow
from mappings.base import RecordError

log = get_logger("brygga.flows.admissions")

CHUNK = 2000
_ADMISSION_FIELDS = tuple(f.name for f in dataclasses.fields(Admission))


def checkpoint_name(round_code: str) -> str:
    return f"nya-admissions:{round_code}"


def fetch(store: Store, nya: NyaAdapter, round_code: str, *, chunk: int = CHUNK) -> dict[str, int]:
    """Read new and changed accepted admissions of ``round_code`` into the store."""
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, checkpoint_name(round_code))
        from_seq = cp.page if cp else 0
    m = nya.mapping("admission")
    counts = {"read": 0, "new": 0, "updated": 0, "invalid": 0, "declined": 0}
    batch: list[Admission | RecordError] = []
    last_seq = 0  # the last good admission's sequence (replies are in sequence order)
    try:
        with nya.call("GetAdmissions", nya.body("GetAdmissions", Round=round_code, FromSequence=from_seq or None,
                                                OnlyAccepted=True)) as reply:
            reader = m.read(reply)
            for item in reader:
                batch.append(item)
                if item.__class__ is Admission:
                    last_seq = item.sequence
                if len(batch) >= chunk:
                    with store.transaction() as s:
                        store_admissions(s, round_code, batch, counts)
                    batch = []
            next_seq = reader.next_sequence
    except UnreadableReply as e:  # keep what was read; the checkpoint to just after it; quarantine
        resume = max(last_seq + 1, from_seq)
        with store.transaction() as s:
            store_admissions(s, round_code, batch, counts)
            ops.checkpoint_set(s, checkpoint_name(round_code), resume, None, add_seen=counts["read"])
            quarantine_reply(s, e, checkpoint=checkpoint_name(round_code), resume=resume, kept=counts["read"])
        raise
    with store.transaction() as s:
        store_admissions(s, round_code, batch, counts)
        if next_seq is not None:
            ops.checkpoint_set(s, checkpoint_name(round_code), next_seq, None, add_seen=counts["read"])
    log.info("fetched admissions of %s from sequence %s: %s", round_code, from_seq, counts)
    return counts


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
             "updated_at": now} for r in new_rows])
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
                           conditions=[], record={}, attempts=0, last_error=str(e)))
    elif row.state in (AdmissionState.PLACED, AdmissionState.HANDLED, AdmissionState.DECLINED):
        return
    else:
        row.state, row.last_error = AdmissionState.INVALID, str(e)
    queue(s, e.record_id, round_code, None, None, None, hinder, f"{HINDER[hinder]}: {e.field}: {e.rule}", [], {})
