"""Behörighetsvillkor: NyA's villkor changes (added / lifted) applied to placed admissions in Ladok.

A lifted villkor is removed from the tillfällesantagning (one already removed by hand in Ladok is
left alone — and nothing is ever sent back to NyA), an added one is put on it. The reply is read
in chunks, like the fetch: per chunk, decide in one short transaction, call Ladok outside it (no
store lock held while Ladok answers), record in a second one with the inbox; the round's
checkpoint goes with the last chunk. A repeat after a crash in between is harmless: lifting a
villkor that is gone, or adding one that is there, changes nothing. A change Ladok refuses (e.g.
the tillfällesantagning has återbud) is quarantined; the rest go on."""

from __future__ import annotations

from itertools import islice
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from adapters.http import PeerError, UnreadableReply
from adapters.ladok import LadokAdapter
from adapters.nya import NyaAdapter
from brygga.flows.admissions.queue import ACTOR
from brygga.flows.unreadable import quarantine_reply
from brygga.records import ConditionChange
from brygga.states import AdmissionState, InboxStatus
from brygga.store import Store, ops
from brygga.store.models import NyaAdmission, table, utcnow
from mappings.base import RecordError

INBOX = "nya-villkor"
CHUNK = 2000

Row = tuple[str, str | None, list[dict[str, Any]]]  # (state, antagning uid, villkor)


def conditions_checkpoint(round_code: str) -> str:
    return f"nya-villkor:{round_code}"


def sync_conditions(store: Store, nya: NyaAdapter, ladok: LadokAdapter, round_code: str, *,
                    chunk: int = CHUNK) -> dict[str, int]:
    """Apply NyA's behörighetsvillkor changes since the round's checkpoint; returns counts."""
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, conditions_checkpoint(round_code))
        from_seq = cp.page if cp else 0
    m = nya.mapping("villkor")
    counts = {"read": 0, "lifted": 0, "added": 0, "already_removed": 0, "unchanged": 0, "not_placed": 0,
              "invalid": 0, "refused": 0}
    last_seq = 0  # the last applied change's sequence (replies are in sequence order)
    try:
        with nya.call("GetConditionChanges", nya.body("GetConditionChanges", Round=round_code,
                                                      FromSequence=from_seq or None)) as reply:
            changes = m.read(reply)
            while part := list(islice(changes, chunk)):
                _apply_chunk(store, ladok, round_code, part, counts)
                last_seq = max([last_seq, *(c.sequence for c in part if isinstance(c, ConditionChange))])
            next_seq = changes.next_sequence
    except UnreadableReply as e:  # the chunks applied stand; the checkpoint to just after them
        resume = max(last_seq + 1, from_seq)
        with store.transaction() as s:
            ops.checkpoint_set(s, conditions_checkpoint(round_code), resume, None, add_seen=counts["read"])
            quarantine_reply(s, e, checkpoint=conditions_checkpoint(round_code), resume=resume, kept=counts["read"])
        raise
    if next_seq is not None:
        with store.transaction() as s:
            ops.checkpoint_set(s, conditions_checkpoint(round_code), next_seq, None, add_seen=counts["read"])
    return counts


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


def _apply_chunk(store: Store, ladok: LadokAdapter, round_code: str, part: list[Any], counts: dict[str, int]) -> None:
    good = [c for c in part if not isinstance(c, RecordError)]
    counts["read"] += len(part)
    with store.transaction() as s:
        seen = ops.inbox_seen(s, INBOX, [_key(round_code, c) for c in good])
        rows = _rows(s, {c.admission_id for c in good})
    todo = [c for c in good if _key(round_code, c) not in seen]
    results = {c.sequence: r for c in todo if (r := _in_ladok(ladok, c, rows.get(c.admission_id))) is not None}
    with store.transaction() as s:
        for c in part:
            if isinstance(c, RecordError):
                counts["invalid"] += 1
                ops.quarantine(s, source="nya", message_id=c.record_id, kind="ConditionChange", reason=str(c))
        _record(s, round_code, todo, rows, results, counts)


def _in_ladok(ladok: LadokAdapter, c: ConditionChange, row: Row | None) -> tuple[str, str | None] | None:
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
            current = ladok.villkor(antagning_uid)
            if c.code not in current:
                ladok.set_villkor(antagning_uid, current + [c.code])
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
