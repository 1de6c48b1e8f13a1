"""Admission import (antagning) NyA → Ladok, the unhandled-admission queue and behörighetsvillkor.

Three steps, each safe to repeat and to kill at any point:

``fetch`` reads the admitted-and-accepted admissions of a round from NyA (``GetAdmissions`` from
the round's stored sequence, streamed) into ``nya_admission``, keyed by NyA's AdmissionId: a new
admission becomes ``pending``, a re-sent one (its sequence moved: accepted, villkor lifted,
återbud) updates the stored record. Rows are written in chunks; the round's checkpoint
(NextSequence) is written in the same transaction as the last chunk, and a re-read after a crash
only rewrites the same rows.

``place`` works through the pending admissions. Per chunk it resolves the utbildningstillfällen
(by Utbildningskod + Tillfälleskod, cached), the students (Ladok's student search, many personnummer
per request; a student not in Ladok is first established with the population-register name and
folkbokföringsadress, never an address for a protected person), then places each admission in the
student's study plan (``Anmalningsnummer`` = AdmissionId, which makes the placement idempotent in
Ladok) with fee liability, paid application fee and the open behörighetsvillkor. A programme-internal admission is
placed inside its package (kurspaketering). An admission that cannot be placed becomes an
*ej hanterad antagning* (``unhandled_admission``) with its hinder and a readable reason. One bad
admission never stops the chunk.

``sync_conditions`` applies NyA's villkor changes to placed admissions: a lifted villkor is removed
from the tillfällesantagning (one already removed by hand in Ladok is left alone — and nothing is
ever sent back to NyA), an added one is put on it.

Operators list and count the queue by hinder and round, re-try (``ompröva``) with a chosen package
or as free-standing, or mark an admission handled by hand; each action is audited (``retry`` = ompröva).
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from adapters.folkbokforing import FolkbokforingAdapter
from adapters.http import PeerError
from adapters.ladok import LadokAdapter, Refused
from adapters.nya import NyaAdapter
from brygga import personnummer as pnr_mod
from brygga.logmask import get_logger
from brygga.records import Admission, Placement, Student, Utbildningstillfalle
from brygga.store import Store, ops
from brygga.store.models import NyaAdmission, UnhandledAdmission, utcnow
from mappings.base import RecordError

log = get_logger("brygga.flows.admissions")

ACTOR = "brygga:admission-import"
CHUNK = 2000
WORKERS = 8
LOOKUP_BATCH = 200  # personnummer per Ladok student search

#: Our hinder codes (the queue's categories) and the text operators see (Ladok's wording).
HINDER: dict[str, str] = {
    "kunde.inte.placeras.i.plan": "Antagning kunde inte placeras i plan",
    "redan.paborjat": "Studenten har redan påbörjat utbildningen",
    "personnummer.ogiltigt": "Ogiltigt personnummer",
    "personnummer.okant": "Personnumret finns inte i folkbokföringen",
    "utbildningstillfalle.saknas": "Utbildningstillfället finns inte i Ladok",
    "utbildningstillfalle.installt": "Utbildningstillfället är inställt",
    "antagning.finns": "Studenten är redan antagen till utbildningstillfället",
    "anmalningsnummer.konflikt": "Anmälningsnumret är redan använt för en annan antagning",
    "ogiltig.antagning": "Antagningen från NyA är ofullständig",
    "aterbud.under.placering": "Återbud kom från NyA medan antagningen placerades; lägg in återbudet i Ladok",
    "ovrigt": "Övrigt hinder",
}
#: Ladok's hinder key (I18nNyckel) -> our hinder code.
LADOK_HINDER: dict[str, str] = {
    "studiedeltagande.hinder.flera.kurspaketeringar": "kunde.inte.placeras.i.plan",
    "studiedeltagande.hinder.kurspaketering.saknas": "kunde.inte.placeras.i.plan",
    "studiedeltagande.hinder.ej.ingaende.i.kurspaketering": "kunde.inte.placeras.i.plan",
    "studiedeltagande.hinder.redan.paborjat": "redan.paborjat",
    "studiedeltagande.hinder.utbildningstillfalle.installt": "utbildningstillfalle.installt",
    "studiedeltagande.hinder.antagning.finns": "antagning.finns",
    "studiedeltagande.hinder.anmalningsnummer.konflikt": "anmalningsnummer.konflikt",
    "utbildningstillfalle.hittades.ej": "utbildningstillfalle.saknas",
    "kurspaketeringstillfalle.hittades.ej": "kunde.inte.placeras.i.plan",
    "studentinformation.hinder.personnummer.ogiltigt": "personnummer.ogiltigt",
}
#: What an operator is advised to do, per hinder.
ADVICE: dict[str, str] = {
    "kunde.inte.placeras.i.plan": "Ompröva med vald kurspaketering, eller placera som fristående.",
    "redan.paborjat": "Gör tillfällesbyte i Ladok, markera sedan som hanterad.",
    "personnummer.okant": "Kontrollera personnumret med NyA/studenten; etablera manuellt och ompröva.",
    "personnummer.ogiltigt": "Rätta personnumret i NyA; markera som hanterad.",
    "utbildningstillfalle.saknas": "Kontrollera utbudet; ompröva när tillfället finns.",
}


def checkpoint_name(round_code: str) -> str:
    return f"nya-admissions:{round_code}"


def conditions_checkpoint(round_code: str) -> str:
    return f"nya-villkor:{round_code}"


# ------------------------------------------------------------------------------------- fetch

_ADMISSION_FIELDS = tuple(f.name for f in dataclasses.fields(Admission))


def _row(a: Admission) -> dict[str, Any]:
    conditions = [{"code": c.code, "text": c.text, "lifted": c.lifted} for c in a.conditions]
    record = {name: getattr(a, name) for name in _ADMISSION_FIELDS}  # asdict() deep-copies: 3x slower
    record["conditions"] = [{**c, "lifted_date": x.lifted_date} for c, x in zip(conditions, a.conditions)]
    return dict(
        admission_id=a.admission_id, round=a.round, sequence=a.sequence, personnummer=a.personnummer,
        offer_id=a.offer_id, utbildningskod=a.utbildningskod, tillfalleskod=a.tillfalleskod,
        programme_internal=a.programme_internal, package_id=a.package_id, fee_liable=a.fee_liable,
        application_fee_paid=a.application_fee_paid,
        conditions=conditions, aterbud_date=a.aterbud_date, record=record,
    )


def fetch(store: Store, nya: NyaAdapter, round_code: str, *, chunk: int = CHUNK) -> dict[str, int]:
    """Read new and changed accepted admissions of ``round_code`` into the store."""
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, checkpoint_name(round_code))
        from_seq = cp.page if cp else 0
    m = nya.mapping("admission")
    counts = {"read": 0, "new": 0, "updated": 0, "invalid": 0, "declined": 0}
    batch: list[Admission | RecordError] = []
    with nya.call("GetAdmissions", nya.body("GetAdmissions", Round=round_code, FromSequence=from_seq or None,
                                            OnlyAccepted=True)) as reply:
        reader = m.read(reply)
        for item in reader:
            batch.append(item)
            if len(batch) >= chunk:
                with store.transaction() as s:
                    _store_admissions(s, round_code, batch, counts)
                batch = []
        next_seq = m.next_sequence
    with store.transaction() as s:
        _store_admissions(s, round_code, batch, counts)
        if next_seq is not None:
            ops.checkpoint_set(s, checkpoint_name(round_code), next_seq, None, add_seen=counts["read"])
    log.info("fetched admissions of %s from sequence %s: %s", round_code, from_seq, counts)
    return counts


_LIMITS = {"admission_id": 64, "offer_id": 64, "package_id": 64, "utbildningskod": 32, "tillfalleskod": 32}


def _too_long(a: Admission) -> RecordError | None:
    for name, limit in _LIMITS.items():
        v = getattr(a, name)
        if v is not None and len(v) > limit:
            return RecordError(a.admission_id[:64], name, f"longer than {limit} characters", "Admission")
    return None


def _admissions_by_id(s, ids, *, chunk: int = 1000) -> dict[str, NyaAdmission]:
    """The rows of ``ids`` in a few queries (bounded IN lists), by admission id."""
    ids = list(ids)
    out: dict[str, NyaAdmission] = {}
    for i in range(0, len(ids), chunk):
        out.update((r.admission_id, r) for r in s.scalars(
            select(NyaAdmission).where(NyaAdmission.admission_id.in_(ids[i:i + chunk]))))
    return out


def _store_admissions(s, round_code: str, batch: list, counts: dict[str, int]) -> None:
    good, bad, seen = [], [], set()
    for a in batch:
        if isinstance(a, Admission):
            a = _too_long(a) or a
        rid = a.admission_id if isinstance(a, Admission) else a.record_id
        if rid in seen:  # the same id twice in one reply: the first counts
            continue
        seen.add(rid)
        (good if isinstance(a, Admission) else bad).append(a)
    counts["read"] += len(batch)
    existing = _admissions_by_id(s, seen)
    new_rows = []
    for a in good:
        row = existing.get(a.admission_id)
        if row is None:
            values = _row(a)
            if a.aterbud_date:  # återbud before it ever reached Ladok: never place it
                values["state"] = "declined"
                counts["declined"] += 1
            new_rows.append(values)
            counts["new"] += 1
        elif a.sequence > row.sequence or row.state == "invalid":
            in_ladok = {c["code"] for c in row.conditions or [] if c.get("in_ladok")}
            for k, v in _row(a).items():
                setattr(row, k, v)
            row.conditions = [{**c, "in_ladok": c["code"] in in_ladok} for c in row.conditions]
            if row.state == "invalid":  # NyA corrected it: place it, and close its queue entry
                row.state = "pending"
                _resolve_unhandled(s, a.admission_id, "rättad i NyA", ACTOR)
            if a.aterbud_date and row.state in ("pending", "unhandled"):
                row.state = "declined"
                _resolve_unhandled(s, a.admission_id, "återbud", ACTOR)
                counts["declined"] += 1
            counts["updated"] += 1
    if new_rows:  # a Core executemany: the ORM's bulk insert costs ~2x the CPU for the same rows
        now = utcnow()
        s.connection().execute(insert(NyaAdmission.__table__), [
            {**r, "state": r.get("state", "pending"), "attempts": 0, "created_at": now, "updated_at": now}
            for r in new_rows])
    for e in bad:
        counts["invalid"] += 1
        hinder = "personnummer.ogiltigt" if e.field == "Personnummer" else "ogiltig.antagning"
        ops.quarantine(s, source="nya", message_id=e.record_id[:128], kind="Admission", reason=str(e))
        if e.record_id in ("", "?") or len(e.record_id) > 64:
            continue  # no usable AdmissionId: quarantined only, nothing an operator could re-try
        row = existing.get(e.record_id)
        if row is None:
            s.add(NyaAdmission(admission_id=e.record_id, round=round_code, sequence=0, state="invalid",
                               conditions=[], record={}, attempts=0, last_error=str(e)))
        elif row.state in ("placed", "handled", "declined"):
            continue
        else:
            row.state, row.last_error = "invalid", str(e)
        _queue(s, e.record_id, round_code, None, None, None, hinder, f"{HINDER[hinder]}: {e.field}: {e.rule}", [], {})


# ------------------------------------------------------------------------------------- place

@dataclasses.dataclass
class Work:
    """One admission being placed (plain data, detached from the session)."""

    admission_id: str
    round: str
    personnummer: str | None
    record: dict[str, Any]
    utbildningskod: str | None
    tillfalleskod: str | None
    programme_internal: bool
    package_id: str | None
    fee_liable: bool
    application_fee_paid: bool | None
    conditions: list[dict[str, Any]]
    attempts: int
    tillfalle: Utbildningstillfalle | None = None
    student_uid: str | None = None
    outcome: str | None = None  # placed | unhandled | retry
    hinder: str | None = None
    reason: str | None = None
    candidates: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    placed: dict[str, Any] | None = None
    established: bool = False


class Catalogue:
    """Utbildningstillfällen by (Utbildningskod, Tillfälleskod) and by uid, cached for a run."""

    def __init__(self, ladok: LadokAdapter):
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


def _fee(w: Work) -> str:
    return "ej_betald" if w.fee_liable else "ej_aktuell"


def _open_conditions(w: Work) -> tuple[str, ...]:
    return tuple(c["code"] for c in w.conditions if not c.get("lifted"))


_WORK_COLUMNS = ("admission_id", "round", "personnummer", "record", "utbildningskod", "tillfalleskod",
                 "programme_internal", "package_id", "fee_liable", "application_fee_paid", "conditions", "attempts")


def _work(r) -> Work:
    return Work(r.admission_id, r.round, r.personnummer, r.record, r.utbildningskod, r.tillfalleskod,
                r.programme_internal, r.package_id, r.fee_liable, r.application_fee_paid, list(r.conditions or []),
                r.attempts)


def place(store: Store, ladok: LadokAdapter, folk: FolkbokforingAdapter, round_code: str | None = None, *,
          chunk: int = CHUNK, workers: int = WORKERS, limit: int | None = None, shard: int = 0,
          shards: int = 1) -> dict[str, int]:
    """Place pending admissions (all rounds, or one). Returns counts per outcome and hinder.

    Chunks hold whole students (a programme and the courses inside it are placed in order).
    ``shard``/``shards`` split the work by the personnummer's check digit, so several workers (mapped
    tasks on CeleryExecutor) can place at once without ever sharing a student."""
    if not 0 <= shard < shards <= 10:
        raise ValueError("need 0 <= shard < shards <= 10")
    counts: dict[str, int] = {"placed": 0, "established": 0, "unhandled": 0, "retry": 0}
    catalogue = Catalogue(ladok)
    students: dict[str, str] = {}  # personnummer -> Ladok student uid
    t = NyaAdmission.__table__
    digits = [str(d) for d in range(10) if d % shards == shard]
    done = 0
    after = ""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="place") as pool:
        while limit is None or done < limit:
            n = chunk if limit is None else min(chunk, limit - done)
            with store.transaction() as s:
                q = select(*(t.c[c] for c in _WORK_COLUMNS)).where(t.c.state == "pending", t.c.personnummer > after)
                if round_code:
                    q = q.where(t.c.round == round_code)
                if shards > 1:
                    q = q.where(func.substr(t.c.personnummer, 12, 1).in_(digits))
                items = [_work(r) for r in s.execute(q.order_by(t.c.personnummer, t.c.admission_id).limit(n + 1))]
            if not items:
                break
            if len(items) > n:  # leave the last student whole for the next chunk
                last = items[-1].personnummer
                whole = [w for w in items if w.personnummer != last]
                items = whole or items
            after = items[-1].personnummer
            _resolve(items, catalogue, ladok, folk, students, pool)
            _place_all(items, ladok, catalogue, pool)
            with store.transaction() as s:
                _record(s, items, counts)
            done += len(items)
    log.info("placed admissions%s (shard %s/%s): %s", f" of {round_code}" if round_code else "", shard, shards,
             counts)
    return counts


def _resolve(items: list[Work], catalogue: Catalogue, ladok: LadokAdapter, folk: FolkbokforingAdapter,
             students: dict[str, str], pool: ThreadPoolExecutor) -> None:
    """Find each admission's utbildningstillfälle and student (establishing new students)."""
    keys = {(w.utbildningskod, w.tillfalleskod) for w in items} - set(catalogue.by_code)
    list(pool.map(lambda k: _safe(catalogue.find, *k), keys))
    for w in items:
        try:
            w.tillfalle = catalogue.find(w.utbildningskod, w.tillfalleskod)
        except PeerError as e:
            _retry(w, e)
            continue
        if w.tillfalle is None:
            _unhandled(w, "utbildningstillfalle.saknas",
                       f"{HINDER['utbildningstillfalle.saknas']}: {w.utbildningskod}/{w.tillfalleskod}")
        elif w.tillfalle.installt:
            _unhandled(w, "utbildningstillfalle.installt",
                       f"{HINDER['utbildningstillfalle.installt']}: {w.utbildningskod}/{w.tillfalleskod}")
    todo = [w for w in items if w.outcome is None]
    unknown = sorted({w.personnummer for w in todo if w.personnummer not in students})
    batches = [unknown[i:i + LOOKUP_BATCH] for i in range(0, len(unknown), LOOKUP_BATCH)]
    found: dict[str, Student | PeerError | None] = {}  # None: not in Ladok (yet)
    for batch, res in zip(batches, pool.map(
            lambda b: _safe(ladok.students_by_personnummer, b, batch=LOOKUP_BATCH), batches)):
        found.update((p, res if isinstance(res, PeerError) else res.get(p)) for p in batch)
    missing = [p for p, st in found.items() if st is None]
    errors: dict[str, Exception] = {p: st for p, st in found.items() if isinstance(st, Exception)}
    for p, st in found.items():
        if isinstance(st, Student):
            students[p] = st.uid
    if missing:
        try:
            register = folk.lookup(missing)
        except PeerError as e:
            register = {p: e for p in missing}
        to_establish = []
        for p in missing:
            person = register.get(p)
            if isinstance(person, Student):
                to_establish.append(person)
            else:
                errors[p] = person if isinstance(person, Exception) else LookupError(p)
                if isinstance(person, RecordError):
                    errors[p] = ValueError(person.rule)
        established = dict(zip([x.personnummer for x in to_establish],
                               pool.map(lambda st: _safe(_establish, ladok, st), to_establish)))
        first = {}
        for w in todo:
            first.setdefault(w.personnummer, w)
        for p, res in established.items():
            if isinstance(res, Exception):
                errors[p] = res
            else:
                students[p], first[p].established = res  # counted once per student
    for w in todo:
        if w.personnummer in students:
            w.student_uid = students[w.personnummer]
            continue
        e = errors.get(w.personnummer)
        if isinstance(e, PeerError) and not isinstance(e, Refused) and e.transient:
            _retry(w, e)
        elif isinstance(e, LookupError):
            _unhandled(w, "personnummer.okant", HINDER["personnummer.okant"])
        elif isinstance(e, ValueError):
            _unhandled(w, "personnummer.ogiltigt", f"{HINDER['personnummer.ogiltigt']}: {e}")
        elif isinstance(e, Refused):
            code = LADOK_HINDER.get(e.hinder.key, "ovrigt")
            _unhandled(w, code, f"{HINDER[code]}: {e.hinder.text} ({e.hinder.key})")
        else:
            _unhandled(w, "ovrigt", f"{HINDER['ovrigt']}: {e}")


