"""Schemaexport: what Brygga has exported to each scheduling system, its outbox batches and runs,
and the plans the guard against mass removal holds — each approved (its removals go to the
outbox, and a delta run is started to send them) or rejected with a note. Audited."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from adapters.schema import ScheduleAdapter
from brygga.console.context import ActionError, Console, console
from brygga.flows.schedule import guard
from brygga.store.models import SchedulePlan, utcnow
from brygga.views.schedule import PLAN_TEXT, schedule_state

router = APIRouter()
DAG = "brygga_schedule_export"


@router.get("/schedule", response_class=HTMLResponse)
def schedule(request: Request, cx: Console = Depends(console)) -> HTMLResponse:
    return cx.page(request, "schedule.html", "Schemaexport", st=schedule_state(cx.store()))


def _held(cx: Console, plan_id: int) -> str:
    with cx.store().transaction() as s:
        p = s.get(SchedulePlan, plan_id)
        if p is None:
            raise ActionError("planen finns inte")
        if p.status != "held":
            raise ActionError(f"planen är redan {PLAN_TEXT.get(p.status, p.status)}")
        return p.target


@router.post("/schedule/plans/{plan_id}/approve")
def approve(request: Request, plan_id: int, csrf: str = Form(""), cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "schedule", csrf)

    def run() -> str:
        with cx.once(f"schedule-plan:{plan_id}"):
            target = _held(cx, plan_id)
            out = guard.decide(cx.store(), ScheduleAdapter(cx.peer("schema"), format=target), plan_id, approve=True,
                               actor=me.name)
        text = f"Godkänd: {out.get('enqueued', 0)} objekt tas bort eller inaktiveras i {target}"
        if out.get("skipped"):
            text += f" ({out['skipped']} hade ändrats sedan och lämnas)"
        try:
            cx.trigger(DAG, f"manual__brygga_plan_{plan_id}_{utcnow():%Y%m%dT%H%M%S}",
                       {"mode": "delta", "format": target}, me.name)
            return text + "; en körning skickar dem nu."
        except ActionError:
            return text + "; nästa körning skickar dem."
    return cx.act(request, "/schedule", run)


@router.post("/schedule/plans/{plan_id}/reject")
def reject(request: Request, plan_id: int, csrf: str = Form(""), note: str = Form(""),
           cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "schedule", csrf)

    def run() -> str:
        if not note.strip():
            raise ActionError("skriv varför borttagningarna avvisas")
        with cx.once(f"schedule-plan:{plan_id}"):
            target = _held(cx, plan_id)
            guard.decide(cx.store(), ScheduleAdapter(cx.peer("schema"), format=target), plan_id, approve=False,
                         actor=me.name, note=note.strip()[:500])
        return "Avvisad: inget tas bort; nästa hela körning prövar omfattningen igen."
    return cx.act(request, "/schedule", run)
