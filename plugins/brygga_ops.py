"""Airflow plugin "Brygga operations": the operator console in Airflow's API server.

The pages, actions and queries are in ``brygga.console`` (plain Python); this file wires them into
Airflow:

* ``fastapi_apps``: the app is mounted at ``/brygga-ops`` in the API server;
* ``external_views``: a "Brygga operations" entry in the UI's Browse menu, showing the console
  inside the Airflow UI (``/plugin/brygga-ops``);
* authentication: plugin apps are not protected by Airflow, so every request is checked here with
  Airflow's own login: the JWT the UI keeps in the ``_token`` cookie, or an
  ``Authorization: Bearer`` token from ``POST /auth/token``, validated by the configured auth
  manager (``airflow.api_fastapi.core_api.security.get_user``). No valid token -> 401. The user
  must be allowed the custom view "Brygga operations" (SimpleAuthManager: viewer or above) -> else
  403;
* authorisation of actions: an action area (``brygga.console.AREAS``) is open to a user whom the
  auth manager allows to trigger runs of its review DAG (SimpleAuthManager: role user or above);
  a viewer sees no buttons and gets 403 on any action request;
* the secret the console's CSRF and person tokens derive from: ``[api_auth] jwt_secret``, shared
  by every API server of the deployment;
* the peers (for ompröva and case actions, which talk to Ladok) from their Connections, DAG runs
  triggered as the user (Publicera, bulk ompröva), the flows' last runs, certificates, the Ladok
  certificate's rights.

The store is the one the DAGs use: the ``brygga_store`` Connection (``extra.sqlalchemy_url``),
else ``BRYGGA_STORE_URL`` / ``var/brygga.db``. The API server is not task code, so reading
Connections and Airflow's metadata DB here is allowed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from brygga import console

log = logging.getLogger(__name__)

URL_PREFIX = "/brygga-ops"
RESOURCE = console.TITLE  # the custom view name the auth manager is asked about
PEER_NAMES = ("ladok", "nya", "folkbokforing", "schema", "arkiv")

_stores: dict[str | None, object] = {}


def store():
    """Brygga's store for the API server: the ``brygga_store`` Connection, else the CLI default.

    Looked up per request (a changed Connection takes effect without a restart); one engine per URL.
    """
    from brygga.connections import STORE_CONN_ID
    from brygga.store import Store

    url = None
    try:
        from airflow.models.connection import Connection

        conn = Connection.get_connection_from_secrets(STORE_CONN_ID)
        url = (conn.extra_dejson or {}).get("sqlalchemy_url")
    except Exception as e:  # no such Connection: fall back like the CLI does
        log.debug("Brygga operations: Connection %s not usable (%s); using BRYGGA_STORE_URL / var/", STORE_CONN_ID,
                  type(e).__name__)
    if url not in _stores:
        _stores[url] = Store(url)
    return _stores[url]


def peer(name: str):
    """A peer's settings from its Airflow Connection, as the DAGs read them."""
    from airflow.models.connection import Connection

    from brygga.connections import PEERS, from_connection

    c = Connection.get_connection_from_secrets(PEERS[name].conn_id)
    return from_connection(name, conn_type=c.conn_type, host=c.host, port=c.port, schema=c.schema,
                           login=c.login, password=c.password, extra=c.extra_dejson or {})


def _login_url(request) -> str | None:
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=str(request.url))
    except Exception:
        return None


def _may(user) -> frozenset[str]:
    """The console's action areas the auth manager lets this user act in."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    am = get_auth_manager()
    return frozenset(area for area, dag_id in console.AREAS.items()
                     if am.is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                             details=DagDetails(id=dag_id), user=user))


async def authenticate(request) -> console.Principal:
    """The Airflow user of the request (cookie or bearer JWT), as Airflow's own API checks it."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import HTTPException
    from fastapi.security import HTTPAuthorizationCredentials

    bearer = None
    scheme, _, credentials = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=credentials.strip())
    try:
        user = await get_user(request, None, bearer)
    except HTTPException as e:
        # Airflow answers 403 for a token that does not validate; for this app any request
        # without a valid login is unauthenticated.
        raise console.Unauthenticated(
            "Not authenticated" if e.status_code == 401 and e.detail == "Not authenticated"
            else f"Not authenticated: {e.detail}", _login_url(request)) from None
    if not get_auth_manager().is_authorized_custom_view(method="GET", resource_name=RESOURCE, user=user):
        raise console.Forbidden(f"{user.get_name()} may not see {RESOURCE}")
    # CSRF applies to the ambient credential (the cookie), not to an explicit bearer token
    session = None if bearer is not None else request.cookies.get("_token")
    return console.Principal(user.get_name(), _may(user), session)


