"""Before an admission is placed: its utbildningstillfälle (by Utbildningskod + Tillfälleskod,
cached for the run) and its student — found with Ladok's student search (many personnummer per
request), or established from the population register (never an address for a protected person);
a student with an interimspersonnummer (given at antagning.se to an applicant without a Swedish
number, in no population register) is established from the name NyA gave, without an address.
What cannot be found puts the admission in the queue with its hinder; a peer outage — an unusable
register reply too — leaves it to be tried again."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from adapters.http import PeerError
from adapters.ladok import Refused
from brygga import personnummer as pnr_mod
from brygga.flows.admissions import hinder as hinders
from brygga.flows.admissions.work import Work
from brygga.flows.ports import Ladok, PopulationRegister
from brygga.records import Student, Utbildningstillfalle
from brygga.states import Hinder
from mappings.base import RecordError

LOOKUP_BATCH = 200  # personnummer per Ladok student search
T = TypeVar("T")


class Catalogue:
    """Utbildningstillfällen by (Utbildningskod, Tillfälleskod) and by uid, cached for a run."""

    def __init__(self, ladok: Ladok):
        self.ladok = ladok
        self.by_code: dict[tuple[str | None, str | None], Utbildningstillfalle | None] = {}
        self.by_uid: dict[str, Utbildningstillfalle] = {}
        self.lock = threading.Lock()

    def get(self, uid: str) -> Utbildningstillfalle:
        t = self.by_uid.get(uid)
        if t is None:
            t = self.by_uid[uid] = self.ladok.tillfalle(uid)
        return t

    def find(self, utbildningskod: str | None, tillfalleskod: str | None) -> Utbildningstillfalle | None:
        key = (utbildningskod, tillfalleskod)
        if key not in self.by_code:
            uids = list(self.ladok.search_tillfallen(tillfalleskod=tillfalleskod, utbildningskod=utbildningskod))
            hits = [t for t in (self.get(u) for u in uids)
                    if t.utbildningskod == utbildningskod and t.tillfalleskod == tillfalleskod]
            self.by_code[key] = hits[0] if len(hits) == 1 else None
        return self.by_code[key]


def resolve_all(items: list[Work], catalogue: Catalogue, ladok: Ladok, folk: PopulationRegister,
                students: dict[str, str], pool: ThreadPoolExecutor) -> None:
    """Find each admission's utbildningstillfälle and student (establishing new students)."""
    _find_tillfallen(items, catalogue, pool)
    todo = [w for w in items if w.outcome is None]
    errors = _find_students(todo, ladok, folk, students, pool)
    for w in todo:
        if w.personnummer in students:
            w.student_uid = students[w.personnummer]
        else:
            _no_student(w, errors.get(w.personnummer or ""))


def _find_tillfallen(items: list[Work], catalogue: Catalogue, pool: ThreadPoolExecutor) -> None:
    keys = {(w.utbildningskod, w.tillfalleskod) for w in items} - set(catalogue.by_code)
    list(pool.map(lambda k: _safe(catalogue.find, *k), keys))
    for w in items:
        try:
            w.tillfalle = catalogue.find(w.utbildningskod, w.tillfalleskod)
        except PeerError as e:
            w.retry(e)
            continue
        if w.tillfalle is None:
            w.unhandled(Hinder.UTBILDNINGSTILLFALLE_SAKNAS, hinders.reason(
                Hinder.UTBILDNINGSTILLFALLE_SAKNAS, f"{w.utbildningskod}/{w.tillfalleskod}"))
        elif w.tillfalle.installt:
            w.unhandled(Hinder.UTBILDNINGSTILLFALLE_INSTALLT, hinders.reason(
                Hinder.UTBILDNINGSTILLFALLE_INSTALLT, f"{w.utbildningskod}/{w.tillfalleskod}"))


def _find_students(todo: list[Work], ladok: Ladok, folk: PopulationRegister, students: dict[str, str],
                   pool: ThreadPoolExecutor) -> dict[str, Exception]:
    """Students into ``students`` (found in Ladok, or established); why the others are not there."""
    unknown = sorted({w.personnummer for w in todo if w.personnummer and w.personnummer not in students})
    batches = [unknown[i:i + LOOKUP_BATCH] for i in range(0, len(unknown), LOOKUP_BATCH)]
    found: dict[str, Student | PeerError | None] = {}  # None: not in Ladok (yet)
    for batch, res in zip(batches, pool.map(
            lambda b: _safe(ladok.students_by_personnummer, b, batch=LOOKUP_BATCH), batches), strict=True):
        found.update((p, res if isinstance(res, PeerError) else res.get(p)) for p in batch)
    errors: dict[str, Exception] = {p: st for p, st in found.items() if isinstance(st, Exception)}
    students.update((p, st.uid) for p, st in found.items() if isinstance(st, Student) and st.uid)
    missing = [p for p, st in found.items() if st is None]
    if missing:
        _establish_missing(todo, missing, ladok, folk, students, errors, pool)
    return errors


