"""``brygga checkpoints``, ``brygga quarantine`` and ``brygga retention`` through the CLI entry point,
against a real store (both stores)."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from brygga import cli
from brygga.store import ops
from brygga.store.models import AuditLog, FeedCheckpoint, OutboxMessage, Quarantine


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_move_a_checkpoint_past_an_unreadable_reply_and_release_its_quarantine(store, capsys):
    with store.transaction() as s:
        ops.checkpoint_set(s, "nya-admissions:HT2027", 41, None)
        ops.quarantine_again(s, source="nya", message_id="nya-admissions:HT2027:41", kind="GetAdmissions-reply",
                             reason="NyA's GetAdmissions reply cannot be read (from sequence 41)")
    code, out, _ = _run(capsys, "checkpoints", "list", "--url", store.url, "--json")
    assert code == 0 and [r["position"] for r in json.loads(out) if r["name"] == "nya-admissions:HT2027"] == [41]

    code, _, err = _run(capsys, "checkpoints", "set", "nya-admissions:HT2027", "45", "--url", store.url,
                        "--reason", "   ")
    assert code == 2 and "reason" in err
    code, _, err = _run(capsys, "checkpoints", "set", "nya-admissions:VT2099", "45", "--url", store.url,
                        "--reason", "x")
    assert code == 2 and "no checkpoint" in err
    code, out, _ = _run(capsys, "checkpoints", "set", "nya-admissions:HT2027", "45", "--url", store.url,
                        "--reason", "NyA ärende 123: sekvens 41–44 felaktiga", "--actor", "kim")
    assert code == 0

    code, out, _ = _run(capsys, "quarantine", "list", "--url", store.url)
    assert code == 0 and "GetAdmissions-reply" in out and "open ×1" in out and "1 of 1 row(s)" in out
    with store.transaction() as s:
        qid = s.scalars(select(Quarantine.id)).one()
    code, out, _ = _run(capsys, "quarantine", "release", str(qid), "--note", "flyttad förbi", "--url", store.url,
                        "--actor", "kim")
    assert code == 0 and json.loads(out)["already"] is False
    code, out, _ = _run(capsys, "quarantine", "list", "--url", store.url)
    assert "0 of 0 row(s)" in out

    with store.transaction() as s:
        assert s.get(FeedCheckpoint, "nya-admissions:HT2027").page == 45
        audit = {a.action: a for a in s.scalars(select(AuditLog).where(AuditLog.actor == "kim"))}
    assert set(audit) == {"checkpoint.set", "quarantine.release"}
    assert audit["checkpoint.set"].detail["before"]["position"] == 41
    assert "sekvens 41–44" in audit["checkpoint.set"].detail["reason"]


def test_retention_from_the_command_line(store, capsys):
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=20)
    with store.transaction() as s:
        s.add(OutboxMessage(destination="nya", kind="merit", idempotency_key="m-1", payload={"pnr": "198503121002"},
                            status="sent", sent_at=old, created_at=old))
    code, out, _ = _run(capsys, "retention", "--url", store.url, "--dry-run")
    assert code == 0 and json.loads(out)["outbox"] == 0  # 90 days by default
    code, _, err = _run(capsys, "retention", "--url", store.url, "--outbox", "0")
    assert code == 2 and "outbox" in err
    code, out, _ = _run(capsys, "retention", "--url", store.url, "--outbox", "10", "--actor", "kim")
    assert code == 0 and json.loads(out)["outbox"] == 1
    with store.transaction() as s:
        assert s.scalars(select(OutboxMessage.payload)).one() == {"purged": True}
        assert s.scalars(select(AuditLog.actor).where(AuditLog.action == "retention.purge")).one() == "kim"


def test_retry_sends_a_message_given_up_on_again_and_only_such_a_message(store, capsys):
    from brygga.flows import checkpoints

    with store.transaction() as s:
        ops.outbox_enqueue(s, [{"destination": "nya", "kind": "merit", "idempotency_key": "nya:merit:h-1",
                                "correlation": "merits", "payload": {"x": 1}}])
        m = ops.outbox_due(s, "nya", kind="merit")[0]
        ops.outbox_mark_failed(s, m, "NyA: 500 after retries", permanent=True)
        other = ops.quarantine(s, source="nya", message_id="A-7", kind="Admission", reason="Personnummer: ogiltigt")
        s.flush()
        other_id = other.id
    with store.transaction() as s:
        dead_q = s.scalars(select(Quarantine).where(Quarantine.message_id == "nya:merit:h-1")).one().id
    assert checkpoints.retryable(store, [dead_q, other_id]) == {dead_q}

    code, out, err = _run(capsys, "quarantine", "retry", str(other_id), "--url", store.url, "--actor", "kim")
    assert code == 2 and "not a message given up on" in err  # a bad record is corrected by its sender

    code, out, _ = _run(capsys, "quarantine", "retry", str(dead_q), "--url", store.url, "--actor", "kim",
                        "--note", "NyA är uppe igen")
    assert code == 0 and json.loads(out)["already"] is False
    with store.transaction() as s:
        m = s.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == "nya:merit:h-1")).one()
        assert (m.status, m.attempts) == ("pending", 0)  # due again: the flow's next run sends it
        assert s.get(Quarantine, dead_q).released_at is not None
        (a,) = s.scalars(select(AuditLog).where(AuditLog.action == "quarantine.retry")).all()
        assert a.actor == "kim" and a.detail["before"] == {"status": "dead", "attempts": 1}
    again = checkpoints.retry(store, dead_q, actor="kim")
    assert again["already"] is True and checkpoints.retryable(store, [dead_q]) == set()
    with store.transaction() as s:
        assert s.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == "nya:merit:h-1")).one().attempts == 0
