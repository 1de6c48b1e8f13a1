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
