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
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from brygga import views
from brygga.connections import PeerConfig
from brygga.console import queries
from brygga.console.render import LOCAL, render
from brygga.console.security import Forbidden, Principal, Tokens, Unauthenticated
from brygga.personnummer import canonical, mask
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
    locks: dict[str, threading.Lock] = field(default_factory=dict)


class ActionError(Exception):
    """An action could not be done; its message goes back to the page."""


def create_app(store: Callable[[], Store] | Store, authenticate: Callable[[Any], Awaitable[Any] | Any], *,
               secret: bytes | str, airflow: Airflow | None = None, root_path: str = "") -> Any:
    the_store = store if callable(store) and not isinstance(store, Store) else (lambda: store)
    af = airflow or Airflow()
    tokens = Tokens(secret)
    guard = threading.Lock()

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
        headers = {"WWW-Authenticate": 'Bearer realm="airflow"'}
        if "text/html" in request.headers.get("accept", "") and "/api/" not in request.url.path + "/":
            return HTMLResponse(render("message.html", root=_root(request), detail=exc.detail, login_url=exc.login_url,
                                       title="Inte inloggad", me=None, now=dt.datetime.now(LOCAL)),
                                status_code=401, headers=headers)
        return JSONResponse({"detail": exc.detail}, status_code=401, headers=headers)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        detail = mask(str(exc)) or "Forbidden"
        if "text/html" in request.headers.get("accept", "") and "/api/" not in request.url.path + "/":
            return HTMLResponse(render("message.html", root=_root(request), detail=detail, login_url=None,
                                       title="Inte tillåtet", me=None, now=dt.datetime.now(LOCAL)), status_code=403)
        return JSONResponse({"detail": detail}, status_code=403)

    def page(request: Request, template: str, title: str, **ctx: Any) -> HTMLResponse:
        me: Principal = request.state.principal
        flash = tokens.unflash(request.query_params.get("flash"))
        return HTMLResponse(render(template, root=_root(request), title=title, me=me, csrf=tokens.csrf(me.session),
                                   nonce=uuid.uuid4().hex, flash=flash, ui=af.ui_url, request=request,
                                   now=dt.datetime.now(LOCAL), **ctx))

    def done(request: Request, path: str, ok: bool, text: str) -> RedirectResponse:
        return RedirectResponse(f"{_root(request)}{path}?flash={tokens.flash(ok, mask(text))}", status_code=303)

    def allowed(request: Request, area: str, csrf: str | None) -> Principal:
        me: Principal = request.state.principal
        if not me.can(area):
            raise Forbidden(f"{me.name} får inte utföra åtgärder här ({area})")
        tokens.check_csrf(me, csrf)
        return me

    def once(key: str) -> threading.Lock:
        """One action at a time per object in this process: a double click waits, then finds it done."""
        with guard:
            return af.locks.setdefault(key, threading.Lock())

    def peer(name: str) -> PeerConfig:
        if af.peer is None:
            raise ActionError("Brygga har ingen förbindelse till Ladok här")
        return af.peer(name)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _json_routes(app, the_store)
    _pages(app, the_store, af, page, tokens)
    _actions(app, the_store, af, allowed, done, once, peer, tokens)
    return app


def _root(request: Request) -> str:
    return (request.scope.get("root_path") or "").rstrip("/")


def _bool(v: str | None) -> bool | None:
    return None if v in (None, "") else v.lower() in ("1", "true", "yes")


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except ValueError:
        return None


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
            "programme": q.get("programme") or None, "older_than_days": _int(q.get("older_than_days"))}


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
                    pending=queries.pending_per_round(store), dead=queries.dead_letters(store),
                    quarantine=queries.quarantine_counts(store), certs=certs,
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
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v)
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).astimezone(LOCAL).isoformat(timespec="seconds")
    return "" if v is None else str(v)


# ============================================================================ actions

