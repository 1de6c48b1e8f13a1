"""Var är studenten? One person's records across every flow (``brygga.views.trace``): searched by
personnummer (posted; the page it lands on carries it only encrypted, as the Loggbok's search) or
by a Ladok uid or NyA admission id."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from brygga.console.context import Console, console
from brygga.console.forms import root
from brygga.console.security import Principal
from brygga.flows.kit import outbox
from brygga.personnummer import canonical, mask
from brygga.views.trace import find_person, trace

router = APIRouter()


@router.get("/trace", response_class=HTMLResponse)
def page(request: Request, cx: Console = Depends(console)) -> HTMLResponse:
    q = request.query_params
    person, searched = None, None
    if q.get("person"):
        person = cx.tokens.unperson(q["person"])
        searched = mask(person) if person else "(en länk som inte längre gäller)"
    elif q.get("id"):
        searched = q["id"][:100]
        person = find_person(cx.store(), searched)
    t = trace(cx.store(), person) if person else None
    back = f"/trace?person={quote(q['person'])}" if q.get("person") else f"/trace?id={quote(q.get('id', '')[:100])}"
    return cx.page(request, "trace.html", "Var är studenten?", t=t, searched=searched,
                   shown=mask(person) if person else None, back=back)


@router.post("/trace/messages/{message_id}/resend")
def resend(request: Request, message_id: int, csrf: str = Form(""), note: str = Form(""), back: str = Form(""),
           cx: Console = Depends(console)) -> RedirectResponse:
    """Skicka om: one outbox message sent again, as it was (``brygga.flows.kit.outbox.resend``)."""
    me = cx.allowed(request, "quarantine", csrf)
    back = back if back.startswith("/trace?") and "\n" not in back else "/trace"

    def run() -> str:
        r = outbox.resend(cx.store(), message_id, actor=me.name, note=note)
        return "Meddelandet väntar redan på att skickas." if r["already"] else \
            "Meddelandet skickas om vid flödets nästa körning."
    return cx.act(request, back, run)


@router.post("/trace")
def search(request: Request, csrf: str = Form(""), what: str = Form(""), cx: Console = Depends(console)) -> RedirectResponse:
    me: Principal = request.state.principal
    cx.tokens.check_csrf(me, csrf)
    what = what.strip()
    if not what:
        return cx.done(request, "/trace", False, "Skriv ett personnummer, ett Ladok-uid eller ett antagnings-id från NyA.")
    try:
        pnr = canonical(what)
    except ValueError:
        if any(c.isdigit() for c in what) and len(what.replace("-", "")) in (10, 12) and what.replace("-", "").isdigit():
            return cx.done(request, "/trace", False, "Det är inte ett giltigt personnummer.")
        return RedirectResponse(f"{root(request)}/trace?id={quote(what[:100])}", status_code=303)
    return RedirectResponse(f"{root(request)}/trace?person={cx.tokens.person(pnr)}", status_code=303)
