"""Återbud reconciliation NyA ↔ Ladok, with återbudsärenden for staff (issue #8).

Three steps, each safe to repeat and to kill at any point (the DAG ``brygga_aterbud`` runs them
every minute), and the staff actions on cases. See docs/flows/aterbud.md for the rules in full.

``nya_to_ladok`` reads every open round's återbud stream (``GetAterbud`` from the round's stored
NextSequence, checkpoint ``nya-aterbud:<round>``), deduplicated by AterbudId (inbox source
``nya-aterbud``), and applies each återbud in Ladok (``sd:Aterbud`` with the NyA date, cause
"meddelat av studenten", ``ExterntSystem=NyA``) on the tillfällesantagning the admission import
placed (``nya_admission.antagning_uid``). When Ladok refuses (``base:Hinder``) an *återbudsärende*
(``aterbud_case``) is created instead: ``registered`` (suggested action: avbrott from the date the
återbud was reported — an early avbrott, registration withdrawn, before study start + 21 days),
``already_aterbud`` (no action) or ``avbrott_exists`` (no action). An återbud Ladok already has
*from NyA* (``ExterntSystem=NyA``: a repeat after a crash, or a course covered by its programme's
återbud) is success, not a case. The Ladok calls happen before the chunk's transaction and are
safe to repeat; inbox rows, cases, admission updates, audit and the checkpoint commit together.

``ladok_to_nya`` follows Ladok's Atom feed (own checkpoint ``ladok-aterbud``) for
``sd:AterbudEvent`` entered in Ladok (staff or student) and enqueues one ``ReportAterbud`` item per
NyA admission (outbox key ``nya:aterbud:<AdmissionId>``) in the same transaction as the inbox
(HandelseUID, source ``ladok-aterbud``) and the checkpoint. ``send_pending`` delivers them.

No loops: an återbud NyA already knows (``nya_admission.aterbud_date``, set when NyA told us or
when NyA accepted our report) or that came from NyA (``ExterntSystem=NyA`` on a top-level
admission) is never reported to NyA; ``Origin=ladok`` återbud in ``GetAterbud`` are never applied
to Ladok. A programme återbud from NyA reaches the course admissions of its package in Ladok;
those courses are NyA admissions of their own (programme-internal offers), so NyA is told about
them (source ``ladok``), and no case is created for them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Any, Callable, Iterable

from sqlalchemy import select

from adapters.http import if_found
from adapters.ladok import LadokAdapter, Refused
from adapters.nya import NyaAdapter
from brygga.logmask import get_logger
from brygga.records import AterbudReport, FeedPage, LadokEvent, NyaAterbud, Utbildningstillfalle
from brygga.flows import feed, outbox
from brygga.store import Store, ops
from brygga.store.models import AterbudCase, NyaAdmission, OutboxMessage, UnhandledAdmission, utcnow
from mappings.base import RecordError

log = get_logger("brygga.flows.aterbud")

ACTOR = "brygga:aterbud-sync"
NYA_SOURCE = "nya-aterbud"  # inbox: NyA AterbudId
LADOK_SOURCE = "ladok-aterbud"  # inbox: Ladok HandelseUID of AterbudEvents
LADOK_CHECKPOINT = "ladok-aterbud"
DESTINATION = "nya"
KIND = "aterbud"
EXTERNT_SYSTEM = "NyA"  # sd:ExterntSystem on the återbud Brygga writes to Ladok
STUDENT_REALM = "@student.ladok.se"  # events:Anvandarnamn of a student acting in Ladok's student web
EARLY_AVBROTT_DAYS = 21  # avbrott before study start + 21 days is early (registration withdrawn)

#: University settings (store table ``setting``), with their defaults.
SETTING_ACCEPT_FROM_NYA = "aterbud.accept_from_nya"
SETTING_STUDENTS_MAY_ENTER = "aterbud.students_may_enter"
SETTINGS_DEFAULTS = {SETTING_ACCEPT_FROM_NYA: True, SETTING_STUDENTS_MAY_ENTER: True}

#: Case causes and suggested actions (aterbud_case.cause / .suggested_action).
CAUSES = {
    "registered": "Studenten är registrerad på utbildningstillfället i Ladok",
    "already_aterbud": "Återbud är redan inlagt i Ladok",
    "avbrott_exists": "Studenten har redan avbrott på utbildningstillfället i Ladok",
    "not_accepted": "Lärosätet tar inte emot återbud från NyA automatiskt",
    "placed_meanwhile": "Antagningen placerades i Ladok medan återbudet behandlades",
}
ACTIONS = {
    "early_avbrott": "Lägg in avbrott från datumet då återbudet meddelades: inom 3 veckor från studiestart, "
                     "tidigt avbrott (registreringen återkallas); avsluta sedan ärendet",
    "avbrott": "Lägg in avbrott från datumet då återbudet meddelades (mer än 3 veckor efter studiestart: "
               "ordinarie avbrott); avsluta sedan ärendet",
    "none": "Ingen åtgärd; avsluta ärendet",
    "aterbud": "Lägg in återbudet i Ladok om det ska gälla; avsluta sedan ärendet",
}


def checkpoint_name(round_code: str) -> str:
    return f"nya-aterbud:{round_code}"


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def suggested_action(cause: str, reported_at: dt.date | str | None, study_start: dt.date | str | None) -> str:
    """The action the guide prescribes for a case: registered → avbrott from the date the återbud
    was reported, early (registration withdrawn) when that date is before study start + 21 days
    (day 20 early, day 21 ordinary — Ladok's own boundary); återbud/avbrott already there → none."""
    if cause == "registered":
        rep, start = _date(reported_at), _date(study_start)
        if rep is not None and start is not None and rep < start + dt.timedelta(days=EARLY_AVBROTT_DAYS):
            return "early_avbrott"
        return "avbrott"
    if cause in ("not_accepted", "placed_meanwhile"):
        return "aterbud"
    return "none"


# ----------------------------------------------------------------------------- settings

def settings(store: Store) -> dict[str, bool]:
    with store.transaction() as s:
        return {k: bool(ops.setting_get(s, k, d)) for k, d in SETTINGS_DEFAULTS.items()}


def set_settings(store: Store, *, actor: str, accept_from_nya: bool | None = None,
                 students_may_enter: bool | None = None) -> dict[str, bool]:
    """Change the university's återbud settings (each change audited with old and new value)."""
    with store.transaction() as s:
        for key, value in ((SETTING_ACCEPT_FROM_NYA, accept_from_nya), (SETTING_STUDENTS_MAY_ENTER, students_may_enter)):
            if value is not None and bool(ops.setting_get(s, key, SETTINGS_DEFAULTS[key])) != bool(value):
                ops.setting_set(s, key, bool(value), actor)
    return settings(store)


# ----------------------------------------------------------------------------- NyA → Ladok

@dataclasses.dataclass
class _Outcome:
    """What to commit for one NyA återbud (decided outside the transaction)."""

    aterbud_id: str
    status: str  # inbox status: processed|skipped|quarantined
    action: str  # applied|already_applied|case|declined|echo|not_in_ladok|quarantined
    admission_id: str | None = None
    aterbud_date: str | None = None
    case: dict[str, Any] | None = None
    reason: str | None = None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


class _Lookups:
    """Cached Ladok lookups for a run (instances, students' plans)."""

    def __init__(self, ladok: LadokAdapter):
        self.ladok = ladok
        self.tillfallen: dict[str, Utbildningstillfalle | None] = {}

    def tillfalle(self, uid: str | None) -> Utbildningstillfalle | None:
        if not uid:
            return None
        if uid not in self.tillfallen:
            self.tillfallen[uid] = if_found(self.ladok.tillfalle, uid)
        return self.tillfallen[uid]

    def find_antagning(self, personnummer: str, tillfalle_uid: str) -> str | None:
        """The student's tillfällesantagning on the instance, from Ladok (study plan), if any."""
        student = self.ladok.student_by_personnummer(personnummer)
        if student is None or not student.uid:
            return None
        nodes = if_found(self.ladok.study_plan, student.uid, default=[])
        hits = [n for n in nodes if n.tillfalle_uid == tillfalle_uid]
        hits.sort(key=lambda n: n.aterbud)  # one without återbud first
        return hits[0].antagning_uid if hits else None


def _education(t: Utbildningstillfalle | None, fallback: str | None) -> str | None:
    if t is None:
        return fallback
    return " ".join(x for x in (t.utbildningskod, t.name_sv) if x) or fallback


def _case(item: NyaAterbud, cause: str, antagning_uid: str, tillfalle_uid: str | None, row: dict | None,
          lookups: _Lookups) -> dict[str, Any]:
    t = lookups.tillfalle(tillfalle_uid)
    start = _date(t.start) if t is not None else None
    reported = _date(item.date)
    fallback = " ".join(x for x in ((row or {}).get("utbildningskod"), (row or {}).get("tillfalleskod")) if x) or None
    return {
        "nya_aterbud_id": item.aterbud_id, "round": None, "nya_admission_id": item.admission_id,
        "personnummer": item.personnummer, "utbildningstillfalle_uid": tillfalle_uid,
        "education": _education(t, fallback), "reported_at": reported, "cause": cause,
        "suggested_action": suggested_action(cause, reported, start), "antagning_uid": antagning_uid,
        "study_start": start,
    }


def _decide(item: NyaAterbud | RecordError, row: dict | None, accept: bool, ladok: LadokAdapter,
            lookups: _Lookups) -> _Outcome:
    if isinstance(item, RecordError):
        return _Outcome(item.record_id, "quarantined", "quarantined", reason=str(item))
    base = dict(aterbud_id=item.aterbud_id, admission_id=item.admission_id, aterbud_date=item.date)
    if item.origin == "ladok":
        # Ladok's own återbud, reported by us: never applied back (no loop).
        return _Outcome(status="skipped", action="echo", **base)
    state = (row or {}).get("state")
    if state in ("pending", "unhandled", "invalid"):
        return _Outcome(status="processed", action="declined", **base)
    if state == "declined":
        return _Outcome(status="skipped", action="already_declined", **base)
    antagning_uid = (row or {}).get("antagning_uid") if state in ("placed", "handled") else None
    tillfalle_uid = (row or {}).get("utbildningstillfalle_uid") or item.offer_id
    if not antagning_uid:
        # Unknown to the store (placed by hand, or before Brygga): look for it in the student's
        # study plan by the offer's utbildningstillfälle (OfferId = Ladok UID).
        antagning_uid = lookups.find_antagning(item.personnummer, item.offer_id)
        tillfalle_uid = item.offer_id
        if not antagning_uid:
            return _Outcome(status="skipped", action="not_in_ladok", reason=(
                "no tillfällesantagning in Ladok for this admission; it was never placed, and the admission "
                "import records it as declined when it reads the admission"), **base)
    if not accept:
        return _Outcome(status="processed", action="case", case=_case(item, "not_accepted", antagning_uid,
                                                                      tillfalle_uid, row, lookups), **base)
    try:
        ladok.aterbud(antagning_uid, item.date, externt_system=EXTERNT_SYSTEM)
        return _Outcome(status="processed", action="applied", detail={"antagning_uid": antagning_uid}, **base)
    except Refused as e:
        key = e.hinder.key
        if key == LadokAdapter.HINDER_ATERBUD_FINNS:
            existing = ladok.existing_aterbud(antagning_uid)
            if existing is not None and existing.get("externt_system") == EXTERNT_SYSTEM:
                # Already applied from NyA: ours after a crash, or covered by its programme's återbud.
                return _Outcome(status="processed", action="already_applied",
                                detail={"antagning_uid": antagning_uid, "ladok_date": existing.get("date")}, **base)
            cause = "already_aterbud"
        elif key == LadokAdapter.HINDER_REGISTRERAD:
            cause = "registered"
        elif key == LadokAdapter.HINDER_AVBROTT_FINNS:
            cause = "avbrott_exists"
        else:
            return _Outcome(status="quarantined", action="quarantined",
                            reason=f"Ladok refused the återbud on {antagning_uid}: {e}", **base)
        return _Outcome(status="processed", action="case", detail={"hinder": key},
                        case=_case(item, cause, antagning_uid, tillfalle_uid, row, lookups), **base)


def _row_dict(r: NyaAdmission) -> dict[str, Any]:
    return {k: getattr(r, k) for k in ("admission_id", "state", "antagning_uid", "utbildningstillfalle_uid",
                                       "utbildningskod", "tillfalleskod", "package_uid", "aterbud_date")}


def nya_to_ladok(store: Store, nya: NyaAdapter, ladok: LadokAdapter, *, rounds: Iterable[str] | None = None,
                 chunk: int = 200, after_commit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Apply NyA's återbud of every open round (or ``rounds``) in Ladok; returns counts."""
    counts: Counter = Counter()
    lookups = _Lookups(ladok)
    mapping = nya.mapping("aterbud")
    accept = settings(store)[SETTING_ACCEPT_FROM_NYA]
    for round_code in (list(rounds) if rounds is not None else nya.open_rounds()):
        name = checkpoint_name(round_code)
        with store.transaction() as s:
            cp = ops.checkpoint_get(s, name)
            start = cp.page if cp is not None and cp.page else 1
        mapping.next_sequence = None
        with nya.call("GetAterbud", nya.body("GetAterbud", Round=round_code, FromSequence=start)) as reply:
            items = list(mapping.read(reply))
        next_seq = mapping.next_sequence or start
        counts["read"] += len(items)
        expected = start
        for i in range(0, max(len(items), 1), chunk):
            part = items[i:i + chunk]
            last = i + chunk >= len(items)
            upto = next_seq if last else max(getattr(x, "sequence", 0) for x in part) + 1
            if not part and upto == expected:
                break
            _commit_nya_chunk(store, round_code, name, expected, upto, part, accept, ladok, lookups, counts)
            expected = upto
            if after_commit is not None:
                after_commit({"round": round_code, "next_sequence": upto})
    summary = {k: counts[k] for k in ("read", "applied", "already_applied", "case", "declined", "already_declined",
                                      "echo", "not_in_ladok", "quarantined", "already_seen")}
    log.info("återbud NyA → Ladok: %s", summary)
    return summary


def _commit_nya_chunk(store: Store, round_code: str, name: str, expected: int, upto: int, part: list,
                      accept: bool, ladok: LadokAdapter, lookups: _Lookups, counts: Counter) -> None:
    ids = [x.aterbud_id if isinstance(x, NyaAterbud) else x.record_id for x in part]
    with store.transaction() as s:
        seen = ops.inbox_seen(s, NYA_SOURCE, ids) if ids else set()
        adm_ids = [x.admission_id for x in part if isinstance(x, NyaAterbud)]
        rows = {r.admission_id: _row_dict(r) for r in s.scalars(
            select(NyaAdmission).where(NyaAdmission.admission_id.in_(adm_ids)))} if adm_ids else {}
    outcomes: list[_Outcome] = []
    for x, xid in zip(part, ids):
        if xid in seen:
            counts["already_seen"] += 1
            continue
        row = rows.get(x.admission_id) if isinstance(x, NyaAterbud) else None
        outcomes.append(_decide(x, row, accept, ladok, lookups))  # Ladok calls: outside the transaction
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, name)
        now = cp.page if cp is not None and cp.page else 1
        if now != expected:
            raise RuntimeError(f"checkpoint {name} moved from {expected} to {now} while reading; chunk dropped")
        again = ops.inbox_seen(s, NYA_SOURCE, [o.aterbud_id for o in outcomes]) if outcomes else set()
        for o in outcomes:
            if o.aterbud_id in again:
                counts["already_seen"] += 1
                continue
            counts[o.action] += 1
            _apply_outcome(s, round_code, o)
        ops.inbox_record(s, NYA_SOURCE, [(o.aterbud_id, "aterbud", o.status) for o in outcomes
                                         if o.aterbud_id not in again])
        ops.checkpoint_set(s, name, upto, None, add_seen=len(part))


def _apply_outcome(s, round_code: str, o: _Outcome) -> None:
    row = s.get(NyaAdmission, o.admission_id) if o.admission_id else None
    if row is not None and o.aterbud_date and not row.aterbud_date:
        row.aterbud_date = o.aterbud_date  # NyA knows about this återbud: never report it back
    if o.action == "quarantined":
        ops.quarantine(s, source="nya", message_id=o.aterbud_id, kind="Aterbud", reason=o.reason or "")
        return
    if o.action == "declined" and row is not None and row.state not in ("pending", "unhandled", "invalid"):
        # The admission import placed it after we decided (the two DAGs run side by side): it is in
        # Ladok without its återbud. Never overwrite the placement; staff get a case to enter it.
        if row.state == "placed" and row.antagning_uid:
            exists = s.scalars(select(AterbudCase).where(AterbudCase.nya_aterbud_id == o.aterbud_id)).first()
            if exists is None:
                c = AterbudCase(nya_aterbud_id=o.aterbud_id, round=round_code, nya_admission_id=row.admission_id,
                                personnummer=row.personnummer, utbildningstillfalle_uid=row.utbildningstillfalle_uid,
                                education=" ".join(x for x in (row.utbildningskod, row.tillfalleskod) if x) or None,
                                reported_at=_date(o.aterbud_date), cause="placed_meanwhile",
                                suggested_action="aterbud", antagning_uid=row.antagning_uid, status="open")
                s.add(c)
                s.flush()
                ops.audit(s, ACTOR, "aterbud_case.created", "aterbud_case", str(c.id), aterbud_id=o.aterbud_id,
                          admission_id=row.admission_id, cause=c.cause, suggested_action=c.suggested_action)
        return
    if o.action == "declined" and row is not None:
        old = row.state
        row.state = "declined"
        u = s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id == row.admission_id)).first()
        if u is not None and u.status == "open":
            u.status, u.resolution, u.resolved_by = "resolved", "återbud", ACTOR
        ops.audit(s, ACTOR, "aterbud.declined", "nya_admission", row.admission_id, aterbud_id=o.aterbud_id,
                  previous_state=old)
    elif o.action == "applied":
        ops.audit(s, ACTOR, "aterbud.applied", "nya_admission", o.admission_id, aterbud_id=o.aterbud_id,
                  date=o.aterbud_date, **o.detail)
    elif o.action == "already_applied":
        ops.audit(s, ACTOR, "aterbud.already_applied", "nya_admission", o.admission_id, aterbud_id=o.aterbud_id,
                  **o.detail)
    elif o.action == "not_in_ladok":
        ops.audit(s, ACTOR, "aterbud.not_in_ladok", "nya_admission", o.admission_id, aterbud_id=o.aterbud_id,
                  reason=o.reason)
    elif o.action == "case" and o.case is not None:
        exists = s.scalars(select(AterbudCase).where(AterbudCase.nya_aterbud_id == o.aterbud_id)).first()
        if exists is None:
            c = AterbudCase(**{**o.case, "round": round_code}, status="open")
            s.add(c)
            s.flush()
            ops.audit(s, ACTOR, "aterbud_case.created", "aterbud_case", str(c.id), aterbud_id=o.aterbud_id,
                      admission_id=o.admission_id, cause=c.cause, suggested_action=c.suggested_action, **o.detail)


