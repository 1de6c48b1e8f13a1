"""Airflow plugin "Brygga operations": read-only pages over Brygga's store in Airflow's API server.

The pages and queries are in ``brygga.opsview`` (plain Python); this file only wires them into
Airflow:

* ``fastapi_apps``: the app is mounted at ``/brygga-ops`` in the API server;
* ``external_views``: a "Brygga operations" entry in the UI's Browse menu, showing the app inside
  the Airflow UI (``/plugin/brygga-ops``);
* authentication: plugin apps are not protected by Airflow, so every request is checked here with
  Airflow's own login: the JWT the UI keeps in the ``_token`` cookie, or an
  ``Authorization: Bearer`` token from ``POST /auth/token``, validated by the configured auth
  manager (``airflow.api_fastapi.core_api.security.get_user``: signature with the
  ``[api_auth] jwt_secret``, audience, expiry, revoked tokens). No valid token -> 401. The user
  must then be allowed the custom view "Brygga operations" by the auth manager (SimpleAuthManager:
  role viewer or above) -> else 403.

The store is the one the DAGs use: the ``brygga_store`` Connection (``extra.sqlalchemy_url``),
else ``BRYGGA_STORE_URL`` / ``var/brygga.db``. The API server is not task code, so reading the
Connection from Airflow's secrets backends here is allowed.
"""

from __future__ import annotations

import logging

from airflow.plugins_manager import AirflowPlugin

from brygga import opsview

log = logging.getLogger(__name__)

URL_PREFIX = "/brygga-ops"
RESOURCE = opsview.TITLE  # the custom view name the auth manager is asked about


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


def _login_url(request) -> str | None:
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=str(request.url))
    except Exception:
        return None


async def authenticate(request) -> str:
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
        raise opsview.Unauthenticated(
            "Not authenticated" if e.status_code == 401 and e.detail == "Not authenticated"
            else f"Not authenticated: {e.detail}", _login_url(request)) from None
    if not get_auth_manager().is_authorized_custom_view(method="GET", resource_name=RESOURCE, user=user):
        raise opsview.Forbidden(f"{user.get_name()} may not see {RESOURCE}")
    return user.get_name()


def create_app():
    return opsview.create_app(store, authenticate)


class BryggaOpsPlugin(AirflowPlugin):
    name = "brygga_ops"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": opsview.TITLE}]
    external_views = [{
        "name": opsview.TITLE,
        "href": URL_PREFIX.lstrip("/") + "/",  # relative: works under a base_url path too
        "url_route": "brygga-ops",
        "destination": "nav",
        "category": "browse",
    }]
