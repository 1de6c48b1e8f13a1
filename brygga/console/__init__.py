"""Brygga's operator console: the pages admission officers and Ladok administrators work in,
embedded in Airflow's UI (``plugins/brygga_ops.py`` mounts it at ``/brygga-ops``).

* ``app.py`` — the FastAPI app; ``routes/`` — one router per area: its pages, actions (each calls
  the flow function the CLI and the review DAGs call, audited with the Airflow user), JSON and CSV;
  ``context.py`` — what every route gets injected (store, Airflow, page and action helpers);
* ``brygga.views`` — the read model the pages show;
* ``security.py`` — the user and what they may do, CSRF, person tokens for the audit search;
* ``render.py`` + ``templates/`` — Jinja2 pages, Stockholm time, Swedish texts, masking;
* ``charts.py`` + ``static/`` — statistics for Chart.js (vendored, no CDN).
"""

from brygga.console.app import TITLE, create_app
from brygga.console.context import Airflow
from brygga.console.security import AREAS, Forbidden, Principal, Unauthenticated

__all__ = ["AREAS", "TITLE", "Airflow", "Forbidden", "Principal", "Unauthenticated", "create_app"]
