"""The snapshot: "När en student ansöker på antagning.se så skickas studentens meriter … från Ladok
till NyA." When a personnummer first appears among a round's applicants (``applicants.py``), the
merits Ladok already has for the student are read through Ladok REST and queued for NyA once —
with the same merit ids and content as the feed path (``mappings/ladok/merits.py`` reads the
resources into the shape of the events), so a merit both paths find is sent once (the ledger).

Applicants waiting (``nya_applicant.snapshot = pending``) are claimed in chunks with a lease (rows
claimed before they are worked on; a killed worker's claims lapse and are taken again), their
students found with one search per chunk, each student's resources read in a few threads, and the
chunk's merits and the applicants' new state committed in one transaction. The Ladok Connection's
rate limit and the ``ladok_api`` pool pace it; a time budget ends a run, the next one goes on. The
merits go out as ``merit-snapshot`` outbox rows, which the sender sends after the live ones."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import or_, select, update

from adapters.http import PeerError
from brygga.flows.kit import claimant
from brygga.flows.merits import ledger
from brygga.flows.merits.grades import GradeBook
from brygga.flows.merits.lookups import Enricher
from brygga.flows.merits.rules import SNAPSHOT_KIND, SOURCE, to_merit
from brygga.flows.ports import Ladok, Nya
from brygga.logmask import get_logger
from brygga.records import LadokEvent, Merit
from brygga.store import Store, ops
from brygga.store.models import NyaApplicant, utcnow

log = get_logger("brygga.flows.merits")

CHUNK = 100  # applicants per claim: one student search
WORKERS = 4  # students read at once (the Connection's rate limit paces them together)
LEASE = dt.timedelta(minutes=10)


def take_back(store: Store, owner: str | None = None) -> int:
    """Applicants claimed by a snapshot that died (kill -9): an earlier try of ``owner`` (the same
    task instance, any host) or a process of this host that is gone — waiting again now, not after
    the lease (the fault-injection harness found a killed try's chunk left for the lease while the
    retry succeeded with nothing to do)."""
    now = utcnow()
    with store.transaction() as s:
        held = list(s.execute(select(NyaApplicant.id, NyaApplicant.claimed_by).where(
            NyaApplicant.snapshot == "pending", NyaApplicant.claimed_by.is_not(None),
            NyaApplicant.claimed_until >= now)))
        gone = [i for i, mark in held if claimant.gone(mark, owner)]
        if gone:
            s.execute(update(NyaApplicant).where(NyaApplicant.id.in_(gone))
                      .values(claimed_by=None, claimed_until=None).execution_options(synchronize_session=False))
    if gone:
        log.warning("merit snapshot: took over %d applicant(s) whose snapshot died", len(gone))
    return len(gone)


def claim(store: Store, worker: str, n: int, *, lease: dt.timedelta = LEASE) -> list[tuple[int, str]]:
    """Up to ``n`` waiting applicants nobody holds, held by ``worker`` until the lease ends."""
    now = utcnow()
    with store.transaction() as s:
        q = (select(NyaApplicant.id, NyaApplicant.personnummer)
             .where(NyaApplicant.snapshot == "pending",
                    or_(NyaApplicant.claimed_until.is_(None), NyaApplicant.claimed_until < now))
             .order_by(NyaApplicant.id).limit(n))
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = [(i, p) for i, p in s.execute(q)]
        if rows:
            s.execute(update(NyaApplicant).where(NyaApplicant.id.in_([i for i, _ in rows]))
                      .values(claimed_by=worker, claimed_until=now + lease)
                      .execution_options(synchronize_session=False))
    return rows


def take(store: Store, ladok: Ladok, nya: Nya, *, seconds: float = 240.0, chunk: int = CHUNK,
         workers: int = WORKERS, worker: str | None = None, lease: dt.timedelta = LEASE,
         after_chunk: Callable[[dict[str, Any]], None] | None = None, owner: str | None = None) -> dict[str, Any]:
    """Snapshot waiting applicants for at most ``seconds``; counts. A Ladok outage releases the
    chunk and is raised (the task retries); a student whose resources cannot be read is
    quarantined and the rest goes on. ``owner`` (the task instance's identity) lets a retry take
    over what its killed try held."""
    take_back(store, owner)
    worker = worker or claimant.claimant(owner)
    enricher = Enricher(ladok, GradeBook(ladok, store))
    counts: Counter[str] = Counter()
    until = time.monotonic() + seconds
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="merit-snapshot") as pool:
        while time.monotonic() < until:
            claimed = claim(store, worker, chunk, lease=lease)
            if not claimed:
                break
            failure = _one_chunk(store, ladok, nya, enricher, pool, claimed, worker, counts)
            if after_chunk is not None:
                after_chunk(dict(counts))
            if failure is not None:
                log.warning("merit snapshot: Ladok failing, %d applicant(s) left waiting: %s", len(claimed), failure)
                raise failure
    with store.transaction() as s:
        counts["waiting"] = s.query(NyaApplicant).filter(NyaApplicant.snapshot == "pending").count()
    summary = {k: counts[k] for k in ("applicants", "students", "no_student", "merits", "already", "rejected",
                                      "unreadable", "waiting")}
    log.info("merit snapshot: %s", summary)
    return summary


def _safe(fn: Callable[[str], list[LadokEvent]], uid: str) -> list[LadokEvent] | Exception:
    try:
        return fn(uid)
    except Exception as e:  # noqa: BLE001 - a student's failure is recorded, the chunk goes on
        return e


def _one_chunk(store: Store, ladok: Ladok, nya: Nya, enricher: Enricher, pool: ThreadPoolExecutor,
               claimed: list[tuple[int, str]], worker: str, counts: Counter[str]) -> PeerError | None:
    """Read, decide and commit one chunk; the transient failure that left it waiting, if any."""
    numbers = sorted({p for _, p in claimed})
    try:
        students = ladok.students_by_personnummer(numbers)
    except PeerError as err:
        _release(store, claimed, worker, str(err))
        if not err.transient:
            raise
        return err
    found = {p: st.uid for p, st in students.items() if st.uid}
    read = dict(zip(found, pool.map(lambda uid: _safe(ladok.student_merits, uid), found.values()), strict=True))
    merits: list[Merit] = []
    per_pnr: Counter[str] = Counter()
    rejected: dict[str, str] = {}
    transient: PeerError | None = None
    failed: set[str] = set()
    for pnr, events in read.items():
        if isinstance(events, PeerError) and events.transient:
            transient, failed = transient or events, failed | {pnr}
            continue
        if isinstance(events, Exception):
            counts["unreadable"] += 1
            rejected[f"snapshot:{found[pnr]}"] = f"the student's merits could not be read from Ladok: {events}"
            continue
        enricher.students[found[pnr]] = pnr
        for ev in events:
            m = to_merit(ev, pnr, enricher)
            if isinstance(m, str):
                rejected[f"snapshot:{found[pnr]}:{ev.event_type}"] = m
            else:
                merits.append(m)
                per_pnr[pnr] += 1
    merits = list({m.merit_id: m for m in merits}.values())  # a student applying in two rounds: once
    invalid = nya.invalid_merits(merits) if merits else {}
    for merit_id, why in invalid.items():
        rejected[f"snapshot:{merit_id}"] = f"not a valid NyA merit: {why}"
    merits = [m for m in merits if m.merit_id not in invalid]
    now = utcnow()
    with store.transaction() as s:
        queued = ledger.queue(s, merits, kind=SNAPSHOT_KIND, source="snapshot",
                              correlation=f"snapshot:{claimed[0][0]}") if merits else Counter()
        done = [i for i, p in claimed if p not in failed]
        for state, ids in (("done", [i for i, p in claimed if p in found and p not in failed]),
                           ("no_student", [i for i, p in claimed if p not in found])):
            if ids:
                s.execute(update(NyaApplicant).where(NyaApplicant.id.in_(ids), NyaApplicant.claimed_by == worker)
                          .values(snapshot=state, snapshot_at=now, claimed_by=None, claimed_until=None,
                                  attempts=NyaApplicant.attempts + 1)
                          .execution_options(synchronize_session=False))
        for i, p in claimed:
            if i in done and per_pnr[p]:
                s.execute(update(NyaApplicant).where(NyaApplicant.id == i).values(merits=per_pnr[p])
                          .execution_options(synchronize_session=False))
        for key, reason in rejected.items():
            ops.quarantine(s, source=SOURCE, message_id=key[:255], kind="merit-snapshot", reason=reason)
    if failed:
        _release(store, [(i, p) for i, p in claimed if p in failed], worker, str(transient))
    counts["applicants"] += len(claimed) - sum(1 for _, p in claimed if p in failed)
    counts["students"] += len(found) - len(failed)
    counts["no_student"] += sum(1 for _, p in claimed if p not in found)
    counts["merits"] += queued["queued"]
    counts["already"] += queued["already"]
    counts["rejected"] += len(rejected)
    return transient


def _release(store: Store, claimed: list[tuple[int, str]], worker: str, error: str) -> None:
    with store.transaction() as s:
        s.execute(update(NyaApplicant).where(NyaApplicant.id.in_([i for i, _ in claimed]),
                                             NyaApplicant.claimed_by == worker)
                  .values(claimed_by=None, claimed_until=None, attempts=NyaApplicant.attempts + 1,
                          last_error=error[:2000])
                  .execution_options(synchronize_session=False))
