"""Choosing, packaging and delivering study documentation to the archive.

Two kinds of subject, one package each:

* a **course instance** (``kurstillfalle``) whose study period ended at least ``closing_days``
  before ``up_to`` (programmes and cancelled instances are not archived): its catalogue data,
  its participants with their registrations, and their attested results on it;
* an **issued degree** (``examen``: an utfärdat bevis) issued in a period: the certificate and
  the student's attested results.

``plan`` finds the subjects the archive does not hold yet and enqueues one outbox message each
(idempotency key ``arkiv:<kind>:<uid>``); a dry run lists them with their data size instead.
``deliver`` works the outbox one subject at a time: it takes the subject's documents from Ladok,
checks each against the Ladok XSDs, builds the package (or its parts), sends it and records the
receipt in the same transaction as the outbox row. The package's time is the outbox row's (when
Brygga decided to archive it), so a retry after a crash builds the same bytes and the archive
answers "redan mottaget".
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.http import PeerError
from brygga.config import ArchiveSettings
from brygga.flows.archive.packaging import Built, Staging, build, package_id, part_ids, plan_parts
from brygga.flows.kit import claimant
from brygga.flows.kit.flow import Flow
from brygga.flows.ports import Archive, Ladok
from brygga.logmask import get_logger
from brygga.personnummer import mask
from brygga.records import ArchiveReceipt, Participant, Utbildningstillfalle
from brygga.store import Store, ops
from brygga.store.models import ArchivePackage, OutboxMessage, utcnow
from mappings import registry
from mappings.arkiv.sip import PackageInfo, SipV1
from mappings.base import RecordError

log = get_logger("brygga.flows.archive")

FLOW = Flow("archive-export", "brygga_archive_export", destination="arkiv", kinds=("archive-package",))
DESTINATION = FLOW.destination
KIND = FLOW.kinds[0]
KURSTILLFALLE, EXAMEN = "kurstillfalle", "examen"
WHAT = {"kurstillfallen": KURSTILLFALLE, "examina": EXAMEN}  # the trigger form's choice -> subject kind
UI = "{http://schemas.ladok.se/utbildningsinformation}"
SD = "{http://schemas.ladok.se/studiedeltagande}"
RR = "{http://schemas.ladok.se/resultat}"
EX = "{http://schemas.ladok.se/examen}"
RESULTS_PER_FILE = 500  # students per rr:ResultatLista file in the package


@dataclass(frozen=True)
class Settings:
    archival_creator: tuple[str, str] = ("Lärosätet", "2021000000")  # name, organisationsnummer
    submitter: tuple[str, str] = ("Lärosätet, Brygga (Ladok-integration)", "2021000000")
    submission_agreement: str | None = None
    closing_days: int = 90  # after the study period's end, results are expected to be attested
    max_part_bytes: int = 512 * 1024 * 1024

    degrees_from: str = "2020-01-01"  # the degree period archived by default starts here (ISO date)

    @classmethod
    def of(cls, settings: ArchiveSettings) -> Settings:
        """The archive export's settings from the ``brygga_arkiv`` Connection's (defaults where unset)."""
        d = cls()
        return cls(archival_creator=settings.archival_creator or d.archival_creator,
                   submitter=settings.submitter or d.submitter,
                   submission_agreement=settings.submission_agreement,
                   closing_days=d.closing_days if settings.closing_days is None else settings.closing_days,
                   max_part_bytes=settings.max_part_bytes or d.max_part_bytes,
                   degrees_from=settings.degrees_from or d.degrees_from)

    def period(self, degrees_from: str | None, degrees_to: str | None, today: dt.date) -> tuple[dt.date, dt.date]:
        """The degree period of a run: the form's dates, else from ``degrees_from`` up to today."""
        return (dt.date.fromisoformat(degrees_from or self.degrees_from),
                dt.date.fromisoformat(degrees_to) if degrees_to else today)


def _sip() -> SipV1:
    return registry.get("arkiv", "sip", 1)


def _held(s: Session, kind: str, uid: str) -> bool:
    """Whether the archive holds the subject: every part of one package set accepted."""
    return any(_complete(parts) for parts in _sets(s, kind, uid).values())


