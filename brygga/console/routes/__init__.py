"""The console's routes, one ``APIRouter`` per area: its pages, its actions and its JSON. Each
route takes the console's context (``brygga.console.context.Console``) by injection."""

from brygga.console.routes import (
                              alerts,
                              archive,
                              audit,
                              cases,
                              certificates,
                              overview,
                              publications,
                              quarantine,
                              queue,
                              reconciliation,
                              schedule,
                              statistics,
                              trace,
)

ROUTERS = [r.router for r in (overview, queue, cases, quarantine, publications, audit, reconciliation, schedule,
                              statistics, certificates, archive, alerts, trace)]

__all__ = ["ROUTERS"]
