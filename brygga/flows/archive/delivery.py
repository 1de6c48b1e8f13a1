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

from adapters.arkiv import ArchiveAdapter
from adapters.ladok import LadokAdapter
from brygga.flows.archive.packaging import Built, Staging, build, package_id, plan_parts
from brygga.flows.outbox import send_groups
from brygga.logmask import get_logger
from brygga.records import ArchiveReceipt, Participant, Utbildningstillfalle
from brygga.store import Store, ops
from brygga.store.models import ArchivePackage, OutboxMessage, utcnow
from mappings import registry
from mappings.arkiv.sip import PackageInfo, SipV1
from mappings.base import RecordError

log = get_logger("brygga.flows.archive")

DESTINATION = "arkiv"
KIND = "archive-package"
KURSTILLFALLE, EXAMEN = "kurstillfalle", "examen"
SUBJECT = KURSTILLFALLE  # (the default kind)
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

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> Settings:
        d = cls()
        return cls(archival_creator=tuple(extra.get("archival_creator") or d.archival_creator),
                   submitter=tuple(extra.get("submitter") or d.submitter),
                   submission_agreement=extra.get("submission_agreement"),
                   closing_days=int(extra.get("closing_days", d.closing_days)),
                   max_part_bytes=int(extra.get("max_part_bytes", d.max_part_bytes)))


def _sip() -> SipV1:
    return registry.get("arkiv", "sip", 1)


def _held(s: Session, kind: str, uid: str) -> bool:
    return s.scalar(select(ArchivePackage.id).where(
        ArchivePackage.subject_kind == kind, ArchivePackage.subject_uid == uid,
        ArchivePackage.status == "accepted").limit(1)) is not None


def ended(t: Utbildningstillfalle, up_to: dt.date, closing_days: int) -> bool:
    """A course instance to archive: not a programme, not cancelled, its period ended at least
    ``closing_days`` before ``up_to``."""
    if t.is_programme or t.installt or not t.end:
        return False
    return dt.date.fromisoformat(t.end[:10]) + dt.timedelta(days=closing_days) <= up_to


