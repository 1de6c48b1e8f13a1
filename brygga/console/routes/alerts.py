"""Bevakningar: who is told when a kind of trouble starts and ends (``brygga/flows/alerts``):
every subscription with its open episode, added or changed by an operator (audited)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from brygga.console.context import ActionError, Console, console
from brygga.flows import alerts

router = APIRouter()


@router.get("/alerts", response_class=HTMLResponse)
def page(request: Request, cx: Console = Depends(console)) -> HTMLResponse:
    return cx.page(request, "alerts.html", "Bevakningar", subs=alerts.subscriptions(cx.store()), kinds=alerts.KINDS)


def _number(value: str, what: str) -> float | None:
    value = value.strip().replace(",", ".")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ActionError(f"{what}: ett tal") from None


def _save(request: Request, cx: Console, csrf: str, kind: str, threshold: str, for_minutes: str, recipients: str,
          enabled: bool, subscription_id: int | None, organisation: str = "") -> RedirectResponse:
    me = cx.allowed(request, "alerts", csrf)

    def run() -> str:
        minutes = _number(for_minutes, "minuter")
        try:
            sid = alerts.subscribe(cx.store(), kind, recipients.replace(";", ",").split(","),
                                   threshold=_number(threshold, "gräns"), for_minutes=None if minutes is None else int(minutes),
                                   actor=me.name, subscription_id=subscription_id, enabled=enabled,
                                   organisation=organisation)
        except (ValueError, LookupError) as e:
            raise ActionError(str(e)) from None
        title = alerts.KINDS[kind].title
        return f"Bevakning {sid} ({title}) sparad" + ("" if enabled else ", avstängd") + "."
    return cx.act(request, "/alerts", run)


@router.post("/alerts")
def add(request: Request, csrf: str = Form(""), kind: str = Form(""), threshold: str = Form(""),
        for_minutes: str = Form(""), recipients: str = Form(""), organisation: str = Form(""),
        cx: Console = Depends(console)) -> RedirectResponse:
    return _save(request, cx, csrf, kind, threshold, for_minutes, recipients, True, None, organisation)


@router.post("/alerts/{subscription_id}")
def change(request: Request, subscription_id: int, csrf: str = Form(""), kind: str = Form(""),
           threshold: str = Form(""), for_minutes: str = Form(""), recipients: str = Form(""),
           enabled: str = Form(""), organisation: str = Form(""), cx: Console = Depends(console)) -> RedirectResponse:
    return _save(request, cx, csrf, kind, threshold, for_minutes, recipients, enabled == "on", subscription_id,
                 organisation)
