"""Återbudsärenden as staff see them: listed with counts, one case (cause and suggested action also
as text)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from brygga.states import ACTION_TEXT, CAUSE_TEXT
from brygga.store import Store
from brygga.store.models import AterbudCase
from brygga.views.common import counts_by, masked, paged, where_equal


def case_row(c: AterbudCase) -> dict[str, Any]:
    """One återbudsärende as operators see it (cause and suggested action also as text)."""
    return masked({
        "id": c.id, "status": c.status, "round": c.round, "cause": c.cause, "cause_text": CAUSE_TEXT.get(c.cause, c.cause),
        "suggested_action": c.suggested_action, "suggested_action_text": ACTION_TEXT.get(c.suggested_action, ""),
        "reported_at": c.reported_at, "study_start": c.study_start, "education": c.education,
        "nya_aterbud_id": c.nya_aterbud_id, "nya_admission_id": c.nya_admission_id, "personnummer": c.personnummer,
        "utbildningstillfalle_uid": c.utbildningstillfalle_uid, "antagning_uid": c.antagning_uid,
        "created_at": c.created_at, "closed_by": c.closed_by, "note": c.note, "closed_at": c.closed_at,
    })


def list_aterbud(store: Store, *, status: str | None = None, round: str | None = None, cause: str | None = None,
                 limit: int | None = None, offset: int | None = None, oldest_first: bool = False) -> dict[str, Any]:
    """Återbudsärenden; counts per status (honouring round) and per cause (honouring both filters)."""
    A = AterbudCase
    with store.transaction() as s:
        q = where_equal(select(A), ((A.status, status), (A.round, round), (A.cause, cause)))
        order = (A.id,) if oldest_first else (A.created_at.desc(), A.id.desc())
        rows, total, lim, off = paged(s, q, limit, offset, order)
        per_status = counts_by(s, A, A.status, ((A.round, round),))
        per_cause = counts_by(s, A, A.cause, ((A.status, status), (A.round, round)))
        rounds = [r for (r,) in s.execute(select(A.round).where(A.round.is_not(None)).distinct().order_by(A.round))]
        return {
            "rows": [case_row(a) for a in rows],
            "total": total, "limit": lim, "offset": off,
            "counts_per_status": per_status, "counts_per_cause": per_cause, "rounds": rounds,
            "filters": {"status": status, "round": round, "cause": cause},
        }


def get_case(store: Store, case_id: int) -> dict[str, Any] | None:
    with store.transaction() as s:
        c = s.get(AterbudCase, case_id)
        return None if c is None else case_row(c)
