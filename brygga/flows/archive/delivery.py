"""Choosing, packaging and delivering course instances to the archive.

``plan`` finds the course instances whose study period ended at least ``closing_days`` before
``up_to`` and that the archive does not hold yet, and enqueues one outbox message per instance
(idempotency key ``arkiv:kurstillfalle:<uid>``); a dry run lists them with their data size
instead. ``deliver`` works the outbox one instance at a time: it takes the instance's documents
from Ladok (catalogue, participants with their registrations, each participant's attested
results on the instance), checks each against the Ladok XSDs, builds the package (or its parts),
sends it and records the receipt in the same transaction as the outbox row. The package's time is
the outbox row's (when Brygga decided to archive it), so a retry after a crash builds the same
bytes and the archive answers "redan mottaget".
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
from adapters.http import PeerError
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
SUBJECT = "kurstillfalle"
UI = "{http://schemas.ladok.se/utbildningsinformation}"
SD = "{http://schemas.ladok.se/studiedeltagande}"
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


def _held(s: Session, uid: str) -> bool:
    return s.scalar(select(ArchivePackage.id).where(
        ArchivePackage.subject_kind == SUBJECT, ArchivePackage.subject_uid == uid,
        ArchivePackage.status == "accepted").limit(1)) is not None


def ended(t: Utbildningstillfalle, up_to: dt.date, closing_days: int) -> bool:
    """A course instance to archive: not a programme, not cancelled, its period ended at least
    ``closing_days`` before ``up_to``."""
    if t.is_programme or t.installt or not t.end:
        return False
    return dt.date.fromisoformat(t.end[:10]) + dt.timedelta(days=closing_days) <= up_to


def plan(store: Store, ladok: LadokAdapter, *, up_to: dt.date, settings: Settings, dry_run: bool = False,
         only: list[str] | None = None) -> dict[str, Any]:
    """Enqueue the instances to archive (or, dry run, list them with their data sizes)."""
    chosen: list[Utbildningstillfalle] = []
    unreadable = 0
    for uid in (only if only is not None else ladok.search_tillfallen()):
        with store.transaction() as s:
            if _held(s, uid):
                continue
        t = ladok.tillfalle_or_error(uid)
        if isinstance(t, RecordError):
            unreadable += 1
            with store.transaction() as s:
                ops.quarantine_again(s, source="ladok", message_id=uid[:64], kind="archive-instance",
                                     reason=str(t)[:500])
            continue
        if t is not None and ended(t, up_to, settings.closing_days):
            chosen.append(t)
    if dry_run:
        listing = []
        for t in chosen:
            with Staging() as st:
                _, protected = collect(ladok, _sip(), t.uid, st)
                listing.append({"uid": t.uid, "kod": f"{t.utbildningskod} {t.tillfalleskod}", "slut": t.end,
                                "files": len(st.files), "data_bytes": st.data_bytes, "protected": protected,
                                "parts": len(plan_parts(st.files, settings.max_part_bytes))})
        return {"dry_run": True, "instances": len(chosen), "unreadable": unreadable, "would_package": listing}
    with store.transaction() as s:
        queued = ops.outbox_enqueue(s, [{"destination": DESTINATION, "kind": KIND,
                                         "idempotency_key": f"arkiv:{SUBJECT}:{t.uid}",
                                         "payload": {"uid": t.uid, "label": _label(t), "start": t.start,
                                                     "end": t.end}, "correlation": f"arkiv:{t.uid}"}
                                        for t in chosen])
    return {"dry_run": False, "instances": len(chosen), "queued": queued, "unreadable": unreadable}


def _label(t: Utbildningstillfalle) -> str:
    return f"Kurstillfälle {t.utbildningskod} {t.tillfalleskod} {t.name_sv or ''}".strip()[:200]


def collect(ladok: LadokAdapter, sip: SipV1, uid: str, staging: Staging) -> tuple[int, int]:
    """Stage the instance's documents from Ladok, each checked against the Ladok XSDs; returns
    (participants, of whom protected). A document that breaks the XSD raises ValueError."""
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
        uid = m.payload["uid"]
        with Staging() as st, tempfile.TemporaryDirectory(prefix="brygga-sip-") as out:
            try:
                _, protected = collect(ladok, sip, uid, st)
            except ValueError as e:  # Ladok's document breaks its XSD: not sent, the operator sees why
                return {m.idempotency_key: ("rejected", f"Ladoks data går inte att arkivera: {e}"[:500])}
            content = st.content_sha256()
            info = PackageInfo(
                objid=package_id(SUBJECT, uid, content), label=m.payload.get("label") or f"Kurstillfälle {uid}",
                created=_aware(m.created_at), subject_kind=SUBJECT, subject_uid=uid,
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
                row = ArchivePackage(package_id=built.objid, subject_kind=SUBJECT, subject_uid=m.payload["uid"],
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
    """Send an instance again after a fix (a rejected or dead delivery): its outbox row is due
    again with its attempts reset. Audited."""
    with store.transaction() as s:
        m = s.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == f"arkiv:{SUBJECT}:{uid}"))
        if m is None or m.status == "sent":
            return False
        m.status, m.attempts, m.next_attempt_at, m.last_error = "pending", 0, utcnow(), None
        ops.quarantine_release(s, DESTINATION, m.idempotency_key, KIND)
        ops.audit(s, actor, "archive.resend", "kurstillfalle", uid)
    return True


__all__ = ["DESTINATION", "KIND", "PeerError", "Settings", "deliver", "plan", "resend"]
