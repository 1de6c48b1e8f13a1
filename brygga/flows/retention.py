"""Personal data kept no longer than needed: the purge of closed rounds, closed cases and old input.

Each kind of record has its own retention (days, :class:`Retention`; ``BRYGGA_RETENTION_<KIND>_DAYS``
or the purge DAG's form). After it the row stays — counts, states, codes, dates, Ladok's uids and
the audit trail remain for statistics and follow-up — but its personal data goes:

============== ====================================================== ==============================
kind           which rows                                              what is removed
============== ====================================================== ==============================
admissions     every admission, queue entry and audit row of a round   personnummer, the admission
               that is closed: nothing pending, nothing in the queue   record as read (names,
               and no activity for ``admissions`` days                 address, merits), the last
                                                                       error; the queue entry's
                                                                       record and reason; audit
                                                                       details masked
aterbud_cases  återbudsärenden closed ``aterbud_cases`` days ago       personnummer, the note
quarantine     quarantined input last met ``quarantine`` days ago       the payload; reason and id
                                                                       masked; its audit rows too
outbox         messages sent ``outbox`` days ago (dead ones wait for   the payload (what was sent)
               an operator and are kept)                               and the peer's answer
(admissions)   NyA applicants remembered ``admissions`` days ago;      the rows (``nya_applicant``,
               the merit ledger's rows unchanged that long             ``nya_merit``)
(quarantine)   drift the reconciliation found, resolved                 the rows (``drift``)
               ``quarantine`` days ago
============== ====================================================== ==============================

Audit details are masked, and operators' free-text notes in them are dropped (masking finds
personnummer, not names). The purge moves no row's ``updated_at`` (the statistics' times). A purged
row gets ``purged_at`` and is never purged again; each run that changed anything writes
one ``retention.purge`` audit row with the counts per kind. A dry run only counts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, case, delete, func, select, update
from sqlalchemy.orm import Session

from brygga.flows.kit.flow import Flow
from brygga.logmask import get_logger
from brygga.personnummer import mask
from brygga.states import AdmissionState
from brygga.store import Store, ops
from brygga.store.models import (
    AterbudCase,
    AuditLog,
    CheckpointHistory,
    Drift,
    LadokContact,
    NyaAdmission,
    NyaApplicant,
    NyaMerit,
    OutboxMessage,
    Quarantine,
    UnhandledAdmission,
    table,
    utcnow,
)

log = get_logger("brygga.flows.retention")

FLOW = Flow("retention", "brygga_retention")
ACTOR = FLOW.actor
BATCH = 1000
_OPEN_STATES = (AdmissionState.PENDING, AdmissionState.UNHANDLED)


@dataclasses.dataclass(frozen=True)
class Retention:
    """Days each kind of record keeps its personal data (see the module's table)."""

    admissions: int = 548  # a round: 18 months after its last activity (appeals, re-admissions, statistics)
    aterbud_cases: int = 365
    quarantine: int = 180
    outbox: int = 90

    KINDS = ("admissions", "aterbud_cases", "quarantine", "outbox")

    def __post_init__(self) -> None:
        for kind in self.KINDS:
            days = getattr(self, kind)
            if not isinstance(days, int) or days < 1:
                raise ValueError(f"retention {kind}: {days!r} days (need a whole number ≥ 1)")

    @classmethod
    def from_env(cls, **overrides: int | None) -> Retention:
        """Defaults, then ``BRYGGA_RETENTION_<KIND>_DAYS``, then ``overrides`` (None = no override)."""
        values: dict[str, int] = {}
        for kind in cls.KINDS:
            env = os.environ.get(f"BRYGGA_RETENTION_{kind.upper()}_DAYS")
            if env:
                values[kind] = int(env)
            if overrides.get(kind) is not None:
                values[kind] = int(overrides[kind])  # type: ignore[arg-type]
        return cls(**values)


def purge(store: Store, retention: Retention | None = None, *, now: dt.datetime | None = None,
          dry_run: bool = False, actor: str = ACTOR) -> dict[str, Any]:
    """Remove the personal data past its retention. Returns what was (or, dry, would be) purged:
    rows per kind and the closed rounds."""
    r = retention or Retention.from_env()
    now = now or utcnow()
    cut = {kind: now - dt.timedelta(days=getattr(r, kind)) for kind in r.KINDS}
    out: dict[str, Any] = {"dry_run": dry_run, "rounds": []}
    with store.transaction() as s:
        rounds = closed_rounds(s, cut["admissions"])
        out["rounds"] = rounds
        out["admissions"] = _admissions(s, rounds, now, dry_run)
        out["queue"] = _queue(s, rounds, now, dry_run)
        out["audit"] = _round_audit(s, rounds, now, dry_run)
        out["aterbud_cases"], case_audit = _cases(s, cut["aterbud_cases"], now, dry_run)
        out["audit"] += case_audit
        out["quarantine"], quarantine_audit = _quarantine(s, cut["quarantine"], now, dry_run)
        out["audit"] += quarantine_audit
        out["outbox"] = _outbox(s, cut["outbox"], now, dry_run)
        out["contacts"] = _contacts(s, now - CONTACTS_KEPT, dry_run)
        out["applicants"] = _delete(s, table(NyaApplicant), (table(NyaApplicant).c.created_at < cut["admissions"],),
                                    dry_run)
        out["merit_ledger"] = _delete(s, table(NyaMerit), (table(NyaMerit).c.updated_at < cut["admissions"],), dry_run)
        d = table(Drift)
        out["drift"] = _delete(s, d, (d.c.status != "open", d.c.resolved_at < cut["quarantine"]), dry_run)
        h = table(CheckpointHistory)  # no personal data, but it grows: kept as long as sent messages
        out["checkpoint_history"] = _delete(s, h, (h.c.at < cut["outbox"],), dry_run)
        changed = {k: v for k, v in out.items() if isinstance(v, int) and not isinstance(v, bool) and v}
        if changed and not dry_run:
            ops.audit(s, actor, "retention.purge", "store", None, rounds=rounds, **changed,
                      retention_days={k: getattr(r, k) for k in r.KINDS})
    log.info("retention purge%s: %s", " (dry run)" if dry_run else "", out)
    return out


def closed_rounds(s: Session, before: dt.datetime) -> list[str]:
    """Rounds with nothing pending, nothing in the queue, no activity since ``before`` and personal
    data left to purge."""
    a, u = table(NyaAdmission), table(UnhandledAdmission)
    open_rows = func.sum(case((a.c.state.in_(_OPEN_STATES), 1), else_=0))
    candidates = s.execute(select(a.c.round).group_by(a.c.round).having(
        open_rows == 0, func.max(a.c.updated_at) < before,
        func.sum(case((a.c.purged_at.is_(None), 1), else_=0)) > 0)).scalars().all()
    queued = set(s.execute(select(u.c.round).where(u.c.status == "open", u.c.round.in_(candidates))).scalars())
    return sorted(r for r in candidates if r not in queued)


def _admissions(s: Session, rounds: Sequence[str], now: dt.datetime, dry: bool) -> int:
    t = table(NyaAdmission)
    where = (t.c.round.in_(rounds), t.c.purged_at.is_(None))
    return _apply(s, t, where, dry, dict(personnummer=None, record={}, last_error=None, claimed_by=None,
                                         claimed_until=None, purged_at=now,
                                         updated_at=t.c.updated_at))  # (the statistics' times stay)


def _queue(s: Session, rounds: Sequence[str], now: dt.datetime, dry: bool) -> int:
    t = table(UnhandledAdmission)
    n = 0
    for chunk in _chunks(s, t, (t.c.round.in_(rounds), t.c.purged_at.is_(None)), t.c.id, ("reason", "updated_at")):
        n += len(chunk)
        if not dry:  # (ORM bulk UPDATE by primary key, one executemany per batch; handling times stay)
            s.execute(update(UnhandledAdmission), [
                {"id": row.id, "personnummer": None, "admission": {}, "candidates": [],
                 "reason": mask(row.reason or ""), "purged_at": now, "updated_at": row.updated_at}
                for row in chunk])
    return n


def _audit(s: Session, object_types: Sequence[str], ids: Any, now: dt.datetime, dry: bool) -> int:
    """The audit rows about purged objects: the trail stays, identities in it masked."""
    t = table(AuditLog)
    n = 0
    where = (t.c.object_type.in_(object_types), t.c.purged_at.is_(None), t.c.object_id.in_(ids))
    for chunk in _chunks(s, t, where, t.c.id, ("object_id", "detail")):
        n += len(chunk)
        if not dry:
            s.execute(update(AuditLog), [
                {"id": row.id, "object_id": mask(row.object_id) if row.object_id else None,
                 "detail": masked(row.detail), "purged_at": now} for row in chunk])
    return n


def _round_audit(s: Session, rounds: Sequence[str], now: dt.datetime, dry: bool) -> int:
    a = table(NyaAdmission)
    return _audit(s, ("nya_admission", "unhandled_admission"),
                  select(a.c.admission_id).where(a.c.round.in_(rounds)), now, dry)


def _cases(s: Session, before: dt.datetime, now: dt.datetime, dry: bool) -> tuple[int, int]:
    """Closed återbudsärenden past their retention, and the audit rows about them (notes masked)."""
    t = table(AterbudCase)
    ids = list(s.execute(select(t.c.id).where(t.c.status == "closed", t.c.closed_at < before,
                                              t.c.purged_at.is_(None))).scalars())
    audited = 0
    for i in range(0, len(ids), BATCH):
        chunk = ids[i:i + BATCH]
        audited += _audit(s, ("aterbud_case",), [str(c) for c in chunk], now, dry)
        if not dry:
            s.execute(update(t).where(t.c.id.in_(chunk)).values(personnummer=None, note=None, purged_at=now))
    return len(ids), audited


def _quarantine(s: Session, before: dt.datetime, now: dt.datetime, dry: bool) -> tuple[int, int]:
    """Quarantined input last met before ``before``, and the audit rows about it (its release)."""
    t = table(Quarantine)
    n = audited = 0
    for chunk in _chunks(s, t, (func.coalesce(t.c.last_seen_at, t.c.created_at) < before, t.c.purged_at.is_(None)),
                         t.c.id, ("reason", "message_id")):
        n += len(chunk)
        audited += _audit(s, ("quarantine",), [str(row.id) for row in chunk], now, dry)
        if not dry:
            s.execute(update(Quarantine), [
                {"id": row.id, "payload": None, "reason": mask(row.reason or ""),
                 "message_id": mask(row.message_id) if row.message_id else None, "purged_at": now}
                for row in chunk])
    return n, audited


def _outbox(s: Session, before: dt.datetime, now: dt.datetime, dry: bool) -> int:
    t = table(OutboxMessage)
    where = (t.c.status.in_(("sent", "cancelled")), t.c.sent_at < before, t.c.purged_at.is_(None))
    return _apply(s, t, where, dry, dict(payload={"purged": True}, response=None, purged_at=now))


#: A student's e-mail address cached for the schedule export (``ladok_contact``) is refreshed after a
#: week; one not asked for in 30 days belongs to nobody the export still sends: deleted.
CONTACTS_KEPT = dt.timedelta(days=30)


def _contacts(s: Session, before: dt.datetime, dry: bool) -> int:
    t = table(LadokContact)
    where = (t.c.fetched_at < before,)
    if dry:
        return int(s.execute(select(func.count()).select_from(t).where(*where)).scalar() or 0)
    return int(getattr(s.execute(delete(t).where(*where)), "rowcount", 0) or 0)


def _delete(s: Session, t: Table, where: Iterable[Any], dry: bool) -> int:
    where = tuple(where)
    if dry:
        return int(s.execute(select(func.count()).select_from(t).where(*where)).scalar() or 0)
    return int(getattr(s.execute(delete(t).where(*where)), "rowcount", 0) or 0)


def _apply(s: Session, t: Table, where: Iterable[Any], dry: bool, values: dict[str, Any]) -> int:
    where = tuple(where)
    if dry:
        return int(s.execute(select(func.count()).select_from(t).where(*where)).scalar() or 0)
    return int(getattr(s.execute(update(t).where(*where).values(**values)), "rowcount", 0) or 0)


def _chunks(s: Session, t: Table, where: Iterable[Any], key: Any, columns: Sequence[str]):  # type: ignore[no-untyped-def]
    """The rows matching ``where`` (key and ``columns``), in batches, by ascending key."""
    where, last = tuple(where), None
    while True:
        q = select(key.label("id"), *(t.c[c] for c in columns)).where(*where)
        if last is not None:
            q = q.where(key > last)
        rows = s.execute(q.order_by(key).limit(BATCH)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


FREE_TEXT = frozenset({"note", "message_id"})  # operators' notes (names, phone calls …), input ids: dropped


def masked(value: Any) -> Any:
    """``value`` with every personnummer in its strings masked (dicts and lists walked) and the free
    texts an operator wrote (``note``) dropped: masking finds personnummer, not names."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: None if k in FREE_TEXT else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value
