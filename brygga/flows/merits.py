"""Continuous merit sync Ladok → NyA (meriter), from Ladok's Atom event feed.

Two steps, each safe to repeat and to kill at any point (the DAG runs them every 30 seconds):

``sync_once`` reads the feed forward from the checkpoint (archive page + last entry id), oldest
first along ``next-archive``, a few pages ahead in a thread (``read_ahead``). The checkpoint
stands on the last entry read of any kind, so unknown types and bad entries on the recent page
(read again on every run) are counted once. It keeps the merit events (``MERIT_TYPES``) of
students who are applicants in an open NyA round, enriches them from Ladok REST (personnummer,
Utbildningskod / Tillfälleskod; cached for the run) and turns them into ``Merit`` records (merit
id = HandelseUID).
Pages are grouped into batches of about ``batch_size`` events; per batch ONE transaction writes
the outbox rows, the inbox (dedupe) rows, any quarantine/audit rows and the new checkpoint. A
crash before that commit leaves the checkpoint where it was (the batch is read again, nothing was
enqueued); a crash after it leaves everything enqueued exactly once (the inbox and the outbox's
unique idempotency key absorb a re-read).

``send_pending`` sends the due merit rows to NyA (``SubmitMerits``), one request per enqueue batch
(outbox ``correlation``), with a RequestId derived from the idempotency keys of the rows sent: a
crash after NyA applied a request but before the rows were marked sent re-sends the same request,
which NyA answers from its replay store (same outcomes, nothing applied twice). Transient failures
back off exponentially; rejected merits and messages that keep failing are quarantined
(``ops.outbox_mark_failed``).

If the checkpoint's page has been pruned (``FeedGone``: the feed moved on while Brygga was away),
the oldest page still available is found, the gap is written to the audit log and quarantine with
its page range, and the sync continues from there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import queue
import threading
import time
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy.dialects import postgresql, sqlite

from adapters.http import if_found
from adapters.ladok import LadokAdapter
from adapters.nya import NyaAdapter, NyaFault
from brygga.logmask import get_logger
from brygga.records import FeedPage, LadokEvent, Merit, Utbildningstillfalle
from brygga.flows import feed, outbox
from brygga.store import Store, ops
from brygga.store.models import InboxMessage, OutboxMessage, utcnow

log = get_logger("brygga.flows.merits")

CHECKPOINT = "ladok-merits"  # feed_checkpoint.name
SOURCE = "ladok"  # inbox_message.source (HandelseUID)
DESTINATION = "nya"
KIND = "merit"
ACTOR = "brygga:merit-sync"

#: Ladok event type -> NyA merit Type.
MERIT_TYPES: dict[str, str] = {
    "RegistreringEvent": "registrering",
    "ResultatPaModulAttesteratEvent": "resultat",
    "TillgodoraknandeAttesteratEvent": "tillgodoraknande",
    "AvbrottEvent": "avbrott",
    "UppehallEvent": "studieuppehall",
    "UtfardatBevisEvent": "examen",
}

#: Ladok BetygsgradID -> grade letter (scales 2302 U/G/VG and 131657 F..A, docs/contracts/ladok.md).
GRADES: dict[str, str] = {
    "2303": "U", "2304": "G", "2305": "VG",
    "131658": "F", "131659": "Fx", "131660": "E", "131661": "D", "131662": "C", "131663": "B", "131664": "A",
}

#: Where each event names the utbildningstillfälle its merit belongs to (first present wins).
TILLFALLE_FIELDS: dict[str, tuple[str, ...]] = {
    "RegistreringEvent": ("KurstillfalleUID",),
    "ResultatPaModulAttesteratEvent": ("KurstillfalleUID",),
    "TillgodoraknandeAttesteratEvent": ("KopplatKurspaketeringstillfalleUID",),
    "AvbrottEvent": ("UtbildningstillfalleUID",),
    "UppehallEvent": ("KurspaketeringstillfalleUID",),
    "UtfardatBevisEvent": (),  # names only the programme's utbildningsinstans: see Enricher.instans
}

#: The Ladok id a merit refers to, for SourceReference.
REFERENCE_FIELDS: dict[str, tuple[str, str]] = {
    "RegistreringEvent": ("registrering", "RegistreringUID"),
    "ResultatPaModulAttesteratEvent": ("resultat", "Resultat/ResultatUID"),
    "TillgodoraknandeAttesteratEvent": ("tillgodoraknande", "TillgodoraknandeUID"),
    "AvbrottEvent": ("avbrott", "UtbildningstillfalleUID"),
    "UppehallEvent": ("uppehall", "UppehallUID"),
    "UtfardatBevisEvent": ("bevis", "UtfardatBevisUID"),
}


class CheckpointMoved(RuntimeError):
    """Another worker advanced the checkpoint while this one was reading: this batch is dropped."""


# ----------------------------------------------------------------------------- lookups (cached)

class Enricher:
    """Ladok REST lookups for a run: student uid -> personnummer, tillfälle uid -> instance.

    Everything is cached (misses too), so a batch costs one request per distinct student and
    instance. Transient Ladok errors propagate (the task retries); 404 means "not there"."""

    def __init__(self, ladok: LadokAdapter):
        self.ladok = ladok
        self.students: dict[str, str | None] = {}
        self.tillfallen: dict[str, Utbildningstillfalle | None] = {}
        self.plans: dict[str, list[dict[str, str | None]]] = {}
        self.requests = 0

    def personnummer(self, student_uid: str) -> str | None:
        if student_uid not in self.students:
            self.requests += 1
            student = if_found(self.ladok.student, student_uid)
            self.students[student_uid] = (student.personnummer or None) if student else None
        return self.students[student_uid]

    def tillfalle(self, uid: str) -> Utbildningstillfalle | None:
        if uid not in self.tillfallen:
            self.requests += 1
            self.tillfallen[uid] = if_found(self.ladok.tillfalle, uid)
        return self.tillfallen[uid]

    def instans(self, student_uid: str, instans_uid: str) -> dict[str, str | None] | None:
        """The education of the student's study plan with this utbildningsinstans (examen events
        name the programme by its instans, which has no GET of its own)."""
        if student_uid not in self.plans:
            self.requests += 1
            self.plans[student_uid] = if_found(self.ladok.study_plan_educations, student_uid, default=[])
        return next((x for x in self.plans[student_uid] if x["instans_uid"] == instans_uid), None)


class Applicants:
    """Personnummer of the applicants in every open NyA round; read once per run, on first use."""

    def __init__(self, nya: NyaAdapter):
        self.nya = nya
        self._set: set[str] | None = None
        self.rounds: list[str] = []

    def __contains__(self, personnummer: str) -> bool:
        return personnummer in self.load()

    def load(self) -> set[str]:
        if self._set is None:
            found: set[str] = set()
            for code in self.nya.open_rounds():
                try:
                    found |= self.nya.list_applicants(code)
                except NyaFault as e:
                    if e.code != "round-closed":  # closed between the two calls: not of interest
                        raise
                    continue
                self.rounds.append(code)
            self._set = found
        return self._set

    def __len__(self) -> int:
        return len(self.load())


# ----------------------------------------------------------------------------- event -> merit

def _get(fields: dict[str, Any], path: str) -> str | None:
    if "/" in path:
        value: Any = fields
        for part in path.split("/"):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
    else:
        value = fields.get(path)
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def _credits(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(Decimal(value).quantize(Decimal("0.1")))
    except InvalidOperation:
        return None


#: Where each merit event carries its date (first present wins; else the entry's ``updated``).
DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "RegistreringEvent": ("StudieperiodStart",),
    "ResultatPaModulAttesteratEvent": ("Resultat/Examinationsdatum", "Beslut/Beslutsdatum"),
    "TillgodoraknandeAttesteratEvent": ("Beslut/Beslutsdatum",),
    "AvbrottEvent": ("Avbrottsdatum",),
    "UppehallEvent": ("Startdatum",),
    "UtfardatBevisEvent": ("DatumForUtfardatBevis",),
}


def _date(e: LadokEvent) -> str | None:
    f = e.fields
    for path in DATE_FIELDS[e.event_type]:
        v = _get(f, path)
        if v:
            return v[:10]
    return e.updated[:10] or None


def to_merit(e: LadokEvent, personnummer: str, enricher: Enricher) -> Merit | str:
    """The NyA merit for a merit event of an applicant, or the reason it cannot be one."""
    mtype = MERIT_TYPES[e.event_type]
    f = e.fields
    t = None
    if e.event_type == "UtfardatBevisEvent":
        instans_uid = _get(f, "HuvudsakligKurspaketeringsinstansUID")
        if instans_uid is None:
            return "UtfardatBevisEvent names no HuvudsakligKurspaketeringsinstansUID: no Utbildningskod for the examen"
        edu = enricher.instans(e.student_uid or "", instans_uid)
        if edu is None or not edu["utbildningskod"]:
            return f"utbildningsinstans {instans_uid} of the examen is not in the student's study plan"
        code, tkod = edu["utbildningskod"], edu["tillfalleskod"]
    else:
        tillfalle_uid = next((v for v in (_get(f, p) for p in TILLFALLE_FIELDS[e.event_type]) if v), None)
        if tillfalle_uid is None:
            return (f"{e.event_type} names no utbildningstillfälle ({'/'.join(TILLFALLE_FIELDS[e.event_type])} "
                    "missing): no Utbildningskod for the NyA merit")
        t = enricher.tillfalle(tillfalle_uid)
        if t is None:
            return f"utbildningstillfälle {tillfalle_uid} not found in Ladok (404)"
        if not t.utbildningskod:
            return f"utbildningstillfälle {tillfalle_uid} has no utbildningskod attribute in Ladok"
        code, tkod = t.utbildningskod, t.tillfalleskod
    date = _date(e)
    if not date:
        return f"{e.event_type} has no date"
    grade = credits = None
    if mtype == "resultat":
        grade_id = _get(f, "Resultat/BetygsgradID")
        grade = GRADES.get(grade_id or "")
        if grade is None:
            return (f"unknown BetygsgradID {grade_id!r} (scale {_get(f, 'Resultat/BetygsskalaID')!r}): "
                    "a resultat needs a grade")
        credits = _credits(_get(f, "Resultat/OmfattningsPoang"))
    elif mtype == "registrering":
        credits = _credits(_get(f, "Omfattningsvarde")) or (_credits(t.credits) if t else None)
    label, ref_path = REFERENCE_FIELDS[e.event_type]
    ref = _get(f, ref_path)
    return Merit(
        merit_id=e.handelse_uid, personnummer=personnummer, type=mtype, utbildningskod=code,
        date=date, tillfalleskod=tkod, modul=None, credits=credits, grade=grade,
        source_reference=f"ladok:{label}:{ref}" if ref else f"ladok:handelse:{e.handelse_uid}",
    )


def idempotency_key(merit_id: str) -> str:
    return f"nya:merit:{merit_id}"


def request_id(keys: Iterable[str]) -> str:
    """A RequestId derived from the idempotency keys sent: the same rows give the same RequestId."""
    return outbox.request_id("merits", keys)


# ----------------------------------------------------------------------------- feed position

_END = object()


def read_ahead(ladok: LadokAdapter, first: FeedPage, *, max_pages: int, ahead: int = 4) -> Iterator[FeedPage]:
    """``first``, then the pages along ``next-archive`` (at most ``max_pages`` in all).

    With ``ahead`` > 0 a thread fetches and parses up to ``ahead`` pages in advance while the
    caller processes the current one (the network round trip and lxml's parse overlap the flow's
    work). Errors (``FeedGone``, ``PeerError``) reach the caller when it asks for that page. Close
    the generator (or exhaust it) to stop the thread; the pages it read ahead are dropped, which
    is safe: nothing is committed for a page before the caller has processed it."""
    yield first
    if ahead <= 0:
        page, n = first, 1
        while page.next_archive and n < max_pages:
            page = ladok.feed_page(url=page.next_archive)
            n += 1
            yield page
        return
    q: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def work(url: str | None) -> None:
        n = 1
        try:
            while url and n < max_pages and not stop.is_set():
                page = ladok.feed_page(url=url)
                n += 1
                put(page)
                url = page.next_archive
            put(_END)
        except BaseException as e:  # handed to the caller, raised where it reads that page
            put(e)

    worker = threading.Thread(target=work, args=(first.next_archive,), daemon=True, name="merit-feed-read-ahead")
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=2)


def reset_checkpoint(store: Store, page: int, *, actor: str, reason: str = "replay") -> dict[str, Any]:
    """Operator action: read the feed again from ``page`` (inclusive). Safe: already handled events
    are in the inbox and their merits have idempotency keys, so nothing is sent twice."""
    if page < 1:
        raise ValueError("replay_from_page must be >= 1")
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, CHECKPOINT)
        before = {"page": cp.page, "entry_id": cp.entry_id} if cp else None
        ops.checkpoint_set(s, CHECKPOINT, page, None)
        ops.audit(s, actor, "feed.replay", "feed_checkpoint", CHECKPOINT, from_page=page, before=before,
                  reason=reason)
    log.info("merit sync: checkpoint reset to page %s by %s (was %s)", page, actor, before)
    return {"replay_from_page": page, "before": before}


# ----------------------------------------------------------------------------- sync

@dataclasses.dataclass
class _Batch:
    """Entries read since the last commit, and where the checkpoint goes when they are committed."""

    events: list[LadokEvent] = dataclasses.field(default_factory=list)
    errors: list[Any] = dataclasses.field(default_factory=list)  # RecordError from the feed mapping
    skipped: Counter = dataclasses.field(default_factory=Counter)  # unknown event types, once per entry
    gaps: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    page: int | None = None
    entry_id: str | None = None
    pages: int = 0


def _page_entries(page: FeedPage, resume_after: str | None) -> tuple[list[tuple[str, Any]], str | None]:
    """The page's entries (oldest first) after ``resume_after`` and the id of its last entry.

    ``ladok.events.v1`` lists every entry with what it became (event, RecordError, or the name of
    a skipped type), so the checkpoint can stand on the page's last entry whatever its type: an
    unknown event or a bad entry at the end of the recent page is then counted once, not again
    on every poll. A mapping that gives only events falls back to them."""
    entries = getattr(page, "entries", None)
    if entries is None:
        entries = [(e.entry_id, e) for e in page.events]
        if resume_after is None:
            entries = entries + [("", err) for err in page.errors] + [
                ("", t) for t, n in page.skipped.items() for _ in range(n)]
    last = next((eid for eid, _ in reversed(entries) if eid), None)
    if resume_after:
        for i in range(len(entries) - 1, -1, -1):
            if entries[i][0] == resume_after:
                return entries[i + 1:], last
    return entries, last  # (the page's own list when nothing is cut: the caller relies on that)


def sync_once(store: Store, ladok: LadokAdapter, nya: NyaAdapter, *, max_pages: int = 500,
              batch_size: int = 1000, enricher: Enricher | None = None, applicants: Applicants | None = None,
              read_ahead_pages: int = 4,
              after_commit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Read the feed from the checkpoint up to the newest page (at most ``max_pages`` pages) and
    enqueue the merits; returns counts. Pages are fetched ``read_ahead_pages`` ahead in a thread
    (0: none). ``after_commit`` is called after each batch's commit (tests use it to crash
    between batches)."""
    enricher = enricher or Enricher(ladok)
    applicants = applicants or Applicants(nya)
    mapping = nya.mapping("merit")
    counts: Counter = Counter()
    ignored: Counter = Counter()

    with store.transaction() as s:
        cp = ops.checkpoint_get(s, CHECKPOINT)
        start_page, start_entry = (cp.page, cp.entry_id) if cp is not None and cp.page else (None, None)
    expected = (start_page, start_entry)

    batch = _Batch()
    first: FeedPage | None = None
    if start_page is None:
        first = feed.page_or_none(ladok, 1) or feed.oldest_available(ladok)
        batch.gaps.append({"kind": "start", "page": first.number})
    else:
        first = feed.page_or_none(ladok, start_page)
        if first is None:
            first = feed.oldest_available(ladok)
            batch.gaps.append({"kind": "gap", "checkpoint_page": start_page, "checkpoint_entry": start_entry,
                               "resumed_at": first.number})

    def commit() -> None:
        nonlocal expected, batch
        if batch.page is None:
            return
        stats = _commit_batch(store, batch, expected, enricher, applicants, mapping, ignored)
        counts.update(stats)
        expected = (batch.page, batch.entry_id)
        info = {"page": batch.page, "entry_id": batch.entry_id, **stats}
        batch = _Batch()
        if after_commit is not None:
            after_commit(info)

    page: FeedPage | None = None
    pages = read_ahead(ladok, first, max_pages=max_pages, ahead=read_ahead_pages)
    try:
        for page in pages:
            number = page.number
            resume = start_entry if number == start_page else None
            entries, last = _page_entries(page, resume)
            events, errors, skipped = batch.events, batch.errors, batch.skipped
            if entries is getattr(page, "entries", None):  # the whole page: take its lists as they are
                events.extend(page.events)
                errors.extend(page.errors)
                skipped.update(page.skipped)
            else:
                for _, item in entries:
                    if item.__class__ is LadokEvent:
                        events.append(item)
                    elif item.__class__ is str:
                        skipped[item] += 1
                    else:
                        errors.append(item)
            batch.pages += 1
            counts["pages"] += 1
            batch.page = number
            if last is not None:
                batch.entry_id = last
            elif number != start_page:
                batch.entry_id = None
            else:
                batch.entry_id = start_entry
            if len(events) >= batch_size:
                commit()
        commit()
    finally:
        pages.close()

    summary = {
        "pages": counts["pages"], "events": counts["events"], "merits": counts["merits"],
        "already_seen": counts["already_seen"], "not_applicant": counts["not_applicant"],
        "unknown_student": counts["unknown_student"], "quarantined": counts["quarantined"],
        "not_merit": sum(ignored.values()), "unknown_types": counts["unknown_types"],
        "gaps": counts["gaps"], "lookups": enricher.requests,
        "page": expected[0], "caught_up": page is not None and not page.next_archive,
    }
    log.info("merit sync: %s", summary)
    return summary


