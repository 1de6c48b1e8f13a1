"""The console's FastAPI app: pages (Jinja2 templates), actions (POST, then a redirect back), the
JSON API and CSV exports. No business rule lives here: an action calls the flow function the CLI
and the review DAGs call, with the logged-in Airflow user as the actor.

What Airflow provides is passed in (``plugins/brygga_ops.py``; tests pass their own): the
authentication (``authenticate(request) -> Principal``), the peers' settings (for the actions that
talk to Ladok), triggering a DAG run as the user, the flows' last runs, and the secret the CSRF and
person tokens derive from.
"""

from __future__ import annotations

import csv
import datetime as dt
import inspect
import io
import threading
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from brygga import views
from brygga.connections import PeerConfig
from brygga.console import actions, queries
from brygga.console.actions import ActionError
from brygga.console.forms import int_or_none, root
from brygga.console.render import LOCAL, render, to_local
from brygga.console.security import Forbidden, Principal, Tokens, Unauthenticated
from brygga.personnummer import mask
from brygga.store import Store

TITLE = "Brygga operations"
DAG_IDS = ("brygga_offer_export", "brygga_merit_sync", "brygga_admission_import", "brygga_admission_review",
           "brygga_aterbud", "brygga_aterbud_cases", "brygga_schedule_export", "brygga_archive_export",
           "brygga_retention", "brygga_healthcheck")
STATIC = Path(__file__).parent / "static"


@dataclass
class Airflow:
    """What the console gets from Airflow (all optional: a page shows what it lacks)."""

    peer: Callable[[str], PeerConfig] | None = None
    trigger: Callable[[str, str, dict[str, Any], str], str] | None = None  # -> "created" | "exists"
    dag_runs: Callable[[list[str]], dict[str, dict[str, Any]]] | None = None
    ui_url: str = ""  # Airflow's UI, for links to DAG runs
    certificates: Callable[[], list[dict[str, Any]]] | None = None
    feed_head: Callable[[], int | None] | None = None


def create_app(store: Callable[[], Store] | Store, authenticate: Callable[[Any], Awaitable[Any] | Any], *,
               secret: bytes | str, airflow: Airflow | None = None, root_path: str = "") -> Any:
    the_store = store if callable(store) and not isinstance(store, Store) else (lambda: store)
    af = airflow or Airflow()
    tokens = Tokens(secret)
    locks = [threading.Lock() for _ in range(64)]

    async def principal(request: Request) -> Principal:
        result = authenticate(request)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, str):  # an authenticator that only names the user: read-only
            result = Principal(result)
        request.state.principal = result
        return result

    app = FastAPI(title=TITLE, dependencies=[Depends(principal)], root_path=root_path,
                  docs_url=None, openapi_url=None, redoc_url=None)

    @app.middleware("http")
    async def server_timing(request: Request, call_next):
        """How long the server took (``Server-Timing``, shown by the browser's developer tools)."""
        t0 = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.1f}"
        return response

    @app.exception_handler(Unauthenticated)
    async def _unauth(request: Request, exc: Unauthenticated):
        return _refusal(request, 401, "Inte inloggad", exc.detail, exc.login_url,
                        {"WWW-Authenticate": 'Bearer realm="airflow"'})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        return _refusal(request, 403, "Inte tillåtet", mask(str(exc)) or "Forbidden")

    def page(request: Request, template: str, title: str, **ctx: Any) -> HTMLResponse:
        me: Principal = request.state.principal
        flash = tokens.unflash(request.query_params.get("flash"))
        return HTMLResponse(render(template, root=root(request), title=title, me=me, csrf=tokens.csrf(me.session),
                                   nonce=uuid.uuid4().hex, flash=flash, ui=af.ui_url, request=request,
                                   now=dt.datetime.now(LOCAL), **ctx))

    def done(request: Request, path: str, ok: bool, text: str) -> RedirectResponse:
        return RedirectResponse(f"{root(request)}{path}?flash={tokens.flash(ok, mask(text))}", status_code=303)

    def allowed(request: Request, area: str, csrf: str | None) -> Principal:
        me: Principal = request.state.principal
        if not me.can(area):
            raise Forbidden(f"{me.name} får inte utföra åtgärder här ({area})")
        tokens.check_csrf(me, csrf)
        return me

    def once(key: str) -> threading.Lock:
        """One action at a time per object in this process (a lock of a fixed stripe, by the
        object's key): a double click waits, then finds the work done."""
        return locks[zlib.crc32(key.encode()) % len(locks)]

    def peer(name: str) -> PeerConfig:
        if af.peer is None:
            raise ActionError("Brygga har ingen förbindelse till Ladok här")
        return af.peer(name)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _json_routes(app, the_store)
    _pages(app, the_store, af, page, tokens)
    actions.register(app, the_store, af, allowed, done, once, peer, tokens)
    return app


