"""The reconciliation as operators see it: the drift found (kind and action also as text), its
counts, and the runs with what each found (the statistics' counts over time)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from brygga.states import DRIFT_ACTION_TEXT, DRIFT_TEXT
from brygga.store import Store
from brygga.store.models import Drift, ReconciliationRun
from brygga.views.common import counts_by, iso, masked, paged, where_equal


def drift_row(d: Drift) -> dict[str, Any]:
    return masked({
        "id": d.id, "run_id": d.run_id, "round": d.round, "kind": d.kind, "kind_text": DRIFT_TEXT.get(d.kind, d.kind),
        "subject": d.subject, "personnummer": d.personnummer, "detail": d.detail, "action": d.action,
        "action_text": DRIFT_ACTION_TEXT.get(d.action, d.action), "status": d.status, "found_at": d.found_at,
        "last_seen_at": d.last_seen_at, "resolved_at": d.resolved_at, "resolved_by": d.resolved_by, "note": d.note,
    })


def list_drift(store: Store, *, status: str | None = "open", kind: str | None = None, round: str | None = None,
               limit: int | None = None, offset: int | None = None) -> dict[str, Any]:
    D = Drift
    with store.transaction() as s:
        q = where_equal(select(D), ((D.status, status), (D.kind, kind), (D.round, round)))
        rows, total, lim, off = paged(s, q, limit, offset, (D.kind, D.id))
        return {
            "rows": [drift_row(d) for d in rows], "total": total, "limit": lim, "offset": off,
            "counts_per_kind": counts_by(s, D, D.kind, ((D.status, status), (D.round, round))),
            "counts_per_status": counts_by(s, D, D.status, ((D.round, round),)),
            "rounds": [r for (r,) in s.execute(select(D.round).where(D.round.is_not(None)).distinct().order_by(D.round))],
            "filters": {"status": status, "kind": kind, "round": round},
        }


def get_drift(store: Store, drift_id: int) -> dict[str, Any] | None:
    with store.transaction() as s:
        d = s.get(Drift, drift_id)
        return None if d is None else drift_row(d)


def iter_drift(store: Store, *, status: str | None = "open", kind: str | None = None,
               round: str | None = None) -> Iterator[dict[str, Any]]:
    """Every drift row of the filters (the CSV), in batches."""
    last = 0
    while True:
        with store.transaction() as s:
            q = where_equal(select(Drift).where(Drift.id > last), ((Drift.status, status), (Drift.kind, kind),
                                                                  (Drift.round, round)))
            batch = list(s.scalars(q.order_by(Drift.id).limit(500)))
            rows = [drift_row(d) for d in batch]
        if not rows:
            return
        yield from rows
        last = batch[-1].id


def runs(store: Store, *, limit: int = 30) -> list[dict[str, Any]]:
    """The latest runs, newest first, with what each found per kind (the counts over time)."""
    with store.transaction() as s:
        return [{"id": r.id, "started_at": iso(r.started_at), "finished_at": iso(r.finished_at), "rounds": r.rounds,
                 "counts": r.counts, "total": sum(r.counts.values()), "compared": r.compared, "actor": r.actor}
                for r in s.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(limit))]
