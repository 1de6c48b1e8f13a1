"""Alerts: tell the people who subscribed when a kind of trouble starts and when it ends — one
message per episode each way, not one per run (issue 32 §1).

A **subscription** (``alert_subscription``, the console's Bevakningar page) names a kind, its
threshold, how long a breach must last (``for_minutes``: the merit lag's "over 30 s for 5
minutes") and the addresses. ``evaluate`` (the ``brygga_alerts`` DAG, every minute) reads each
kind's figure once (``measures``: callables the entry point wires from the views and peers —
this module reads no figure itself), and per subscription, in one transaction: a breach that has
lasted long enough opens an **episode** and queues its "opened" message; the figure back within
the threshold resolves it and queues "resolved". The messages go through the outbox (idempotency
key ``alert:<episode>:<opened|resolved>``), so each is sent once even if a run dies; ``send``
hands them to a notifier (the SMTP provider's ``SmtpNotifier`` in the DAG) with that key as the
e-mail's Message-ID. A recipient ``webhook:<connection>`` is a Teams/Slack-style incoming webhook
instead: its own outbox row (``…:webhook:<connection>``), posted by the HTTP provider's
``HttpNotifier`` over that Airflow Connection, so a webhook that is down delays no e-mail. Texts
are Swedish and carry figures only; every text is masked all the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga.flows.kit import outbox
from brygga.flows.kit.flow import Flow
from brygga.logmask import get_logger
from brygga.personnummer import mask
from brygga.store import Store, ops
from brygga.store.models import AlertEpisode, AlertSubscription, OutboxMessage, utcnow

log = get_logger("brygga.flows.alerts")
DESTINATION, KIND, WEBHOOK_KIND = "alert", "alert-email", "alert-webhook"
FLOW = Flow("alerts", "brygga_alerts", destination=DESTINATION, kinds=(KIND, WEBHOOK_KIND))
WEBHOOK = "webhook:"  # a recipient naming an Airflow Connection (conn_type http) of an incoming webhook
_CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,200}")
ACTOR = FLOW.actor


@dataclasses.dataclass(frozen=True)
class AlertKind:
    title: str  # Swedish, the subject's head
    unit: str  # what the figure counts
    below: bool = False  # a breach is the figure at or below the threshold (days left), else above it
    default_threshold: float = 0.0
    default_minutes: int = 0


KINDS: dict[str, AlertKind] = {
    "dead_outbox": AlertKind("Meddelanden som Brygga gett upp om", "meddelanden i utkorgen"),
    "quarantine": AlertKind("Karantän", "öppna rader i karantänen"),
    "merit_lag": AlertKind("Meriternas fördröjning", "sekunder (95:e percentilen senaste timmen, Ladok → NyA)",
                           default_threshold=30, default_minutes=5),
    "unhandled": AlertKind("Ej hanterade antagningar", "öppna ej hanterade antagningar", default_threshold=50),
    "drift": AlertKind("Avvikelser NyA–Ladok", "öppna avvikelser"),
    "certificate_days": AlertKind("Certifikat", "dagar kvar på certifikatet som går ut först", below=True,
                                  default_threshold=30),
    "failed_tasks": AlertKind("Misslyckade körningar", "uppgifter i Airflow som misslyckats den senaste timmen "
                              "(fel eller över sin tidsgräns)"),
    "digest": AlertKind("Dagligt sammandrag per organisationsenhet", "nya ej hanterade antagningar, återbudsärenden, "
                        "lediga platser och sena antagningar (digest.py)"),
}
DIGEST = "digest"  # not a figure with a threshold: a daily message (brygga/flows/alerts/digest.py)


def subscribe(store: Store, kind: str, recipients: list[str], *, threshold: float | None = None,
              for_minutes: int | None = None, actor: str, subscription_id: int | None = None,
              enabled: bool = True, organisation: str | None = None) -> int:
    """Add (or change) a subscription; audited. ``organisation``: a digest's organisation unit
    code (none: every unit). Raises ValueError for an unknown kind, a recipient that is neither an
    e-mail address nor a webhook, no recipient at all, or a unit on a kind that is no digest."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    organisation = (organisation or "").strip() or None
    if organisation and (kind != DIGEST or not _CONN_ID.fullmatch(organisation) or len(organisation) > 64):
        raise ValueError("organisationsenhet: en kod (bokstäver, siffror), och bara för sammandrag")
    to = [r.strip() for r in recipients if r.strip()]
    bad = [r for r in to if not _recipient(r)]
    if not to or bad:
        raise ValueError("mottagare: minst en e-postadress eller webhook:<Connection>"
                         + (f"; varken e-postadresser eller webhooks: {', '.join(bad)}" if bad else ""))
    k = KINDS[kind]
    with store.transaction() as s:
        sub = s.get(AlertSubscription, subscription_id) if subscription_id else None
        if subscription_id and sub is None:
            raise LookupError(f"no subscription {subscription_id}")
        if sub is None:
            sub = AlertSubscription(kind=kind)
            s.add(sub)
        old = {"threshold": sub.threshold, "for_minutes": sub.for_minutes, "recipients": sub.recipients,
               "enabled": sub.enabled, "organisation": sub.organisation} if subscription_id else None
        sub.kind = kind
        sub.threshold = float(k.default_threshold if threshold is None else threshold)
        sub.for_minutes = int(k.default_minutes if for_minutes is None else for_minutes)
        sub.recipients, sub.enabled, sub.updated_by = ", ".join(to), enabled, actor
        sub.organisation = organisation
        s.flush()
        ops.audit(s, actor, "alert.subscribed" if old is None else "alert.changed", "alert_subscription",
                  str(sub.id), kind=kind, threshold=sub.threshold, for_minutes=sub.for_minutes,
                  recipients=len(to), enabled=enabled, organisation=organisation, old=old)
        return int(sub.id)