def ended(t: Utbildningstillfalle, up_to: dt.date, closing_days: int) -> bool:
    """A course instance to archive: not a programme, not cancelled, its period ended at least
    ``closing_days`` before ``up_to``."""
    if t.is_programme or t.installt or not t.end:
        return False
    return dt.date.fromisoformat(t.end[:10]) + dt.timedelta(days=closing_days) <= up_to


def plan(store: Store, ladok: Ladok, *, settings: Settings, what: str = "kurstillfallen",
         up_to: dt.date | None = None, period: tuple[dt.date, dt.date] | None = None, dry_run: bool = False,
         only: list[str] | None = None) -> dict[str, Any]:
    """Enqueue what to archive (or, dry run, list it with data sizes): ``what`` ``kurstillfallen``
    (ended by ``up_to``, less the closing delay) or ``examina`` (issued within ``period``)."""
    kind = WHAT[what]
    if kind == EXAMEN:
        if period is None:
            raise ValueError("examina: a period (from, to) is needed")
        chosen, unreadable = _degrees(store, ladok, period, only)
    else:
        chosen, unreadable = _instances(store, ladok, up_to or dt.date.today(), settings, only)
    if dry_run:
        listing = []
        for subject in chosen:
            with Staging() as st:
                _, protected = collect(ladok, _sip(), subject, st)
                listing.append({**subject, "files": len(st.files), "data_bytes": st.data_bytes, "protected": protected,
                                "parts": len(plan_parts(st.files, settings.max_part_bytes))})
        return {"dry_run": True, "what": what, "subjects": len(chosen), "unreadable": unreadable,
                "would_package": listing}
    with store.transaction() as s:
        queued = ops.outbox_enqueue(s, [{"destination": DESTINATION, "kind": KIND,
                                         "idempotency_key": f"arkiv:{subject['kind']}:{subject['uid']}",
                                         "payload": subject, "correlation": f"arkiv:{subject['uid']}"}
                                        for subject in chosen])
    return {"dry_run": False, "what": what, "subjects": len(chosen), "queued": queued, "unreadable": unreadable}


def _instances(store: Store, ladok: Ladok, up_to: dt.date, settings: Settings,
               only: list[str] | None) -> tuple[list[dict[str, Any]], int]:
    chosen: list[dict[str, Any]] = []
    unreadable = 0
    for uid in (only if only is not None else ladok.search_tillfallen()):
        with store.transaction() as s:
            if _held(s, KURSTILLFALLE, uid):
                continue
        t = ladok.tillfalle_or_error(uid)
        if isinstance(t, RecordError):
            unreadable += 1
            with store.transaction() as s:
                ops.quarantine_again(s, source="ladok", message_id=uid[:64], kind="archive-instance",
                                     reason=str(t)[:500])
            continue
        if t is not None and ended(t, up_to, settings.closing_days):
            chosen.append({"kind": KURSTILLFALLE, "uid": t.uid, "label": _label(t), "start": t.start, "end": t.end})
    return chosen, unreadable


def _degrees(store: Store, ladok: Ladok, period: tuple[dt.date, dt.date],
             only: list[str] | None) -> tuple[list[dict[str, Any]], int]:
    """Certificates issued within ``period`` (the search's pages, read by the mapping)."""
    sip = _sip()
    found: list[tuple[str, str, str | None]] = []
    unreadable = 0
    for page in ladok.bevis_search_documents(*period):
        try:
            listed, hits = sip.degrees(page)
        except ValueError as e:
            unreadable += 1
            with store.transaction() as s:
                ops.quarantine_again(s, source="ladok", message_id=f"examen:{period[0]}:{period[1]}",
                                     kind="archive-degrees", reason=f"unreadable certificate page: {e}"[:500])
            break
        if not listed:  # (a page of only removed certificates is not the end)
            break
        found += hits
    chosen = []
    for uid, student, issued in found:
        if only is not None and uid not in only:
            continue
        with store.transaction() as s:
            if _held(s, EXAMEN, uid):
                continue
        chosen.append({"kind": EXAMEN, "uid": uid, "label": f"Utfärdat bevis {issued or ''}".strip(),
                       "student": student, "start": None, "end": issued})
    return chosen, unreadable


def _label(t: Utbildningstillfalle) -> str:
    return f"Kurstillfälle {t.utbildningskod} {t.tillfalleskod} {t.name_sv or ''}".strip()[:200]