_MISSING = object()
_MERIT_FIELDS = tuple(f.name for f in dataclasses.fields(Merit))


def _candidates(batch: _Batch, enricher: Enricher, applicants: Applicants, mapping, ignored: Counter,
                counts: Counter) -> tuple[list[Merit], dict[str, str], list[str]]:
    """(merits, {handelse uid: quarantine reason}, handelse uids considered). REST calls happen
    here, outside any transaction. The loop runs for every feed event, so the common cases (not a
    merit type; student known from the cache) cost a dict lookup each."""
    merits: list[Merit] = []
    rejected: dict[str, str] = {}
    seen_here: set[str] = set()
    considered: list[str] = []
    applicant_set = applicants.load()
    students = enricher.students
    for e in batch.events:
        etype = e.event_type
        if etype not in MERIT_TYPES:
            ignored[etype] += 1
            continue
        huid = e.handelse_uid
        if huid in seen_here:
            counts["already_seen"] += 1
            continue
        seen_here.add(huid)
        considered.append(huid)
        uid = e.student_uid
        if not uid:
            counts["unknown_student"] += 1
            continue
        pnr = students.get(uid, _MISSING)
        if pnr is _MISSING:
            pnr = enricher.personnummer(uid)
        if pnr is None:
            counts["unknown_student"] += 1
            continue
        if pnr not in applicant_set:
            counts["not_applicant"] += 1
            continue
        m = to_merit(e, pnr, enricher)
        if m.__class__ is str:
            rejected[huid] = m
        else:
            merits.append(m)
    # What the NyA mapping would refuse (XSD), refused now rather than at sending time.
    if merits:
        _, errors = mapping.write(merits, request_id="validation")
        for err in errors:
            rejected[err.record_id] = f"not a valid NyA merit: field {err.field}: {err.rule}"
        if errors:
            bad = {err.record_id for err in errors}
            merits = [m for m in merits if m.merit_id not in bad]
    return merits, rejected, considered