def plan(store: Store, ladok: LadokAdapter, *, settings: Settings, what: str = "kurstillfallen",
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


def _instances(store: Store, ladok: LadokAdapter, up_to: dt.date, settings: Settings,
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


def _degrees(store: Store, ladok: LadokAdapter, period: tuple[dt.date, dt.date],
             only: list[str] | None) -> tuple[list[dict[str, Any]], int]:
    """Certificates issued within ``period`` (the search's pages, read by the mapping)."""
    sip = _sip()
    found: list[tuple[str, str, str | None]] = []
    unreadable = 0
    for page in ladok.bevis_search_documents(*period):
        try:
            hits = sip.degrees(page)
        except ValueError as e:
            unreadable += 1
            with store.transaction() as s:
                ops.quarantine_again(s, source="ladok", message_id=f"examen:{period[0]}:{period[1]}",
                                     kind="archive-degrees", reason=f"unreadable certificate page: {e}"[:500])
            break
        if not hits:
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


def collect(ladok: LadokAdapter, sip: SipV1, subject: dict[str, Any], staging: Staging) -> tuple[int, int]:
    """Stage the subject's documents from Ladok, each checked against the Ladok XSDs; returns
    (persons, of whom protected). A document that breaks the XSD raises ValueError."""
    if subject.get("kind", KURSTILLFALLE) == EXAMEN:
        return collect_degree(ladok, sip, subject["uid"], staging)
    return collect_instance(ladok, sip, subject["uid"], staging)


def collect_degree(ladok: LadokAdapter, sip: SipV1, uid: str, staging: Staging) -> tuple[int, int]:
    """An issued certificate and the student's attested results (Ladok lists them by UID only)."""
    data = ladok.bevis_document(uid)
    if data is None:
        raise ValueError(f"Ladok has no utfärdat bevis {uid}")
    degrees = sip.degrees(data)
    if [d[0] for d in degrees] != [uid]:
        raise ValueError(f"the reply is not utfärdat bevis {uid}")
    student = degrees[0][1]
    staging.add("utfardatbevis.xml", data)
    results = ladok.resultat_document(student)
    if results is not None:
        sip.check_ladok(results, RR + "ResultatLista")
        staging.add("resultat.xml", results)
    protected = ladok.is_protected(student)  # for the access restriction only: no name goes in
    return 1, int(protected)


def collect_instance(ladok: LadokAdapter, sip: SipV1, uid: str, staging: Staging) -> tuple[int, int]:
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
            if isinstance(p, Participant):
                students[p.student_uid] = students.get(p.student_uid, False) or p.protected
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


def deliver(store: Store, ladok: LadokAdapter, arkiv: ArchiveAdapter, *, settings: Settings,
            max_requests: int | None = None, crash: Callable[[str], None] | None = None,
            after_send: Callable[[str], None] | None = None) -> dict[str, int]:
    """Package and send the queued instances, one at a time; returns outcome counts."""
    sip = _sip()
    done: dict[int, list[tuple[Built, ArchiveReceipt, str]]] = {}

    def send(group: list[OutboxMessage], rid: str) -> dict[str, tuple[str, str | None]]:
        m = group[0]
        uid, kind = m.payload["uid"], m.payload.get("kind", KURSTILLFALLE)
        with Staging() as st, tempfile.TemporaryDirectory(prefix="brygga-sip-") as out:
            try:
                _, protected = collect(ladok, sip, m.payload, st)
            except ValueError as e:  # Ladok's document breaks its XSD: not sent, the operator sees why
                return {m.idempotency_key: ("rejected", f"Ladoks data går inte att arkivera: {e}"[:500])}
            content = st.content_sha256()
            info = PackageInfo(
                objid=package_id(kind, uid, content), label=m.payload.get("label") or f"{kind} {uid}",
                created=_aware(m.created_at), subject_kind=kind, subject_uid=uid,
                archival_creator=settings.archival_creator, submitter=settings.submitter,
                submission_agreement=settings.submission_agreement,
                period=(m.payload.get("start"), m.payload.get("end")), protected=protected)
            sent = []
            for built in build(sip, info, st, Path(out), max_part_bytes=settings.max_part_bytes, crash=crash):
                receipt = arkiv.submit(built.path)
                built.path.unlink()
                sent.append((built, receipt, content))
                log.info("arkiv: %s del %d/%d: %s%s", built.objid, built.part, built.parts, receipt.status,
                         f" ({receipt.archive_id})" if receipt.archive_id else "")
        done[m.id] = sent
        refused = [r for _, r, _ in sent if not r.accepted]
        if refused:
            reasons = "; ".join(f"{rule}: {text}" for r in refused for rule, text in r.reasons)
            return {m.idempotency_key: ("rejected", f"Arkivet avvisade paketet: {reasons}"[:2000])}
        return {m.idempotency_key: ("accepted", ", ".join(r.archive_id or "" for _, r, _ in sent))}

    def apply(s: Session, group: list[OutboxMessage], results: dict[str, tuple[str, str | None]],
              outcomes: Counter[str], rid: str) -> None:
        m = group[0]
        outcome, reason = results[m.idempotency_key]
        for built, receipt, content in done.pop(m.id, []):
            row = s.scalar(select(ArchivePackage).where(ArchivePackage.package_id == built.objid))
            if row is None:
                row = ArchivePackage(package_id=built.objid, subject_kind=m.payload.get("kind", KURSTILLFALLE),
                                     subject_uid=m.payload["uid"],
                                     part=built.part, parts=built.parts, content_sha256=content,
                                     created_at=_aware(m.created_at))
                s.add(row)
            row.size, row.files = built.size, built.files
            row.status = "accepted" if receipt.accepted else "rejected"
            row.archive_id = receipt.archive_id
            row.reasons = "; ".join(f"{rule}: {text}" for rule, text in receipt.reasons)[:10000] or None
            row.received_at = utcnow() if receipt.accepted else None
        if outcome == "accepted":
            ops.outbox_mark_sent(s, [m.id], response=f"mottaget: {reason}")
            outcomes["accepted"] += 1
        else:
            ops.outbox_mark_failed(s, m, reason or "avvisat", permanent=True)  # dead, and quarantined with why
            outcomes["rejected"] += 1

    counts, requests, failure = send_groups(store, DESTINATION, KIND, prefix="arkiv", send=send, apply=apply,
                                            batch=1, max_requests=max_requests, after_send=after_send)
    if failure is not None:
        raise failure
    return {**counts, "packages": requests}


def _aware(t: dt.datetime) -> dt.datetime:
    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return t.replace(microsecond=0)


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

