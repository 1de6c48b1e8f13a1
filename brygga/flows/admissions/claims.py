"""Claims on pending admissions: a placement process marks the rows it works on, so two processes
over the same rows never both place one.

``claimed_by`` is host:pid:token[:owner] (a token per call of ``place``; the owner, when given, is
the Airflow task instance's identity — dag, run, task, map index — the same in each of its tries),
``claimed_until`` a lease. A row is claimed by one UPDATE conditioned on "still pending and no live
claim", so of two processes only one gets it. A claim is given back when its chunk is recorded and
when the process leaves ``place`` (an exception too); one of a process that died (kill -9) is
given back by the next try of the same task instance wherever it runs (Airflow starts a try only
when the one before has ended or was declared lost), and by any run on the same host, which sees
the pid is gone; otherwise it lapses with its lease."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, func, or_, select, update
from sqlalchemy.orm import Session

from brygga.flows.kit import claimant as kit_claimant
from brygga.logmask import get_logger
from brygga.states import AdmissionState
from brygga.store import Store
from brygga.store.models import NyaAdmission, table, utcnow

log = get_logger("brygga.flows.admissions")

# Longer than a task may run (dagkit's execution_timeout, 30 min), so a claim never lapses while its
# placer lives, however slow Ladok is; a dead placer's claims on this host are given back at once,
# on another host (CeleryExecutor) they wait out the lease.
LEASE = dt.timedelta(minutes=35)


claimant, owner_mark = kit_claimant.claimant, kit_claimant.owner_mark


def free(t: Table, now: dt.datetime) -> ColumnElement[bool]:
    """No live claim on the row."""
    return or_(t.c.claimed_until.is_(None), t.c.claimed_until < now)


def claim(s: Session, t: Table, ids: Sequence[Any], me: str, now: dt.datetime) -> None:
    """Claim those of ``ids`` that are still pending and free (the caller reads back which)."""
    s.execute(update(t).where(t.c.admission_id.in_(ids), t.c.state == AdmissionState.PENDING, free(t, now))
              .values(claimed_by=me, claimed_until=now + LEASE))


def release(store: Store, me: str) -> None:
    """Give back the rows ``me`` still holds (a chunk that failed before it was recorded)."""
    t = table(NyaAdmission)
    with store.transaction() as s:
        s.execute(update(t).where(t.c.claimed_by == me).values(claimed_by=None, claimed_until=None))


def release_dead(store: Store, owner: str | None = None) -> int:
    """Give back the live claims of placement processes on this host that are gone (kill -9), and
    those of the earlier tries of ``owner`` (the same task instance) on any host."""
    t = table(NyaAdmission)
    if owner:
        mark = f":{owner_mark(owner)}"
        with store.transaction() as s:
            taken = s.execute(update(t).where(t.c.claimed_until >= utcnow(), t.c.claimed_by.like(f"%{mark}"))
                              .values(claimed_by=None, claimed_until=None)).rowcount  # type: ignore[attr-defined]
        if taken:
            log.warning("took over %d admission(s) claimed by an earlier try of this task", taken)
    with store.transaction() as s:
        marks = s.execute(select(t.c.claimed_by).where(t.c.claimed_until >= utcnow(),
                                                       func.substr(t.c.claimed_by, 1, len(_host()) + 1) == f"{_host()}:").distinct()).scalars()
        dead = [m for m in marks if not _alive(m)]
        if dead:
            s.execute(update(t).where(t.c.claimed_by.in_(dead)).values(claimed_by=None, claimed_until=None))
            log.warning("gave back the claims of %d placement process(es) that are gone: %s", len(dead), dead)
    return len(dead)


def claimed_by(store: Store, owners: Sequence[str]) -> int:
    """How many pending admissions the given owners still hold a live claim on."""
    t = table(NyaAdmission)
    marks = [f"%:{owner_mark(o)}" for o in owners]
    if not marks:
        return 0
    with store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(t).where(
            t.c.state == AdmissionState.PENDING, t.c.claimed_until >= utcnow(),
            or_(*(t.c.claimed_by.like(m) for m in marks)))) or 0)


_host, _alive = kit_claimant.host, kit_claimant.alive
