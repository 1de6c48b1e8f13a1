"""Översikt: each flow's last run, what waits and what was set aside, certificates close to expiry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from brygga import views
from brygga.console.context import DAG_IDS, Console, console, safe
from brygga.flows.merits.rules import FLOW as MERITS

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, cx: Console = Depends(console)) -> HTMLResponse:
    store, af = cx.store(), cx.airflow
    o = views.overview(store)
    runs = safe(lambda: af.dag_runs(list(DAG_IDS)) if af.dag_runs else None)
    merit = next((c for c in views.checkpoints(store) if c["name"] == MERITS.checkpoint()), None)
    head = safe(lambda: af.feed_head() if af.feed_head else None)
    certs = [c for c in (safe(lambda: af.certificates() if af.certificates else None) or [])
             if c.get("level") not in (None, "ok")]
    return cx.page(request, "overview.html", "Översikt", o=o, runs=runs, dag_ids=DAG_IDS, merit=merit, head=head,
                   pending=views.pending_per_round(store), dead=views.dead_letters(store), certs=certs,
                   md=views.merit_delivery(store),
                   certs_known=af.certificates is not None)


@router.get("/api/overview")
def api_overview(cx: Console = Depends(console)) -> dict[str, Any]:
    return views.overview(cx.store())
