"""Brygga operations: what operators see of the store, read-only, as HTML pages and JSON.

Plain Python (no Airflow): queries over Brygga's store, small server-rendered pages and a FastAPI
app. ``plugins/brygga_ops.py`` mounts the app in Airflow's API server and passes the
authentication (the user's Airflow login); tests pass their own.

Pages (JSON under ``api/`` with the same filters):

* ``publications`` and ``publications/{id}``: the offer-export history: who triggered it, the
  selection, dry run or real, the counts, and per item the action (new / changed / withdrawn /
  invalid / unchanged), its status and NyA's answer (outcome or rejection reason, outbox attempts
  and last error);
* ``unhandled-admissions``: ej hanterade antagningar, filter by round, hinder, status; counts per hinder;
* ``aterbud-cases``: återbudsärenden, filter by status, round; counts per status;
* ``archive``: packages delivered to the archive with the archive's receipt (reasons of a
  rejection), and the instances not delivered yet.

Personnummer never leave unmasked (``brygga.personnummer.mask``), also inside free text.
"""

from __future__ import annotations

import html
import inspect
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from brygga.store import Store
from brygga.views import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    list_archive,
    list_aterbud,
    list_publications,
    list_unhandled,
    overview,
    publication_detail,
)

TITLE = "Brygga operations"
ITEM_ACTIONS = ("new", "changed", "withdrawn", "invalid", "unchanged")


class Unauthenticated(Exception):
    """No valid login on the request; ``login_url`` (if any) is offered to browsers."""

    def __init__(self, detail: str = "Not authenticated", login_url: str | None = None):
        super().__init__(detail)
        self.detail, self.login_url = detail, login_url


class Forbidden(Exception):
    """Logged in, but not allowed to see Brygga operations."""


# ============================================================================ HTML