def _establish(ladok: LadokAdapter, person: Student) -> tuple[str, bool]:
    """Establish a student from the population register; a protected person without address.
    Returns the uid and whether this call established the student."""
    student = dataclasses.replace(person, address=None) if person.protected else person
    try:
        return ladok.establish(student).uid, True
    except Refused as e:
        # In Ladok already: established meanwhile (a re-run, another worker), or a student the
        # batch search did not return (e.g. a Ladok that does not filter by repeated personnummer).
        if e.hinder.key.endswith("personnummer.finns"):
            found = ladok.student_by_personnummer(person.personnummer)
            if found is not None:
                return found.uid, False
        raise


def _safe(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except PeerError as e:
        return e


def _place_all(items: list[Work], ladok: LadokAdapter, catalogue: Catalogue, pool: ThreadPoolExecutor) -> None:
    """Place per student in order (programmes before the courses that may sit inside them);
    students in parallel."""
    by_student: dict[str, list[Work]] = {}
    for w in items:
        if w.outcome is None:
            by_student.setdefault(w.student_uid, []).append(w)
    groups = [sorted(ws, key=lambda w: (not w.tillfalle.is_programme, w.admission_id)) for ws in by_student.values()]
    list(pool.map(lambda ws: [_place_one(w, ladok, catalogue) for w in ws], groups))


def _place_one(w: Work, ladok: LadokAdapter, catalogue: Catalogue, *, package_uid: str | None = None,
               fristaende: bool = False) -> None:
    p = Placement(
        student_uid=w.student_uid, utbildningstillfalle_uid=w.tillfalle.uid, anmalningsnummer=w.admission_id,
        fee=_fee(w), package_uid=package_uid or (w.package_id if w.programme_internal and not fristaende else None),
        fristaende=fristaende, inom_kurspaketering=w.programme_internal and not fristaende and not package_uid,
        villkor=_open_conditions(w), application_fee_paid=w.application_fee_paid if w.fee_liable else None)
    try:
        w.placed = ladok.place(p)
        w.outcome = "placed"
    except Refused as e:
        code = LADOK_HINDER.get(e.hinder.key, "ovrigt")
        _unhandled(w, code, f"{HINDER[code]}: {e.hinder.text}")
        if code == "kunde.inte.placeras.i.plan":
            try:
                w.candidates = _package_candidates(ladok, catalogue, w)
            except PeerError as pe:
                log.warning("could not list packages for %s: %s", w.admission_id, pe)
    except PeerError as e:
        if e.transient:
            _retry(w, e)
        else:
            _unhandled(w, "ovrigt", f"{HINDER['ovrigt']}: {e}")


def _placed_conditions(w: Work) -> list[dict[str, Any]]:
    """The row's villkor with ``in_ladok`` = put on the tillfällesantagning by the placement."""
    return [{**c, "in_ladok": not c.get("lifted")} for c in w.conditions]


def _package_candidates(ladok: LadokAdapter, catalogue: Catalogue, w: Work) -> list[dict[str, Any]]:
    """The programme admissions in the student's plan whose package contains the course."""
    out = []
    for node in ladok.study_plan(w.student_uid):
        if node.parent_uid is not None or node.aterbud or not node.tillfalle_uid:
            continue
        t = catalogue.get(node.tillfalle_uid)
        if t.is_programme and w.tillfalle.uid in t.course_uids:
            out.append({"package_uid": t.uid, "utbildningskod": t.utbildningskod, "tillfalleskod": t.tillfalleskod,
                        "name": t.name_sv})
    return out


def _unhandled(w: Work, code: str, reason: str) -> None:
    w.outcome, w.hinder, w.reason = "unhandled", code, reason


def _retry(w: Work, e: Exception) -> None:
    w.outcome, w.reason = "retry", str(e)


def _record(s, items: list[Work], counts: dict[str, int]) -> None:
    """Write a chunk's outcomes: placements and retries as one executemany UPDATE (only rows still
    pending: an återbud may have declined one meanwhile), the few unhandled ones row by row."""
    t = NyaAdmission.__table__
    now = utcnow()
    bulk, unhandled = [], []
    for w in items:
        counts["established"] += w.established
        attempts = w.attempts + 1
        values = {"b_id": w.admission_id, "attempts": attempts, "student_uid": w.student_uid,
                  "utbildningstillfalle_uid": w.tillfalle.uid if w.tillfalle else None, "updated_at": now}
        if w.outcome == "placed":
            bulk.append({**values, "state": "placed", "antagning_uid": w.placed["uid"],
                         "package_uid": w.placed.get("package_uid"), "conditions": _placed_conditions(w),
                         "last_error": None})
            counts["placed"] += 1
        elif w.outcome == "retry":  # a peer outage: stays pending, the task fails and Airflow retries
            bulk.append({**values, "state": "pending", "antagning_uid": None, "package_uid": None,
                         "conditions": w.conditions, "last_error": w.reason})
            counts["retry"] += 1
        else:
            unhandled.append(w)
    if bulk:
        s.connection().execute(
            update(t).where(t.c.admission_id == bindparam("b_id"), t.c.state == "pending").values(
                {c: bindparam(c) for c in ("state", "attempts", "student_uid", "utbildningstillfalle_uid",
                                           "antagning_uid", "package_uid", "conditions", "last_error", "updated_at")}),
            bulk)
        placed = [b["b_id"] for b in bulk if b["state"] == "placed"]
        if placed:
            ops.audit(s, ACTOR, "admission.place", "nya_admission", None, admissions=placed)
        _placed_while_declined(s, {b["b_id"]: b for b in bulk if b["state"] == "placed"}, counts)
    for w in unhandled:
        row = s.get(NyaAdmission, w.admission_id)
        if row.state != "pending":  # changed meanwhile (e.g. återbud arrived): leave it
            continue
        row.attempts, row.state, row.last_error = w.attempts + 1, "unhandled", w.reason
        row.student_uid = w.student_uid or row.student_uid
        row.utbildningstillfalle_uid = w.tillfalle.uid if w.tillfalle else row.utbildningstillfalle_uid
        _queue(s, w.admission_id, w.round, w.personnummer, row.utbildningstillfalle_uid, w.tillfalleskod,
               w.hinder, w.reason, w.candidates, w.record)
        counts["unhandled"] += 1
        counts[f"hinder:{w.hinder}"] = counts.get(f"hinder:{w.hinder}", 0) + 1


def _placed_while_declined(s, placed: dict[str, dict], counts: dict[str, int]) -> None:
    """An återbud declined the admission while Ladok was placing it: it is in Ladok without its
    återbud. Record the placement and queue it so staff enter the återbud (rare race)."""
    if not placed:
        return
    raced = list(s.scalars(select(NyaAdmission).where(NyaAdmission.admission_id.in_(list(placed)),
                                                      NyaAdmission.state == "declined")))
    for row in raced:
        b = placed[row.admission_id]
        row.state, row.antagning_uid, row.package_uid = "unhandled", b["antagning_uid"], b["package_uid"]
        row.student_uid, row.utbildningstillfalle_uid = b["student_uid"], b["utbildningstillfalle_uid"]
        reason = f"{HINDER['aterbud.under.placering']} ({row.aterbud_date})"
        _queue(s, row.admission_id, row.round, row.personnummer, row.utbildningstillfalle_uid, row.tillfalleskod,
               "aterbud.under.placering", reason, [], row.record)
        counts["placed"] -= 1
        counts["unhandled"] += 1


def _queue(s, admission_id: str, round_code: str, personnummer: str | None, tillfalle_uid: str | None,
           tillfalleskod: str | None, hinder: str, reason: str, candidates: list, record: dict) -> None:
    u = s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id == admission_id)).first()
    if u is None:
        s.add(UnhandledAdmission(nya_admission_id=admission_id, round=round_code, personnummer=personnummer,
                                 utbildningstillfalle_uid=tillfalle_uid, tillfalleskod=tillfalleskod, hinder=hinder,
                                 reason=reason, candidates=candidates, admission=record, status="open"))
    else:
        u.hinder, u.reason, u.candidates, u.status = hinder, reason, candidates, "open"
        u.utbildningstillfalle_uid = tillfalle_uid or u.utbildningstillfalle_uid
    ops.audit(s, ACTOR, "admission.unhandled", "nya_admission", admission_id, hinder=hinder, reason=reason)


