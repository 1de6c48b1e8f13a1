"""Admission placement: pending admissions placed in the students' study plans in Ladok.

Per chunk (whole students): the utbildningstillfällen (by Utbildningskod + Tillfälleskod, cached),
the students (Ladok's student search, many personnummer per request; a student not in Ladok is
first established with the population-register name and folkbokföringsadress, never an address
for a protected person), then each admission placed (``Anmalningsnummer`` = AdmissionId, which
makes the placement idempotent in Ladok) with fee liability, paid application fee and the open
behörighetsvillkor; a programme-internal admission inside its package (kurspaketering). One that
cannot be placed goes to the queue with its hinder; one bad admission never stops the chunk; a
peer outage leaves admissions pending.

Rows are claimed before they are worked on (:mod:`brygga.flows.admissions.claims`): two placement
processes over the same pending rows never both place one.

An admission whose placement failed transiently ``OVRIGT_AFTER`` times in a row goes to the queue as
``ovrigt`` — but only if Ladok placed other admissions since its failures began (the peer is up,
so the trouble is this admission's). In an outage everything stays pending and :func:`brygga.views.long_pending` shows it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from adapters.http import PeerError
from adapters.ladok import Refused
from brygga import tracing
from brygga.flows.admissions import claims
from brygga.flows.admissions import hinder as hinders
from brygga.flows.admissions.queue import placed_while_declined, queue
from brygga.flows.admissions.resolving import Catalogue, resolve_all
from brygga.flows.admissions.rules import ACTOR
from brygga.flows.admissions.work import WORK_COLUMNS, Work, work
from brygga.flows.ports import Ladok, PopulationRegister
from brygga.logmask import get_logger
from brygga.records import Placement
from brygga.states import AdmissionState, Hinder
from brygga.store import Store, ops
from brygga.store.models import NyaAdmission, as_utc, table, utcnow

log = get_logger("brygga.flows.admissions")

CHUNK = 2000
WORKERS = 8
OVRIGT_AFTER = 5  # transient failures in a row (in runs where the peer placed others)


def place(store: Store, ladok: Ladok, folk: PopulationRegister, round_code: str | None = None, *,
          chunk: int = CHUNK, workers: int = WORKERS, limit: int | None = None, shard: int = 0,
          shards: int = 1, owner: str | None = None) -> dict[str, int]:
    """Place pending admissions (all rounds, or one). Returns counts per outcome and hinder.

    Chunks hold whole students (a programme and the courses inside it are placed in order).
    ``shard``/``shards`` split the work by the personnummer's check digit, so several workers (mapped
    tasks on CeleryExecutor) can place at once without ever sharing a student. ``owner`` (the task
    instance's identity) lets a retry take over what an earlier try of it claimed and died with,
    on whatever host that try ran."""
    if not 0 <= shard < shards <= 10:
        raise ValueError("need 0 <= shard < shards <= 10")
    counts: dict[str, int] = {"placed": 0, "established": 0, "unhandled": 0, "retry": 0}
    catalogue = Catalogue(ladok)
    digits = [str(d) for d in range(10) if d % shards == shard]
    done, me = 0, claims.claimant(owner)
    after: str | None = ""
    claims.release_dead(store, owner)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="place") as pool:
            while limit is None or done < limit:
                items, after = _next_chunk(store, me, round_code, digits if shards > 1 else None, after,
                                           chunk if limit is None else min(chunk, limit - done))
                if not items:
                    if after is None:
                        break
                    continue  # all of these were claimed by another process meanwhile: go on after them
                # (students per chunk: chunks hold whole students, so none recurs in a later one and
                # a cache across chunks would only grow with the round)
                resolve_all(items, catalogue, ladok, folk, {}, pool)
                _place_all(items, ladok, catalogue, pool)
                with store.transaction() as s:
                    _record(s, items, counts)
                done += len(items)
    finally:
        claims.release(store, me)
    log.info("placed admissions%s (shard %s/%s): %s", f" of {round_code}" if round_code else "", shard, shards,
             counts)
    return counts


def outcome(store: Store, since: dt.datetime, owners: Sequence[str] = ()) -> dict[str, int]:
    """What the store says a run did since ``since``: admissions placed and sent to the queue
    (whatever the tasks that did it returned: a try lost with its worker returns nothing), and the
    pending admissions ``owners`` (the run's placement task instances) still hold a live claim on."""
    t = table(NyaAdmission)
    with store.transaction() as s:
        placed = s.scalar(select(func.count()).select_from(t).where(t.c.placed_at >= since)) or 0
        unhandled = s.scalar(select(func.count()).select_from(t).where(
            t.c.state == AdmissionState.UNHANDLED, t.c.updated_at >= since)) or 0
    return {"placed": int(placed), "unhandled": int(unhandled), "claimed_unplaced": claims.claimed_by(store, owners)}


def _next_chunk(store: Store, me: str, round_code: str | None, digits: list[str] | None, after: str | None,
                n: int) -> tuple[list[Work], str | None]:
    """Claim up to ``n`` pending admissions after personnummer ``after``, in order, that no live
    claim holds; the last student is left whole for the next chunk. Returns the rows this call
    claimed and the cursor for the next call (None: nothing left).

    The claim is one UPDATE conditioned on the row still being pending and unclaimed, so of two
    processes only one gets a row (on PostgreSQL the second waits for the first's short claim
    transaction, then finds the rows claimed)."""
    t = table(NyaAdmission)
    now = utcnow()
    free = claims.free(t, now)
    with store.transaction() as s:
        q = select(t.c.admission_id, t.c.personnummer).where(t.c.state == AdmissionState.PENDING, free,
                                                             t.c.personnummer > (after or ""))
        if round_code:
            q = q.where(t.c.round == round_code)
        if digits is not None:
            q = q.where(func.substr(t.c.personnummer, 12, 1).in_(digits))
        # (no FOR UPDATE SKIP LOCKED: it would lock the look-ahead row, the next student's first
        # admission, and let another placer claim that student's others; the conditioned claim
        # UPDATE alone decides who gets a row)
        rows = list(s.execute(q.order_by(t.c.personnummer, t.c.admission_id).limit(n + 1)))
        if not rows:
            return [], None
        if len(rows) > n:
            last = rows[-1].personnummer
            rows = [r for r in rows if r.personnummer != last] or rows
        ids = [r.admission_id for r in rows]
        claims.claim(s, t, ids, me, now)
        mine = select(*(t.c[c] for c in WORK_COLUMNS)).where(t.c.admission_id.in_(ids), t.c.claimed_by == me)
        items = [work(r) for r in s.execute(mine.order_by(t.c.personnummer, t.c.admission_id))]
    return items, rows[-1].personnummer or ""


def _place_all(items: list[Work], ladok: Ladok, catalogue: Catalogue, pool: ThreadPoolExecutor) -> None:
    """Place per student in order (programmes before the courses that may sit inside them);
    students in parallel."""
    by_student: dict[str | None, list[Work]] = {}
    for w in items:
        if w.outcome is None:
            by_student.setdefault(w.student_uid, []).append(w)
    groups = [sorted(ws, key=lambda w: (not w.instance.is_programme, w.admission_id)) for ws in by_student.values()]

    def place_student(ws: list[Work]) -> None:
        for w in ws:
            place_one(w, ladok, catalogue)

    list(pool.map(place_student, groups))


def place_one(w: Work, ladok: Ladok, catalogue: Catalogue, *, package_uid: str | None = None,
              fristaende: bool = False) -> None:
    p = Placement(
        student_uid=w.student, utbildningstillfalle_uid=w.instance.uid, anmalningsnummer=w.admission_id,
        fee="ej_betald" if w.fee_liable else "ej_aktuell",
        package_uid=package_uid or (w.package_id if w.programme_internal and not fristaende else None),
        fristaende=fristaende, inom_kurspaketering=w.programme_internal and not fristaende and not package_uid,
        villkor=tuple(c["code"] for c in w.conditions if not c.get("lifted")),
        application_fee_paid=w.application_fee_paid if w.fee_liable else None,
        traceparent=tracing.child(w.traceparent))
    try:
        w.placed = ladok.place(p)
        w.outcome = "placed"
    except Refused as e:
        code = hinders.of_ladok(e.hinder.key)
        w.unhandled(code, hinders.reason(code, e.hinder.describe()))
        if code == Hinder.KUNDE_INTE_PLACERAS_I_PLAN:
            try:
                w.candidates = _package_candidates(ladok, catalogue, w)
            except PeerError as pe:
                log.warning("could not list packages for %s (trace %s): %s", w.admission_id,
                            tracing.trace_id(w.traceparent), pe)
        log.info("admission %s not placed (trace %s): %s", w.admission_id, tracing.trace_id(w.traceparent), code)
    except PeerError as e:
        log.info("admission %s: Ladok %s (trace %s)", w.admission_id, "failed transiently" if e.transient else "refused",
                 tracing.trace_id(w.traceparent))
        if e.transient:
            w.retry(e)
            w.post_failed = True
        else:
            w.unhandled(Hinder.OVRIGT, hinders.reason(Hinder.OVRIGT, str(e)))


def placed_conditions(w: Work) -> list[dict[str, Any]]:
    """The row's villkor with ``in_ladok`` = put on the tillfällesantagning by the placement."""
    return [{**c, "in_ladok": not c.get("lifted")} for c in w.conditions]


def _package_candidates(ladok: Ladok, catalogue: Catalogue, w: Work) -> list[dict[str, Any]]:
    """The programme admissions in the student's plan whose package contains the course."""
    out = []
    for node in ladok.study_plan(w.student):
        if node.parent_uid is not None or node.aterbud or not node.tillfalle_uid:
            continue
        t = catalogue.get(node.tillfalle_uid)
        if t.is_programme and w.instance.uid in t.course_uids:
            out.append({"package_uid": t.uid, "utbildningskod": t.utbildningskod, "tillfalleskod": t.tillfalleskod,
                        "name": t.name_sv})
    return out


def _record(s: Session, items: list[Work], counts: dict[str, int]) -> None:
    """Write a chunk's outcomes: placements and retries as one executemany UPDATE (only rows still
    pending: an återbud may have declined one meanwhile), the few unhandled ones row by row."""
    now = utcnow()
    bulk, unhandled = [], []
    _give_up_on_failing(s, items, now)
    for w in items:
        counts["established"] += w.established
        retry = w.outcome == "retry"
        # Only the placement POST's own transient failures count towards ovrigt; a lookup that
        # failed before it (student search, population register) leaves the count as it was.
        failures = (w.transient_failures + 1 if w.post_failed else w.transient_failures) if retry else 0
        values = {"b_id": w.admission_id, "attempts": w.attempts + 1, "student_uid": w.student_uid,
                  "utbildningstillfalle_uid": w.tillfalle.uid if w.tillfalle else None, "updated_at": now,
                  "transient_failures": failures,
                  "failing_since": (w.failing_since or (now if w.post_failed else None)) if retry else None,
                  "placed_at": now if w.outcome == "placed" else None}
        if w.outcome == "placed":
            bulk.append({**values, "state": AdmissionState.PLACED, "antagning_uid": w.placement["uid"],
                         "package_uid": w.placement.get("package_uid"), "conditions": placed_conditions(w),
                         "last_error": None})
            counts["placed"] += 1
        elif w.outcome == "retry":  # a peer outage: stays pending, the task fails and Airflow retries
            bulk.append({**values, "state": AdmissionState.PENDING, "antagning_uid": None, "package_uid": None,
                         "conditions": w.conditions, "last_error": w.reason})
            counts["retry"] += 1
        else:
            unhandled.append(w)
    if bulk:  # the audit row names each placement's trace id (the one Ladok got in its traceparent)
        _record_bulk(s, bulk, counts, {w.admission_id: tracing.trace_id(w.traceparent) for w in items})
    for w in unhandled:
        _record_unhandled(s, w, counts)


def _give_up_on_failing(s: Session, items: list[Work], now: dt.datetime) -> None:
    """The ``ovrigt`` rule: a retry that is the ``OVRIGT_AFTER``-th in a row goes to the queue if
    Ladok placed others since this admission's failures began (in this chunk or any run)."""
    due = [w for w in items if w.outcome == "retry" and w.post_failed and w.transient_failures + 1 >= OVRIGT_AFTER]
    if not due:
        return
    placed_now = any(w.outcome == "placed" for w in items)
    t = table(NyaAdmission)
    last_placed = None if placed_now else s.execute(select(func.max(t.c.placed_at))).scalar()
    for w in due:
        since = w.failing_since or now
        if placed_now or (last_placed is not None and as_utc(last_placed) >= as_utc(since)):
            w.unhandled(Hinder.OVRIGT, hinders.reason(
                Hinder.OVRIGT, f"{w.transient_failures + 1} tillfälliga fel i rad medan Ladok placerade andra; "
                               f"senast: {w.reason}"))


def _record_bulk(s: Session, bulk: list[dict[str, Any]], counts: dict[str, int],
                 traces: dict[str, str | None]) -> None:
    t = table(NyaAdmission)
    s.connection().execute(
        update(t).where(t.c.admission_id == bindparam("b_id"), t.c.state == AdmissionState.PENDING).values(
            {**{c: bindparam(c) for c in ("state", "attempts", "student_uid", "utbildningstillfalle_uid",
                                          "antagning_uid", "package_uid", "conditions", "last_error", "updated_at",
                                          "transient_failures", "failing_since", "placed_at")},
             "claimed_by": None, "claimed_until": None}),
        bulk)
    placed = {b["b_id"]: b for b in bulk if b["state"] == AdmissionState.PLACED}
    if placed:
        ops.audit(s, ACTOR, "admission.place", "nya_admission", None, admissions=list(placed),
                  traces={k: traces[k] for k in placed if traces.get(k)})
    placed_while_declined(s, placed, counts)


def _record_unhandled(s: Session, w: Work, counts: dict[str, int]) -> None:
    row = ops.one(s, NyaAdmission, w.admission_id)
    if row.state != AdmissionState.PENDING:  # changed meanwhile (e.g. återbud arrived): leave it
        return
    row.attempts, row.state, row.last_error = w.attempts + 1, AdmissionState.UNHANDLED, w.reason
    row.transient_failures, row.failing_since, row.claimed_by, row.claimed_until = 0, None, None, None
    row.student_uid = w.student_uid or row.student_uid
    row.utbildningstillfalle_uid = w.tillfalle.uid if w.tillfalle else row.utbildningstillfalle_uid
    queue(s, w.admission_id, w.round, w.personnummer, row.utbildningstillfalle_uid, w.tillfalleskod,
          w.hinder or Hinder.OVRIGT, w.reason or "", w.candidates, w.record)
    counts["unhandled"] += 1
    counts[f"hinder:{w.hinder}"] = counts.get(f"hinder:{w.hinder}", 0) + 1
