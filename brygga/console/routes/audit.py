"""Loggbok: the audit trail searched (by person too: the personnummer is posted, and the page it
lands on carries it only encrypted), and its CSV with local times and their offset."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from brygga import views
from brygga.console.context import Console, console, day_start
from brygga.console.forms import root
from brygga.console.render import detail_text, to_local
from brygga.console.security import Principal, Tokens
from brygga.personnummer import canonical, mask

router = APIRouter()


def _filters(request: Request, tokens: Tokens) -> tuple[dict[str, Any], str | None]:
    q = request.query_params
    person = tokens.unperson(q["person"]) if q.get("person") else None
    f = {"actor": q.get("actor") or None, "action": q.get("action") or None, "object_type": q.get("object_type") or None,
         "object_id": q.get("object_id") or None, "since": day_start(q.get("since")),
         "until": day_start(q.get("until"), end=True), "personnummer": person}
    if q.get("person") and person is None:
        f["personnummer"] = "-"  # an expired or forged token matches nobody
    return f, (mask(person) if person else None)


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
          cx: Console = Depends(console)) -> HTMLResponse:
    f, shown = _filters(request, cx.tokens)
    d = views.search_audit(cx.store(), limit=limit, offset=offset, **f)
    params = {k: request.query_params.get(k) for k in ("actor", "action", "object_type", "object_id", "since",
                                                         "until", "person")}
    return cx.page(request, "audit.html", "Loggbok", d=d, params=params, person=shown, objects=views.AUDIT_OBJECTS,
                   limit=limit)


@router.get("/audit.csv")
def audit_csv(request: Request, cx: Console = Depends(console)) -> StreamingResponse:
    f, _ = _filters(request, cx.tokens)
    cols = ["at", "actor", "action", "object_type", "object_id", "detail"]

    def rows() -> Iterator[str]:
        yield _csv_line(cols)
        for r in views.iter_audit(cx.store(), **f):
            yield _csv_line([_local_iso(r["at"]), r["actor"], r["action"], r["object_type"], r["object_id"],
                             r["detail"]])
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="brygga-loggbok.csv"'})


@router.post("/audit")
def audit_person(request: Request, csrf: str = Form(""), personnummer: str = Form(""),
                 cx: Console = Depends(console)) -> RedirectResponse:
    me: Principal = request.state.principal
    cx.tokens.check_csrf(me, csrf)
    try:
        pnr = canonical(personnummer.strip())
    except ValueError:
        return cx.done(request, "/audit", False, "Det är inte ett giltigt personnummer.")
    return RedirectResponse(f"{root(request)}/audit?person={cx.tokens.person(pnr)}", status_code=303)


def _csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if v is None else mask(v if isinstance(v, str) else _csv_value(v)) for v in values])
    return buf.getvalue()


def _csv_value(v: Any) -> str:
    return detail_text(v) if isinstance(v, dict) else str(v)


def _local_iso(v: Any) -> str:
    """A time for the CSV: ISO 8601 in Stockholm time, with its offset."""
    t = to_local(v)
    return t.isoformat(timespec="seconds") if isinstance(t, dt.datetime) else "" if t is None else str(t)
