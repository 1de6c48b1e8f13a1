"""Operator statistics over the queues, with pandas: the backlog per day and how long handling takes.

* :func:`backlog` — per day (local calendar days, ``Europe/Stockholm``), how many unhandled
  admissions (per hinder) and återbudsärenden (per cause) were open at the end of the day;
* :func:`daily` — per local day and group: opened, resolved, open at the end of the day (long
  format, what the console charts and exports);
* :func:`handling_times` — for what was handled: how many, median and 90th percentile hours from
  queued to handled, per hinder / cause;
* :func:`rounds` — the admission rounds there are entries of (for a round filter).

Each reads the store once (one query per table, only the columns needed) and leaves the rest to
pandas, vectorised (a loop per group at most); ``to_csv`` gives the operators' export. Personal
data is never read. A queue entry was handled at its ``resolved_at`` (``updated_at`` only for rows
from before that column, which later updates such as retention's purge would otherwise move).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select

from brygga.states import CaseStatus, QueueStatus
from brygga.store import Store
from brygga.store.models import AterbudCase, UnhandledAdmission, utcnow

LOCAL = ZoneInfo("Europe/Stockholm")
KINDS = ("queue", "cases")  # unhandled admissions by hinder, återbudsärenden by cause
DAILY_COLUMNS = ["day", "kind", "group", "opened", "resolved", "backlog"]


def _frames(store: Store, round: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(queue, cases): one row per entry with its ``group``, ``opened`` and ``closed`` (NaT while
    open), UTC. A queue entry's close is its ``resolved_at`` (``updated_at`` for rows from before it
    existed)."""
    U, A = UnhandledAdmission, AterbudCase
    qq = select(U.hinder, U.status, U.created_at, U.resolved_at, U.updated_at)
    cq = select(A.cause, A.status, A.created_at, A.closed_at)
    if round:
        qq, cq = qq.where(U.round == round), cq.where(A.round == round)
    with store.transaction() as s:
        q = pd.DataFrame(s.execute(qq).all(), columns=["group", "status", "opened", "resolved", "updated"])
        c = pd.DataFrame(s.execute(cq).all(), columns=["group", "status", "opened", "closed"])
    # (SQLite gives naive UTC back, PostgreSQL aware times: utc=True reads both as UTC)
    queue = pd.DataFrame({
        "group": q["group"].astype(str), "opened": _utc(q["opened"]),
        "closed": _utc(q["resolved"]).fillna(_utc(q["updated"])).where(q["status"] != QueueStatus.OPEN)})
    cases = pd.DataFrame({
        "group": c["group"].astype(str), "opened": _utc(c["opened"]),
        "closed": _utc(c["closed"]).where(c["status"] == CaseStatus.CLOSED)})
    return queue, cases


def _utc(col: pd.Series) -> pd.Series:
    return pd.to_datetime(col, utc=True)


def _local_days(series: pd.Series) -> pd.Series:
    return series.dt.tz_convert(LOCAL).dt.date


def _days(days: int, today: dt.date | None) -> tuple[list[dt.date], Any]:
    """The last ``days`` local days up to ``today`` (default: today in Stockholm), and the UTC
    instant each ends at (local midnight after it; 23 or 25 hours on the DST days), as an array."""
    today = today or utcnow().astimezone(LOCAL).date()
    day_list = [today - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    ends = pd.DatetimeIndex([dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), LOCAL) for d in day_list])
    return day_list, ends.tz_convert("UTC").tz_localize(None).to_numpy()


def _open_at(g: pd.DataFrame, ends: Any) -> Any:
    """How many of ``g``'s entries were open at each of ``ends``: opened before it, not closed by
    then (one comparison of every entry against every end, no loop)."""
    opened = g["opened"].dt.tz_localize(None).to_numpy()[:, None]
    closed = g["closed"].dt.tz_localize(None).to_numpy()[:, None]  # NaT compares False: still open
    return ((opened < ends) & ~(closed < ends)).sum(axis=0)


def rounds(store: Store) -> list[str]:
    """The admission rounds the queue and the cases have entries of, sorted."""
    with store.transaction() as s:
        found = set(s.scalars(select(UnhandledAdmission.round).distinct()))
        found |= set(s.scalars(select(AterbudCase.round).distinct().where(AterbudCase.round.is_not(None))))
    return sorted(r for r in found if r)