def _refusal(request: Request, status: int, title: str, detail: str, login_url: str | None = None,
             headers: dict[str, str] | None = None) -> Response:
    """A refused request: a page saying why for a browser, JSON for the API."""
    if "text/html" in request.headers.get("accept", "") and "/api/" not in request.url.path + "/":
        return HTMLResponse(render("message.html", root=root(request), detail=detail, login_url=login_url,
                                   title=title, me=None, now=dt.datetime.now(LOCAL)), status_code=status, headers=headers)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _bool(v: str | None) -> bool | None:
    return None if v in (None, "") else v.lower() in ("1", "true", "yes")


def _date(v: str | None, *, end: bool = False) -> dt.datetime | None:
    """A local calendar day from a form as the UTC instant it starts (or, ``end``, the next one)."""
    if not v:
        return None
    try:
        d = dt.date.fromisoformat(v)
    except ValueError:
        return None
    return dt.datetime.combine(d + dt.timedelta(days=1 if end else 0), dt.time(), LOCAL).astimezone(dt.UTC)


# ============================================================================ JSON

def _json_routes(app: Any, the_store: Callable[[], Store]) -> None:
    lim = Query(views.DEFAULT_LIMIT, ge=1, le=views.MAX_LIMIT)

    @app.get("/api/openapi.json", include_in_schema=False)
    def api_schema():
        return app.openapi()

    @app.get("/api/overview")
    def api_overview():
        return views.overview(the_store())

    @app.get("/api/publications")
    def api_publications(round: str | None = None, kind: str | None = None, status: str | None = None,
                         dry_run: str | None = None, triggered_by: str | None = None, limit: int = lim,
                         offset: int = Query(0, ge=0)):
        return views.list_publications(the_store(), round=round, kind=kind, status=status, dry_run=_bool(dry_run),
                                       triggered_by=triggered_by, limit=limit, offset=offset).__dict__

    @app.get("/api/publications/{publication_id}")
    def api_publication(publication_id: int, action: str | None = None, status: str | None = None,
                        limit: int = lim, offset: int = Query(0, ge=0)):
        d = views.publication_detail(the_store(), publication_id, action=action, status=status, limit=limit,
                                     offset=offset)
        if d is None:
            raise HTTPException(404, f"no publication {publication_id}")
        return {**d, "diff": queries.publication_diff(the_store(), publication_id)}

    @app.get("/api/unhandled-admissions")
    def api_unhandled(round: str | None = None, hinder: str | None = None, status: str | None = None,
                      limit: int = lim, offset: int = Query(0, ge=0)):
        return views.list_unhandled(the_store(), round=round, hinder=hinder, status=status, limit=limit,
                                    offset=offset)

    @app.get("/api/unhandled-admissions/{admission_id}")
    def api_admission(admission_id: str):
        d = queries.admission_detail(the_store(), admission_id)
        if d is None:
            raise HTTPException(404, "no such admission in the queue")
        return d

    @app.get("/api/aterbud-cases")
    def api_aterbud(status: str | None = None, round: str | None = None, limit: int = lim,
                    offset: int = Query(0, ge=0)):
        return views.list_aterbud(the_store(), status=status, round=round, limit=limit, offset=offset)

    @app.get("/api/quarantine")
    def api_quarantine(source: str | None = None, kind: str | None = None, all: str | None = None,
                       limit: int = lim, offset: int = Query(0, ge=0)):
        return views.list_quarantine(the_store(), open_only=not _bool(all), source=source, kind=kind, limit=limit,
                                     offset=offset).__dict__

    @app.get("/api/archive")
    def api_archive(status: str | None = None, limit: int = lim, offset: int = Query(0, ge=0)):
        return views.list_archive(the_store(), status=status, limit=limit, offset=offset)


# ============================================================================ pages

QUEUE_FILTERS = ("round", "hinder", "status", "instance", "programme", "older_than_days")


def _queue_filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    status = q.get("status", "open")
    return {"round": q.get("round") or None, "hinder": q.get("hinder") or None,
            "status": None if status == "all" else status or "open", "instance": q.get("instance") or None,
            "programme": q.get("programme") or None, "older_than_days": int_or_none(q.get("older_than_days"))}


