"""A reconciliation run: both peers read through their gateways, compared (``compare.py``), the drift
recorded (or, in a dry run, only listed)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from adapters.http import PeerError, if_found
from brygga.flows.kit.flow import Flow
from brygga.flows.kit.quarantine import unreadable
from brygga.flows.ports import Ladok, Nya
from brygga.flows.reconciliation import compare
from brygga.flows.reconciliation.compare import Found, Ledgered, Placed
from brygga.logmask import get_logger
from brygga.records import Admission, Participant, Utbildningstillfalle
from brygga.states import DRIFT_ACTION_TEXT, DRIFT_TEXT
from brygga.store import Store, ops
from brygga.store.models import AterbudCase, Drift, NyaAdmission, NyaApplicant, NyaMerit, ReconciliationRun, utcnow

log = get_logger("brygga.flows.reconciliation")

FLOW = Flow("reconciliation", "brygga_reconciliation")
_CHUNK = 500


def reconcile(store: Store, nya: Nya, ladok: Ladok, *, rounds: list[str] | None = None, dry_run: bool = False,
              actor: str = FLOW.actor, merits: bool = True) -> dict[str, Any]:
    """Compare the open rounds (or ``rounds``); record what differs (or list it, ``dry_run``)."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    if rounds is None:
        with unreadable(store, consumer="the reconciliation"):
            rounds = nya.open_rounds()
    found: list[Found] = []
    compared: Counter[str] = Counter()
    for code in rounds:
        found += _admissions(store, nya, ladok, code, compared)
        if merits:
            found += _merits(store, nya, code, compared)
    counts = Counter(f.kind for f in found)
    summary: dict[str, Any] = {"rounds": rounds, "dry_run": dry_run, "found": dict(counts),
                               "compared": dict(compared), "seconds": round(time.perf_counter() - t0, 2),
                               "cpu_seconds": round(time.process_time() - cpu0, 2)}
    if dry_run:
        summary["would"] = [{"kind": f.kind, "what": DRIFT_TEXT.get(f.kind, f.kind), "subject": f.subject,
                             "round": f.round, "action": f.action, "action_text": DRIFT_ACTION_TEXT.get(f.action)}
                            for f in found]
    else:
        summary.update(_record(store, rounds, found, compared, actor, merits))
    log.info("reconciliation: %s", {k: v for k, v in summary.items() if k != "would"})
    return summary


# ---------------------------------------------------------------------------------- admissions
def _admissions(store: Store, nya: Nya, ladok: Ladok, code: str, compared: Counter[str]) -> list[Found]:
    admissions: list[Admission] = []
    with unreadable(store, consumer="the reconciliation"), nya.admissions(code, 0) as reply:
        admissions.extend(a for a in reply if isinstance(a, Admission) and a.round == code)
    compared["admissions"] += len(admissions)
    placed = _placed(store, [a.admission_id for a in admissions])
    settled = [a for a in admissions if a.admission_id in placed and placed[a.admission_id].state in compare.SETTLED]
    students: dict[str, str] = {}
    for a in settled:
        uid = placed[a.admission_id].student_uid
        if uid:
            students[a.personnummer] = uid
    missing = sorted({a.personnummer for a in settled if a.personnummer not in students})
    if missing:
        students.update((p, st.uid) for p, st in ladok.students_by_personnummer(missing).items() if st.uid)
    instances = _instances(ladok, {placed[a.admission_id].instance(a) for a in settled})
    participants = compare.best(p for p in ladok.participants(instances) if isinstance(p, Participant))
    compared["participants"] += len(participants)
    villkor: dict[str, set[str]] = {}
    in_ladok = _villkor_in_ladok(store, [a.admission_id for a in settled])
    for a in settled:
        student = students.get(a.personnummer)
        p = participants.get((student, placed[a.admission_id].instance(a))) if student else None
        if p is not None and not a.aterbud_date and compare.needs_villkor(a, in_ladok.get(a.admission_id, set())):
            villkor[p.uid] = set(ladok.villkor(p.uid))
    compared["villkor"] += len(villkor)
    return compare.admissions(code, admissions, placed, students, participants, villkor,
                              _open_cases(store, [a.admission_id for a in settled if a.aterbud_date]))


def _open_cases(store: Store, ids: list[str]) -> set[str]:
    """The admissions among ``ids`` with an open återbudsärende."""
    out: set[str] = set()
    with store.transaction() as s:
        for i in range(0, len(ids), _CHUNK):
            out.update(s.scalars(select(AterbudCase.nya_admission_id).where(
                AterbudCase.nya_admission_id.in_(ids[i:i + _CHUNK]), AterbudCase.status == "open")))
    return out