def _recipient(r: str) -> bool:
    if r.startswith(WEBHOOK):
        return bool(_CONN_ID.fullmatch(r[len(WEBHOOK):]))
    return r.count("@") == 1 and "." in r.split("@")[1] and " " not in r and len(r) <= 254


def channels(recipients: str) -> tuple[list[str], list[str]]:
    """A subscription's recipients split into e-mail addresses and webhook Connections."""
    to = [r.strip() for r in recipients.split(",") if r.strip()]
    return [r for r in to if not r.startswith(WEBHOOK)], [r[len(WEBHOOK):] for r in to if r.startswith(WEBHOOK)]


def enqueue_message(s: Session, key: str, recipients: str, subject: str, lines: list[str],
                    extra: dict[str, Any] | None = None) -> None:
    """One message to a subscription's recipients, through the outbox: one row for the e-mail
    addresses (``key``), one per webhook (``key:webhook:<connection>``). Masked here, once."""
    mails, hooks = channels(recipients)
    subject = mask(subject)
    texts = [mask(line) for line in lines]
    rows = []
    if mails:
        rows.append({"destination": DESTINATION, "kind": KIND, "idempotency_key": key, "correlation": key,
                     "payload": {"to": mails, "subject": subject,
                                 "html": "".join(f"<p>{html.escape(x)}</p>" for x in texts), **(extra or {})}})
    for conn in hooks:
        k = f"{key}:webhook:{conn}"
        rows.append({"destination": DESTINATION, "kind": WEBHOOK_KIND, "idempotency_key": k, "correlation": k,
                     "payload": {"connection": conn, "subject": subject, "text": "\n".join(texts), **(extra or {})}})
    ops.outbox_enqueue(s, rows)


def _breached(kind: AlertKind, value: float | None, threshold: float) -> bool:
    if value is None:
        return False
    return value <= threshold if kind.below else value > threshold


def evaluate(store: Store, measures: Mapping[str, Callable[[], float | None]], *,
             now: dt.datetime | None = None) -> dict[str, int]:
    """Open and resolve episodes from the figures; returns counts (opened, resolved, ongoing,
    waiting: breached, not yet long enough; unmeasured: a kind with no figure)."""
    now = now or utcnow()
    counts: Counter[str] = Counter()
    values: dict[str, float | None] = {}
    with store.transaction() as s:
        subs = [(sub.id, sub.kind) for sub in s.scalars(select(AlertSubscription).where(
            AlertSubscription.enabled.is_(True), AlertSubscription.kind != DIGEST).order_by(AlertSubscription.id))]
    for sub_id, kind in subs:
        if kind not in values:
            fn = measures.get(kind)
            try:
                values[kind] = None if fn is None else fn()
            except Exception as e:  # noqa: BLE001 - one figure that cannot be read stops no other
                log.warning("alert figure %s could not be read: %s", kind, e)
                values[kind] = None
            if fn is None:
                counts["unmeasured"] += 1
        with store.transaction() as s:
            counts[_one(s, sub_id, values[kind], now)] += 1
    return dict(counts)


def _one(s: Session, sub_id: int, value: float | None, now: dt.datetime) -> str:
    sub = s.get(AlertSubscription, sub_id)
    assert sub is not None
    kind = KINDS[sub.kind]
    episode = s.scalars(select(AlertEpisode).where(AlertEpisode.subscription_id == sub_id,
                                                   AlertEpisode.resolved_at.is_(None))).first()
    if _breached(kind, value, sub.threshold):
        assert value is not None
        since = sub.breach_since or now
        sub.breach_since = since
        if episode is not None:
            episode.value_last = value
            episode.peak = min(episode.peak, value) if kind.below else max(episode.peak, value)
            return "ongoing"
        if now - _utc(since) < dt.timedelta(minutes=sub.for_minutes):
            return "waiting"
        episode = AlertEpisode(subscription_id=sub_id, kind=sub.kind, opened_at=now, value_open=value,
                               value_last=value, peak=value)
        s.add(episode)
        s.flush()
        _queue(s, sub, episode, "opened", value)
        ops.audit(s, ACTOR, "alert.opened", "alert_episode", str(episode.id), kind=sub.kind, value=value,
                  threshold=sub.threshold)
        return "opened"
    sub.breach_since = None
    if episode is None:
        return "quiet"
    episode.resolved_at = now
    if value is not None:
        episode.value_last = value
    _queue(s, sub, episode, "resolved", value)
    ops.audit(s, ACTOR, "alert.resolved", "alert_episode", str(episode.id), kind=sub.kind, value=value)
    return "resolved"