def _establish_missing(todo: list[Work], missing: list[str], ladok: Ladok, folk: PopulationRegister,
                       students: dict[str, str], errors: dict[str, Exception], pool: ThreadPoolExecutor) -> None:
    """Students not in Ladok, established from the population register (an interimspersonnummer:
    from NyA's name, the register is not asked)."""
    first: dict[str | None, Work] = {}
    for w in todo:
        first.setdefault(w.personnummer, w)
    registered = [p for p in missing if not pnr_mod.is_interim(p)]
    register: dict[str, Student | RecordError | PeerError | None] = {}
    if registered:
        try:
            register = dict(folk.lookup(registered))
        except PeerError as e:  # an outage or an unusable reply: the batch stays pending
            register = {p: e for p in registered}
    to_establish = []
    for p in missing:
        person = _from_nya(first[p]) if pnr_mod.is_interim(p) else register.get(p)
        if isinstance(person, Student):
            to_establish.append(person)
        elif isinstance(person, RecordError):
            errors[p] = ValueError(person.rule)
        elif isinstance(person, Exception):
            errors[p] = person
        else:
            errors[p] = LookupError(p)
    established = dict(zip([x.personnummer for x in to_establish],
                           pool.map(lambda st: _safe(_establish, ladok, st), to_establish), strict=True))
    for p, res in established.items():
        if isinstance(res, Exception):
            errors[p] = res
        else:
            students[p], first[p].established = res  # counted once per student


def _from_nya(w: Work) -> Student | Exception:
    """The student of an interimspersonnummer as NyA names them (no register knows them)."""
    given, family = (str(w.record.get(k) or "").strip() for k in ("given_name", "family_name"))
    if not given or not family:
        return RuntimeError("interimspersonnummer without a name in NyA's admission: the student cannot be "
                            "established in Ladok; establish them by hand")
    assert w.personnummer is not None
    return Student(w.personnummer, given, family)


def _no_student(w: Work, e: Exception | None) -> None:
    """Why an admission has no student: a retry for an outage, else the queue with its hinder."""
    if isinstance(e, PeerError) and not isinstance(e, Refused) and e.transient:
        w.retry(e)
    elif isinstance(e, LookupError):
        w.unhandled(Hinder.PERSONNUMMER_OKANT, hinders.reason(Hinder.PERSONNUMMER_OKANT))
    elif isinstance(e, ValueError):
        w.unhandled(Hinder.PERSONNUMMER_OGILTIGT, hinders.reason(Hinder.PERSONNUMMER_OGILTIGT, str(e)))
    elif isinstance(e, Refused):
        code = hinders.of_ladok(e.hinder.key)
        w.unhandled(code, hinders.reason(code, e.hinder.describe()))
    else:
        w.unhandled(Hinder.OVRIGT, hinders.reason(Hinder.OVRIGT, str(e)))


def _establish(ladok: Ladok, person: Student) -> tuple[str, bool]:
    """Establish a student from the population register; a protected person without address.
    Returns the uid and whether this call established the student."""
    student = dataclasses.replace(person, address=None) if person.protected else person
    try:
        return _uid(ladok.establish(student)), True
    except Refused as e:
        # In Ladok already: established meanwhile (a re-run, another worker), or a student the
        # batch search did not return (e.g. a Ladok that does not filter by repeated personnummer).
        if e.hinder.key.endswith("personnummer.finns"):
            found = ladok.student_by_personnummer(person.personnummer)
            if found is not None:
                return _uid(found), False
        raise


def _uid(student: Student) -> str:
    if not student.uid:
        raise PeerError("ladok", f"student {student.personnummer} came back without a uid")  # masked by PeerError
    return student.uid


def _safe(fn: Callable[..., T], *args: Any, **kw: Any) -> T | PeerError:
    try:
        return fn(*args, **kw)
    except PeerError as e:
        return e
