"""Karantän: every open row with its reason; retry (a message given up on goes back to the outbox)
and dismiss with a note."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from adapters.ladok import LadokAdapter
from brygga import views
from brygga.console.context import ActionError, Console, console, flag
from brygga.flows import checkpoints as cp_flow

router = APIRouter()
LOCAL = ZoneInfo("Europe/Stockholm")
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
    points = [{**c, "replayable": c["name"] in cp_flow.REPLAYABLE or c["name"].startswith(cp_flow.NYA_STREAMS)}
              for c in views.checkpoints(store)]
    return cx.page(request, "quarantine.html", "Karantän", pg=pg, retry=retry, params=params,
                   sources=views.quarantine_counts(store), checkpoints=points)


@router.post("/checkpoints/replay")
def replay(request: Request, csrf: str = Form(""), name: str = Form(""), since: str = Form(""),
           reason: str = Form(""), dry_run: str = Form(""), cx: Console = Depends(console)) -> RedirectResponse:
    """Läs om sedan en tidpunkt: a Ladok feed follower (the page found by its events' times) or a
    NyA stream (from where it stood then); a dry run says what it would do."""
    me = cx.allowed(request, "quarantine", csrf)

    def run() -> str:
        try:
            when = dt.datetime.fromisoformat(since.strip())
        except ValueError:
            raise ActionError("sedan: en tidpunkt (2027-08-20 14:00)") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=LOCAL)  # the form's datetime-local: Swedish time
        if name.startswith(cp_flow.NYA_STREAMS):
            r = cp_flow.replay_sequence_since(cx.store(), name, when, actor=me.name, reason=reason, dry_run=bool(dry_run))
            where = "strömmens början" if r["from_start"] else f"sekvens {r['position']}"
            held = f"; Brygga har {r['held_from_there']} av omgångens antagningar därifrån" if "held_from_there" in r else ""
            if dry_run:
                return f"Provkörning: {name} läses om från {where} (står nu på {r['current']}){held}."
            return f"{name} läses om från {where} vid nästa körning."
        r = cp_flow.replay_since(cx.store(), LadokAdapter(cx.peer("ladok")), name, when, actor=me.name, reason=reason,
                                 dry_run=bool(dry_run))
        if dry_run:
            return (f"Provkörning: {name} läses om från sida {r['page']}: {r['events']} händelser sedan dess, "
                    f"{r['to_handle']} att hantera" + (f", {r['already_handled']} redan hanterade" if
                                                       r.get("already_handled") is not None else "") + ".")
        return f"{name} läses om från sida {r['page']} vid nästa körning."
    return cx.act(request, "/quarantine", run)


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
