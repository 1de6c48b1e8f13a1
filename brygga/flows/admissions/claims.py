"""Claims on pending admissions: a placement process marks the rows it works on, so two processes
over the same rows never both place one.

``claimed_by`` is host:pid:token (a token per call of ``place``), ``claimed_until`` a lease. A row
is claimed by one UPDATE conditioned on "still pending and no live claim", so of two processes only
one gets it. A claim is given back when its chunk is recorded and when the process
leaves ``place`` (an exception too); one of a process that died (kill -9) is given back by the next
run on the same host, which sees the pid is gone; elsewhere it lapses with its lease."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, func, or_, select, update
from sqlalchemy.orm import Session

from brygga.logmask import get_logger
from brygga.states import AdmissionState
from brygga.store import Store
from brygga.store.models import NyaAdmission, table, utcnow

log = get_logger("brygga.flows.admissions")

# Longer than a task may run (dagkit's execution_timeout, 30 min), so a claim never lapses while its
# placer lives, however slow Ladok is; a dead placer's claims on this host are given back at once,
# on another host (CeleryExecutor) they wait out the lease.
LEASE = dt.timedelta(minutes=35)


def claimant() -> str:
    """A claim mark: host, pid and a token (unique per call)."""
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


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


def release_dead(store: Store) -> int:
    """Give back the live claims of placement processes on this host that are gone (kill -9)."""
    t = table(NyaAdmission)
    with store.transaction() as s:
        marks = s.execute(select(t.c.claimed_by).where(t.c.claimed_until >= utcnow(),
                                                       func.substr(t.c.claimed_by, 1, len(_host()) + 1) == f"{_host()}:").distinct()).scalars()
        dead = [m for m in marks if not _alive(m)]
        if dead:
            s.execute(update(t).where(t.c.claimed_by.in_(dead)).values(claimed_by=None, claimed_until=None))
            log.warning("gave back the claims of %d placement process(es) that are gone: %s", len(dead), dead)
    return len(dead)


def _host() -> str:
    return socket.gethostname()[:60]


def _alive(mark: str) -> bool:
    try:
        pid = int(mark.split(":")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True  # this process (another, concurrent call of place): its own finally gives it back
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
