"""Behörighetsvillkor: NyA's villkor changes (added / lifted) applied to placed admissions in Ladok.

A lifted villkor is removed from the tillfällesantagning (one already removed by hand in Ladok is
left alone — and nothing is ever sent back to NyA), an added one is put on it. The reply is read
by the kit's sequence follower, in chunks like the fetch: per chunk, decide in one short
transaction, call Ladok outside it (no store lock held while Ladok answers), record in a second
one with the inbox and the round's checkpoint. A repeat after a crash in between is harmless: lifting a
villkor that is gone, or adding one that is there, changes nothing. A change Ladok refuses (e.g.
the tillfällesantagning has återbud) is quarantined; the rest go on."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from adapters.http import PeerError
from brygga.flows.admissions.rules import ACTOR, FLOW, VILLKOR_INBOX
from brygga.flows.kit.sequence import SequenceFollower
from brygga.flows.ports import Ladok, Nya, SequenceReply
from brygga.records import ConditionChange
from brygga.states import AdmissionState, InboxStatus
from brygga.store import Store, ops
from brygga.store.models import NyaAdmission, table, utcnow
from mappings.base import RecordError

INBOX = VILLKOR_INBOX
CHUNK = 2000

Row = tuple[str, str | None, list[dict[str, Any]]]  # (state, antagning uid, villkor)


class ConditionStream(SequenceFollower[ConditionChange]):
    """A round's villkor changes from NyA: per chunk, decided in a short read, carried out in Ladok
    outside any transaction, recorded with the inbox and the checkpoint."""

    flow, which = FLOW, 1
    chunk = CHUNK

    def __init__(self, store: Store, nya: Nya, ladok: Ladok, round_code: str, **kw: Any):
        super().__init__(store, round_code, **kw)
        self.nya, self.ladok = nya, ladok
        self.counts = {"read": 0, "lifted": 0, "added": 0, "already_removed": 0, "unchanged": 0, "not_placed": 0,
                       "invalid": 0, "refused": 0}

    def open(self, from_sequence: int) -> AbstractContextManager[SequenceReply[ConditionChange]]:
        return self.nya.condition_changes(self.round, from_sequence)

    def prepare(self, part: list[ConditionChange | RecordError]) -> Any:
        good = [c for c in part if not isinstance(c, RecordError)]
        with self.store.transaction() as s:
            seen = ops.inbox_seen(s, INBOX, [_key(self.round, c) for c in good])
            rows = _rows(s, {c.admission_id for c in good})
        todo = [c for c in good if _key(self.round, c) not in seen]
        results = {c.sequence: r for c in todo if (r := _in_ladok(self.ladok, c, rows.get(c.admission_id))) is not None}
        return todo, rows, results

    def apply(self, s: Session, part: list[ConditionChange | RecordError], prepared: Any) -> None:
        todo, rows, results = prepared
        self.counts["read"] += len(part)
        for c in part:
            if isinstance(c, RecordError):
                self.counts["invalid"] += 1
                ops.quarantine(s, source="nya", message_id=c.record_id, kind="ConditionChange", reason=str(c))
        _record(s, self.round, todo, rows, results, self.counts)


def sync_conditions(store: Store, nya: Nya, ladok: Ladok, round_code: str, *,
                    chunk: int = CHUNK) -> dict[str, int]:
    """Apply NyA's behörighetsvillkor changes since the round's checkpoint; returns counts."""
    stream = ConditionStream(store, nya, ladok, round_code, chunk=chunk)
    stream.follow()
    return stream.counts


def _rows(s: Session, ids: set[str], *, batch: int = 1000) -> dict[str, Row]:
    """(state, antagning uid, villkor) of the admissions ``ids``: only these three columns (the
    rows' records are not loaded), in bounded IN lists."""
    t, wanted, out = table(NyaAdmission), sorted(ids), {}
    for i in range(0, len(wanted), batch):
        for r in s.execute(select(t.c.admission_id, t.c.state, t.c.antagning_uid, t.c.conditions)
                           .where(t.c.admission_id.in_(wanted[i:i + batch]))):
            out[r.admission_id] = (r.state, r.antagning_uid, [dict(x) for x in r.conditions or []])
    return out


def _key(round_code: str, c: ConditionChange) -> str:
    return f"{round_code}:{c.sequence}"


def _in_ladok(ladok: Ladok, c: ConditionChange, row: Row | None) -> tuple[str, str | None] | None:
    """Carry one change out on a placed admission (None: not placed; the placement takes the row's
    villkor). Updates the row's villkor in place: ``lifted`` as NyA says, ``in_ladok`` as Ladok is."""
    if row is None or row[0] != AdmissionState.PLACED or not row[1]:
        return None
    antagning_uid, conds = row[1], row[2]
    cur = next((x for x in conds if x["code"] == c.code), None)
    in_ladok = bool(cur and cur.get("in_ladok"))
    try:
        if c.change == "lifted" and in_ladok:
            result: tuple[str, str | None] = ("lifted" if ladok.lift_villkor(antagning_uid, c.code)
                                              else "already_removed", None)
        elif c.change == "added" and not in_ladok:
            if c.code not in ladok.villkor(antagning_uid):
                ladok.add_villkor(antagning_uid, c.code)
            result = ("added", None)
        else:
            # Already as NyA says (e.g. the villkor came with the placement). A villkor removed by
            # hand in Ladok is not put back, and nothing is ever sent back to NyA.
            result = ("unchanged", None)
    except PeerError as e:
        if e.transient:
            raise
        result = ("refused", str(e))
    if cur is None:
        cur = {"code": c.code, "text": c.text, "lifted": False, "in_ladok": False}
        conds.append(cur)
    cur["lifted"] = c.change == "lifted"
    if result[0] in ("lifted", "already_removed"):
        cur["in_ladok"] = False
    elif result[0] == "added":
        cur["in_ladok"] = True
    return result


def _record(s: Session, round_code: str, todo: list[ConditionChange], rows: dict[str, Row],
            results: dict[int, tuple[str, str | None]], counts: dict[str, int]) -> None:
    inbox = []
    current = _rows(s, {c.admission_id for c in todo})  # as they are now (a placement may have run)
    changed: dict[str, list[dict[str, Any]]] = {}
    for c in todo:
        key = _key(round_code, c)
        row = current.get(c.admission_id)
        if row is None:
            counts["not_placed"] += 1  # not (yet) an accepted admission: its record carries the villkor
            inbox.append((key, "ConditionChange", InboxStatus.SKIPPED))
            continue
        outcome, error = results.get(c.sequence, ("not_placed", None))
        counts[outcome] += 1
        if c.sequence in results:
            changed[c.admission_id] = rows[c.admission_id][2]
        else:  # not placed yet: the placement takes the open villkor from the row
            conds = changed.get(c.admission_id, row[2])
            cur = next((x for x in conds if x["code"] == c.code), None)
            if cur is None:
                conds.append({"code": c.code, "text": c.text, "lifted": c.change == "lifted", "in_ladok": False})
            else:
                cur["lifted"] = c.change == "lifted"
            changed[c.admission_id] = conds
        if outcome == "refused":
            ops.quarantine(s, source="ladok", message_id=key, kind="ConditionChange",
                           reason=f"villkor {c.change} {c.code} on {c.admission_id}: {error}")
        elif outcome in ("lifted", "already_removed", "added"):
            ops.audit(s, ACTOR, f"villkor.{'add' if outcome == 'added' else 'lift'}", "nya_admission",
                      c.admission_id, code=c.code, outcome=outcome)
        inbox.append((key, "ConditionChange", InboxStatus.QUARANTINED if outcome == "refused" else InboxStatus.PROCESSED))
    if changed:  # one executemany for the chunk's rows
        t, now = table(NyaAdmission), utcnow()
        s.connection().execute(
            update(t).where(t.c.admission_id == bindparam("b_id"))
            .values(conditions=bindparam("b_conditions"), updated_at=now),
            [{"b_id": i, "b_conditions": conds} for i, conds in changed.items()])
    ops.inbox_record(s, INBOX, inbox)


def align_villkor(store: Store, ladok: Ladok, admission_id: str, *, open_in_nya: list[str], actor: str) -> dict[str, Any]:
    """Ladok's villkor on a placed admission made as NyA has them open (the reconciliation found
    them differing and an operator chose to align them): the missing ones put on, the others lifted."""
    with store.transaction() as s:
        row = s.get(NyaAdmission, admission_id)
        if row is None:
            raise KeyError(f"no admission {admission_id}")
        if row.state != AdmissionState.PLACED or not row.antagning_uid:
            raise ValueError(f"admission {admission_id} is {row.state}; villkor are aligned on a placed admission")
        antagning_uid = row.antagning_uid
    wanted = set(open_in_nya)
    have = set(ladok.villkor(antagning_uid))
    added, lifted = sorted(wanted - have), sorted(have - wanted)
    for code in added:
        ladok.add_villkor(antagning_uid, code)
    for code in lifted:
        ladok.lift_villkor(antagning_uid, code)
    with store.transaction() as s:
        row = ops.one(s, NyaAdmission, admission_id, with_for_update=True)
        conds = [{**c, "in_ladok": c["code"] in wanted} for c in row.conditions or []]
        known = {c["code"] for c in conds}
        conds += [{"code": c, "text": c, "lifted": False, "in_ladok": True} for c in sorted(wanted - known)]
        row.conditions = conds
        ops.audit(s, actor, "admission.villkor_aligned", "nya_admission", admission_id, added=added, lifted=lifted)
    return {"admission_id": admission_id, "added": added, "lifted": lifted}
