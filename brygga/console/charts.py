"""The statistics page's data: ``brygga.views.statistics`` (pandas) shaped for its tables, its charts
(series per hinder / cause, drawn by the vendored Chart.js) and its CSV downloads."""

from __future__ import annotations

from typing import Any

from brygga.states import CAUSE_TEXT, HINDER_TEXT
from brygga.store import Store
from brygga.views import statistics


def _label(queue: str, group: str) -> str:
    return (HINDER_TEXT if queue == "queue" else CAUSE_TEXT).get(group, group)


def statistics_page(store: Store, *, days: int = 30, round: str | None = None) -> dict[str, Any]:
    daily = statistics.daily(store, days=days, round=round)
    handling = statistics.handling_times(store, round=round)
    day_list = [str(d) for d in sorted(daily["day"].unique())] if not daily.empty else []
    rows, backlog, flow = [], [], []
    if not daily.empty:
        for (kind, group), g in daily.groupby(["kind", "group"], sort=True):
            g = g.set_index(g["day"].astype(str)).reindex(day_list, fill_value=0)
            label = f"{'Antagningar' if kind == 'queue' else 'Ärenden'}: {_label(kind, group)}"
            backlog.append({"label": label, "values": [int(v) for v in g["backlog"]]})
        per_day = daily.groupby(["day", "kind"], sort=True)[["opened", "resolved"]].sum().reset_index()
        for kind, name in (("queue", "antagningar"), ("cases", "ärenden")):
            k = per_day[per_day["kind"] == kind]
            k = k.set_index(k["day"].astype(str)).reindex(day_list, fill_value=0)
            flow.append({"label": f"Öppnade {name}", "values": [int(v) for v in k["opened"]]})
            flow.append({"label": f"Lösta {name}", "values": [int(v) for v in k["resolved"]]})
        active = daily[(daily["opened"] > 0) | (daily["resolved"] > 0) | (daily["backlog"] > 0)]
        for r in active.sort_values(["day", "kind", "group"], ascending=[False, True, True]).itertuples(index=False):
            rows.append({"day": str(r.day), "queue": r.kind, "group": r.group, "label": _label(r.kind, r.group),
                         "opened": int(r.opened), "resolved": int(r.resolved), "backlog": int(r.backlog)})
    handled = []
    for r in handling.itertuples(index=False):
        queue, _, group = str(r.kind).partition(":")
        handled.append({"queue": queue, "group": group, "label": _label(queue, group), "handled": int(r.handled),
                        "median_hours": r.median_hours, "p90_hours": r.p90_hours})
    return {"rounds": statistics.rounds(store), "daily_rows": rows, "handling": handled,
            "chart": {"days": day_list, "backlog": backlog, "flow": flow}}


def csv_table(store: Store, table: str, *, days: int = 30, round: str | None = None) -> str | None:
    if table == "daily":
        return statistics.to_csv(statistics.daily(store, days=days, round=round))
    if table == "handling":
        return statistics.to_csv(statistics.handling_times(store, round=round))
    return None