def _commit_batch(store: Store, batch: _Batch, expected: tuple[int | None, str | None], enricher: Enricher,
                  applicants: Applicants, mapping, ignored: Counter) -> Counter:
    counts: Counter = Counter(events=len(batch.events), unknown_types=sum(batch.skipped.values()))
    merits, rejected, considered = _candidates(batch, enricher, applicants, mapping, ignored, counts)
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, CHECKPOINT)
        now = (cp.page, cp.entry_id) if cp is not None and cp.page else (None, None)
        if now != expected:
            raise CheckpointMoved(f"checkpoint moved from {expected} to {now} while reading; batch dropped")
        seen = ops.inbox_seen(s, SOURCE, considered) if considered else set()
        counts["already_seen"] += len(seen)
        new = [m for m in merits if m.merit_id not in seen] if seen else merits
        counts["merits"] += len(new)
        keys = [idempotency_key(m.merit_id) for m in new]
        correlation = f"merits:{batch.page}:{hashlib.sha256(chr(10).join(keys).encode()).hexdigest()[:16]}"
        page, at = batch.page, utcnow()
        _insert_new(s, OutboxMessage, ["idempotency_key"], [
            {"destination": DESTINATION, "kind": KIND, "idempotency_key": k, "correlation": correlation,
             "payload": {"merit": {f: getattr(m, f) for f in _MERIT_FIELDS}, "event_page": page},
             "status": "pending", "attempts": 0, "next_attempt_at": at, "created_at": at}
            for k, m in zip(keys, new)
        ])
        _insert_new(s, InboxMessage, ["source", "message_id"], [
            {"source": SOURCE, "message_id": m.merit_id, "kind": "merit", "status": "processed", "received_at": at}
            for m in new
        ])
        for huid, reason in rejected.items():
            if huid in seen:
                continue
            counts["quarantined"] += 1
            ops.quarantine(s, source=SOURCE, message_id=huid, kind="merit-event", reason=reason)
        for err in batch.errors:
            counts["quarantined"] += 1
            ops.quarantine(s, source=SOURCE, message_id=err.record_id, kind=err.kind or "feed-entry", reason=str(err))
        for gap in batch.gaps:
            if gap["kind"] == "gap":
                counts["gaps"] += 1
                _record_gap(s, gap)
            else:
                ops.audit(s, ACTOR, "feed.start", "feed_checkpoint", CHECKPOINT, page=gap["page"])
        ops.checkpoint_set(s, CHECKPOINT, batch.page, batch.entry_id, add_seen=len(batch.events))
    return counts