def _resolve_unhandled(s, admission_id: str, resolution: str, actor: str) -> None:
    u = s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id == admission_id)).first()
    if u is not None and u.status == "open":
        u.status, u.resolution, u.resolved_by = "resolved", resolution, actor


# ------------------------------------------------------------------------------------- villkor

def sync_conditions(store: Store, nya: NyaAdapter, ladok: LadokAdapter, round_code: str) -> dict[str, int]:
    """Apply NyA's behörighetsvillkor changes (added / lifted) since the round's checkpoint.

    Decide in one short transaction, call Ladok outside it (no store lock held while Ladok answers),
    record in a second one with the inbox and the checkpoint. A repeat after a crash in between is
    harmless: lifting a villkor that is gone, or adding one that is there, changes nothing. A change
    Ladok refuses (e.g. the tillfällesantagning has återbud) is quarantined; the rest go on."""
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, conditions_checkpoint(round_code))
        from_seq = cp.page if cp else 0
    m = nya.mapping("villkor")
    counts = {"read": 0, "lifted": 0, "added": 0, "already_removed": 0, "unchanged": 0, "not_placed": 0,
              "invalid": 0, "refused": 0}
    with nya.call("GetConditionChanges", nya.body("GetConditionChanges", Round=round_code,
                                                  FromSequence=from_seq or None)) as reply:
        changes = list(m.read(reply))
        next_seq = m.next_sequence
    good = [c for c in changes if not isinstance(c, RecordError)]
    counts["read"] = len(changes)
    with store.transaction() as s:
        seen = ops.inbox_seen(s, "nya-villkor", [f"{round_code}:{c.sequence}" for c in good])
        rows = {i: (r.state, r.antagning_uid, [dict(x) for x in r.conditions or []])
                for i, r in _admissions_by_id(s, {c.admission_id for c in good}).items()}
    todo = [c for c in good if f"{round_code}:{c.sequence}" not in seen]
    # Ladok calls, in order, outside any transaction.
    results: dict[int, tuple[str, str | None]] = {}
    for c in todo:
        state = rows.get(c.admission_id)
        if state is None or state[0] != "placed" or not state[1]:
            continue
        conds = state[2]
        cur = next((x for x in conds if x["code"] == c.code), None)
        in_ladok = bool(cur and cur.get("in_ladok"))
        try:
            if c.change == "lifted" and in_ladok:
                results[c.sequence] = ("lifted" if ladok.lift_villkor(state[1], c.code) else "already_removed", None)
            elif c.change == "added" and not in_ladok:
                current = ladok.villkor(state[1])
                if c.code not in current:
                    ladok.set_villkor(state[1], current + [c.code])
                results[c.sequence] = ("added", None)
            else:
                # Already as NyA says (e.g. the villkor came with the placement). A villkor removed by
                # hand in Ladok is not put back, and nothing is ever sent back to NyA.
                results[c.sequence] = ("unchanged", None)
        except PeerError as e:
            if e.transient:
                raise
            results[c.sequence] = ("refused", str(e))
        if cur is None:
            cur = {"code": c.code, "text": c.text, "lifted": False, "in_ladok": False}
            conds.append(cur)
        cur["lifted"] = c.change == "lifted"
        if results[c.sequence][0] in ("lifted", "already_removed"):
            cur["in_ladok"] = False
        elif results[c.sequence][0] == "added":
            cur["in_ladok"] = True
    with store.transaction() as s:
        inbox = []
        for c in changes:
            if isinstance(c, RecordError):
                counts["invalid"] += 1
                ops.quarantine(s, source="nya", message_id=c.record_id, kind="ConditionChange", reason=str(c))
        current = _admissions_by_id(s, {c.admission_id for c in todo})  # one query, not a get (and flush) each
        for c in todo:
            key = f"{round_code}:{c.sequence}"
            row = current.get(c.admission_id)
            if row is None:
                counts["not_placed"] += 1  # not (yet) an accepted admission: its record carries the villkor
                inbox.append((key, "ConditionChange", "skipped"))
                continue
            outcome, error = results.get(c.sequence, ("not_placed", None))
            counts[outcome] += 1
            if c.sequence in results:
                row.conditions = rows[c.admission_id][2]
            else:  # not placed yet: the placement takes the open villkor from the row
                conds = [dict(x) for x in row.conditions or []]
                cur = next((x for x in conds if x["code"] == c.code), None)
                if cur is None:
                    conds.append({"code": c.code, "text": c.text, "lifted": c.change == "lifted", "in_ladok": False})
                else:
                    cur["lifted"] = c.change == "lifted"
                row.conditions = conds
            if outcome == "refused":
                ops.quarantine(s, source="ladok", message_id=key, kind="ConditionChange",
                               reason=f"villkor {c.change} {c.code} on {c.admission_id}: {error}")
            elif outcome in ("lifted", "already_removed", "added"):
                ops.audit(s, ACTOR, f"villkor.{'add' if outcome == 'added' else 'lift'}", "nya_admission",
                          c.admission_id, code=c.code, outcome=outcome)
            inbox.append((key, "ConditionChange", "quarantined" if outcome == "refused" else "processed"))
        ops.inbox_record(s, "nya-villkor", inbox)
        if next_seq is not None:
            ops.checkpoint_set(s, conditions_checkpoint(round_code), next_seq, None, add_seen=len(changes))
    return counts


