"""Återbudsärenden: the list, one case with its history, carrying out its suggested action in
Ladok, closing it with a note."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from adapters.ladok import LadokAdapter
from brygga import views
from brygga.console.context import ActionError, Console, console
from brygga.flows.aterbud import cases as case_flow

router = APIRouter()
LIMIT = Query(views.DEFAULT_LIMIT, ge=1, le=views.MAX_LIMIT)


@router.get("/aterbud-cases", response_class=HTMLResponse)
def cases(request: Request, status: str = "open", round: str | None = None, cause: str | None = None,
          limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
          cx: Console = Depends(console)) -> HTMLResponse:
    d = views.list_aterbud(cx.store(), status=None if status == "all" else status, round=round or None,
                           cause=cause or None, limit=limit, offset=offset)
    params = {"status": status, "round": round, "cause": cause, "limit": limit}
    return cx.page(request, "cases.html", "Återbudsärenden", d=d, params=params)


@router.get("/aterbud-cases/{case_id}", response_class=HTMLResponse)
def case(request: Request, case_id: int, cx: Console = Depends(console)) -> HTMLResponse:
    c = views.get_case(cx.store(), case_id)
    if c is None:
        raise HTTPException(404, "Ärendet finns inte")
    history = views.search_audit(cx.store(), object_type="aterbud_case", object_id=str(case_id), limit=200)
    return cx.page(request, "case.html", f"Återbudsärende {case_id}", c=c, history=history["rows"])


@router.post("/aterbud-cases/{case_id}/apply")
def apply(request: Request, case_id: int, csrf: str = Form(""), note: str = Form(""),
          cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "cases", csrf)

    def run() -> str:
        with cx.once(f"case:{case_id}"):
            r = case_flow.apply_case(cx.store(), LadokAdapter(cx.peer("ladok")), case_id, actor=me.name,
                                     note=note.strip())
        if r.get("result") == "already closed":
            return "Ärendet var redan avslutat."
        if r.get("status") != "closed":
            return f"Ladok: {r.get('result')}"
        return "Föreslagen åtgärd utförd i Ladok och ärendet avslutat."
    return cx.act(request, f"/aterbud-cases/{case_id}", run)


@router.post("/aterbud-cases/{case_id}/close")
def close(request: Request, case_id: int, csrf: str = Form(""), note: str = Form(""),
          cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "cases", csrf)

    def run() -> str:
        if not note.strip():
            raise ActionError("skriv en anteckning om hur ärendet hanterades")
        case_flow.close_case(cx.store(), case_id, actor=me.name, note=note.strip())
        return "Ärendet är avslutat."
    return cx.act(request, f"/aterbud-cases/{case_id}", run)


@router.get("/api/aterbud-cases")
def api_aterbud(status: str | None = None, round: str | None = None, limit: int = LIMIT,
                offset: int = Query(0, ge=0), cx: Console = Depends(console)) -> dict[str, Any]:
    return views.list_aterbud(cx.store(), status=status, round=round, limit=limit, offset=offset)
