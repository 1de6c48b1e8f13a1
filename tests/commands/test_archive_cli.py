"""``brygga archive list`` and ``brygga archive resend`` through the CLI entry point, against a
real store (both stores)."""

from __future__ import annotations

import json

from sqlalchemy import select

from brygga import cli
from brygga.flows.archive.delivery import DESTINATION, KIND
from brygga.store import ops
from brygga.store.models import ArchivePackage, AuditLog, OutboxMessage, Quarantine

PNR = "19900101-0017"


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_masks_and_resend_makes_a_rejected_instance_due_again(store, capsys):
    with store.transaction() as s:
        s.add(ArchivePackage(package_id="brygga-kurstillfalle-x", subject_kind="kurstillfalle", subject_uid="u-1",
                             content_sha256="1" * 64, status="rejected", reasons=f"data.schema: värdet {PNR}"))
        ops.outbox_enqueue(s, [{"destination": DESTINATION, "kind": KIND, "idempotency_key": "arkiv:kurstillfalle:u-1",
                                "payload": {"kind": "kurstillfalle", "uid": "u-1"}, "correlation": "arkiv:u-1"}])
        m = ops.outbox_due(s, DESTINATION, kind=KIND)[0]
        ops.outbox_mark_failed(s, m, f"Arkivet avvisade: {PNR}", permanent=True)
    code, out, _ = _run(capsys, "archive", "list", "--url", store.url)
    listed = json.loads(out)
    assert code == 0 and PNR not in out and "19900101-****" in out
    assert listed["packages"][0]["status"] == "rejected" and listed["not_delivered"][0]["status"] == "dead"

    code, out, _ = _run(capsys, "archive", "resend", "u-1", "--url", store.url, "--actor", "kim")
    assert code == 0
    with store.transaction() as s:
        m = s.scalars(select(OutboxMessage)).one()
        assert (m.status, m.attempts) == ("pending", 0)
        assert all(q.released_at is not None for q in s.scalars(select(Quarantine)))
        assert [(a.actor, a.action, a.object_id) for a in s.scalars(select(AuditLog))] == [
            ("kim", "archive.resend", "u-1")]
    code, _, err = _run(capsys, "archive", "resend", "u-2", "--url", store.url)
    assert code == 1 and "nothing to send again" in err
