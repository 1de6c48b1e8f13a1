"""In-memory peers behind the flows' gateways (``brygga.flows.ports``), and a store made in a few
milliseconds, so a flow's steps are tested without HTTP or a simulator. Each fake keeps what it was
asked, to assert on."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from adapters.http import PeerError, UnreadableReply
from adapters.ladok import Refused
from brygga import xmlsafe
from brygga.records import Admission, Hinder, Placement, Student, Utbildningstillfalle
from brygga.store import Store
from brygga.store.models import Base
from mappings.base import RecordError


def memory_store(tmp: Path) -> Store:
    """A fresh SQLite store with Brygga's tables (created from the models: no migration run)."""
    store = Store(f"sqlite:///{tmp / f'unit-{uuid.uuid4().hex[:8]}.db'}")
    Base.metadata.create_all(store.engine)
    return store


def tillfalle(code: str, *, uid: str | None = None, installt: bool = False) -> Utbildningstillfalle:
    return Utbildningstillfalle(uid=uid or str(uuid.uuid5(uuid.NAMESPACE_OID, code)), utbildningskod=code,
                                tillfalleskod="1" + code[-4:], name_sv=f"Kurs {code}", name_en=None, credits="7.5",
                                start="2027-08-30", end="2028-01-16", studietakt=100, studieort=None, installt=installt,
                                utannonserat=True, is_programme=False, rounds=("HT2027",))


class FakeLadok:
    """Ladok with a catalogue and students in memory. ``place_fails`` maps an Anmalningsnummer to
    what its placement raises (a ``PeerError``), ``on_place`` runs before a placement is taken."""

    concurrency = 2

    def __init__(self, instances: list[Utbildningstillfalle], students: dict[str, str] | None = None):
        self.instances = {t.uid: t for t in instances}
        self.students = dict(students or {})  # personnummer -> uid
        self.placed: dict[str, Placement] = {}  # Anmalningsnummer -> placement
        self.place_fails: dict[str, PeerError] = {}
        self.on_place: Callable[[Placement], None] | None = None
        self.calls: list[str] = []

    def tillfalle(self, uid: str) -> Utbildningstillfalle:
        return self.instances[uid]

    def search_tillfallen(self, *, tillfalleskod: str | None = None, utbildningskod: str | None = None,
                          **_: Any) -> Iterator[str]:
        return iter([t.uid for t in self.instances.values()
                     if (not tillfalleskod or t.tillfalleskod == tillfalleskod)
                     and (not utbildningskod or t.utbildningskod == utbildningskod)])

    def students_by_personnummer(self, pnrs: list[str], *, batch: int = 200) -> dict[str, Student]:
        return {p: Student(p, "F", "E", uid=self.students[p]) for p in pnrs if p in self.students}

    def student_by_personnummer(self, pnr: str) -> Student | None:
        return Student(pnr, "F", "E", uid=self.students[pnr]) if pnr in self.students else None

    def establish(self, student: Student) -> Student:
        uid = self.students.setdefault(student.personnummer, str(uuid.uuid4()))
        return dataclasses.replace(student, uid=uid)

    def place(self, p: Placement) -> dict[str, str | None]:
        self.calls.append(f"place {p.anmalningsnummer}")
        if p.anmalningsnummer in self.place_fails:
            raise self.place_fails[p.anmalningsnummer]
        if self.on_place is not None:
            self.on_place(p)
        self.placed[p.anmalningsnummer] = p
        return {"uid": str(uuid.uuid5(uuid.NAMESPACE_URL, p.anmalningsnummer)), "package_uid": p.package_uid}

    def study_plan(self, student_uid: str) -> list[Any]:
        return []


class FakeRegister:
    """The population register: everyone it is asked for exists, unless listed in ``unknown``."""

    def __init__(self, unknown: set[str] | None = None):
        self.unknown = unknown or set()

    def lookup(self, pnrs: Any) -> dict[str, Student | None | RecordError]:
        return {p: None if p in self.unknown else Student(p, "Förnamn", "Efternamn") for p in pnrs}


class _Stream:
    """A NyA stream as the gateway yields it: records, then (once read) its NextSequence; ``break_at``
    makes the reply unreadable after that many records."""

    def __init__(self, records: list[Any], next_sequence: int, operation: str, break_at: int | None):
        self._records, self._next, self._op, self._break = records, next_sequence, operation, break_at
        self.next_sequence: int | None = None

    def __iter__(self) -> Iterator[Any]:
        for i, r in enumerate(self._records):
            if self._break is not None and i == self._break:
                raise UnreadableReply("nya", self._op, xmlsafe.MalformedXML("not well-formed (invalid token)"),
                                      transient=True, read_bytes=1000 + i)
            yield r
        self.next_sequence = self._next


class FakeNya:
    """NyA's streams of a round in memory: admissions (``add``), answered from a sequence as NyA does."""

    def __init__(self, round_code: str = "HT2027"):
        self.round = round_code
        self.admission_records: list[Admission] = []
        self.break_at: int | None = None  # the next admissions reply is unreadable after N records
        self.asked: list[tuple[str, int]] = []

    def add(self, pnr: str, t: Utbildningstillfalle, **kw: Any) -> Admission:
        seq = len(self.admission_records) + 1
        a = Admission(admission_id=f"A{seq:05d}", sequence=seq, round=self.round, personnummer=pnr, given_name="F",
                      family_name="E", offer_id=t.uid, utbildningskod=t.utbildningskod or "",
                      tillfalleskod=t.tillfalleskod or "", programme_internal=False, admitted=True, accepted=True,
                      fee_liable=False, **kw)
        self.admission_records.append(a)
        return a

    def open_rounds(self) -> list[str]:
        return [self.round]

    @contextlib.contextmanager
    def admissions(self, round_code: str, from_sequence: int = 0) -> Iterator[_Stream]:
        self.asked.append(("admissions", from_sequence))
        records = [a for a in self.admission_records if a.sequence >= max(from_sequence, 1)]
        broken, self.break_at = self.break_at, None
        yield _Stream(records, len(self.admission_records) + 1, "GetAdmissions", broken)


def refused(key: str, status: int = 409) -> Refused:
    return Refused(Hinder(key, f"Ladok: {key}"), status)


def outage() -> PeerError:
    return PeerError("ladok", "POST /studiedeltagande/tillfallesantagning: HTTP 503", status=503, transient=True)
