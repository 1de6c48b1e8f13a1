"""Alerts (issue 32 §1): one message when an episode opens, one when it resolves, not one per
run; a breach that must last waits; the messages go through the outbox, each sent once, a mail
server away retried. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from brygga.flows import alerts
from brygga.store.models import AlertEpisode, AuditLog, OutboxMessage

T0 = dt.datetime(2027, 8, 20, 12, 0, tzinfo=dt.UTC)


class Mailbox:
    def __init__(self):
        self.sent: list[tuple[list[str], str, str, str]] = []
        self.down = False

    def __call__(self, to, subject, html, message_id):
        if self.down:
            raise ConnectionRefusedError("the mail server is away")
        self.sent.append((to, subject, html, message_id))


def test_an_episode_is_one_message_when_it_opens_and_one_when_it_ends(store):
    alerts.subscribe(store, "quarantine", ["drift@uni.example", "it@uni.example"], threshold=3, actor="anna")
    figure = {"quarantine": 1.0}
    measures = {"quarantine": lambda: figure["quarantine"]}
    box = Mailbox()
    assert alerts.evaluate(store, measures, now=T0) == {"quiet": 1}
    for i, value in enumerate((5, 7, 9)):  # breached three runs in a row: one episode, one message
        figure["quarantine"] = value
        alerts.evaluate(store, measures, now=T0 + dt.timedelta(minutes=i + 1))
        alerts.send(store, box)
    assert len(box.sent) == 1
    to, subject, html, mid = box.sent[0]
    assert to == ["drift@uni.example", "it@uni.example"] and "Karantän: 5" in subject and "gräns högst 3" in subject
    figure["quarantine"] = 2
    assert alerts.evaluate(store, measures, now=T0 + dt.timedelta(minutes=5)) == {"resolved": 1}
    alerts.evaluate(store, measures, now=T0 + dt.timedelta(minutes=6))
    alerts.send(store, box)
    assert len(box.sent) == 2 and box.sent[1][1].startswith("[Brygga] Över: Karantän") and "som mest 9" in box.sent[1][2]
    assert box.sent[0][3] != box.sent[1][3]  # one Message-ID per message
    with store.transaction() as s:
        (ep,) = s.scalars(select(AlertEpisode)).all()
        assert (ep.value_open, ep.peak, ep.value_last) == (5, 9, 2) and ep.resolved_at is not None
        actions = [a for (a,) in s.execute(select(AuditLog.action).where(AuditLog.action.like("alert.%")).order_by(AuditLog.id))]
    assert actions == ["alert.subscribed", "alert.opened", "alert.resolved"]
    figure["quarantine"] = 8  # a new breach is a new episode
    alerts.evaluate(store, measures, now=T0 + dt.timedelta(minutes=7))
    alerts.send(store, box)
    assert len(box.sent) == 3


def test_a_breach_that_must_last_waits_and_a_brief_one_sends_nothing(store):
    alerts.subscribe(store, "merit_lag", ["merit@uni.example"], actor="anna")  # over 30 s for 5 minutes
    lag = {"merit_lag": 45.0}
    box = Mailbox()
    assert alerts.evaluate(store, {"merit_lag": lambda: lag["merit_lag"]}, now=T0) == {"waiting": 1}
    lag["merit_lag"] = 10  # back before 5 minutes: nothing
    alerts.evaluate(store, {"merit_lag": lambda: lag["merit_lag"]}, now=T0 + dt.timedelta(minutes=2))
    lag["merit_lag"] = 40
    for minute in (3, 6, 8):
        alerts.evaluate(store, {"merit_lag": lambda: lag["merit_lag"]}, now=T0 + dt.timedelta(minutes=minute))
    alerts.send(store, box)
    assert len(box.sent) == 1 and "minst 5 minuter" in box.sent[0][2]


def test_certificates_alert_at_or_below_their_days(store):
    alerts.subscribe(store, "certificate_days", ["pki@uni.example"], threshold=30, actor="anna")
    assert alerts.evaluate(store, {"certificate_days": lambda: 31.0}, now=T0) == {"quiet": 1}
    assert alerts.evaluate(store, {"certificate_days": lambda: 30.0}, now=T0) == {"opened": 1}


def test_a_mail_server_away_is_retried_and_each_message_still_goes_once(store):
    alerts.subscribe(store, "dead_outbox", ["ops@uni.example"], threshold=0, actor="anna")
    alerts.evaluate(store, {"dead_outbox": lambda: 2.0}, now=T0)
    box = Mailbox()
    box.down = True
    with pytest.raises(RuntimeError, match="not sent"):  # the task fails and retries
        _send_failing(store, box)
    box.down = False
    with store.transaction() as s:
        s.execute(OutboxMessage.__table__.update().values(next_attempt_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))  # its backoff over
    alerts.send(store, box)
    alerts.send(store, box)
    assert len(box.sent) == 1


def _send_failing(store, box):
    got = alerts.send(store, box)
    if got.get("failed"):
        raise RuntimeError("not sent")


def test_a_subscription_names_a_known_kind_and_real_addresses(store):
    with pytest.raises(ValueError, match="unknown kind"):
        alerts.subscribe(store, "weather", ["a@uni.example"], actor="anna")
    with pytest.raises(ValueError, match="varken e-postadresser eller webhooks: 19900101-1234"):
        alerts.subscribe(store, "drift", ["19900101-1234"], actor="anna")
    with pytest.raises(ValueError, match="minst en"):
        alerts.subscribe(store, "drift", [" "], actor="anna")
    with pytest.raises(ValueError, match="webhook:teams kanal"):
        alerts.subscribe(store, "drift", ["webhook:teams kanal"], actor="anna")
    sid = alerts.subscribe(store, "drift", ["a@uni.example"], actor="anna")
    alerts.subscribe(store, "drift", ["b@uni.example"], threshold=5, actor="bo", subscription_id=sid, enabled=False)
    (sub,) = alerts.subscriptions(store)
    assert (sub["recipients"], sub["threshold"], sub["enabled"]) == ("b@uni.example", 5, False)
    assert alerts.evaluate(store, {"drift": lambda: 100.0}, now=T0) == {}  # a disabled one is not evaluated


class Hook:
    def __init__(self):
        self.posts: list[tuple[str, str, str, str]] = []
        self.down = False

    def __call__(self, conn, subject, text, key):
        if self.down:
            raise RuntimeError("503:Service Unavailable")  # what HttpHook raises for a 5xx
        self.posts.append((conn, subject, text, key))


def test_a_webhook_is_a_channel_of_its_own_and_one_that_is_down_delays_no_mail(store):
    alerts.subscribe(store, "drift", ["drift@uni.example", "webhook:brygga_teams"], threshold=0, actor="anna")
    box, hook = Mailbox(), Hook()
    hook.down = True
    alerts.evaluate(store, {"drift": lambda: 2.0}, now=T0)
    got = alerts.send(store, box, hook)
    assert len(box.sent) == 1 and not hook.posts and got["failed"] == 1  # the mail went, the post waits
    with store.transaction() as s:
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == alerts.WEBHOOK_KIND)).one()
        assert row.status == "failed" and "503" in row.last_error
        row.next_attempt_at = row.created_at  # its backoff over
    hook.down = False
    alerts.send(store, box, hook)
    alerts.send(store, box, hook)
    assert len(box.sent) == 1 and len(hook.posts) == 1  # each once
    conn, subject, text, key = hook.posts[0]
    assert conn == "brygga_teams" and "Avvikelser NyA–Ladok: 2" in subject and "öppna avvikelser" in text
    assert key.startswith("alert:") and key.endswith(":opened:webhook:brygga_teams")