def collect(ladok: Ladok, sip: SipV1, subject: dict[str, Any], staging: Staging) -> tuple[int, int]:
    """Stage the subject's documents from Ladok, each checked against the Ladok XSDs; returns
    (persons, of whom protected). A document that breaks the XSD raises ValueError."""
    if subject.get("kind", KURSTILLFALLE) == EXAMEN:
        return collect_degree(ladok, sip, subject["uid"], staging)
    return collect_instance(ladok, sip, subject["uid"], staging)


def collect_degree(ladok: Ladok, sip: SipV1, uid: str, staging: Staging) -> tuple[int, int]:
    """An issued certificate and the student's attested results (Ladok lists them by UID only)."""
    data = ladok.bevis_document(uid)
    if data is None:
        raise ValueError(f"Ladok has no utfärdat bevis {uid}")
    _, degrees = sip.degrees(data)
    if [d[0] for d in degrees] != [uid]:
        raise ValueError(f"the reply is not utfärdat bevis {uid}")
    student = degrees[0][1]
    staging.add("utfardatbevis.xml", data)
    results = ladok.resultat_document(student)
    attested = sip.results_of_instance(results, None) if results is not None else []
    if attested:
        staging.add("resultat.xml", sip.result_list(attested))
    protected = ladok.is_protected(student)  # for the access restriction only: no name goes in
    return 1, int(protected)


def collect_instance(ladok: Ladok, sip: SipV1, uid: str, staging: Staging) -> tuple[int, int]:
    """The instance's catalogue data, its participants' pages and their attested results on it."""
    data = ladok.tillfalle_document(uid)
    if data is None:
        raise ValueError(f"Ladok has no utbildningstillfälle {uid}")
    sip.check_ladok(data, UI + "Utbildningstillfalle")
    staging.add("utbildningstillfalle.xml", data)
    students: dict[str, bool] = {}
    for page, (doc, hits) in enumerate(ladok.deltagare_documents(uid), start=1):
        sip.check_ladok(doc, SD + "SokresultatDeltagare")
        staging.add(f"deltagare-{page:04d}.xml", doc)
        for p in hits:
            if isinstance(p, Participant) and p.student_uid not in students:
                # asked of Ladok, not inferred from the missing name; Ladok's list goes in as it is,
                # so a list that names a protected student is not archived
                protected = ladok.is_protected(p.student_uid)
                if protected and (p.fornamn or p.efternamn):
                    raise ValueError("Ladok's participant list names a student with skyddade personuppgifter")
                students[p.student_uid] = protected
    # the attested results on the instance, in lists of up to RESULTS_PER_FILE students
    held: list[Any] = []
    files = 0
    order = sorted(students)
    for n, student_uid in enumerate(order, start=1):
        results = ladok.resultat_document(student_uid)
        if results is not None:
            held += sip.results_of_instance(results, uid)
        if held and (n % RESULTS_PER_FILE == 0 or n == len(order)):
            files += 1
            staging.add(f"resultat-{files:04d}.xml", sip.result_list(held))
            held = []
    return len(students), sum(students.values())


class Crash(BaseException):
    """Raised by tests' hooks to stop a delivery as a kill would (never caught here)."""


def _utc(t: dt.datetime) -> dt.datetime:
    """A stored timestamp in UTC, whole seconds: the same instant gives the same text on SQLite
    (naive, UTC) and PostgreSQL (aware, in the session's time zone)."""
    t = t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    return t.replace(microsecond=0)


def _claim(store: Store, lease: dt.timedelta, now: dt.datetime | None, me: str) -> dict[str, Any] | None:
    """The next due subject, claimed by ``me``: not due again for ``lease``. A holder that dies
    leaves it to the next try of the same task, or any delivery on its host (``_take_back``), else
    to the lease. Rows are locked with SKIP LOCKED on PostgreSQL while claimed."""
    with store.transaction() as s:
        due = ops.outbox_due(s, DESTINATION, limit=1, kind=KIND, now=now)
        if not due:
            return None
        m = due[0]
        m.next_attempt_at, m.claimed_by = (now or utcnow()) + lease, me
        return {"id": m.id, "payload": dict(m.payload), "created": _utc(m.created_at)}


