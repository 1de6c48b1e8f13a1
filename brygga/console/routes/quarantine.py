"""Karantän: every open row with its reason; retry (a message given up on goes back to the outbox)
and dismiss with a note."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from brygga import views
from brygga.console.context import ActionError, Console, console, flag
from brygga.flows import checkpoints as cp_flow

router = APIRouter()
LIMIT = Query(views.DEFAULT_LIMIT, ge=1, le=views.MAX_LIMIT)


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine(request: Request, source: str | None = None, kind: str | None = None, all: str | None = None,
               limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
               cx: Console = Depends(console)) -> HTMLResponse:
    store = cx.store()
    pg = views.list_quarantine(store, open_only=not flag(all), source=source or None, kind=kind or None,
                               limit=limit, offset=offset)
    retry = cp_flow.retryable(store, [r["id"] for r in pg.rows if not r["released_at"]])
    params = {"source": source, "kind": kind, "all": all, "limit": limit}
    return cx.page(request, "quarantine.html", "Karantän", pg=pg, retry=retry, params=params,
                   sources=views.quarantine_counts(store))


@router.post("/quarantine/{quarantine_id}/retry")
def q_retry(request: Request, quarantine_id: int, csrf: str = Form(""), note: str = Form(""),
            cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "quarantine", csrf)

    def run() -> str:
        r = cp_flow.retry(cx.store(), quarantine_id, actor=me.name, note=note.strip())
        return "Redan hanterad." if r.get("already") else "Meddelandet skickas igen vid flödets nästa körning."
    return cx.act(request, "/quarantine", run)


@router.post("/quarantine/{quarantine_id}/dismiss")
def q_dismiss(request: Request, quarantine_id: int, csrf: str = Form(""), note: str = Form(""),
              cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "quarantine", csrf)

    def run() -> str:
        if not note.strip():
            raise ActionError("skriv en anteckning om varför raden avfärdas")
        r = cp_flow.release(cx.store(), quarantine_id, actor=me.name, note=note.strip())
        return "Redan avfärdad." if r.get("already") else "Raden är avfärdad."
    return cx.act(request, "/quarantine", run)


@router.get("/api/quarantine")
def api_quarantine(source: str | None = None, kind: str | None = None, all: str | None = None,
                   limit: int = LIMIT, offset: int = Query(0, ge=0), cx: Console = Depends(console)) -> dict[str, Any]:
    return views.list_quarantine(cx.store(), open_only=not flag(all), source=source, kind=kind, limit=limit,
                                 offset=offset).__dict__