# ------------------------------------------------------------------------------------- operators

def list_unhandled(store: Store, *, round_code: str | None = None, hinder: str | None = None,
                   status: str | None = "open", limit: int = 500) -> list[dict[str, Any]]:
    with store.transaction() as s:
        q = select(UnhandledAdmission)
        for col, v in ((UnhandledAdmission.round, round_code), (UnhandledAdmission.hinder, hinder),
                       (UnhandledAdmission.status, status)):
            if v:
                q = q.where(col == v)
        rows = s.scalars(q.order_by(UnhandledAdmission.id).limit(limit))
        return [{"id": u.id, "admission_id": u.nya_admission_id, "round": u.round,
                 "personnummer": pnr_mod.mask(u.personnummer) if u.personnummer else None,
                 "tillfalleskod": u.tillfalleskod, "utbildningskod": (u.admission or {}).get("utbildningskod"),
                 "hinder": u.hinder, "hinder_text": HINDER.get(u.hinder, u.hinder), "reason": u.reason,
                 "advice": ADVICE.get(u.hinder), "candidates": u.candidates, "status": u.status,
                 "resolution": u.resolution, "resolved_by": u.resolved_by} for u in rows]


def count_unhandled(store: Store, *, round_code: str | None = None, status: str | None = "open") -> dict[str, int]:
    with store.transaction() as s:
        q = select(UnhandledAdmission.hinder, func.count()).group_by(UnhandledAdmission.hinder)
        if round_code:
            q = q.where(UnhandledAdmission.round == round_code)
        if status:
            q = q.where(UnhandledAdmission.status == status)
        return {h: n for h, n in s.execute(q)}