def _actions(app: Any, the_store: Callable[[], Store], af: Airflow, allowed: Callable[..., Principal],
             done: Callable[..., RedirectResponse], once: Callable[[str], threading.Lock],
             peer: Callable[[str], PeerConfig], tokens: Tokens) -> None:
    from adapters.http import PeerError
    from brygga.flows import admissions
    from brygga.flows import checkpoints as cp_flow
    from brygga.flows.aterbud import cases as case_flow

    expected = (KeyError, ValueError, LookupError, PeerError, case_flow.CaseError, ActionError)

    def act(request: Request, back: str, fn: Callable[[], str]) -> RedirectResponse:
        try:
            return done(request, back, True, fn())
        except expected as e:
            text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            return done(request, back, False, f"Det gick inte: {text}")

    @app.post("/unhandled-admissions/{admission_id}/omprova")
    def omprova(request: Request, admission_id: str, csrf: str = Form(""), choice: str = Form("")):
        me = allowed(request, "admissions", csrf)
        back = f"/unhandled-admissions/{admission_id}"

        def run() -> str:
            from adapters.folkbokforing import FolkbokforingAdapter
            from adapters.ladok import LadokAdapter

            package = choice[len("package:"):] if choice.startswith("package:") else None
            detail = queries.admission_detail(the_store(), admission_id)
            if package and detail and package not in {c["package_uid"] for c in detail["entry"]["candidates"]}:
                raise ActionError("kurspaketeringen är inte en av antagningens kandidater")
            with once(f"admission:{admission_id}"):
                r = admissions.retry(the_store(), LadokAdapter(peer("ladok")), FolkbokforingAdapter(peer("folkbokforing")),
                                     admission_id, actor=me.name, package_uid=package,
                                     fristaende=choice == "fristaende")
            if r["outcome"] in ("placed", "handled"):
                return "Antagningen är placerad i Ladok" + (" (redan gjort)" if r.get("already") else "") + "."
            raise ActionError(f"Ladok kunde fortfarande inte placera antagningen: {r.get('reason')}")
        return act(request, back, run)

    @app.post("/unhandled-admissions/{admission_id}/handled")
    def handled(request: Request, admission_id: str, csrf: str = Form(""), note: str = Form("")):
        me = allowed(request, "admissions", csrf)

        def run() -> str:
            if not note.strip():
                raise ActionError("skriv en anteckning om vad som gjordes i Ladok")
            with once(f"admission:{admission_id}"):
                r = admissions.mark_handled(the_store(), admission_id, actor=me.name, note=note.strip())
            return "Markerad som hanterad" + (" (redan gjort)." if r.get("already") else ".")
        return act(request, f"/unhandled-admissions/{admission_id}", run)

    @app.post("/unhandled-admissions/bulk-omprova")
    def bulk(request: Request, csrf: str = Form(""), nonce: str = Form(""), round: str = Form(""),
             hinder: str = Form(""), status: str = Form("open"), instance: str = Form(""), programme: str = Form(""),
             older_than_days: str = Form("")):
        me = allowed(request, "admissions", csrf)
        f = {"round": round or None, "hinder": hinder or None, "status": status or "open", "instance": instance or None,
             "programme": programme or None, "older_than_days": _int(older_than_days)}
        back = "/unhandled-admissions"

        def run() -> str:
            if af.trigger is None:
                raise ActionError("Airflow kan inte starta körningar härifrån")
            if f["status"] != "open":
                raise ActionError("bara öppna antagningar kan omprövas")
            ids, total = queries.queue_ids(the_store(), **f)
            if not ids:
                raise ActionError("inga antagningar matchar urvalet")
            run_id = f"console__omprova__{_nonce(nonce)}"
            state = af.trigger("brygga_admission_review", run_id, {"admission_ids": ids, "action": "ompröva",
                                                                   "package_uid": "", "note": "massomprövning"}, me.name)
            if state == "created":
                _audit(the_store(), me.name, "console.bulk_retry", "dag_run", run_id, count=len(ids), filters=f)
            more = f" (de {len(ids)} äldsta av {total})" if total > len(ids) else ""
            return (f"Omprövning av {len(ids)} antagningar{more} startad som körning {run_id} av "
                    f"brygga_admission_review" if state == "created" else f"Körningen {run_id} är redan startad")
        return act(request, back, run)

    @app.post("/aterbud-cases/{case_id}/apply")
    def apply(request: Request, case_id: int, csrf: str = Form(""), note: str = Form("")):
        me = allowed(request, "cases", csrf)

        def run() -> str:
            from adapters.ladok import LadokAdapter

            with once(f"case:{case_id}"):
                r = case_flow.apply_case(the_store(), LadokAdapter(peer("ladok")), case_id, actor=me.name,
                                         note=note.strip())
            if r.get("result") == "already closed":
                return "Ärendet var redan avslutat."
            if r.get("status") != "closed":
                return f"Ladok: {r.get('result')}"
            return "Föreslagen åtgärd utförd i Ladok och ärendet avslutat."
        return act(request, f"/aterbud-cases/{case_id}", run)

    @app.post("/aterbud-cases/{case_id}/close")
    def close(request: Request, case_id: int, csrf: str = Form(""), note: str = Form("")):
        me = allowed(request, "cases", csrf)

        def run() -> str:
            if not note.strip():
                raise ActionError("skriv en anteckning om hur ärendet hanterades")
            case_flow.close_case(the_store(), case_id, actor=me.name, note=note.strip())
            return "Ärendet är avslutat."
        return act(request, f"/aterbud-cases/{case_id}", run)

    @app.post("/quarantine/{quarantine_id}/retry")
    def q_retry(request: Request, quarantine_id: int, csrf: str = Form(""), note: str = Form("")):
        me = allowed(request, "quarantine", csrf)

        def run() -> str:
            r = cp_flow.retry(the_store(), quarantine_id, actor=me.name, note=note.strip())
            return "Redan hanterad." if r.get("already") else "Meddelandet skickas igen vid flödets nästa körning."
        return act(request, "/quarantine", run)

    @app.post("/quarantine/{quarantine_id}/dismiss")
    def q_dismiss(request: Request, quarantine_id: int, csrf: str = Form(""), note: str = Form("")):
        me = allowed(request, "quarantine", csrf)

        def run() -> str:
            if not note.strip():
                raise ActionError("skriv en anteckning om varför raden avfärdas")
            r = cp_flow.release(the_store(), quarantine_id, actor=me.name, note=note.strip())
            return "Redan avfärdad." if r.get("already") else "Raden är avfärdad."
        return act(request, "/quarantine", run)

    @app.post("/publications/{publication_id}/publish")
    def publish(request: Request, publication_id: int, csrf: str = Form("")):
        me = allowed(request, "offers", csrf)
        back = f"/publications/{publication_id}"

        def run() -> str:
            if af.trigger is None:
                raise ActionError("Airflow kan inte starta körningar härifrån")
            from brygga.flows.offers import publish_conf

            conf = publish_conf(the_store(), publication_id)
            run_id = f"console__publicera__{publication_id}"
            state = af.trigger("brygga_offer_export", run_id, conf, me.name)
            if state == "created":
                _audit(the_store(), me.name, "console.publish", "publication", str(publication_id), run_id=run_id)
                return f"Publiceringen av planen är startad som körning {run_id} av brygga_offer_export."
            return f"Planen är redan publicerad ({run_id})."
        return act(request, back, run)

    @app.post("/audit")
    def audit_person(request: Request, csrf: str = Form(""), personnummer: str = Form("")):
        me: Principal = request.state.principal
        tokens.check_csrf(me, csrf)
        try:
            pnr = canonical(personnummer.strip())
        except ValueError:
            return done(request, "/audit", False, "Det är inte ett giltigt personnummer.")
        return RedirectResponse(f"{_root(request)}/audit?person={tokens.person(pnr)}", status_code=303)


def _nonce(v: str) -> str:
    """The form's one-time key (a double click sends the same one): hex, bounded."""
    v = "".join(c for c in v if c in "0123456789abcdef")[:32]
    return v or uuid.uuid4().hex


def _audit(store: Store, actor: str, action: str, object_type: str, object_id: str, **detail: Any) -> None:
    from brygga.store import ops

    with store.transaction() as s:
        ops.audit(s, actor, action, object_type, object_id, **detail)
