"""Schedule-export changes as the outbox carries them (``planning``'s payloads), built by the
export's own model from one course instance with three participants: the input of the scheduling
mappings' tests."""

from __future__ import annotations

from typing import Any

from brygga.flows.schedule import model
from brygga.records import Participant, Utbildningstillfalle

COURSE = Utbildningstillfalle(uid="11111111-1111-4111-8111-111111111111", utbildningskod="TDA100", tillfalleskod="11001",
                              name_sv="Kurs", name_en="Course", credits="7.5", start="2027-08-30", end="2028-01-16",
                              studietakt=100, studieort="Umeå", installt=False, utannonserat=True, is_programme=False,
                              rounds=("HT2027",), organisation="INST1")
PARTICIPANTS = [
    Participant("a1", "s1", COURSE.uid, "registrerad", "Anna", "Andersson"),
    Participant("a2", "s2", COURSE.uid, "ej_paborjad", "Bo", "Berg"),
    Participant("a3", "s3", COURSE.uid, "registrerad", protected=True),
]
EMAILS = {"s1": "anna@student.example.se", "s2": None, "s3": None}


def changes(op: str = "upsert") -> list[dict[str, Any]]:
    objs = model.build([COURSE], PARTICIPANTS, EMAILS)
    return [{"op": op, **o.payload(), "hash": o.content_hash, "version": 1} for o in objs]