def _utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _figure(v: float | None) -> str:
    if v is None:
        return "–"
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}".replace(".", ",")


def _queue(s: Session, sub: AlertSubscription, episode: AlertEpisode, state: str, value: float | None) -> None:
    kind = KINDS[sub.kind]
    limit = ("högst" if not kind.below else "minst") + f" {_figure(sub.threshold)}"
    if state == "opened":
        subject = f"[Brygga] {kind.title}: {_figure(value)} {kind.unit.split(' (')[0]} (gräns {limit})"
        lines = [f"{kind.title}: {_figure(value)} {kind.unit}.",
                 f"Gränsen är {limit}" + (f", överskriden i minst {sub.for_minutes} minuter." if sub.for_minutes else "."),
                 "Se Bryggas konsol (/brygga-ops/). Du får ett meddelande till när det är över."]
    else:
        subject = f"[Brygga] Över: {kind.title} ({_figure(value)})"
        lines = [f"{kind.title} är tillbaka inom gränsen ({limit}): nu {_figure(value)} {kind.unit}.",
                 f"Episoden började {_utc(episode.opened_at).isoformat(timespec='minutes')} (UTC); "
                 f"som mest {_figure(episode.peak)}."]
    key = f"alert:{episode.id}:{state}"
    enqueue_message(s, key, sub.recipients, subject, lines, {"episode": episode.id, "state": state})


Notifier = Callable[[list[str], str, str, str], None]  # (to, subject, html, message id) -> sent, or raises
Webhook = Callable[[str, str, str, str], None]  # (connection, subject, text, idempotency key) -> posted, or raises


class AlertSender(outbox.OutboxSender):
    """The queued alert messages, one per request: e-mails through the notifier, webhook posts
    through the webhook notifier."""

    destination, kind, prefix, batch = DESTINATION, (KIND, WEBHOOK_KIND), "alert", 50

    def __init__(self, store: Store, notify: Notifier, webhook: Webhook | None = None, **kw: Any):
        super().__init__(store, **kw)
        self.notify, self.webhook = notify, webhook

    def send(self, group: list[OutboxMessage], rid: str) -> outbox.Results:
        out: outbox.Results = {}
        for m in group:
            p = m.payload
            try:
                if m.kind == WEBHOOK_KIND:
                    if self.webhook is None:
                        raise OSError("no webhook notifier configured")
                    self.webhook(p["connection"], p["subject"], p["text"], m.idempotency_key)
                else:
                    self.notify(list(p["to"]), p["subject"], p["html"], f"<{m.idempotency_key}@brygga>")
                out[m.idempotency_key] = ("sent", None)
            except Exception as e:  # noqa: BLE001 - the mail server or webhook away or refusing: tried again with backoff
                out[m.idempotency_key] = ("failed", f"{type(e).__name__}: {e}"[:200])
        return out

    def settle(self, s: Session, group: list[OutboxMessage], results: outbox.Results, outcomes: Counter[str],
               rid: str) -> None:
        outbox.settle(s, group, results, outcomes, key=lambda m: m.idempotency_key, ok=("sent",),
                      missing="not sent", max_attempts=self.max_attempts, base_seconds=self.base_seconds)


def send(store: Store, notify: Notifier, webhook: Webhook | None = None) -> dict[str, int]:
    """Send the queued alert messages; raises the transient error that stopped it."""
    outcomes, requests, failure = AlertSender(store, notify, webhook).run()
    summary = {"requests": requests, **dict(outcomes)}
    log.info("alerts sent: %s", summary)
    if failure is not None:
        raise failure
    return summary


def subscriptions(store: Store) -> list[dict[str, Any]]:
    """Every subscription with its open episode (the console's Bevakningar page)."""
    with store.transaction() as s:
        open_eps = {e.subscription_id: e for e in s.scalars(select(AlertEpisode).where(
            AlertEpisode.resolved_at.is_(None)))}
        return [{"id": x.id, "kind": x.kind, "title": KINDS[x.kind].title, "unit": KINDS[x.kind].unit,
                 "threshold": x.threshold, "for_minutes": x.for_minutes, "recipients": x.recipients,
                 "enabled": x.enabled, "organisation": x.organisation, "last_sent_at": x.last_sent_at,
                 "open_since": open_eps[x.id].opened_at if x.id in open_eps else None,
                 "value": open_eps[x.id].value_last if x.id in open_eps else None}
                for x in s.scalars(select(AlertSubscription).order_by(AlertSubscription.id))]
