"""Operator statistics over the queues, with pandas: the backlog per day and how long handling takes.

* :func:`backlog` — per day (local calendar days, ``Europe/Stockholm``), how many unhandled
  admissions (per hinder) and återbudsärenden (per cause) were open at the end of the day;
* :func:`daily` — per local day and group: opened, resolved, open at the end of the day (long
  format, what the console charts and exports);
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


def _frames(store: Store, round: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(queue, cases): one row per entry with its group, opened and closed (NaT while open), UTC.
    A queue entry's close is its ``resolved_at`` (``updated_at`` for rows from before it existed)."""
    U, A = UnhandledAdmission, AterbudCase
    with store.transaction() as s:
        qq = select(U.hinder, U.status, U.created_at, U.resolved_at, U.updated_at)
        cq = select(A.cause, A.status, A.created_at, A.closed_at)
        if round:
            qq, cq = qq.where(U.round == round), cq.where(A.round == round)
        q = s.execute(qq).all()
        c = s.execute(cq).all()
    queue = pd.DataFrame(
        [(h, _utc(created), None if status == QueueStatus.OPEN else _utc(resolved or updated))
         for h, status, created, resolved, updated in q], columns=["group", "opened", "closed"])
    cases = pd.DataFrame(
        [(cause, _utc(created), _utc(closed) if status == CaseStatus.CLOSED else None)
         for cause, status, created, closed in c], columns=["group", "opened", "closed"])
    for df in (queue, cases):
        df["opened"] = pd.to_datetime(df["opened"], utc=True)
        df["closed"] = pd.to_datetime(df["closed"], utc=True)
    return queue, cases


def rounds(store: Store) -> list[str]:
    """The admission rounds the queue and the cases have entries of."""
    with store.transaction() as s:
        found = {r for (r,) in s.execute(select(UnhandledAdmission.round).distinct())}
        found |= {r for (r,) in s.execute(select(AterbudCase.round).distinct()) if r}
    return sorted(found)


def _local_days(series: pd.Series) -> pd.Series:
    return series.dt.tz_convert(LOCAL).dt.date


def daily(store: Store, *, days: int = 30, today: dt.date | None = None, round: str | None = None) -> pd.DataFrame:
    """Per local day of the last ``days`` and per group: how many entries were opened, how many
    resolved, and how many were open at the end of the day. Long format: one row per (day, kind,
    group) with columns ``day``, ``kind`` (``queue`` = unhandled admissions by hinder, ``cases`` =
    återbudsärenden by cause), ``group``, ``opened``, ``resolved``, ``backlog``."""
    today = today or utcnow().astimezone(LOCAL).date()
    day_list = [today - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    ends = pd.DatetimeIndex([dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), LOCAL) for d in day_list]
                            ).tz_convert("UTC")
    parts = []
    for kind, df in zip(("queue", "cases"), _frames(store, round), strict=True):
        if df.empty:
            continue
        opened_day, closed_day = _local_days(df["opened"]), _local_days(df["closed"].dropna())
        for group, g in df.groupby("group"):
            idx = g.index
            opened = opened_day[idx].value_counts()
            resolved = closed_day[closed_day.index.isin(idx)].value_counts()
            o, c = g["opened"].to_numpy(), g["closed"]
            backlog = [int(((o < end) & (c.isna() | (c >= end)).to_numpy()).sum()) for end in ends]
            parts.append(pd.DataFrame({
                "day": day_list, "kind": kind, "group": str(group),
                "opened": [int(opened.get(d, 0)) for d in day_list],
                "resolved": [int(resolved.get(d, 0)) for d in day_list], "backlog": backlog}))
    if not parts:
        return pd.DataFrame(columns=["day", "kind", "group", "opened", "resolved", "backlog"])
    return pd.concat(parts, ignore_index=True).sort_values(["day", "kind", "group"], ignore_index=True)


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    return None if t is None else as_utc(t)


def backlog(store: Store, *, days: int = 30, today: dt.date | None = None, round: str | None = None) -> pd.DataFrame:
    """Open entries at the end of each of the last ``days`` local days: one row per day, columns
    ``queue:<hinder>`` and ``cases:<cause>`` (only groups that occur), plus ``queue`` and ``cases``
    totals."""
    today = today or utcnow().astimezone(LOCAL).date()
    day_list = [today - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    ends = pd.DatetimeIndex([dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), LOCAL) for d in day_list]
                            ).tz_convert("UTC")
    out = pd.DataFrame(index=pd.Index(day_list, name="day"))
    for name, df in zip(("queue", "cases"), _frames(store, round), strict=True):
        total = pd.Series(0, index=out.index)
        for group, g in df.groupby("group"):
            counts = [int(((g["opened"] < end) & (g["closed"].isna() | (g["closed"] >= end))).sum()) for end in ends]
            out[f"{name}:{group}"] = counts
            total = total + pd.Series(counts, index=out.index)
        out[name] = total
    return out


def handling_times(store: Store, *, round: str | None = None) -> pd.DataFrame:
    """For handled entries: count, median and 90th percentile hours from queued to handled, per
    ``queue:<hinder>`` and ``cases:<cause>`` (of one round, or all)."""
    rows: list[dict[str, Any]] = []
    for name, df in zip(("queue", "cases"), _frames(store, round), strict=True):
        done = df.dropna(subset=["closed"])
        if done.empty:
            continue
        hours = (done["closed"] - done["opened"]).dt.total_seconds() / 3600
        for group, h in hours.groupby(done["group"]):
            rows.append({"kind": f"{name}:{group}", "handled": int(h.count()),
                         "median_hours": _one_decimal(h.median()), "p90_hours": _one_decimal(h.quantile(0.9))})
    return pd.DataFrame(rows, columns=["kind", "handled", "median_hours", "p90_hours"])


def _one_decimal(v: Any) -> float:
    return float(f"{float(v):.1f}")


def to_csv(df: pd.DataFrame) -> str:
    """The operators' export (UTF-8, comma-separated, the index as the first column when named)."""
    return df.to_csv(index=df.index.name is not None)
