"""The console's FastAPI app: one router per area (``routes/``: pages, actions, JSON, CSV) over one
injected context (``context.Console``). No business rule lives here: an action calls the flow
function the CLI and the review DAGs call, with the logged-in Airflow user as the actor.

What Airflow provides is passed in (``plugins/brygga_ops.py``; tests pass their own): the
authentication (``authenticate(request) -> Principal``), the peers' settings (for the actions that
talk to Ladok), triggering a DAG run as the user, the flows' last runs, and the secret the CSRF and
person tokens derive from.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from brygga.console.context import Airflow, Console, refusal
from brygga.console.routes import ROUTERS
from brygga.console.security import Forbidden, Principal, Tokens, Unauthenticated
from brygga.personnummer import mask
from brygga.store import Store

TITLE = "Brygga operations"
STATIC = Path(__file__).parent / "static"


def create_app(store: Callable[[], Store] | Store, authenticate: Callable[[Any], Awaitable[Any] | Any], *,
               secret: bytes | str, airflow: Airflow | None = None, root_path: str = "") -> Any:
    the_store = store if callable(store) and not isinstance(store, Store) else (lambda: store)

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
    app.state.console = Console(the_store, airflow or Airflow(), Tokens(secret))

    @app.middleware("http")
    async def server_timing(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """How long the server took (``Server-Timing``, shown by the browser's developer tools)."""
        t0 = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.1f}"
        return response

    @app.exception_handler(Unauthenticated)
    async def _unauth(request: Request, exc: Unauthenticated) -> Response:
        return refusal(request, 401, "Inte inloggad", exc.detail, exc.login_url,
                       {"WWW-Authenticate": 'Bearer realm="airflow"'})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return refusal(request, 403, "Inte tillåtet", mask(str(exc)) or "Forbidden")

    @app.get("/api/openapi.json", include_in_schema=False)
    def api_schema() -> dict[str, Any]:
        return app.openapi()

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app