def trigger(dag_id: str, run_id: str, conf: dict[str, Any], user: str) -> str:
    """A run of ``dag_id`` as ``user`` (its triggering user: the audit's actor); ``run_id`` makes
    it once only: "exists" when a run of that id is there already."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    try:
        trigger_dag(dag_id, run_id=run_id, conf=conf, triggered_by=DagRunTriggeredByType.UI,
                    triggering_user_name=user)
    except DagRunAlreadyExists:
        return "exists"
    except Exception as e:  # not parsed yet, parameters refused ...: the operator reads why
        log.warning("Brygga operations: could not trigger %s: %s", dag_id, e)
        raise LookupError(f"Airflow kunde inte starta {dag_id}: {type(e).__name__}: {e}") from None
    return "created"


def dag_runs(dag_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The newest run of each DAG (its state, id, times and a link to it in the UI)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    out: dict[str, dict[str, Any]] = {}
    with create_session() as s:
        newest = (select(DagRun.dag_id, func.max(DagRun.id).label("id")).where(DagRun.dag_id.in_(dag_ids))
                  .group_by(DagRun.dag_id).subquery())
        for r in s.scalars(select(DagRun).join(newest, DagRun.id == newest.c.id)):
            out[r.dag_id] = {"run_id": r.run_id, "state": str(r.state), "start_date": r.start_date,
                             "end_date": r.end_date, "url": f"{_ui()}/dags/{r.dag_id}/runs/{r.run_id}"}
    return out


def _ui() -> str:
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


_cache: dict[str, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def _cached(key: str, seconds: float, fn):
    """Peers are asked at most every ``seconds`` (the overview is opened often)."""
    with _cache_lock:
        hit = _cache.get(key)
        if hit and time.monotonic() - hit[0] < seconds:
            return hit[1]
    value = fn()
    with _cache_lock:
        _cache[key] = (time.monotonic(), value)
    return value


def certificates() -> list[dict[str, Any]]:
    from brygga import certificates as certs

    def read():
        return certs.inspect([peer(n) for n in PEER_NAMES], timeout=3.0)
    return _cached("certificates", 600, read)


def ladok_access() -> dict[str, Any]:
    """Who the Ladok certificate is, its environment and the rights each flow needs and lacks."""
    from brygga import certificates as certs

    return _cached("ladok_access", 600, lambda: certs.ladok_access(peer("ladok").with_extra(timeout=5)))


def feed_head() -> int | None:
    """The number of the Ladok feed's newest page (for the merit sync's lag)."""
    def read():
        from adapters.ladok import LadokAdapter

        return LadokAdapter(peer("ladok").with_extra(timeout=3)).feed_page().number
    return _cached("feed_head", 30, read)


def _secret() -> str:
    """``[api_auth] jwt_secret`` (the same in every API server); without one, a secret of this
    process (forms then work only against the process that rendered them)."""
    import secrets

    from airflow.configuration import conf

    value = conf.get("api_auth", "jwt_secret", fallback="")
    if not value:
        log.warning("Brygga operations: no [api_auth] jwt_secret; CSRF tokens are this process's own")
        value = secrets.token_urlsafe(48)
    return value


def create_app():
    return console.create_app(store, authenticate, secret=_secret(), airflow=console.Airflow(
        peer=peer, trigger=trigger, dag_runs=dag_runs, ui_url=_ui(), certificates=certificates, feed_head=feed_head,
        ladok_access=ladok_access))


class BryggaOpsPlugin(AirflowPlugin):
    name = "brygga_ops"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": console.TITLE}]
    external_views = [{
        "name": console.TITLE,
        "href": URL_PREFIX.lstrip("/") + "/",  # relative: works under a base_url path too
        "url_route": "brygga-ops",
        "destination": "nav",
        "category": "browse",
    }]