# ----------------------------------------------------------------------------- Ladok → NyA

def _entered_by(e: LadokEvent) -> str:
    ctx = e.fields.get("EventContext") or {}
    user = ctx.get("Anvandarnamn") if isinstance(ctx, dict) else None
    externt = e.fields.get("ExterntSystem") or None
    if externt:
        return f"system:{externt}"
    if isinstance(user, str) and user.endswith(STUDENT_REALM):
        return "student"
    return "staff"


def _entries(page: FeedPage, resume_after: str | None) -> tuple[list[tuple[str, Any]], str | None]:
    """The page's entries oldest first after ``resume_after``, and the id of its last entry.

    ``ladok.events.v1`` lists every entry (``entries``: event, RecordError or skipped type name), so
    the checkpoint stands on the page's last entry whatever its type; a mapping that gives only
    events falls back to them."""
    entries = getattr(page, "entries", None)
    if entries is None:
        entries = [(e.entry_id, e) for e in page.events] + [("", err) for err in page.errors]
    last = next((eid for eid, _ in reversed(entries) if eid), None)
    if resume_after:
        for i in range(len(entries) - 1, -1, -1):
            if entries[i][0] == resume_after:
                return entries[i + 1:], last
    return entries, last


def ladok_to_nya(store: Store, ladok: LadokAdapter, *, max_pages: int = 500, batch_size: int = 1000,
                 after_commit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Follow Ladok's feed from the ``ladok-aterbud`` checkpoint and enqueue återbud for NyA."""
    counts: Counter = Counter()
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, LADOK_CHECKPOINT)
        start_page, start_entry = (cp.page, cp.entry_id) if cp is not None and cp.page else (None, None)
    expected = (start_page, start_entry)
    gaps: list[dict[str, Any]] = []
    if start_page is None:
        page = feed.page_or_none(ladok, 1) or feed.oldest_available(ladok)
    else:
        page = feed.page_or_none(ladok, start_page)
        if page is None:
            page = feed.oldest_available(ladok)
            gaps.append({"from": start_page, "resumed_at": page.number, "entry": start_entry})

    events: list[LadokEvent] = []
    errors: list[Any] = []
    pos: tuple[int | None, str | None] = expected
    pages = 0

    def commit() -> None:
        nonlocal expected, events, errors, gaps
        if pos == expected and not events and not errors and not gaps:
            return
        _commit_ladok_batch(store, expected, pos, events, errors, gaps, counts)
        expected = pos
        events, errors, gaps = [], [], []
        if after_commit is not None:
            after_commit({"page": pos[0], "entry_id": pos[1]})

    while page is not None:
        resume = start_entry if page.number == start_page else None
        entries, last = _entries(page, resume)
        for _, x in entries:
            if isinstance(x, LadokEvent):
                if x.event_type == "AterbudEvent":
                    events.append(x)
            elif isinstance(x, RecordError) and (x.kind or "") == "AterbudEvent":
                errors.append(x)
        counts["events"] += len(entries)
        pages += 1
        pos = (page.number, last if last is not None else (resume if page.number == start_page else None))
        if len(events) >= batch_size:
            commit()
        if not page.next_archive or pages >= max_pages:
            break
        page = ladok.feed_page(url=page.next_archive)
    commit()
    summary = {"pages": pages, "events": counts["events"], **{k: counts[k] for k in (
        "aterbud_events", "enqueued", "echo", "not_nya", "already_seen", "quarantined", "student_not_allowed",
        "gaps")}, "page": expected[0]}
    log.info("återbud Ladok → NyA: %s", summary)
    return summary