def retry(store: Store, ladok: LadokAdapter, folk: FolkbokforingAdapter, admission_id: str, *, actor: str,
            package_uid: str | None = None, fristaende: bool = False) -> dict[str, Any]:
    """Re-try an unhandled admission, optionally in a chosen package or as free-standing."""
    if package_uid and fristaende:
        raise ValueError("choose a package or free-standing, not both")
    with store.transaction() as s:
        row = s.get(NyaAdmission, admission_id)
        if row is None:
            raise KeyError(f"no admission {admission_id}")
        if row.state in ("placed", "handled"):  # done already (e.g. a repeated operator action)
            return {"admission_id": admission_id, "outcome": row.state, "already": True, "hinder": None,
                    "reason": None, "antagning_uid": row.antagning_uid, "package_uid": row.package_uid}
        if row.state not in ("unhandled", "pending"):
            raise ValueError(f"admission {admission_id} is {row.state}; only unhandled admissions can be re-tried")
        if not row.personnummer:
            raise ValueError(f"admission {admission_id} has no valid personnummer; correct it in NyA")
        w = _work(row)
    catalogue = Catalogue(ladok)
    with ThreadPoolExecutor(max_workers=1) as pool:
        _resolve([w], catalogue, ladok, folk, {}, pool)
    if w.outcome is None:
        _place_one(w, ladok, catalogue, package_uid=package_uid, fristaende=fristaende)
    if w.outcome == "retry":  # Ladok or the register is down: nothing changed, try again later
        raise PeerError("ladok", f"ompröva {admission_id}: {w.reason}", transient=True)
    choice = f"kurspaketering {package_uid}" if package_uid else "fristående" if fristaende else "som den är"
    with store.transaction() as s:
        row = s.get(NyaAdmission, admission_id, with_for_update=True)
        if row.state == "declined" and w.outcome == "placed":  # an återbud came meanwhile
            _placed_while_declined(s, {admission_id: {"antagning_uid": w.placed["uid"],
                                                      "package_uid": w.placed.get("package_uid"),
                                                      "student_uid": w.student_uid,
                                                      "utbildningstillfalle_uid": w.tillfalle.uid}}, {"placed": 1, "unhandled": 0})
            ops.audit(s, actor, "admission.retry", "nya_admission", admission_id, choice=choice,
                      outcome="aterbud.under.placering")
            return {"admission_id": admission_id, "outcome": "unhandled", "hinder": "aterbud.under.placering",
                    "reason": HINDER["aterbud.under.placering"], "antagning_uid": w.placed["uid"],
                    "package_uid": w.placed.get("package_uid")}
        if row.state not in ("unhandled", "pending"):
            raise ValueError(f"admission {admission_id} became {row.state} meanwhile; nothing written")
        row.attempts += 1
        row.student_uid = w.student_uid or row.student_uid
        if w.tillfalle:
            row.utbildningstillfalle_uid = w.tillfalle.uid
        if w.outcome == "placed":
            row.state, row.antagning_uid, row.package_uid = "placed", w.placed["uid"], w.placed.get("package_uid")
            row.conditions = _placed_conditions(w)
            row.last_error = None
            _resolve_unhandled(s, admission_id, f"ompröva: {choice}", actor)
        else:
            row.state, row.last_error = "unhandled", w.reason
            _queue(s, admission_id, row.round, row.personnummer, row.utbildningstillfalle_uid, row.tillfalleskod,
                   w.hinder or "ovrigt", w.reason or "", w.candidates, row.record)
        ops.audit(s, actor, "admission.retry", "nya_admission", admission_id, choice=choice,
                  outcome=w.outcome, hinder=w.hinder, reason=w.reason)
        return {"admission_id": admission_id, "outcome": w.outcome, "hinder": w.hinder, "reason": w.reason,
                "antagning_uid": row.antagning_uid, "package_uid": row.package_uid}