def _insert_new(s, model, index: list[str], rows: list[dict[str, Any]]) -> None:
    """``INSERT .. ON CONFLICT DO NOTHING`` of many rows as one Core executemany: the rows
    ``ops.outbox_enqueue`` / ``ops.inbox_record`` would write, without the ORM bulk path and the
    ``RETURNING`` they use to count (the merit sync does not need the count). A third of the
    time per merit went there."""
    if not rows:
        return
    dialect = s.get_bind().dialect.name
    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(model.__table__)
    s.execute(stmt.on_conflict_do_nothing(index_elements=index), rows)


def _record_gap(s, gap: dict[str, Any]) -> None:
    first, resumed = gap["checkpoint_page"], gap["resumed_at"]
    pages = f"{first}..{resumed - 1}" if resumed and resumed - 1 > first else f"{first}"
    reason = (f"Ladok feed moved on while the merit sync was away: archive page(s) {pages} were pruned before "
              f"they were read (checkpoint page {first}, last entry {gap['checkpoint_entry'] or '-'}); "
              f"resumed at page {resumed}. Merit events in the gap were not sent to NyA: reconcile the "
              f"applicants' merits from Ladok, then release this row.")
    ops.quarantine(s, source=SOURCE, message_id=f"feed-gap:{first}-{resumed}", kind="feed-gap", reason=reason)
    ops.audit(s, ACTOR, "feed.gap", "feed_checkpoint", CHECKPOINT, from_page=first, resumed_at=resumed,
              entry_id=gap["checkpoint_entry"])
    log.warning("merit sync: %s", reason)


