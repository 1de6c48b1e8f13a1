"""Ej hanterade antagningar: the queue (sorted, filtered), one admission, and what officers do with
them: ompröva (in a chosen package, or as it is), place free-standing, mark handled, ompröva a
filtered set as a run of the review DAG."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from adapters.folkbokforing import FolkbokforingAdapter
from adapters.ladok import LadokAdapter
from brygga import views
from brygga.console.context import ActionError, Console, console, flag
from brygga.console.forms import int_or_none
from brygga.console.forms import nonce as form_nonce
from brygga.flows import admissions

router = APIRouter()

QUEUE_FILTERS = ("round", "hinder", "status", "instance", "programme", "older_than_days")
LIMIT = Query(views.DEFAULT_LIMIT, ge=1, le=views.MAX_LIMIT)


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    status = q.get("status", "open")
    return {"round": q.get("round") or None, "hinder": q.get("hinder") or None,
            "status": None if status == "all" else status or "open", "instance": q.get("instance") or None,
            "programme": q.get("programme") or None, "older_than_days": int_or_none(q.get("older_than_days"))}


@router.get("/unhandled-admissions", response_class=HTMLResponse)
def unhandled(request: Request, sort: str = "age", desc: str | None = None, limit: int = Query(50, ge=1, le=500),
              offset: int = Query(0, ge=0), cx: Console = Depends(console)) -> HTMLResponse:
    f = _filters(request)
    d = views.unhandled_page(cx.store(), sort=sort if sort in views.QUEUE_SORTS else "age", desc=bool(flag(desc)),
                             limit=limit, offset=offset, **f)
    params = {k: request.query_params.get(k) for k in (*QUEUE_FILTERS, "sort", "desc", "limit")}
    return cx.page(request, "unhandled.html", "Ej hanterade antagningar", d=d, f=f, params=params,
                   status_param=request.query_params.get("status", "open"), bulk_max=views.BULK_MAX)


@router.get("/unhandled-admissions/{admission_id}", response_class=HTMLResponse)
def admission(request: Request, admission_id: str, cx: Console = Depends(console)) -> HTMLResponse:
    d = views.admission_detail(cx.store(), admission_id)
    if d is None:
        raise HTTPException(404, "Antagningen finns inte i kön")
    return cx.page(request, "admission.html", f"Antagning {admission_id}", d=d, e=d["entry"])


@router.post("/unhandled-admissions/{admission_id}/omprova")
def omprova(request: Request, admission_id: str, csrf: str = Form(""), choice: str = Form(""),
            cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "admissions", csrf)

    def run() -> str:
        package = choice[len("package:"):] if choice.startswith("package:") else None
        detail = views.admission_detail(cx.store(), admission_id)
        if package and detail and package not in {c["package_uid"] for c in detail["entry"]["candidates"]}:
            raise ActionError("kurspaketeringen är inte en av antagningens kandidater")
        with cx.once(f"admission:{admission_id}"):
            r = admissions.retry(cx.store(), LadokAdapter(cx.peer("ladok")), FolkbokforingAdapter(cx.peer("folkbokforing")),
                                 admission_id, actor=me.name, package_uid=package, fristaende=choice == "fristaende")
        if r["outcome"] in ("placed", "handled"):
            return "Antagningen är placerad i Ladok" + (" (redan gjort)" if r.get("already") else "") + "."
        raise ActionError(f"Ladok kunde fortfarande inte placera antagningen: {r.get('reason')}")
    return cx.act(request, f"/unhandled-admissions/{admission_id}", run)


@router.post("/unhandled-admissions/{admission_id}/handled")
def handled(request: Request, admission_id: str, csrf: str = Form(""), note: str = Form(""),
            cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "admissions", csrf)

    def run() -> str:
        if not note.strip():
            raise ActionError("skriv en anteckning om vad som gjordes i Ladok")
        with cx.once(f"admission:{admission_id}"):
            r = admissions.mark_handled(cx.store(), admission_id, actor=me.name, note=note.strip())
        return "Markerad som hanterad" + (" (redan gjort)." if r.get("already") else ".")
    return cx.act(request, f"/unhandled-admissions/{admission_id}", run)


@router.post("/unhandled-admissions/bulk-omprova")
def bulk(request: Request, csrf: str = Form(""), nonce: str = Form(""), round: str = Form(""),
         hinder: str = Form(""), status: str = Form("open"), instance: str = Form(""), programme: str = Form(""),
         older_than_days: str = Form(""), cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "admissions", csrf)
    f = {"round": round or None, "hinder": hinder or None, "status": status or "open", "instance": instance or None,
         "programme": programme or None, "older_than_days": int_or_none(older_than_days)}

    def run() -> str:
        if cx.airflow.trigger is None:
            raise ActionError("Airflow kan inte starta körningar härifrån")
        if f["status"] != "open":
            raise ActionError("bara öppna antagningar kan omprövas")
        ids, total = views.queue_ids(cx.store(), **f)
        if not ids:
            raise ActionError("inga antagningar matchar urvalet")
        run_id = f"console__omprova__{form_nonce(nonce)}"
        state = cx.trigger("brygga_admission_review", run_id, {"admission_ids": ids, "action": "ompröva",
                                                               "package_uid": "", "note": "massomprövning"}, me.name)
        if state == "created":
            cx.audit(me.name, "console.bulk_retry", "dag_run", run_id, count=len(ids), filters=f)
        more = f" (de {len(ids)} äldsta av {total})" if total > len(ids) else ""
        return (f"Omprövning av {len(ids)} antagningar{more} startad som körning {run_id} av "
                f"brygga_admission_review" if state == "created" else f"Körningen {run_id} är redan startad")
    return cx.act(request, "/unhandled-admissions", run)


@router.get("/api/unhandled-admissions")
def api_unhandled(round: str | None = None, hinder: str | None = None, status: str | None = None,
                  limit: int = LIMIT, offset: int = Query(0, ge=0), cx: Console = Depends(console)) -> dict[str, Any]:
    return views.list_unhandled(cx.store(), round=round, hinder=hinder, status=status, limit=limit, offset=offset)


@router.get("/api/unhandled-admissions/{admission_id}")
def api_admission(admission_id: str, cx: Console = Depends(console)) -> dict[str, Any]:
    d = views.admission_detail(cx.store(), admission_id)
    if d is None:
        raise HTTPException(404, "no such admission in the queue")
    return d