def _pages(app: Any, the_store: Callable[[], Store], af: Airflow, page: Callable[..., HTMLResponse],
           tokens: Tokens) -> None:
    from brygga.flows import checkpoints as cp_flow
    from brygga.flows.merits.rules import CHECKPOINT as MERIT_CHECKPOINT

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request):
        store = the_store()
        o = views.overview(store)
        runs = _safe(lambda: af.dag_runs(list(DAG_IDS)) if af.dag_runs else None)
        merit = next((c for c in views.checkpoints(store) if c["name"] == MERIT_CHECKPOINT), None)
        head = _safe(lambda: af.feed_head() if af.feed_head else None)
        certs = [c for c in (_safe(lambda: af.certificates() if af.certificates else None) or [])
                 if c.get("level") not in (None, "ok")]
        return page(request, "overview.html", "Översikt", o=o, runs=runs, dag_ids=DAG_IDS, merit=merit, head=head,
                    pending=queries.pending_per_round(store), dead=queries.dead_letters(store), certs=certs,
                    certs_known=af.certificates is not None)

    @app.get("/unhandled-admissions", response_class=HTMLResponse)
    def unhandled(request: Request, sort: str = "age", desc: str | None = None, limit: int = Query(50, ge=1, le=500),
                  offset: int = Query(0, ge=0)):
        f = _queue_filters(request)
        d = queries.unhandled_page(the_store(), sort=sort if sort in queries.QUEUE_SORTS else "age",
                                   desc=bool(_bool(desc)), limit=limit, offset=offset, **f)
        params = {k: request.query_params.get(k) for k in (*QUEUE_FILTERS, "sort", "desc", "limit")}
        return page(request, "unhandled.html", "Ej hanterade antagningar", d=d, f=f, params=params,
                    status_param=request.query_params.get("status", "open"), bulk_max=queries.BULK_MAX)

    @app.get("/unhandled-admissions/{admission_id}", response_class=HTMLResponse)
    def admission(request: Request, admission_id: str):
        d = queries.admission_detail(the_store(), admission_id)
        if d is None:
            raise HTTPException(404, "Antagningen finns inte i kön")
        return page(request, "admission.html", f"Antagning {admission_id}", d=d, e=d["entry"])

    @app.get("/aterbud-cases", response_class=HTMLResponse)
    def cases(request: Request, status: str = "open", round: str | None = None, cause: str | None = None,
              limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)):
        d = views.list_aterbud(the_store(), status=None if status == "all" else status, round=round or None,
                               cause=cause or None, limit=limit, offset=offset)
        params = {"status": status, "round": round, "cause": cause, "limit": limit}
        return page(request, "cases.html", "Återbudsärenden", d=d, params=params)

    @app.get("/aterbud-cases/{case_id}", response_class=HTMLResponse)
    def case(request: Request, case_id: int):
        c = views.get_case(the_store(), case_id)
        if c is None:
            raise HTTPException(404, "Ärendet finns inte")
        history = queries.search_audit(the_store(), object_type="aterbud_case", object_id=str(case_id), limit=200)
        return page(request, "case.html", f"Återbudsärende {case_id}", c=c, history=history["rows"])

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine(request: Request, source: str | None = None, kind: str | None = None, all: str | None = None,
                   limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)):
        store = the_store()
        pg = views.list_quarantine(store, open_only=not _bool(all), source=source or None, kind=kind or None,
                                   limit=limit, offset=offset)
        retry = cp_flow.retryable(store, [r["id"] for r in pg.rows if not r["released_at"]])
        params = {"source": source, "kind": kind, "all": all, "limit": limit}
        return page(request, "quarantine.html", "Karantän", pg=pg, retry=retry, params=params,
                    sources=queries.quarantine_counts(store))

    @app.get("/publications", response_class=HTMLResponse)
    def publications(request: Request, round: str | None = None, kind: str | None = None,
                     status: str | None = None, dry_run: str | None = None, limit: int = Query(50, ge=1, le=500),
                     offset: int = Query(0, ge=0)):
        pg = views.list_publications(the_store(), round=round or None, kind=kind or None, status=status or None,
                                     dry_run=_bool(dry_run), limit=limit, offset=offset)
        params = {"round": round, "kind": kind, "status": status, "dry_run": dry_run, "limit": limit}
        return page(request, "publications.html", "Utbud till NyA", pg=pg, params=params)

    @app.get("/publications/{publication_id}", response_class=HTMLResponse)
    def publication(request: Request, publication_id: int, action: str | None = None, status: str | None = None,
                    limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)):
        store = the_store()
        d = views.publication_detail(store, publication_id, action=action or None, status=status or None,
                                     limit=limit, offset=offset)
        if d is None:
            raise HTTPException(404, "Publiceringen finns inte")
        diff = queries.publication_diff(store, publication_id)
        params = {"action": action, "status": status, "limit": limit}
        return page(request, "publication.html", f"Publicering #{publication_id}", d=d, p=d["publication"],
                    diff=diff, params=params)

    @app.get("/audit", response_class=HTMLResponse)
    def audit(request: Request, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)):
        f, shown = _audit_filters(request, tokens)
        d = queries.search_audit(the_store(), limit=limit, offset=offset, **f)
        params = {k: request.query_params.get(k) for k in ("actor", "action", "object_type", "object_id", "since",
                                                             "until", "person")}
        return page(request, "audit.html", "Loggbok", d=d, params=params, person=shown,
                    objects=queries.AUDIT_OBJECTS, limit=limit)

    @app.get("/audit.csv")
    def audit_csv(request: Request):
        f, _ = _audit_filters(request, tokens)
        cols = ["at", "actor", "action", "object_type", "object_id", "detail"]

        def rows() -> Iterator[str]:
            yield _csv_line(cols)
            for r in queries.iter_audit(the_store(), **f):
                yield _csv_line([_local_iso(r["at"]), r["actor"], r["action"], r["object_type"], r["object_id"],
                                 r["detail"]])
        return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="brygga-loggbok.csv"'})

    @app.get("/statistics", response_class=HTMLResponse)
    def statistics(request: Request, days: int = Query(30, ge=7, le=366), round: str | None = None):
        from brygga.console import charts

        data = charts.statistics_page(the_store(), days=days, round=round or None)
        return page(request, "statistics.html", "Statistik", s=data, days=days, round=round,
                    params={"days": days, "round": round})

    @app.get("/statistics.csv")
    def statistics_csv(table: str = "daily", days: int = Query(30, ge=7, le=366), round: str | None = None):
        from brygga.console import charts

        body = charts.csv_table(the_store(), table, days=days, round=round or None)
        if body is None:
            raise HTTPException(404, "unknown table")
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="brygga-statistik-{table}.csv"'})

    @app.get("/certificates", response_class=HTMLResponse)
    def certificates(request: Request):
        certs = _safe(lambda: af.certificates() if af.certificates else None)
        return page(request, "certificates.html", "Certifikat", certs=certs, known=af.certificates is not None)

    @app.get("/archive", response_class=HTMLResponse)
    def archive(request: Request, status: str | None = None, limit: int = Query(50, ge=1, le=500),
                offset: int = Query(0, ge=0)):
        d = views.list_archive(the_store(), status=status or None, limit=limit, offset=offset)
        return page(request, "archive.html", "E-arkiv", d=d, params={"status": status, "limit": limit})