# ----------------------------------------------------------------------------- send

def send_pending(store: Store, nya: NyaAdapter, *, batch: int = 1000, max_attempts: int = 8,
                 base_seconds: float = 30.0, max_requests: int | None = None,
                 after_send: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Send the due merits, one SubmitMerits per enqueue batch (at most ``batch`` merits each).

    Returns counts; raises the PeerError after recording it when NyA is unreachable or failing
    (the rows back off and the task retries). ``after_send`` is called with the RequestId after
    NyA answered and before the rows are marked (tests use it to crash there)."""
    mapping = nya.mapping("merit")

    def send(group: list[OutboxMessage], rid: str) -> dict[str, tuple[str, str | None]]:
        body, errors = mapping.write([Merit(**m.payload["merit"]) for m in group], request_id=rid)
        results = {e.record_id: ("rejected", f"field {e.field}: {e.rule}") for e in errors}
        if len(errors) < len(group):
            with nya.call("SubmitMerits", body) as reply:
                results.update(mapping.read_results(reply))
        return results

    outcomes, requests, failure = outbox.send_groups(
        store, DESTINATION, KIND, prefix="merits", send=send,
        apply=lambda s, group, results, outcomes, _rid: outbox.settle(
            s, group, results, outcomes, key=lambda m: m.payload["merit"]["merit_id"],
            ok=("accepted", "updated", "duplicate"), missing="NyA did not answer for this merit",
            max_attempts=max_attempts, base_seconds=base_seconds),
        batch=batch, max_attempts=max_attempts, base_seconds=base_seconds, max_requests=max_requests,
        after_send=after_send)
    if failure is not None:
        log.warning("merit send: NyA failing, %s merit(s) backed off: %s", outcomes["failed"], failure)
        raise failure
    summary = {"requests": requests, **{k: outcomes[k] for k in
               ("accepted", "updated", "duplicate", "rejected", "failed", "dead")}}
    with store.transaction() as s:
        summary["pending"] = sum(n for st, n in ops.outbox_counts(s, DESTINATION).items() if st in ("pending", "failed"))
    log.info("merit send: %s", summary)
    return summary


def lag_seconds(store: Store) -> float | None:
    """Age of the oldest merit waiting to be sent (None when nothing waits): the DAG's health figure."""
    from sqlalchemy import func, select

    with store.transaction() as s:
        oldest = s.scalar(select(func.min(OutboxMessage.created_at)).where(
            OutboxMessage.destination == DESTINATION, OutboxMessage.kind == KIND,
            OutboxMessage.status.in_(("pending", "failed"))))
    if oldest is None:
        return None
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.timezone.utc)
    return (dt.datetime.now(dt.timezone.utc) - oldest).total_seconds()


def follow(store: Store, ladok: LadokAdapter, nya: NyaAdapter, *, seconds: float, poll: float = 2.0,
           **kw: Any) -> dict[str, Any]:
    """sync + send in a loop for ``seconds`` (bench and a deferrable-free low-latency mode)."""
    total: Counter = Counter()
    deadline = time.monotonic() + seconds
    while True:
        a = sync_once(store, ladok, nya, **kw)
        b = send_pending(store, nya)
        total.update({k: v for k, v in {**a, **b}.items() if isinstance(v, int) and not isinstance(v, bool)})
        if time.monotonic() + poll > deadline:
            return dict(total)
        time.sleep(poll)