def _placed(store: Store, ids: list[str]) -> dict[str, Placed]:
    out: dict[str, Placed] = {}
    with store.transaction() as s:
        for i in range(0, len(ids), _CHUNK):
            for aid, state, student, antagning, package, instance in s.execute(select(
                    NyaAdmission.admission_id, NyaAdmission.state, NyaAdmission.student_uid,
                    NyaAdmission.antagning_uid, NyaAdmission.package_uid, NyaAdmission.utbildningstillfalle_uid).where(
                    NyaAdmission.admission_id.in_(ids[i:i + _CHUNK]))):
                out[aid] = Placed(state, student, antagning, package, instance)
    return out


def _villkor_in_ladok(store: Store, ids: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    with store.transaction() as s:
        for i in range(0, len(ids), _CHUNK):
            for aid, conds in s.execute(select(NyaAdmission.admission_id, NyaAdmission.conditions).where(
                    NyaAdmission.admission_id.in_(ids[i:i + _CHUNK]))):
                codes = {c["code"] for c in conds or [] if c.get("in_ladok")}
                if codes:
                    out[aid] = codes
    return out


def _instances(ladok: Ladok, uids: Iterable[str]) -> list[Utbildningstillfalle]:
    out = []
    for uid in sorted(uids):
        t = if_found(ladok.tillfalle, uid)
        if t is not None:
            out.append(t)
    return out


# ---------------------------------------------------------------------------------- merits
def _merits(store: Store, nya: Nya, code: str, compared: Counter[str]) -> list[Found]:
    """The round's applicants with merits in the ledger: theirs against NyA's."""
    with store.transaction() as s:
        applicants = sorted(set(s.scalars(select(NyaApplicant.personnummer).where(NyaApplicant.round == code))))
        ledger: dict[str, list[Ledgered]] = {}
        for i in range(0, len(applicants), _CHUNK):
            for r in s.scalars(select(NyaMerit).where(NyaMerit.personnummer.in_(applicants[i:i + _CHUNK]))):
                ledger.setdefault(r.personnummer, []).append(
                    Ledgered(r.ref, r.merit_id, r.state, r.held, r.content_hash))
    found: list[Found] = []
    for pnr, rows in sorted(ledger.items()):
        try:
            held = nya.applicant_merits(pnr)
        except PeerError as e:
            if e.transient:
                raise
            log.warning("reconciliation: the merits NyA holds for an applicant could not be read: %s", e)
            continue
        compared["merits"] += len(rows)
        found += [Found(f.kind, f.subject, code, f.personnummer, f.action, f.detail)
                  for f in compare.merits(pnr, rows, held)]
    compared["applicants"] += len(ledger)
    return found


# ---------------------------------------------------------------------------------- the record
def _record(store: Store, rounds: list[str], found: list[Found], compared: Counter[str], actor: str,
            merits: bool) -> dict[str, Any]:
    now = utcnow()
    with store.transaction() as s:
        run = ReconciliationRun(started_at=now, rounds=list(rounds), dry_run=False, actor=actor,
                                counts=dict(Counter(f.kind for f in found)), compared=dict(compared))
        s.add(run)
        s.flush()
        open_rows = {(d.kind, d.subject): d for d in s.scalars(select(Drift).where(
            Drift.status == "open", Drift.round.in_(list(rounds))))}
        # an operator left it (with a note): not found anew
        dismissed = set(s.execute(select(Drift.kind, Drift.subject).where(
            Drift.status == "dismissed", Drift.round.in_(list(rounds)))).tuples())
        seen: set[tuple[str, str]] = set()
        new = 0
        for f in found:
            key = (f.kind, f.subject)
            if key in seen or key in dismissed:
                continue
            seen.add(key)
            row = open_rows.get(key)
            if row is None:
                s.add(Drift(run_id=run.id, round=f.round, kind=f.kind, subject=f.subject, personnummer=f.personnummer,
                            detail=f.detail, action=f.action, status="open", found_at=now, last_seen_at=now))
                new += 1
            else:
                row.run_id, row.last_seen_at, row.detail = run.id, now, f.detail
        gone = 0
        for key, row in open_rows.items():
            if key in seen or (not merits and row.kind.startswith("merit.")):
                continue
            row.status, row.resolved_at, row.resolved_by = "gone", now, actor
            gone += 1
        run.finished_at = utcnow()
        ops.audit(s, actor, "reconciliation.run", "reconciliation_run", str(run.id), rounds=list(rounds),
                  found=run.counts, new=new, gone=gone)
        return {"run_id": run.id, "new": new, "gone": gone}