def _commit_ladok_batch(store: Store, expected, pos, events: list[LadokEvent], errors: list, gaps: list,
                        counts: Counter) -> None:
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, LADOK_CHECKPOINT)
        now = (cp.page, cp.entry_id) if cp is not None and cp.page else (None, None)
        if now != expected:
            raise RuntimeError(f"checkpoint {LADOK_CHECKPOINT} moved from {expected} to {now}; batch dropped")
        students_may_enter = bool(ops.setting_get(s, SETTING_STUDENTS_MAY_ENTER, True))
        seen = ops.inbox_seen(s, LADOK_SOURCE, [e.handelse_uid for e in events]) if events else set()
        antagningar = list({e.fields.get("TillfallesantagningUID") for e in events})
        rows: dict[str, NyaAdmission] = {}
        if antagningar:
            for r in s.scalars(select(NyaAdmission).where(NyaAdmission.antagning_uid.in_(antagningar))):
                rows.setdefault(r.antagning_uid, r)
        inbox: list[tuple[str, str, str]] = []
        messages: list[dict[str, Any]] = []
        done_here: set[str] = set()
        for e in events:
            if e.handelse_uid in seen or e.handelse_uid in done_here:
                counts["already_seen"] += 1
                continue
            done_here.add(e.handelse_uid)
            counts["aterbud_events"] += 1
            f = e.fields
            auid = f.get("TillfallesantagningUID")
            externt = f.get("ExterntSystem") or None
            who = _entered_by(e)
            row = rows.get(auid)
            if row is None:
                counts["not_nya"] += 1  # not an admission from NyA: nothing to tell NyA
                inbox.append((e.handelse_uid, "aterbud-event", "skipped"))
                continue
            if row.aterbud_date or (externt == EXTERNT_SYSTEM and not row.package_uid):
                # NyA already has it (it came from NyA, or NyA accepted our report): no echo.
                counts["echo"] += 1
                inbox.append((e.handelse_uid, "aterbud-event", "skipped"))
                continue
            if who == "student" and not students_may_enter:
                counts["student_not_allowed"] += 1
                ops.audit(s, ACTOR, "aterbud.student_entered_while_not_allowed", "nya_admission", row.admission_id,
                          handelse_uid=e.handelse_uid, antagning_uid=auid,
                          note="återbud entered by the student in Ladok although the university's setting says "
                               "students may not; it is in Ladok, so NyA is told; check Ladok's setting")
            date = str(f.get("Aterbudsdatum") or e.updated[:10])[:10]
            messages.append({
                "destination": DESTINATION, "kind": KIND, "idempotency_key": idempotency_key(row.admission_id),
                "correlation": f"aterbud:{row.round}",
                "payload": {"round": row.round, "report": {"admission_id": row.admission_id, "date": date,
                                                           "source_reference": f"ladok:tillfallesantagning:{auid}"},
                            "handelse_uid": e.handelse_uid, "entered_by": who, "antagning_uid": auid},
            })
            inbox.append((e.handelse_uid, "aterbud-event", "processed"))
        new = ops.outbox_enqueue(s, messages)
        counts["enqueued"] += new
        for m in messages:
            ops.audit(s, ACTOR, "aterbud.enqueued", "nya_admission", m["payload"]["report"]["admission_id"],
                      handelse_uid=m["payload"]["handelse_uid"], entered_by=m["payload"]["entered_by"],
                      date=m["payload"]["report"]["date"])
        ops.inbox_record(s, LADOK_SOURCE, inbox)
        for err in errors:
            counts["quarantined"] += 1
            ops.quarantine(s, source="ladok", message_id=err.record_id, kind="AterbudEvent", reason=str(err))
        for g in gaps:
            counts["gaps"] += 1
            reason = (f"Ladok feed moved on while the återbud sync was away: pages {g['from']}..{g['resumed_at'] - 1} "
                      f"were pruned before they were read; återbud entered in Ladok in the gap were not reported "
                      f"to NyA: reconcile them by hand, then release this row.")
            ops.quarantine(s, source="ladok", message_id=f"aterbud-feed-gap:{g['from']}-{g['resumed_at']}",
                           kind="feed-gap", reason=reason)
            ops.audit(s, ACTOR, "feed.gap", "feed_checkpoint", LADOK_CHECKPOINT, **g)
        ops.checkpoint_set(s, LADOK_CHECKPOINT, pos[0], pos[1], add_seen=len(events))


