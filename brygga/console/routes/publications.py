"""Utbud till NyA: the publications, one publication's plan with its field diffs, and Publicera (a
dry run's plan published exactly, as a run of the offer export triggered as the user)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from brygga import views
from brygga.console.context import ActionError, Console, console, flag
from brygga.flows.offers import publish_conf

router = APIRouter()
LIMIT = Query(views.DEFAULT_LIMIT, ge=1, le=views.MAX_LIMIT)


@router.get("/publications", response_class=HTMLResponse)
def publications(request: Request, round: str | None = None, kind: str | None = None,
                 status: str | None = None, dry_run: str | None = None, limit: int = Query(50, ge=1, le=500),
                 offset: int = Query(0, ge=0), cx: Console = Depends(console)) -> HTMLResponse:
    pg = views.list_publications(cx.store(), round=round or None, kind=kind or None, status=status or None,
                                 dry_run=flag(dry_run), limit=limit, offset=offset)
    params = {"round": round, "kind": kind, "status": status, "dry_run": dry_run, "limit": limit}
    return cx.page(request, "publications.html", "Utbud till NyA", pg=pg, params=params)


@router.get("/publications/{publication_id}", response_class=HTMLResponse)
def publication(request: Request, publication_id: int, action: str | None = None, status: str | None = None,
                limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                cx: Console = Depends(console)) -> HTMLResponse:
    store = cx.store()
    d = views.publication_detail(store, publication_id, action=action or None, status=status or None,
                                 limit=limit, offset=offset)
    if d is None:
        raise HTTPException(404, "Publiceringen finns inte")
    diff = views.publication_diff(store, publication_id)
    params = {"action": action, "status": status, "limit": limit}
    return cx.page(request, "publication.html", f"Publicering #{publication_id}", d=d, p=d["publication"],
                   diff=diff, params=params)


@router.post("/publications/{publication_id}/publish")
def publish(request: Request, publication_id: int, csrf: str = Form(""),
            cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "offers", csrf)

    def run() -> str:
        if cx.airflow.trigger is None:
            raise ActionError("Airflow kan inte starta körningar härifrån")
        conf = publish_conf(cx.store(), publication_id)
        run_id = f"console__publicera__{publication_id}"
        state = cx.trigger("brygga_offer_export", run_id, conf, me.name)
        if state == "created":
            cx.audit(me.name, "console.publish", "publication", str(publication_id), run_id=run_id)
            return f"Publiceringen av planen är startad som körning {run_id} av brygga_offer_export."
        return f"Planen är redan publicerad ({run_id})."
    return cx.act(request, f"/publications/{publication_id}", run)


@router.get("/api/publications")
def api_publications(round: str | None = None, kind: str | None = None, status: str | None = None,
                     dry_run: str | None = None, triggered_by: str | None = None, limit: int = LIMIT,
                     offset: int = Query(0, ge=0), cx: Console = Depends(console)) -> dict[str, Any]:
    return views.list_publications(cx.store(), round=round, kind=kind, status=status, dry_run=flag(dry_run),
                                   triggered_by=triggered_by, limit=limit, offset=offset).__dict__


@router.get("/api/publications/{publication_id}")
def api_publication(publication_id: int, action: str | None = None, status: str | None = None,
                    limit: int = LIMIT, offset: int = Query(0, ge=0), cx: Console = Depends(console)) -> dict[str, Any]:
    d = views.publication_detail(cx.store(), publication_id, action=action, status=status, limit=limit,
                                 offset=offset)
    if d is None:
        raise HTTPException(404, f"no publication {publication_id}")
    return {**d, "diff": views.publication_diff(cx.store(), publication_id)}
