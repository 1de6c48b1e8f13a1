"""Operator statistics over the queues, with pandas: the backlog per day and how long handling takes.

* :func:`backlog` — per day (local calendar days, ``Europe/Stockholm``), how many unhandled
  admissions (per hinder) and återbudsärenden (per cause) were open at the end of the day;
* :func:`handling_times` — for what was handled: how many, median and 90th percentile hours from
  queued to handled, per hinder / cause.

Both read the store once (one query per table, only the columns needed) and leave the rest to
pandas; ``to_csv`` gives the operators' export. Personal data is never read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select

from brygga.states import CaseStatus, QueueStatus
from brygga.store import Store
from brygga.store.models import AterbudCase, UnhandledAdmission, as_utc, utcnow

LOCAL = ZoneInfo("Europe/Stockholm")


def _frames(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(queue, cases): one row per entry with its group, opened and closed (NaT while open), UTC."""
    with store.transaction() as s:
        q = s.execute(select(UnhandledAdmission.hinder, UnhandledAdmission.status, UnhandledAdmission.created_at,
                             UnhandledAdmission.updated_at)).all()
        c = s.execute(select(AterbudCase.cause, AterbudCase.status, AterbudCase.created_at,
                             AterbudCase.closed_at)).all()
    queue = pd.DataFrame(
        [(h, _utc(created), None if status == QueueStatus.OPEN else _utc(updated)) for h, status, created, updated in q],
        columns=["group", "opened", "closed"])
    cases = pd.DataFrame(
        [(cause, _utc(created), _utc(closed) if status == CaseStatus.CLOSED else None)
         for cause, status, created, closed in c], columns=["group", "opened", "closed"])
    for df in (queue, cases):
        df["opened"] = pd.to_datetime(df["opened"], utc=True)
        df["closed"] = pd.to_datetime(df["closed"], utc=True)
    return queue, cases


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    return None if t is None else as_utc(t)


def backlog(store: Store, *, days: int = 30, today: dt.date | None = None) -> pd.DataFrame:
    """Open entries at the end of each of the last ``days`` local days: one row per day, columns
    ``queue:<hinder>`` and ``cases:<cause>`` (only groups that occur), plus ``queue`` and ``cases``
    totals."""
    today = today or utcnow().astimezone(LOCAL).date()
    day_list = [today - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    ends = pd.DatetimeIndex([dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), LOCAL) for d in day_list]
                            ).tz_convert("UTC")
    out = pd.DataFrame(index=pd.Index(day_list, name="day"))
    for name, df in zip(("queue", "cases"), _frames(store), strict=True):
        total = pd.Series(0, index=out.index)
        for group, g in df.groupby("group"):
            counts = [int(((g["opened"] < end) & (g["closed"].isna() | (g["closed"] >= end))).sum()) for end in ends]
            out[f"{name}:{group}"] = counts
            total = total + pd.Series(counts, index=out.index)
        out[name] = total
    return out


def handling_times(store: Store) -> pd.DataFrame:
    """For handled entries: count, median and 90th percentile hours from queued to handled, per
    ``queue:<hinder>`` and ``cases:<cause>``."""
    rows: list[dict[str, Any]] = []
    for name, df in zip(("queue", "cases"), _frames(store), strict=True):
        done = df.dropna(subset=["closed"])
        if done.empty:
            continue
        hours = (done["closed"] - done["opened"]).dt.total_seconds() / 3600
        for group, h in hours.groupby(done["group"]):
            rows.append({"kind": f"{name}:{group}", "handled": int(h.count()),
                         "median_hours": round(float(h.median()), 1), "p90_hours": round(float(h.quantile(0.9)), 1)})
    return pd.DataFrame(rows, columns=["kind", "handled", "median_hours", "p90_hours"])


def to_csv(df: pd.DataFrame) -> str:
    """The operators' export (UTF-8, comma-separated, the index as the first column when named)."""
    return df.to_csv(index=df.index.name is not None)