def idempotency_key(admission_id: str) -> str:
    """One återbud per NyA admission: the same admission is never reported twice."""
    return f"nya:aterbud:{admission_id}"


def request_id(keys: Iterable[str]) -> str:
    return outbox.request_id("aterbud", keys)


def send_pending(store: Store, nya: NyaAdapter, *, batch: int = 1000, max_attempts: int = 8,
                 base_seconds: float = 30.0, after_send: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Send the due återbud to NyA, one ReportAterbud per round (at most ``batch`` items). Registered
    and duplicate (NyA already had one) are both done; rejected is quarantined."""
    mapping = nya.mapping("aterbud")

    def send(group: list[OutboxMessage], rid: str) -> dict[str, tuple[str, str | None]]:
        reports = [AterbudReport(**m.payload["report"]) for m in group]
        body, errors = mapping.write(reports, round_code=group[0].payload["round"], request_id=rid)
        results = {e.record_id: ("rejected", f"field {e.field}: {e.rule}") for e in errors}
        if len(errors) < len(group):
            with nya.call("ReportAterbud", body) as reply:
                results.update(mapping.read_results(reply))
        return results

    def apply(s, group: list[OutboxMessage], results, outcomes: Counter, rid: str) -> None:
        def reported(m: OutboxMessage, outcome: str, reason: str | None) -> None:
            adm = m.payload["report"]["admission_id"]
            row = s.get(NyaAdmission, adm)
            if row is not None and not row.aterbud_date:
                row.aterbud_date = m.payload["report"]["date"]
            ops.audit(s, ACTOR, "aterbud.reported", "nya_admission", adm, outcome=outcome, reason=reason,
                      request_id=rid)

        outbox.settle(s, group, results, outcomes, key=lambda m: m.payload["report"]["admission_id"],
                      ok=("registered", "duplicate"), missing="NyA did not answer for this admission",
                      max_attempts=max_attempts, base_seconds=base_seconds, on_ok=reported)

    outcomes, requests, failure = outbox.send_groups(
        store, DESTINATION, KIND, prefix="aterbud", send=send, apply=apply, batch=batch,
        max_attempts=max_attempts, base_seconds=base_seconds, after_send=after_send)
    if failure is not None:
        log.warning("återbud send: NyA failing, %s item(s) backed off: %s", outcomes["failed"], failure)
        raise failure
    summary = {"requests": requests, **{k: outcomes[k] for k in ("registered", "duplicate", "rejected", "failed",
                                                                  "dead")}}
    log.info("återbud send: %s", summary)
    return summary


def sync(store: Store, nya: NyaAdapter, ladok: LadokAdapter, **kw: Any) -> dict[str, Any]:
    """Both directions and the send, once (CLI and tests)."""
    a = nya_to_ladok(store, nya, ladok)
    b = ladok_to_nya(store, ladok)
    c = send_pending(store, nya)
    return {"nya_to_ladok": a, "ladok_to_nya": b, "send": c}


# ----------------------------------------------------------------------------- cases (staff)

class CaseError(RuntimeError):
    """An action on a case could not be carried out (the case is unchanged)."""


def case_dict(c: AterbudCase) -> dict[str, Any]:
    from brygga import personnummer as pnr_mod

    return {
        "id": c.id, "status": c.status, "round": c.round, "cause": c.cause, "cause_text": CAUSES.get(c.cause, c.cause),
        "suggested_action": c.suggested_action, "suggested_action_text": ACTIONS.get(c.suggested_action, ""),
        "reported_at": c.reported_at.isoformat() if c.reported_at else None,
        "study_start": c.study_start.isoformat() if c.study_start else None,
        "education": c.education, "nya_aterbud_id": c.nya_aterbud_id, "nya_admission_id": c.nya_admission_id,
        "personnummer": pnr_mod.mask(c.personnummer) if c.personnummer else None,
        "utbildningstillfalle_uid": c.utbildningstillfalle_uid, "antagning_uid": c.antagning_uid,
        "closed_by": c.closed_by, "note": c.note,
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
    }


def list_cases(store: Store, *, status: str | None = None, round_code: str | None = None,
               cause: str | None = None) -> list[dict[str, Any]]:
    """Återbudsärenden, oldest first, filtered by status (open|closed), round and cause."""
    q = select(AterbudCase).order_by(AterbudCase.id)
    if status:
        q = q.where(AterbudCase.status == status)
    if round_code:
        q = q.where(AterbudCase.round == round_code)
    if cause:
        q = q.where(AterbudCase.cause == cause)
    with store.transaction() as s:
        return [case_dict(c) for c in s.scalars(q)]


def get_case(store: Store, case_id: int) -> dict[str, Any]:
    with store.transaction() as s:
        c = s.get(AterbudCase, case_id)
        if c is None:
            raise CaseError(f"no återbudsärende {case_id}")
        return case_dict(c)


def close_case(store: Store, case_id: int, *, actor: str, note: str = "") -> dict[str, Any]:
    """Close a case (after handling it in Ladok by hand). Closing a closed case changes nothing."""
    with store.transaction() as s:
        c = s.get(AterbudCase, case_id)
        if c is None:
            raise CaseError(f"no återbudsärende {case_id}")
        if c.status != "closed":
            c.status, c.closed_at, c.closed_by, c.note = "closed", utcnow(), actor, note or c.note
            ops.audit(s, actor, "aterbud_case.close", "aterbud_case", str(case_id), note=note)
        return case_dict(c)


def apply_case(store: Store, ladok: LadokAdapter, case_id: int, *, actor: str, note: str = "") -> dict[str, Any]:
    """Carry out the suggested action in Ladok, then close the case (audited).

    ``early_avbrott`` / ``avbrott``: avbrott from the date the återbud was reported (Ladok makes it
    early — registration withdrawn — before study start + 21 days); an avbrott already in Ladok
    counts as done. ``none``: just close. ``aterbud`` (not accepted automatically): the återbud in
    Ladok; if Ladok now refuses it the case takes that cause and stays open."""
    with store.transaction() as s:
        c = s.get(AterbudCase, case_id)
        if c is None:
            raise CaseError(f"no återbudsärende {case_id}")
        if c.status == "closed":
            return {**case_dict(c), "result": "already closed"}
        action, auid, reported = c.suggested_action, c.antagning_uid, c.reported_at
    result: dict[str, Any] = {"performed": action}
    if action in ("early_avbrott", "avbrott"):
        if not auid or reported is None:
            raise CaseError(f"case {case_id} has no tillfällesantagning or date: handle it in Ladok by hand")
        try:
            r = ladok.avbrott(auid, reported, externreferens=f"brygga:aterbudsarende:{case_id}")
            result.update(avbrott_date=r["date"], early=r["early"], ladok_note=r["note"])
        except Refused as e:
            if e.hinder.key != LadokAdapter.HINDER_AVBROTT_FINNS:
                _audit_failure(store, actor, case_id, action, e)
                raise CaseError(f"Ladok refused the avbrott: {e.hinder.key}: {e.hinder.text}") from None
            result["already"] = "avbrott already recorded in Ladok"
    elif action == "aterbud":
        if not auid:
            raise CaseError(f"case {case_id} has no tillfällesantagning: handle it in Ladok by hand")
        try:
            ladok.aterbud(auid, reported or dt.date.today(), externt_system=EXTERNT_SYSTEM)
            result["aterbud"] = "applied"
        except Refused as e:
            if e.hinder.key == LadokAdapter.HINDER_ATERBUD_FINNS:
                result["already"] = "återbud already recorded in Ladok"
            elif e.hinder.key in (LadokAdapter.HINDER_REGISTRERAD, LadokAdapter.HINDER_AVBROTT_FINNS):
                cause = "registered" if e.hinder.key == LadokAdapter.HINDER_REGISTRERAD else "avbrott_exists"
                with store.transaction() as s:
                    c = s.get(AterbudCase, case_id)
                    c.cause = cause
                    c.suggested_action = suggested_action(cause, c.reported_at, c.study_start)
                    ops.audit(s, actor, "aterbud_case.apply", "aterbud_case", str(case_id), performed=action,
                              outcome="refused", hinder=e.hinder.key, new_cause=cause,
                              new_suggested_action=c.suggested_action)
                    return {**case_dict(c), "result": f"Ladok refused the återbud ({e.hinder.key}); case updated"}
            else:
                _audit_failure(store, actor, case_id, action, e)
                raise CaseError(f"Ladok refused the återbud: {e.hinder.key}: {e.hinder.text}") from None
    with store.transaction() as s:
        c = s.get(AterbudCase, case_id)
        ops.audit(s, actor, "aterbud_case.apply", "aterbud_case", str(case_id), **{k: v for k, v in result.items()})
        if c.status != "closed":
            text = note or f"suggested action carried out by Brygga: {action}"
            c.status, c.closed_at, c.closed_by, c.note = "closed", utcnow(), actor, text
            ops.audit(s, actor, "aterbud_case.close", "aterbud_case", str(case_id), note=text)
        return {**case_dict(c), "result": result}


def _audit_failure(store: Store, actor: str, case_id: int, action: str, e: Refused) -> None:
    with store.transaction() as s:
        ops.audit(s, actor, "aterbud_case.apply", "aterbud_case", str(case_id), performed=action, outcome="refused",
                  hinder=e.hinder.key, text=e.hinder.text)


def pending_count(store: Store) -> int:
    """Återbud waiting to be sent to NyA (the DAG's health figure)."""
    from sqlalchemy import func

    with store.transaction() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.destination == DESTINATION, OutboxMessage.kind == KIND,
            OutboxMessage.status.in_(("pending", "failed")))) or 0


__all__ = [
    "nya_to_ladok", "ladok_to_nya", "send_pending", "sync", "list_cases", "get_case", "close_case", "apply_case",
    "settings", "set_settings", "suggested_action", "pending_count", "CaseError",
]
