"""What every console route gets injected: the store, what Airflow provides, and the helpers a page
or an action needs (render a page, check the user may act, redirect back with the outcome, one
action at a time per object). Routes take it with ``cx: Console = Depends(console)``."""

from __future__ import annotations

import datetime as dt
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from adapters.http import PeerError
from brygga.certificates import Pairing, pairing, peer_environment
from brygga.config import PeerConfig
from brygga.console.forms import new_nonce as form_nonce_new
from brygga.console.forms import root
from brygga.console.render import LOCAL, render
from brygga.console.security import Forbidden, Principal, Tokens
from brygga.flows.aterbud.cases import CaseError
from brygga.personnummer import mask
from brygga.store import Store, ops

DAG_IDS = ("brygga_offer_export", "brygga_merit_sync", "brygga_merit_snapshot", "brygga_admission_import",
           "brygga_admission_review", "brygga_aterbud", "brygga_aterbud_cases", "brygga_schedule_export",
           "brygga_archive_export", "brygga_reconciliation", "brygga_retention", "brygga_healthcheck", "brygga_alerts")


@dataclass
class Airflow:
    """What the console gets from Airflow (all optional: a page shows what it lacks)."""

    peer: Callable[[str], PeerConfig] | None = None
    trigger: Callable[[str, str, dict[str, Any], str], str] | None = None  # -> "created" | "exists"
    dag_runs: Callable[[list[str]], dict[str, dict[str, Any]]] | None = None
    ui_url: str = ""  # Airflow's UI, for links to DAG runs
    certificates: Callable[[], list[dict[str, Any]]] | None = None
    feed_head: Callable[[], int | None] | None = None
    ladok_access: Callable[[], dict[str, Any]] | None = None  # the Ladok certificate's environment and rights


class ActionError(Exception):
    """An action could not be done; its message goes back to the page."""


#: What an action's flow function may raise for the operator to read (anything else is a 500).
EXPECTED = (KeyError, ValueError, LookupError, PeerError, CaseError, ActionError)


class Console:
    """The console's context: one per app, shared by every route."""

    def __init__(self, store: Callable[[], Store], airflow: Airflow, tokens: Tokens):
        self._store, self.airflow, self.tokens = store, airflow, tokens
        self._locks = [threading.Lock() for _ in range(64)]
        self._env: tuple[float, Pairing | None] | None = None

    def store(self) -> Store:
        return self._store()

    # ------------------------------------------------------------------ pages
    def page(self, request: Request, template: str, title: str, **ctx: Any) -> HTMLResponse:
        me: Principal = request.state.principal
        flash = self.tokens.unflash(request.query_params.get("flash"))
        return HTMLResponse(render(template, root=root(request), title=title, me=me, csrf=self.tokens.csrf(me.session),
                                   nonce=form_nonce_new(), flash=flash, ui=self.airflow.ui_url, request=request,
                                   now=dt.datetime.now(LOCAL), env=self.environment(), **ctx))

    def environment(self) -> Pairing | None:
        """Ladok's and NyA's environments (the banner on every page), read at most once a minute."""
        if self.airflow.peer is None:
            return None
        now = time.monotonic()
        if self._env is None or now - self._env[0] > 60:
            envs = {}
            for name in ("ladok", "nya"):
                try:
                    envs[name] = peer_environment(self.airflow.peer(name))
                except Exception:  # noqa: BLE001 - a Connection not there (or unreadable): left out
                    continue
            self._env = (now, pairing(envs) if envs else None)
        return self._env[1]

    # ------------------------------------------------------------------ actions
    def allowed(self, request: Request, area: str, csrf: str | None) -> Principal:
        """The user, if they may act in ``area`` and the form carries the session's CSRF token."""
        me: Principal = request.state.principal
        if not me.can(area):
            raise Forbidden(f"{me.name} får inte utföra åtgärder här ({area})")
        self.tokens.check_csrf(me, csrf)
        return me

    def done(self, request: Request, path: str, ok: bool, text: str) -> RedirectResponse:
        sep = "&" if "?" in path else "?"
        return RedirectResponse(f"{root(request)}{path}{sep}flash={self.tokens.flash(ok, mask(text))}", status_code=303)

    def act(self, request: Request, back: str, fn: Callable[[], str]) -> RedirectResponse:
        """Run an action; back to ``back`` with its outcome, or with why it could not be done."""
        try:
            return self.done(request, back, True, fn())
        except EXPECTED as e:
            text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            return self.done(request, back, False, f"Det gick inte: {text}")

    def once(self, key: str) -> threading.Lock:
        """One action at a time per object in this process (a lock of a fixed stripe, by the
        object's key): a double click waits, then finds the work done."""
        return self._locks[zlib.crc32(key.encode()) % len(self._locks)]

    def peer(self, name: str) -> PeerConfig:
        if self.airflow.peer is None:
            raise ActionError("Brygga har ingen förbindelse till Ladok här")
        return self.airflow.peer(name)

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any], user: str) -> str:
        if self.airflow.trigger is None:
            raise ActionError("Airflow kan inte starta körningar härifrån")
        return self.airflow.trigger(dag_id, run_id, conf, user)

    def audit(self, actor: str, action: str, object_type: str, object_id: str, **detail: Any) -> None:
        with self.store().transaction() as s:
            ops.audit(s, actor, action, object_type, object_id, **detail)


def console(request: Request) -> Console:
    """The dependency every route takes."""
    cx: Console = request.app.state.console
    return cx


# ---------------------------------------------------------------------- small readings of a request

def refusal(request: Request, status: int, title: str, detail: str, login_url: str | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """A refused request: a page saying why for a browser, JSON for the API."""
    if "text/html" in request.headers.get("accept", "") and "/api/" not in request.url.path + "/":
        return HTMLResponse(render("message.html", root=root(request), detail=detail, login_url=login_url,
                                   title=title, me=None, now=dt.datetime.now(LOCAL)), status_code=status, headers=headers)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def flag(v: str | None) -> bool | None:
    return None if v in (None, "") else v.lower() in ("1", "true", "yes")


def day_start(v: str | None, *, end: bool = False) -> dt.datetime | None:
    """A local calendar day from a form as the UTC instant it starts (or, ``end``, the next one)."""
    if not v:
        return None
    try:
        d = dt.date.fromisoformat(v)
    except ValueError:
        return None
    return dt.datetime.combine(d + dt.timedelta(days=1 if end else 0), dt.time(), LOCAL).astimezone(dt.UTC)


def safe(fn: Callable[[], Any]) -> Any:
    """What Airflow or a peer tells a page; a page never fails for it (None: unknown)."""
    try:
        return fn()
    except Exception:  # noqa: BLE001 - shown as "unknown" on the page
        return None