def daily(store: Store, *, days: int = 30, today: dt.date | None = None, round: str | None = None) -> pd.DataFrame:
    """Per local day of the last ``days`` (up to ``today``) and per group: how many entries were
    opened that day, how many resolved that day, and how many were open at the end of it.

    Long format, one row per (day, kind, group) for every day and every group that has entries
    (of ``round``, if given), sorted by day, kind, group. Columns: ``day`` (a ``datetime.date``,
    Stockholm calendar day), ``kind`` (``queue`` = unhandled admissions, grouped by hinder;
    ``cases`` = återbudsärenden, grouped by cause), ``group``, ``opened``, ``resolved``,
    ``backlog`` (ints). No rows when there are no entries."""
    day_list, ends = _days(days, today)
    parts = []
    for kind, df in zip(KINDS, _frames(store, round), strict=True):
        if df.empty:
            continue
        groups = sorted(df["group"].unique())
        full = pd.MultiIndex.from_product([groups, day_list], names=["group", "day"])
        done = df.dropna(subset=["closed"])
        opened = df.groupby([df["group"], _local_days(df["opened"])]).size()
        resolved = done.groupby([done["group"], _local_days(done["closed"])]).size()
        out = pd.DataFrame({
            "opened": opened.rename_axis(["group", "day"]).reindex(full, fill_value=0),
            "resolved": resolved.rename_axis(["group", "day"]).reindex(full, fill_value=0)})
        open_at = pd.DataFrame({group: _open_at(g, ends) for group, g in df.groupby("group")},
                               index=pd.Index(day_list, name="day")).rename_axis(columns="group")
        out["backlog"] = open_at.unstack().reindex(full)  # (days x groups) -> per (group, day)
        parts.append(out.reset_index().assign(kind=kind))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("day", "kind", "group") else int)
                             for c in DAILY_COLUMNS})
    result = pd.concat(parts, ignore_index=True)[DAILY_COLUMNS]
    return result.astype({"opened": int, "resolved": int, "backlog": int}).sort_values(
        ["day", "kind", "group"], ignore_index=True)


def backlog(store: Store, *, days: int = 30, today: dt.date | None = None, round: str | None = None) -> pd.DataFrame:
    """Open entries at the end of each of the last ``days`` local days (of ``round``, if given):
    one row per day (index ``day``), columns ``queue:<hinder>`` and ``cases:<cause>`` (only groups
    that occur), each followed by the ``queue`` / ``cases`` total (always there, 0 when empty)."""
    day_list, ends = _days(days, today)
    out = pd.DataFrame(index=pd.Index(day_list, name="day"))
    for name, df in zip(KINDS, _frames(store, round), strict=True):
        total = pd.Series(0, index=out.index)
        for group, g in df.groupby("group", sort=True):
            counts = pd.Series(_open_at(g, ends), index=out.index)
            out[f"{name}:{group}"] = counts
            total = total + counts
        out[name] = total
    return out


def handling_times(store: Store, *, round: str | None = None) -> pd.DataFrame:
    """For handled entries (of ``round``, or all): one row per ``kind`` = ``queue:<hinder>`` /
    ``cases:<cause>`` with ``handled`` (count), ``median_hours`` and ``p90_hours`` (hours from
    queued to handled, one decimal). Groups with nothing handled have no row."""
    rows: list[dict[str, Any]] = []
    for name, df in zip(KINDS, _frames(store, round), strict=True):
        done = df.dropna(subset=["closed"])
        if done.empty:
            continue
        hours = (done["closed"] - done["opened"]).dt.total_seconds() / 3600
        for group, h in hours.groupby(done["group"], sort=True):
            rows.append({"kind": f"{name}:{group}", "handled": int(h.count()),
                         "median_hours": _one_decimal(h.median()), "p90_hours": _one_decimal(h.quantile(0.9))})
    return pd.DataFrame(rows, columns=["kind", "handled", "median_hours", "p90_hours"])


def _one_decimal(v: Any) -> float:
    return float(f"{float(v):.1f}")


def to_csv(df: pd.DataFrame) -> str:
    """The operators' export (UTF-8, comma-separated, the index as the first column when named)."""
    return df.to_csv(index=df.index.name is not None)