def _take_back(store: Store, owner: str | None, now: dt.datetime | None) -> int:
    """Subjects claimed by a delivery that died (kill -9): an earlier try of ``owner`` (the same
    task instance, any host) or a process of this host that is gone — due again now, not after
    the lease (the export runs monthly: a lapsed lease would wait for the next month)."""
    now = now or utcnow()
    with store.transaction() as s:
        held = list(s.scalars(select(OutboxMessage).where(
            OutboxMessage.destination == DESTINATION, OutboxMessage.kind == KIND,
            OutboxMessage.status.in_(("pending", "failed")), OutboxMessage.claimed_by.is_not(None),
            OutboxMessage.next_attempt_at > now)))
        taken = [m for m in held if claimant.gone(m.claimed_by, owner)]
        for m in taken:
            m.next_attempt_at, m.claimed_by = now, None
    if taken:
        log.warning("arkiv: took over %d subject(s) whose delivery died", len(taken))
    return len(taken)


def _sets(s: Session, kind: str, uid: str) -> dict[str, list[ArchivePackage]]:
    """The subject's package sets (by content), each its parts."""
    out: dict[str, list[ArchivePackage]] = {}
    for r in s.scalars(select(ArchivePackage).where(ArchivePackage.subject_kind == kind,
                                                    ArchivePackage.subject_uid == uid).order_by(ArchivePackage.part)):
        out.setdefault(r.content_sha256, []).append(r)
    return out


def _complete(parts: list[ArchivePackage]) -> bool:
    return bool(parts) and len(parts) == parts[0].parts and all(p.status == "accepted" for p in parts)


def _record(store: Store, objid: str, receipt: ArchiveReceipt, built: Built | None = None) -> None:
    """The archive's receipt of one package (part), in its own transaction; an accepted part stays
    accepted."""
    with store.transaction() as s:
        row = s.scalar(select(ArchivePackage).where(ArchivePackage.package_id == objid))
        if row is None or row.status == "accepted":
            return
        if built is not None:
            row.size, row.files = built.size, built.files
        row.status = "accepted" if receipt.accepted else "rejected"
        row.archive_id = receipt.archive_id
        row.reasons = mask("; ".join(f"{rule}: {text}" for rule, text in receipt.reasons))[:10000] or None
        row.received_at = utcnow() if receipt.accepted else None


def deliver(store: Store, ladok: Ladok, arkiv: Archive, *, settings: Settings,
            max_requests: int | None = None, crash: Callable[[str], None] | None = None,
            after_send: Callable[[str], None] | None = None, lease: dt.timedelta = dt.timedelta(minutes=30),
            now: dt.datetime | None = None, owner: str | None = None) -> dict[str, int]:
    """Package and send the queued subjects, one at a time, each claimed first; returns outcome
    counts. A subject whose own data or package fails is backed off (dead after the outbox's
    attempts) and the others go on; an unreachable peer stops the run (the task retries).
    ``owner`` (the task instance's identity) lets a retry take over what its killed try held."""
    sip = _sip()
    outcomes: Counter[str] = Counter()
    handled = 0
    taken = _take_back(store, owner, now)
    if taken:
        outcomes["taken_over"] = taken
    me = claimant.claimant(owner)
    while max_requests is None or handled < max_requests:
        job = _claim(store, lease, now, me)
        if job is None:
            break
        handled += 1
        try:
            outcome, reason = _deliver_one(store, ladok, arkiv, sip, job, settings, crash, after_send)
        except PeerError as e:
            status = _failed(store, job, str(e), permanent=not e.transient)
            outcomes[status] += 1
            if e.transient:
                raise
            continue
        except Exception as e:  # noqa: BLE001 - this subject's own trouble: back off, the rest goes on
            log.warning("arkiv: %s %s: %s", job["payload"].get("kind"), job["payload"]["uid"], type(e).__name__)
            outcomes[_failed(store, job, f"{type(e).__name__}: {e}")] += 1
            continue
        with store.transaction() as s:
            m = s.get(OutboxMessage, job["id"])
            if m is None:
                continue
            m.claimed_by = None
            if outcome == "accepted":
                ops.outbox_mark_sent(s, [m.id], response=f"mottaget: {reason}"[:4000])
            else:
                ops.outbox_mark_failed(s, m, mask(reason or "avvisat"), permanent=True)  # dead, quarantined with why
        outcomes[outcome] += 1
    return {**outcomes, "packages": handled}


