"""Statistik: opened and resolved per day, the backlog, handling times per hinder and cause
(pandas, drawn by the vendored Chart.js), and each table as CSV."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from brygga import views
from brygga.console import charts
from brygga.console.context import Console, console

router = APIRouter()


@router.get("/statistics", response_class=HTMLResponse)
def statistics(request: Request, days: int = Query(30, ge=7, le=366), round: str | None = None,
               cx: Console = Depends(console)) -> HTMLResponse:
    data = charts.statistics_page(cx.store(), days=days, round=round or None)
    return cx.page(request, "statistics.html", "Statistik", s=data, days=days, round=round,
                   params={"days": days, "round": round}, runs=views.runs(cx.store(), limit=30),
                   md=views.merit_delivery(cx.store()))


@router.get("/statistics.csv")
def statistics_csv(table: str = "daily", days: int = Query(30, ge=7, le=366), round: str | None = None,
                   cx: Console = Depends(console)) -> Response:
    body = charts.csv_table(cx.store(), table, days=days, round=round or None)
    if body is None:
        raise HTTPException(404, "unknown table")
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="brygga-statistik-{table}.csv"'})
