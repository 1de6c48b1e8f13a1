"""NyA's applicants, remembered as they first appear: each open round's applicant stream
(``GetApplicants`` from the round's checkpoint ``nya-applicants:<round>``, through the kit's
sequence follower) into ``nya_applicant``. Read incrementally each run (not every round's whole
list), it says who is an applicant (the merit sync asks it per batch, ``Applicants.among``) and
whose earlier merits are still to be sent (the snapshot, ``snapshot.py``)."""

from __future__ import annotations

from collections import Counter
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.nya import NyaFault
from brygga.flows.kit.quarantine import unreadable
from brygga.flows.kit.sequence import SequenceFollower
from brygga.flows.merits.rules import FLOW
from brygga.flows.ports import Nya, SequenceReply
from brygga.logmask import get_logger
from brygga.records import Applicant
from brygga.store import Store, ops
from brygga.store.models import NyaApplicant, utcnow
from mappings.base import RecordError

log = get_logger("brygga.flows.merits")
_CHUNK = 500


class ApplicantStream(SequenceFollower[Applicant]):
    """One open round's new applicants into ``nya_applicant`` (snapshot pending), chunk by chunk."""

    flow = FLOW
    which = 1
    chunk = 5000

    def __init__(self, store: Store, nya: Nya, round_code: str, counts: Counter[str], **kw: Any):
        super().__init__(store, round_code, **kw)
        self.nya, self.counts = nya, counts

    def open(self, from_sequence: int) -> AbstractContextManager[SequenceReply[Applicant]]:
        return self.nya.applicant_stream(self.round, from_sequence)

    def apply(self, s: Session, part: list[Applicant | RecordError], prepared: Any) -> None:
        now = utcnow()
        good = [a for a in part if isinstance(a, Applicant)]
        ops.insert_new(s, NyaApplicant, ["round", "personnummer"], [
            {"round": self.round, "personnummer": a.personnummer, "sequence": a.sequence, "snapshot": "pending",
             "merits": 0, "attempts": 0, "created_at": now} for a in good])
        self.counts["applicants"] += len(good)
        for e in part:
            if isinstance(e, RecordError):
                self.counts["quarantined"] += 1
                ops.quarantine(s, source="nya", message_id=f"{self.round}:{e.record_id}", kind="applicant",
                               reason=str(e))


def follow(store: Store, nya: Nya, rounds: list[str] | None = None) -> dict[str, Any]:
    """Every open round's new applicants; the rounds read."""
    counts: Counter[str] = Counter()
    if rounds is None:
        with unreadable(store, consumer="the merit sync"):
            rounds = nya.open_rounds()
    followed = []
    for code in rounds:
        try:
            ApplicantStream(store, nya, code, counts).follow()
        except NyaFault as e:
            if e.code != "round-closed":  # closed between the two calls: nothing more to read in it
                raise
            continue
        followed.append(code)
    return {"rounds": followed, "new_applicants": counts["applicants"], "quarantined": counts["quarantined"]}


class Applicants:
    """Who is an applicant in an open round, as the store remembers them: asked per batch of
    personnummer (one query per 500), never as every round's whole list."""

    def __init__(self, store: Store, rounds: list[str]):
        self.store, self.rounds = store, rounds

    def among(self, personnummer: set[str]) -> set[str]:
        if not personnummer or not self.rounds:
            return set()
        numbers = sorted(personnummer)
        found: set[str] = set()
        with self.store.transaction() as s:
            for i in range(0, len(numbers), _CHUNK):
                found.update(s.scalars(select(NyaApplicant.personnummer).distinct().where(
                    NyaApplicant.round.in_(self.rounds), NyaApplicant.personnummer.in_(numbers[i:i + _CHUNK]))))
        return found
