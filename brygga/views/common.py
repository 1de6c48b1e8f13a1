"""What every view shares: pages, limits, masking (every string that leaves a view has its
personnummer masked, free text included), filters and counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brygga.personnummer import mask

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def clamp_limit(limit: int | None) -> int:
    return max(1, min(int(limit or DEFAULT_LIMIT), MAX_LIMIT))


def iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, (dt.datetime, dt.date)) else v


def masked(v: Any) -> Any:
    """Mask personnummer in strings, recursively in lists/dicts (payloads, counts, details)."""
    if isinstance(v, str):
        return mask(v)
    if isinstance(v, dict):
        return {k: masked(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [masked(x) for x in v]
    return iso(v)


def paged(s: Session, q: Any, limit: int | None, offset: int | None, order: Any) -> tuple[list[Any], int, int, int]:
    total = s.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
    lim, off = clamp_limit(limit), max(int(offset or 0), 0)
    return list(s.execute(q.order_by(*order).limit(lim).offset(off)).scalars()), total, lim, off


def where_equal(q: Any, cols: Iterable[tuple[Any, Any]]) -> Any:
    for col, val in cols:
        if val:
            q = q.where(col == val)
    return q


def counts_by(s: Session, model: Any, group_col: Any, cols: Iterable[tuple[Any, Any]]) -> dict[str, int]:
    q = where_equal(select(group_col, func.count()).select_from(model), cols).group_by(group_col)
    return {str(k): n for k, n in s.execute(q.order_by(group_col))}