def _safe(fn: Callable[[], Any]) -> Any:
    """What Airflow or a peer tells the overview; a page never fails for it (None: unknown)."""
    try:
        return fn()
    except Exception:  # noqa: BLE001 - shown as "unknown" on the page
        return None


def _audit_filters(request: Request, tokens: Tokens) -> tuple[dict[str, Any], str | None]:
    q = request.query_params
    person = tokens.unperson(q["person"]) if q.get("person") else None
    f = {"actor": q.get("actor") or None, "action": q.get("action") or None, "object_type": q.get("object_type") or None,
         "object_id": q.get("object_id") or None, "since": _date(q.get("since")),
         "until": _date(q.get("until"), end=True), "personnummer": person}
    if q.get("person") and person is None:
        f["personnummer"] = "-"  # an expired or forged token matches nobody
    return f, (mask(person) if person else None)


def _csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if v is None else mask(v if isinstance(v, str) else _csv_value(v)) for v in values])
    return buf.getvalue()


def _csv_value(v: Any) -> str:
    from brygga.console.render import _detail

    return _detail(v) if isinstance(v, dict) else str(v)


def _local_iso(v: Any) -> str:
    """A time for the CSV: ISO 8601 in Stockholm time, with its offset."""
    t = to_local(v)
    return t.isoformat(timespec="seconds") if isinstance(t, dt.datetime) else "" if t is None else str(t)
