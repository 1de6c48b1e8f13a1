"""Digests: once a day, for the people who act on an organisation unit's instances, what happened
there since the last digest (issue 32 §1) — one message per subscription (kind ``digest``, its
``organisation`` the unit's code; none: every unit):

* new **unhandled admissions**, per instance and hinder;
* new **återbudsärenden**, per instance and cause;
* **places freed by återbud** (applied in Ladok from NyA, declined before placement, or entered in
  Ladok and reported to NyA), per instance: "kalla reserv?" — Brygga reads only accepted
  admissions from NyA, so whether the offer has reserves is for the reader to see in NyA;
* **late admissions**: admissions read after their instance's study start.

The window is the subscription's ``last_sent_at`` to now, moved in the transaction that queues
the message (outbox key ``digest:<subscription>:<window start>``), so a run that dies re-sends
nothing and a second run finds an empty window. The instance's organisation unit and study start
come from ``instance`` (the entry point wires Ladok's tillfälle; looked up once per instance).
Texts are Swedish, name no person and are masked all the same.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga.flows.alerts import ACTOR, DIGEST, enqueue_message
from brygga.logmask import get_logger
from brygga.states import CAUSE_TEXT, HINDER_TEXT
from brygga.store import Store, ops
from brygga.store.models import AlertSubscription, AterbudCase, AuditLog, NyaAdmission, UnhandledAdmission, utcnow

log = get_logger("brygga.flows.alerts.digest")
LOCAL = ZoneInfo("Europe/Stockholm")
FIRST_WINDOW = dt.timedelta(days=1)  # a new subscription's first digest looks this far back
FREED = ("aterbud.applied", "aterbud.declined", "aterbud.enqueued")  # a place freed, by whichever way

#: instance uid -> (its organisation unit's code, its study start), or (None, None) when unknown
InstanceInfo = Callable[[str], tuple[str | None, dt.date | None]]


def compose(store: Store, instance: InstanceInfo, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Queue each due digest; returns counts (queued, empty: nothing happened on its unit)."""
    now = now or utcnow()
    info = _Cached(instance)
    counts: Counter[str] = Counter()
    with store.transaction() as s:
        subs = list(s.scalars(select(AlertSubscription.id).where(AlertSubscription.kind == DIGEST,
                                                                 AlertSubscription.enabled.is_(True))))
    for sub_id in subs:
        with store.transaction() as s:
            sub = s.get(AlertSubscription, sub_id)
            assert sub is not None
            since = _utc(sub.last_sent_at) if sub.last_sent_at else now - FIRST_WINDOW
            if since >= now:
                continue
            sections = _sections(s, since, now, info, sub.organisation)
            if sections:
                unit = sub.organisation or "alla organisationsenheter"
                subject = f"[Brygga] Sammandrag {unit}: " + ", ".join(f"{n} {head.lower()}" for head, n, _ in sections)
                lines = [f"Det här har hänt på {unit} från {_local(since)} till {_local(now)}."]
                for head, n, rows in sections:
                    lines.append(f"{head}: {n}")
                    lines.extend(f"– {r}" for r in rows)
                lines.append("Se Bryggas konsol (/brygga-ops/) för varje ärende.")
                enqueue_message(s, f"digest:{sub.id}:{since.isoformat(timespec='seconds')}", sub.recipients,
                                subject, lines, {"digest": sub.id})
                ops.audit(s, ACTOR, "digest.queued", "alert_subscription", str(sub.id),
                          organisation=sub.organisation, since=since.isoformat(), until=now.isoformat(),
                          **{head: n for head, n, _ in sections})
            counts["queued" if sections else "empty"] += 1
            sub.last_sent_at = now
    log.info("digests: %s", dict(counts))
    return dict(counts)


class _Cached:
    def __init__(self, lookup: InstanceInfo):
        self.lookup, self.known = lookup, {}  # type: ignore[var-annotated]

    def __call__(self, uid: str | None) -> tuple[str | None, dt.date | None]:
        if not uid:
            return None, None
        if uid not in self.known:
            try:
                self.known[uid] = self.lookup(uid)
            except Exception as e:  # noqa: BLE001 - one instance Ladok cannot show leaves it out of unit digests
                log.warning("digest: instance %s not looked up: %s", uid, e)
                self.known[uid] = (None, None)
        return self.known[uid]


def _sections(s: Session, since: dt.datetime, until: dt.datetime, info: _Cached,
              unit: str | None) -> list[tuple[str, int, list[str]]]:
    def mine(uid: str | None) -> bool:
        return unit is None or info(uid)[0] == unit

    out: list[tuple[str, int, list[str]]] = []
    per: dict[str, Counter[str]] = defaultdict(Counter)
    U = UnhandledAdmission
    for uid, code, hinder in s.execute(select(U.utbildningstillfalle_uid, U.tillfalleskod, U.hinder).where(
            U.created_at > since, U.created_at <= until)):
        if mine(uid):
            per[code or uid or "okänt tillfälle"][HINDER_TEXT.get(hinder, hinder)] += 1
    _add(out, "Nya ej hanterade antagningar", per)

    per = defaultdict(Counter)
    C = AterbudCase
    for uid, education, cause in s.execute(select(C.utbildningstillfalle_uid, C.education, C.cause).where(
            C.created_at > since, C.created_at <= until)):
        if mine(uid):
            per[education or uid or "okänt tillfälle"][CAUSE_TEXT.get(cause, cause)] += 1
    _add(out, "Nya återbudsärenden", per)

    A = NyaAdmission
    freed: Counter[str] = Counter()
    for uid, ukod, tkod in s.execute(
            select(A.utbildningstillfalle_uid, A.utbildningskod, A.tillfalleskod).join(
                AuditLog, (AuditLog.object_type == "nya_admission") & (AuditLog.object_id == A.admission_id))
            .where(AuditLog.action.in_(FREED), AuditLog.at > since, AuditLog.at <= until)):
        if mine(uid):
            freed[" ".join(x for x in (ukod, tkod) if x) or uid or "okänt tillfälle"] += 1
    if freed:
        out.append(("Platser lediga efter återbud", sum(freed.values()),
                    [f"{k}: {n} — kalla reserv?" for k, n in sorted(freed.items())]))

    late: Counter[str] = Counter()
    for uid, ukod, tkod, created in s.execute(
            select(A.utbildningstillfalle_uid, A.utbildningskod, A.tillfalleskod, A.created_at).where(
                A.created_at > since, A.created_at <= until, A.utbildningstillfalle_uid.is_not(None))):
        org, start = info(uid)
        if (unit is None or org == unit) and start is not None and _utc(created).astimezone(LOCAL).date() > start:
            late[f"{' '.join(x for x in (ukod, tkod) if x)} (start {start.isoformat()})"] += 1
    if late:
        out.append(("Sena antagningar (efter studiestart)", sum(late.values()),
                    [f"{k}: {n}" for k, n in sorted(late.items())]))
    return out


def _add(out: list[tuple[str, int, list[str]]], head: str, per: dict[str, Counter[str]]) -> None:
    if per:
        out.append((head, sum(sum(c.values()) for c in per.values()),
                    [f"{k}: " + ", ".join(f"{n} {why}" for why, n in c.most_common()) for k, c in sorted(per.items())]))


def _utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _local(t: dt.datetime) -> str:
    return _utc(t).astimezone(LOCAL).isoformat(sep=" ", timespec="minutes")

