"""Digests per organisation unit (issue 32 §1): once a day, for each subscription, what happened on
its unit's instances since the last one — new unhandled admissions, new återbudsärenden, places
freed by återbud ("kalla reserv?"), late admissions. One message per window, none for an empty
one, each sent once; no personnummer in the text. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from brygga.flows import alerts
from brygga.flows.alerts import digest
from brygga.store import ops
from brygga.store.models import AlertSubscription, AterbudCase, NyaAdmission, OutboxMessage, UnhandledAdmission, utcnow
from tests.flows.test_alerts import Mailbox

DATA, MATE = "inst-data", "inst-mate"
INSTANCES = {DATA: ("DATA", dt.date(2026, 9, 1)), MATE: ("MATE", dt.date(2027, 8, 30))}


def _admission(s, aid: str, uid: str, code: str, state: str = "placed") -> None:
    s.add(NyaAdmission(admission_id=aid, round="HT2026", sequence=1, personnummer="199001011234",
                       utbildningskod=code, tillfalleskod="12345", utbildningstillfalle_uid=uid, state=state))


def _happenings(store) -> None:
    with store.transaction() as s:
        s.add(UnhandledAdmission(nya_admission_id="u1", round="HT2026", personnummer="199001011234",
                                 utbildningstillfalle_uid=DATA, tillfalleskod="DA001", hinder="already_started",
                                 reason="r", admission={}))
        s.add(AterbudCase(nya_aterbud_id="a1", round="HT2026", personnummer="199002021234",
                          utbildningstillfalle_uid=MATE, education="MA001 23456", cause="registered",
                          suggested_action="avbrott"))
        _admission(s, "freed", DATA, "DA002")
        ops.audit(s, "brygga:aterbud", "aterbud.applied", "nya_admission", "freed", date="2026-12-01")
        _admission(s, "late", DATA, "DA003", state="pending")  # read now, its studies began in September


def test_each_unit_gets_its_own_digest_once_and_an_empty_window_sends_nothing(store):
    data = alerts.subscribe(store, "digest", ["data@uni.example"], organisation="DATA", actor="anna")
    alerts.subscribe(store, "digest", ["studadm@uni.example", "webhook:brygga_teams"], actor="anna")
    alerts.subscribe(store, "digest", ["fysik@uni.example"], organisation="FYSI", actor="anna")
    _happenings(store)
    asked: list[str] = []

    def instance(uid):
        asked.append(uid)
        return INSTANCES[uid]

    now = utcnow() + dt.timedelta(seconds=1)
    assert digest.compose(store, instance, now=now) == {"queued": 2, "empty": 1}  # FYSI saw nothing
    assert sorted(set(asked)) == [DATA, MATE] and len(asked) == 2  # each instance asked once
    assert alerts.evaluate(store, {}) == {}  # a digest is no threshold alert
    box, posts = Mailbox(), []
    alerts.send(store, box, lambda conn, subject, text, key: posts.append((conn, subject, text, key)))
    by = {to[0]: (subject, body) for to, subject, body, _ in box.sent}
    assert set(by) == {"data@uni.example", "studadm@uni.example"} and len(posts) == 1
    subject, body = by["data@uni.example"]
    assert subject.startswith("[Brygga] Sammandrag DATA:") and "1 nya ej hanterade antagningar" in subject
    assert "DA001: 1 " in body and "DA002 12345: 1 — kalla reserv?" in body and "DA003 12345 (start 2026-09-01): 1" in body
    assert "återbudsärenden" not in body  # MATE's case is not DATA's
    everything = by["studadm@uni.example"][1]
    assert "Nya återbudsärenden: 1" in everything and "MA001 23456" in everything and "DA001" in everything
    assert "Nya återbudsärenden: 1" in posts[0][2] and posts[0][3].endswith(":webhook:brygga_teams")
    for text in [s + b for s, b in by.values()] + [posts[0][2]]:
        assert not re.search(r"\d{6}-?\d{4}", text)

    # the next day: nothing new, nothing sent; the window moved
    assert digest.compose(store, instance, now=now + dt.timedelta(days=1)) == {"empty": 3}
    alerts.send(store, box)
    assert len(box.sent) == 2
    with store.transaction() as s:
        assert s.get(AlertSubscription, data).last_sent_at is not None
        assert s.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key.like("digest:%")).limit(1))


def test_a_digest_run_again_for_the_same_window_queues_nothing_new(store):
    alerts.subscribe(store, "digest", ["data@uni.example"], organisation="DATA", actor="anna")
    _happenings(store)
    now = utcnow() + dt.timedelta(seconds=1)
    digest.compose(store, INSTANCES.__getitem__, now=now)
    assert digest.compose(store, INSTANCES.__getitem__, now=now) == {}  # the window is over
    with store.transaction() as s:
        assert len(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == alerts.KIND)).all()) == 1


def test_an_instance_ladok_cannot_show_is_left_out_of_unit_digests_only(store):
    alerts.subscribe(store, "digest", ["data@uni.example"], organisation="DATA", actor="anna")
    alerts.subscribe(store, "digest", ["alla@uni.example"], actor="anna")
    _happenings(store)

    def instance(uid):
        raise ConnectionError("Ladok is away")

    assert digest.compose(store, instance, now=utcnow() + dt.timedelta(seconds=1)) == {"queued": 1, "empty": 1}


def test_a_unit_belongs_to_digests_only():
    import pytest

    with pytest.raises(ValueError, match="bara för sammandrag"):
        alerts.subscribe(None, "drift", ["a@uni.example"], organisation="DATA", actor="anna")  # type: ignore[arg-type]