def _failed(store: Store, job: dict[str, Any], error: str, *, permanent: bool = False) -> str:
    with store.transaction() as s:
        m = s.get(OutboxMessage, job["id"])
        if m is None:
            return "dead"
        m.claimed_by = None
        return ops.outbox_mark_failed(s, m, mask(error)[:2000], permanent=permanent)


def _deliver_one(store: Store, ladok: Ladok, arkiv: Archive, sip: SipV1, job: dict[str, Any],
                 settings: Settings, crash: Callable[[str], None] | None,
                 after_send: Callable[[str], None] | None) -> tuple[str, str | None]:
    payload = job["payload"]
    kind, uid = payload.get("kind", KURSTILLFALLE), payload["uid"]
    # 1. an earlier attempt the archive may hold already (it accepted, then Brygga died before
    #    recording it): ask the archive, so Ladok data changed since cannot make a second package
    with store.transaction() as s:
        earlier = {content: [(r.package_id, r.status) for r in parts] for content, parts in _sets(s, kind, uid).items()}
    for attempt in earlier.values():
        for objid, status in attempt:
            if status == "built":
                receipt = arkiv.held(objid)
                if receipt is not None:
                    _record(store, objid, receipt)
    with store.transaction() as s:
        for held in _sets(s, kind, uid).values():
            if _complete(held):
                return "accepted", ", ".join(p.archive_id or "" for p in held)
    # 2. the package, from Ladok's documents as they are now
    with Staging() as st, tempfile.TemporaryDirectory(prefix="brygga-sip-") as out:
        try:
            _, protected = collect(ladok, sip, payload, st)
        except ValueError as e:  # Ladok's document breaks its XSD: not sent, the operator sees why
            return "rejected", f"Ladoks data går inte att arkivera: {e}"[:2000]
        content = st.content_sha256()
        base = package_id(kind, uid, content)
        ids = part_ids(base, len(plan_parts(st.files, settings.max_part_bytes)))
        with store.transaction() as s:  # the set, before anything is sent
            have = {r.package_id: r.status for r in s.scalars(select(ArchivePackage)
                                                              .where(ArchivePackage.package_id.in_(ids)))}
            for number, objid in enumerate(ids, start=1):
                if objid not in have:
                    s.add(ArchivePackage(package_id=objid, subject_kind=kind, subject_uid=uid, part=number,
                                         parts=len(ids), content_sha256=content, status="built",
                                         created_at=job["created"]))
        info = PackageInfo(
            objid=base, label=payload.get("label") or f"{kind} {uid}", created=job["created"], subject_kind=kind,
            subject_uid=uid, archival_creator=settings.archival_creator, submitter=settings.submitter,
            submission_agreement=settings.submission_agreement, period=(payload.get("start"), payload.get("end")),
            protected=protected)
        archive_ids = []
        for built in build(sip, info, st, Path(out), max_part_bytes=settings.max_part_bytes, crash=crash):
            if have.get(built.objid) == "accepted":
                built.path.unlink()
                continue
            receipt = arkiv.submit(built.path)
            built.path.unlink()
            if after_send is not None:
                after_send(built.objid)
            _record(store, built.objid, receipt, built)
            log.info("arkiv: %s del %d/%d: %s%s", built.objid, built.part, built.parts, receipt.status,
                     f" ({receipt.archive_id})" if receipt.archive_id else "")
            if not receipt.accepted:  # the first refusal ends the set: no further part is sent
                reasons = "; ".join(f"{rule}: {text}" for rule, text in receipt.reasons)
                return "rejected", f"Arkivet avvisade {built.objid}: {reasons}"[:2000]
            archive_ids.append(receipt.archive_id or "")
    return "accepted", ", ".join(archive_ids)


def resend(store: Store, uid: str, actor: str) -> bool:
    """Send an instance or a degree again after a fix (a rejected or dead delivery): its outbox
    row is due again with its attempts reset. Audited."""
    with store.transaction() as s:
        m = s.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key.in_(
            [f"arkiv:{kind}:{uid}" for kind in (KURSTILLFALLE, EXAMEN)])))
        if m is None or m.status == "sent":
            return False
        m.status, m.attempts, m.next_attempt_at, m.last_error = "pending", 0, utcnow(), None
        ops.quarantine_release(s, DESTINATION, m.idempotency_key, KIND)
        ops.audit(s, actor, "archive.resend", m.payload.get("kind", KURSTILLFALLE), uid)
    return True

