"""Avstämning: where NyA and Ladok disagree (the nightly reconciliation), each drift with the action
that repairs it — the flows' own functions — or dismissed with a note; its CSV; the runs."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from sqlalchemy.orm import Session

from adapters.ladok import LadokAdapter
from brygga import views
from brygga.console.context import ActionError, Console, console
from brygga.flows.admissions import conditions, review
from brygga.flows.aterbud import cases as case_flow
from brygga.flows.aterbud import to_nya
from brygga.flows.merits import repairs
from brygga.personnummer import mask
from brygga.states import DriftAction, Hinder
from brygga.store import Store, ops
from brygga.store.models import Drift, utcnow

router = APIRouter()


@router.get("/reconciliation", response_class=HTMLResponse)
def reconciliation(request: Request, status: str = "open", kind: str | None = None, round: str | None = None,
                   limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
                   cx: Console = Depends(console)) -> HTMLResponse:
    store = cx.store()
    d = views.list_drift(store, status=None if status == "all" else status, kind=kind or None, round=round or None,
                         limit=limit, offset=offset)
    params = {"status": status, "kind": kind, "round": round, "limit": limit}
    return cx.page(request, "reconciliation.html", "Avstämning", d=d, params=params, runs=views.runs(store, limit=10))


@router.get("/reconciliation.csv")
def reconciliation_csv(status: str = "open", kind: str | None = None, round: str | None = None,
                       cx: Console = Depends(console)) -> StreamingResponse:
    cols = ["id", "round", "kind", "kind_text", "subject", "personnummer", "action_text", "status", "found_at",
            "last_seen_at", "resolved_by", "detail"]

    def rows() -> Iterator[str]:
        yield _line(cols)
        for r in views.iter_drift(cx.store(), status=None if status == "all" else status, kind=kind or None,
                                  round=round or None):
            yield _line([r[c] for c in cols])
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="brygga-avstamning.csv"'})


def _line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if v is None else mask(str(v)) for v in values])
    return buf.getvalue()


@router.post("/reconciliation/{drift_id}/repair")
def repair(request: Request, drift_id: int, csrf: str = Form(""), cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "reconciliation", csrf)

    def run() -> str:
        with cx.once(f"drift:{drift_id}"):
            d = _open(cx.store(), drift_id)
            text = REPAIRS[d.action](cx, d, me.name)
            _close(cx.store(), drift_id, "repaired", me.name, text)
        return text
    return cx.act(request, "/reconciliation", run)


@router.post("/reconciliation/{drift_id}/dismiss")
def dismiss(request: Request, drift_id: int, csrf: str = Form(""), note: str = Form(""),
            cx: Console = Depends(console)) -> RedirectResponse:
    me = cx.allowed(request, "reconciliation", csrf)

    def run() -> str:
        if not note.strip():
            raise ActionError("skriv varför avvikelsen lämnas")
        _open(cx.store(), drift_id)
        _close(cx.store(), drift_id, "dismissed", me.name, note.strip())
        return "Avvikelsen är lämnad."
    return cx.act(request, "/reconciliation", run)


def _open(store: Store, drift_id: int) -> Drift:
    with store.transaction() as s:
        d = s.get(Drift, drift_id)
        if d is None:
            raise HTTPException(404, "Avvikelsen finns inte")
        if d.status != "open":
            raise ActionError(f"avvikelsen är redan {d.status}")
        s.expunge(d)
        return d


def _close(store: Store, drift_id: int, status: str, actor: str, note: str) -> None:
    with store.transaction() as s:
        d = ops.one(s, Drift, drift_id, with_for_update=True)
        d.status, d.resolved_at, d.resolved_by, d.note = status, utcnow(), actor, note[:2000]
        _audit(s, actor, f"drift.{status}", d, note)


def _audit(s: Session, actor: str, action: str, d: Drift, note: str) -> None:
    ops.audit(s, actor, action, "drift", str(d.id), kind=d.kind, subject=d.subject, action_taken=d.action, note=note)


# --- the repairs: one flow function each -------------------------------------------------------
def _place_again(cx: Console, d: Drift, actor: str) -> str:
    review.place_again(cx.store(), d.subject, actor=actor, why="saknades i Ladok vid avstämningen")
    return "Antagningen placeras igen vid nästa import."


def _ompröva(cx: Console, d: Drift, actor: str) -> str:
    review.to_queue(cx.store(), d.subject, actor=actor, hinder=Hinder.KUNDE_INTE_PLACERAS_I_PLAN,
                    reason=f"placerad i kurspaketering {d.detail.get('ladok_package')}, NyA anger "
                           f"{d.detail.get('nya_package')}: ompröva i rätt kurspaketering")
    return "Antagningen ligger i kön: ompröva den i NyA:s kurspaketering."


def _open_case(cx: Console, d: Drift, actor: str) -> str:
    c = case_flow.open_for_drift(cx.store(), drift_id=d.id, admission_id=d.subject, round_code=d.round,
                                 personnummer=d.personnummer, reported_at=d.detail.get("nya_aterbud"),
                                 antagning_uid=d.detail.get("antagning_uid"), tillfalle_uid=d.detail.get("offer_id"),
                                 education=f"{d.detail.get('utbildningskod')} {d.detail.get('tillfalleskod')}",
                                 actor=actor)
    return f"Återbudsärende {c['id']} är öppnat."


def _report_aterbud(cx: Console, d: Drift, actor: str) -> str:
    to_nya.report_for_drift(cx.store(), drift_id=d.id, admission_id=d.subject,
                            date=d.detail.get("ladok_aterbud") or utcnow().date().isoformat(),
                            antagning_uid=d.detail.get("antagning_uid"), actor=actor)
    return "Återbudet skickas till NyA."


def _sync_villkor(cx: Console, d: Drift, actor: str) -> str:
    r = conditions.align_villkor(cx.store(), LadokAdapter(cx.peer("ladok")), d.subject,
                                 open_in_nya=list(d.detail.get("nya") or []), actor=actor)
    return f"Villkoren i Ladok: lagt till {', '.join(r['added']) or 'inget'}, lyft {', '.join(r['lifted']) or 'inget'}."


def _send_merit(cx: Console, d: Drift, actor: str) -> str:
    r = repairs.send_again(cx.store(), [d.subject], actor=actor, why=d.kind)
    if not r.get("queued"):
        raise ActionError("meriten finns inte längre i Ladok enligt Brygga")
    return "Meriten skickas till NyA igen."


def _withdraw_merit(cx: Console, d: Drift, actor: str) -> str:
    repairs.withdraw(cx.store(), [d.subject], actor=actor, why=d.kind)
    return "Meriten dras tillbaka i NyA."


REPAIRS: dict[str, Callable[[Console, Drift, str], str]] = {
    DriftAction.PLACE_AGAIN: _place_again, DriftAction.OMPROVA: _ompröva, DriftAction.OPEN_CASE: _open_case,
    DriftAction.REPORT_ATERBUD: _report_aterbud, DriftAction.SYNC_VILLKOR: _sync_villkor,
    DriftAction.SEND_MERIT: _send_merit, DriftAction.WITHDRAW_MERIT: _withdraw_merit,
}
