"""The archive export as operators see it: packages with their receipts, and what is not delivered yet."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from brygga.flows.archive.delivery import DESTINATION, KIND
from brygga.store import Store
from brygga.store.models import ArchivePackage, OutboxMessage
from brygga.views.common import MAX_LIMIT, counts_by, iso, masked, paged, where_equal

ARCHIVE_STATUS_TEXT = {"accepted": "arkiverat", "rejected": "avvisat", "pending": "väntar", "failed": "försöker igen",
                       "dead": "avvisat"}


def list_archive(store: Store, *, status: str | None = None, limit: int | None = None,
                 offset: int | None = None) -> dict[str, Any]:
    """The archive export: packages with their receipts (``status`` accepted/rejected), and the
    instances not delivered yet (outbox rows pending, failing or given up, with their last error)."""
    P, M = ArchivePackage, OutboxMessage
    with store.transaction() as s:
        q = where_equal(select(P), ((P.status, status),))
        rows, total, lim, off = paged(s, q, limit, offset, (P.id.desc(),))
        waiting = list(s.scalars(select(M).where(M.destination == DESTINATION, M.kind == KIND, M.status != "sent")
                                 .order_by(M.id).limit(MAX_LIMIT)))
        return {
            "rows": [{"package_id": p.package_id, "uid": p.subject_uid, "part": f"{p.part}/{p.parts}",
                      "status": p.status, "status_text": ARCHIVE_STATUS_TEXT.get(p.status, p.status),
                      "archive_id": p.archive_id, "size": p.size, "files": p.files, "reasons": masked(p.reasons),
                      "received_at": iso(p.received_at)} for p in rows],
            "total": total, "limit": lim, "offset": off,
            "counts_per_status": counts_by(s, P, P.status, ()),
            "not_delivered": [{"uid": m.payload.get("uid"), "label": m.payload.get("label"), "status": m.status,
                               "status_text": ARCHIVE_STATUS_TEXT.get(m.status, m.status), "attempts": m.attempts,
                               "last_error": masked(m.last_error), "since": iso(m.created_at)} for m in waiting],
            "filters": {"status": status},
        }