_CSS = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2733}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #cdd5df;padding:.25rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#eef2f6}nav a{margin-right:1rem}
.muted{color:#6a7785}form{margin:.5rem 0}input,select{margin-right:.5rem}code{font-size:.85rem}"""


def _e(v: Any) -> str:
    if v is None:
        return '<span class="muted">-</span>'
    if isinstance(v, (dict, list)):
        if not v:
            return '<span class="muted">-</span>'
        if isinstance(v, dict):
            return ", ".join(f"{html.escape(str(k))}: {html.escape(str(x))}" for k, x in v.items())
        return ", ".join(html.escape(str(x)) for x in v)
    return html.escape(str(v))


def _doc(title: str, body: str, root: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)} - {TITLE}"
            f"</title><style>{_CSS}</style></head><body><nav><strong>{TITLE}</strong> "
            f"<a href=\"{root}/\">Overview</a><a href=\"{root}/publications\">Publications</a>"
            f"<a href=\"{root}/unhandled-admissions\">Unhandled admissions</a>"
            f"<a href=\"{root}/aterbud-cases\">Återbud cases</a><a href=\"{root}/archive\">Archive</a></nav><h1>{html.escape(title)}</h1>{body}</body></html>")


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str]], link: Callable[[dict], str] | None = None) -> str:
    if not rows:
        return '<p class="muted">Nothing here.</p>'
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in cols)
    body = []
    for r in rows:
        cells = []
        for i, (key, _) in enumerate(cols):
            cell = _e(r.get(key))
            if i == 0 and link:
                cell = f'<a href="{html.escape(link(r))}">{cell}</a>'
            cells.append(f"<td>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _filter_form(fields: list[tuple[str, str, list[str] | None]], values: dict[str, Any]) -> str:
    parts = []
    for name, label, options in fields:
        v = values.get(name) or ""
        if options is not None:
            opts = "".join(f'<option value="{html.escape(o)}"{" selected" if o == v else ""}>{html.escape(o or "any")}'
                           "</option>" for o in ["", *options])
            parts.append(f'<label>{html.escape(label)} <select name="{name}">{opts}</select></label>')
        else:
            parts.append(f'<label>{html.escape(label)} <input name="{name}" value="{html.escape(str(v))}" size="10">'
                         "</label>")
    return f'<form method="get">{"".join(parts)}<button type="submit">Filter</button></form>'


def _counts_table(title: str, counts: dict[str, int], param: str | None = None, base: dict | None = None) -> str:
    if not counts:
        return ""
    rows = []
    for k, n in counts.items():
        label = html.escape(k)
        if param is not None:
            label = f'<a href="?{html.escape(urllib.parse.urlencode({**(base or {}), param: k}))}">{label}</a>'
        rows.append(f"<tr><td>{label}</td><td>{n}</td></tr>")
    return (f"<table><thead><tr><th>{html.escape(title)}</th><th>count</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _pager(total: int, limit: int, offset: int, params: dict[str, Any]) -> str:
    keep = {k: v for k, v in params.items() if v not in (None, "")}
    out = [f'<p class="muted">{total} in all; showing {min(offset + 1, total)}–{min(offset + limit, total)}']
    if offset > 0:
        out.append(f' <a href="?{html.escape(urllib.parse.urlencode({**keep, "offset": max(offset - limit, 0), "limit": limit}))}">previous</a>')
    if offset + limit < total:
        out.append(f' <a href="?{html.escape(urllib.parse.urlencode({**keep, "offset": offset + limit, "limit": limit}))}">next</a>')
    return "".join(out) + "</p>"


def _offer_text(o: dict[str, Any] | None) -> str | None:
    """One line for an offer payload (``brygga.records.Offer`` fields)."""
    if not o:
        return None
    parts = [f"{o.get('utbildningskod')} {o.get('name_sv') or ''}".strip(), f"{o.get('credits')} hp",
             f"{o.get('start')}–{o.get('end')}", f"{o.get('studietakt')} %", o.get("studieort"),
             f"{o.get('places')} places"]
    if o.get("programme_code"):
        parts.append(f"in {o['programme_code']}")
    return ", ".join(p for p in parts if p)


# ============================================================================ the app

def create_app(store: Callable[[], Store] | Store,
               authenticate: Callable[[Any], Awaitable[str] | str],
               *, root_path: str = "") -> Any:
    """The FastAPI app. ``authenticate(request)`` returns the user name or raises Unauthenticated
    (-> 401) or Forbidden (-> 403); every route, HTML and JSON, goes through it."""
    # a Store, or a function giving the store for a request (the plugin resolves its Connection)
    the_store = store if callable(store) and not isinstance(store, Store) else (lambda: store)

    async def user(request: Request) -> str:
        result = authenticate(request)
        if inspect.isawaitable(result):
            result = await result
        return result

    # no public docs: the schema is served below, behind the same authentication as the rest
    app = FastAPI(title=TITLE, description=__doc__, dependencies=[Depends(user)], root_path=root_path,
                  docs_url=None, openapi_url=None, redoc_url=None)

    @app.get("/api/openapi.json", include_in_schema=False)
    def api_schema():
        return app.openapi()

    @app.exception_handler(Unauthenticated)
    async def _unauth(request: Request, exc: Unauthenticated):
        headers = {"WWW-Authenticate": 'Bearer realm="airflow"'}
        if "text/html" in request.headers.get("accept", "") and "/api/" not in request.url.path + "/":
            link = (f'<p><a href="{html.escape(exc.login_url)}">Log in to Airflow</a>, then come back.</p>'
                    if exc.login_url else "")
            return HTMLResponse(_doc("Not logged in", f"<p>{html.escape(exc.detail)}.</p>{link}", _root(request)),
                                status_code=401, headers=headers)
        return JSONResponse({"detail": exc.detail}, status_code=401, headers=headers)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        return JSONResponse({"detail": str(exc) or "Forbidden"}, status_code=403)

    _json_routes(app, the_store)
    _html_routes(app, the_store, user)
    return app


def _root(request: Request) -> str:
    return (request.scope.get("root_path") or "").rstrip("/")


def _bool(v: str | None) -> bool | None:
    return None if v in (None, "") else v.lower() in ("1", "true", "yes")


def _json_routes(app: Any, the_store: Callable[[], Store]) -> None:
    @app.get("/api/overview")
    def api_overview():
        return overview(the_store())

    @app.get("/api/publications")
    def api_publications(round: str | None = None, kind: str | None = None, status: str | None = None,
                         dry_run: str | None = None, triggered_by: str | None = None,
                         limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        return list_publications(the_store(), round=round, kind=kind, status=status, dry_run=_bool(dry_run),
                                 triggered_by=triggered_by, limit=limit, offset=offset).__dict__

    @app.get("/api/publications/{publication_id}")
    def api_publication(publication_id: int, action: str | None = None, status: str | None = None,
                        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        d = publication_detail(the_store(), publication_id, action=action, status=status, limit=limit, offset=offset)
        if d is None:
            raise HTTPException(404, f"no publication {publication_id}")
        return d

    @app.get("/api/unhandled-admissions")
    def api_unhandled(round: str | None = None, hinder: str | None = None, status: str | None = None,
                      limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        return list_unhandled(the_store(), round=round, hinder=hinder, status=status, limit=limit, offset=offset)

    @app.get("/api/aterbud-cases")
    def api_aterbud(status: str | None = None, round: str | None = None,
                    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        return list_aterbud(the_store(), status=status, round=round, limit=limit, offset=offset)



    @app.get("/api/archive")
    def api_archive(status: str | None = None, limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
                    offset: int = Query(0, ge=0)):
        return list_archive(the_store(), status=status, limit=limit, offset=offset)


def _html_routes(app: Any, the_store: Callable[[], Store], user: Callable[..., Any]) -> None:
    @app.get("/", response_class=HTMLResponse)
    def page_overview(request: Request, who: str = Depends(user)):
        o = overview(the_store())
        root = _root(request)
        last = o["last_publication"]
        body = (f'<p class="muted">Logged in as {html.escape(who)}. Read-only; JSON under '
                f'<a href="{root}/api/openapi.json">{root}/api/</a>.</p>'
                + _counts_table("outbox status", o["outbox"])
                + f"<h2>Publications</h2><p>{o['publications']} in all. "
                + (f'Last: <a href="{root}/publications/{last["id"]}">#{last["id"]}</a> {_e(last["round"])} '
                   f'{_e(last["kind"])}, {_e(last["status"])}{" (dry run)" if last["dry_run"] else ""}, by '
                   f'{_e(last["triggered_by"])} at {_e(last["started_at"])}' if last else "")
                + "</p><h2>Unhandled admissions</h2>"
                + (_counts_table("status", o["unhandled_admissions"]) or '<p class="muted">None.</p>')
                + "<h2>Återbud cases</h2>"
                + (_counts_table("status", o["aterbud_cases"]) or '<p class="muted">None.</p>'))
        return _doc("Overview", body, root)

    @app.get("/publications", response_class=HTMLResponse)
    def page_publications(request: Request, round: str | None = None, kind: str | None = None,
                          status: str | None = None, dry_run: str | None = None,
                          limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        pg = list_publications(the_store(), round=round, kind=kind, status=status, dry_run=_bool(dry_run),
                               limit=limit, offset=offset)
        root = _root(request)
        for r in pg.rows:
            r["mode"] = "dry run" if r["dry_run"] else "real"
            r["codes"] = (r["selection"] or {}).get("codes") or "all"
        body = (_filter_form([("round", "Round", None), ("kind", "Kind", ["ordinary", "programme-internal"]),
                              ("status", "Status", ["running", "done", "partial", "failed"]),
                              ("dry_run", "Dry run", ["true", "false"])],
                             {"round": round, "kind": kind, "status": status, "dry_run": dry_run})
                + _pager(pg.total, pg.limit, pg.offset, {"round": round, "kind": kind, "status": status,
                                                         "dry_run": dry_run})
                + _table(pg.rows, [("id", "#"), ("round", "round"), ("kind", "kind"), ("mode", "mode"),
                                   ("codes", "selection"), ("triggered_by", "triggered by"),
                                   ("status", "status"), ("counts", "counts"), ("started_at", "started"),
                                   ("finished_at", "finished")],
                         link=lambda r: f"{root}/publications/{r['id']}"))
        return _doc("Publications (offer export to NyA)", body, root)

    @app.get("/publications/{publication_id}", response_class=HTMLResponse)
    def page_publication(request: Request, publication_id: int, action: str | None = None,
                         status: str | None = None,
                         limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        d = publication_detail(the_store(), publication_id, action=action, status=status, limit=limit, offset=offset)
        if d is None:
            raise HTTPException(404, f"no publication {publication_id}")
        p, items, root = d["publication"], d["items"], _root(request)
        for it in items["rows"]:
            ob = it["outbox"]
            it["outbox_text"] = (f"{ob['status']}, {ob['attempts']} attempt(s)"
                                 + (f": {ob['last_error']}" if ob["last_error"] else "")) if ob else None
            it["offer_text"] = _offer_text(it["payload"])
        facts = [("Round", p["round"]), ("Kind", p["kind"]), ("Mode", "dry run" if p["dry_run"] else "real"),
                 ("Selection", p["selection"]), ("Triggered by", p["triggered_by"]), ("Airflow run", p["run_id"]),
                 ("Status", p["status"]), ("Started", p["started_at"]), ("Finished", p["finished_at"])]
        body = ("<table>" + "".join(f"<tr><th>{k}</th><td>{_e(v)}</td></tr>" for k, v in facts) + "</table>"
                + _counts_table("action", d["counts"]["action"], "action")
                + _counts_table("status", d["counts"]["status"], "status")
                + "<h2>Items</h2>"
                + _filter_form([("action", "Action", list(ITEM_ACTIONS)),
                                ("status", "Status", ["planned", "sent", "rejected", "invalid", "done"])],
                               {"action": action, "status": status})
                + _pager(items["total"], items["limit"], items["offset"], {"action": action, "status": status})
                + _table(items["rows"], [("offer_id", "offer"), ("tillfalleskod", "tillfälleskod"),
                                         ("action", "action"), ("status", "status"),
                                         ("offer_text", "offer sent"), ("nya_answer", "NyA's answer / reason"),
                                         ("outbox_text", "outbox")])
                + "<h2>Audit</h2>"
                + _table(d["audit"], [("at", "at"), ("actor", "who"), ("action", "what"), ("detail", "detail")]))
        return _doc(f"Publication #{p['id']}", body, root)

    @app.get("/unhandled-admissions", response_class=HTMLResponse)
    def page_unhandled(request: Request, round: str | None = None, hinder: str | None = None,
                       status: str | None = None,
                       limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        d = list_unhandled(the_store(), round=round, hinder=hinder, status=status, limit=limit, offset=offset)
        f = {"round": round, "hinder": hinder, "status": status}
        body = (_filter_form([("round", "Round", d["rounds"]), ("hinder", "Hinder", list(d["counts_per_hinder"])),
                              ("status", "Status", ["open", "resolved", "manual"])], f)
                + _counts_table("hinder", d["counts_per_hinder"], "hinder",
                                {k: v for k, v in f.items() if v and k != "hinder"})
                + _pager(d["total"], d["limit"], d["offset"], f)
                + _table(d["rows"], [("nya_admission_id", "admission"), ("round", "round"),
                                     ("personnummer", "personnummer"), ("tillfalleskod", "tillfälleskod"),
                                     ("hinder", "hinder"), ("reason", "reason"), ("status", "status"),
                                     ("created_at", "since"), ("resolved_by", "resolved by")]))
        return _doc("Unhandled admissions (ej hanterade antagningar)", body, _root(request))

    @app.get("/aterbud-cases", response_class=HTMLResponse)
    def page_aterbud(request: Request, status: str | None = None, round: str | None = None,
                     limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        d = list_aterbud(the_store(), status=status, round=round, limit=limit, offset=offset)
        f = {"status": status, "round": round}
        body = (_filter_form([("status", "Status", ["open", "closed"]), ("round", "Round", d["rounds"])], f)
                + _counts_table("status", d["counts_per_status"], "status",
                                {k: v for k, v in f.items() if v and k != "status"})
                + _counts_table("cause", d["counts_per_cause"])
                + _pager(d["total"], d["limit"], d["offset"], f)
                + _table(d["rows"], [("nya_aterbud_id", "återbud"), ("round", "round"),
                                     ("personnummer", "personnummer"), ("education", "education"),
                                     ("reported_at", "reported"), ("cause", "cause"),
                                     ("suggested_action", "suggested action"), ("status", "status"),
                                     ("closed_by", "closed by")]))
        return _doc("Återbud cases (återbudsärenden)", body, _root(request))

    @app.get("/archive", response_class=HTMLResponse)
    def page_archive(request: Request, status: str | None = None,
                     limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        d = list_archive(the_store(), status=status, limit=limit, offset=offset)
        f = {"status": status}
        body = (_filter_form([("status", "Status", ["accepted", "rejected"])], f)
                + _counts_table("status", d["counts_per_status"], "status", {})
                + "<h2>Not delivered yet (ej levererade)</h2>"
                + (_table(d["not_delivered"], [("uid", "utbildningstillfälle"), ("label", "what"),
                                               ("status_text", "status"), ("attempts", "attempts"),
                                               ("last_error", "last error"), ("since", "since")])
                   if d["not_delivered"] else '<p class="muted">None. A rejected one is sent again with '
                   "<code>brygga archive resend &lt;uid&gt;</code> after the fix.</p>")
                + "<h2>Packages (paket)</h2>" + _pager(d["total"], d["limit"], d["offset"], f)
                + _table(d["rows"], [("package_id", "package (OBJID)"), ("uid", "utbildningstillfälle"),
                                     ("part", "part"), ("status_text", "status"), ("archive_id", "archive id"),
                                     ("size", "bytes"), ("received_at", "received"), ("reasons", "reasons")]))
        return _doc("Archive (e-arkiv)", body, _root(request))

