import datetime as dt

import pytest
from sqlalchemy import func, select

from brygga.store import ops
from brygga.store.models import AuditLog, OutboxMessage, Quarantine


def _msg(key, dest="nya", kind="merit"):
    return {"destination": dest, "kind": kind, "idempotency_key": key, "payload": {"k": key}}


def test_inbox_dedupes_per_source(store):
    with store.transaction() as s:
        assert ops.inbox_record(s, "ladok", [("h1", "RegistreringEvent", "processed"),
                                             ("h2", "AterbudEvent", "skipped")]) == 2
    with store.transaction() as s:
        assert ops.inbox_seen(s, "ladok", ["h1", "h2", "h3"]) == {"h1", "h2"}
        assert ops.inbox_seen(s, "nya", ["h1"]) == set()
        # recording again inserts nothing and does not fail the transaction
        assert ops.inbox_record(s, "ladok", [("h1", "RegistreringEvent", "processed"), ("h3", "X", "processed")]) == 1
    with store.transaction() as s:
        assert ops.inbox_seen(s, "ladok", [f"h{i}" for i in range(1, 1200)]) == {"h1", "h2", "h3"}


def test_outbox_idempotency_key(store):
    with store.transaction() as s:
        assert ops.outbox_enqueue(s, [_msg("a"), _msg("b")]) == 2
    with store.transaction() as s:
        assert ops.outbox_enqueue(s, [_msg("a"), _msg("c")]) == 1
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 3


def test_insert_many_binds_as_sqlalchemy_does_and_skips_conflicts(store):
    rows = ops.outbox_rows([_msg(f"k{i}") | {"payload": {"k": i, "namn": "Åsa Öberg", "lista": [1, None]},
                                             "correlation": None if i % 2 else "c"} for i in range(12_000)])
    with store.transaction() as s:
        ops.insert_many(s, OutboxMessage, rows[:7000])
        ops.insert_many(s, OutboxMessage, rows[6000:], conflict=["idempotency_key"])  # 1000 already there
    with store.transaction() as s:
        got = {m.idempotency_key: m for m in s.scalars(select(OutboxMessage))}
        assert len(got) == 12_000
        m = got["k11999"]
        assert m.payload == {"k": 11999, "namn": "Åsa Öberg", "lista": [1, None]} and m.correlation is None
        assert got["k4"].correlation == "c" and m.status == "pending" and m.attempts == 0
        # the timestamps read back as what was written (UTC, to the microsecond), and due now
        assert m.created_at.replace(tzinfo=dt.UTC) == rows[0]["created_at"]
        assert len(ops.outbox_due(s, "nya", limit=20_000)) == 12_000


def test_outbox_due_one_correlation_group_is_not_starved_by_others(store):
    """A sender for one group (e.g. one round's offers) must see its rows even when older rows of
    other groups would fill the batch."""
    with store.transaction() as s:
        ops.outbox_enqueue(s, [{**_msg(f"a{i}"), "correlation": "offers:HT2027"} for i in range(5)]
                           + [{**_msg("b0"), "correlation": "offers:VT2028"}])
    with store.transaction() as s:
        assert [m.idempotency_key for m in ops.outbox_due(s, "nya", limit=3, correlation="offers:VT2028")] == ["b0"]
        assert len(ops.outbox_due(s, "nya", limit=3, correlation="offers:HT2027")) == 3


def test_outbox_due_sent_and_backoff(store):
    with store.transaction() as s:
        ops.outbox_enqueue(s, [_msg(f"m{i}") for i in range(5)] + [_msg("other", dest="ladok")])
    with store.transaction() as s:
        due = ops.outbox_due(s, "nya", limit=3)
        assert [m.idempotency_key for m in due] == ["m0", "m1", "m2"]
        ops.outbox_mark_sent(s, [due[0].id], response="ok")
        status = ops.outbox_mark_failed(s, due[1], "HTTP 503", base_seconds=60)
        assert status == "failed"
    with store.transaction() as s:
        due = ops.outbox_due(s, "nya", limit=10)
        assert [m.idempotency_key for m in due] == ["m2", "m3", "m4"]  # m1 backs off, m0 sent
        later = ops.outbox_due(s, "nya", limit=10, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=61))
        assert "m1" in [m.idempotency_key for m in later]
        assert ops.outbox_counts(s, "nya") == {"pending": 3, "failed": 1, "sent": 1}


def test_backoff_is_exponential_and_capped():
    assert [ops.backoff_delay(a, 10).total_seconds() for a in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert ops.backoff_delay(30, 10, cap_seconds=600).total_seconds() == 600


def test_poison_message_is_quarantined_after_max_attempts(store):
    with store.transaction() as s:
        ops.outbox_enqueue(s, [_msg("poison")])
    for attempt in range(1, 4):
        with store.transaction() as s:
            msg = ops.outbox_due(s, "nya", now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))[0]
            status = ops.outbox_mark_failed(s, msg, f"rejected #{attempt}", max_attempts=3)
    assert status == "dead"
    with store.transaction() as s:
        assert ops.outbox_due(s, "nya", now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=9)) == []
        q = s.scalars(select(Quarantine)).one()
        assert q.message_id == "poison" and "after 3 attempt(s)" in q.reason and "rejected #3" in q.reason


def test_checkpoint_moves_only_with_its_transaction(store):
    with store.transaction() as s:
        ops.checkpoint_set(s, "ladok-feed", page=3, entry_id="e-30", add_seen=30)
    with pytest.raises(RuntimeError):
        with store.transaction() as s:
            ops.checkpoint_set(s, "ladok-feed", page=4, entry_id="e-41", add_seen=11)
            ops.outbox_enqueue(s, [_msg("from-page-4")])
            raise RuntimeError("worker killed mid-batch")
    with store.transaction() as s:
        cp = ops.checkpoint_get(s, "ladok-feed")
        assert (cp.page, cp.entry_id, cp.events_seen) == (3, "e-30", 30)
        assert ops.outbox_due(s, "nya") == []


def test_audit_and_quarantine_rows(store):
    with store.transaction() as s:
        ops.audit(s, "operator", "ompröva", "unhandled_admission", "42", package="PKG-1")
        ops.quarantine(s, source="ladok", message_id="h9", kind="RegistreringEvent",
                       reason="StudentUID missing", payload=b"<x/>")
    with store.transaction() as s:
        a = s.scalars(select(AuditLog)).one()
        assert (a.actor, a.action, a.object_id, a.detail) == ("operator", "ompröva", "42", {"package": "PKG-1"})
        assert s.scalars(select(Quarantine)).one().payload == "<x/>"


@pytest.mark.postgres
def test_parallel_workers_never_claim_the_same_message(empty_store_factory):
    """SKIP LOCKED (PostgreSQL): two concurrent transactions split the due messages between them."""
    from brygga.store import migrate

    store = empty_store_factory("postgresql")
    migrate.upgrade(store)
    with store.transaction() as s:
        ops.outbox_enqueue(s, [_msg(f"p{i}") for i in range(10)])
    s1, s2 = store.session(), store.session()
    try:
        first = {m.idempotency_key for m in ops.outbox_due(s1, "nya", limit=6)}
        second = {m.idempotency_key for m in ops.outbox_due(s2, "nya", limit=6)}
        assert len(first) == 6 and len(second) == 4 and not first & second
    finally:
        s1.rollback(); s2.rollback(); s1.close(); s2.close()