def mark_handled(store: Store, admission_id: str, *, actor: str, note: str = "") -> dict[str, Any]:
    """An operator placed (or settled) the admission by hand in Ladok."""
    with store.transaction() as s:
        row = s.get(NyaAdmission, admission_id, with_for_update=True)
        if row is None:
            raise KeyError(f"no admission {admission_id}")
        if row.state == "handled":
            return {"admission_id": admission_id, "state": row.state, "already": True}
        if row.state not in ("unhandled", "invalid", "pending"):
            raise ValueError(f"admission {admission_id} is {row.state}; nothing to hand-handle")
        row.state = "handled"
        u = s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id == admission_id)).first()
        if u is not None:
            u.status, u.resolution, u.resolved_by = "manual", note or "hanterad manuellt", actor
        ops.audit(s, actor, "admission.handled", "nya_admission", admission_id, note=note)
        return {"admission_id": admission_id, "state": row.state}


def summary(store: Store, round_code: str | None = None) -> dict[str, int]:
    """Admissions per state (for the DAG log and the CLI)."""
    with store.transaction() as s:
        q = select(NyaAdmission.state, func.count()).group_by(NyaAdmission.state)
        if round_code:
            q = q.where(NyaAdmission.round == round_code)
        return {k: n for k, n in s.execute(q)}


def rounds_with_pending(store: Store) -> list[str]:
    with store.transaction() as s:
        return sorted(s.scalars(select(NyaAdmission.round).where(NyaAdmission.state == "pending").distinct()))
