"""What operators see: the read model of the store, shared by the CLI, the console's JSON API and
its HTML pages. Views read; flows act (no flow imports a view). Every string that leaves a view has
its personnummer masked (``brygga.personnummer.mask``), free text (reasons, notes) included.

One module per area: ``queue`` (ej hanterade antagningar), ``cases`` (återbudsärenden),
``publications`` (the offer export), ``audit`` (the loggbok), ``quarantine``, ``archive``,
``overview`` (and checkpoints), ``statistics`` (pandas; imported on use, not here)."""

from brygga.views.archive import ARCHIVE_STATUS_TEXT, list_archive
from brygga.views.audit import AUDIT_OBJECTS, audit_query, audit_row, failed_tasks, iter_audit, search_audit
from brygga.views.cases import case_row, get_case, list_aterbud
from brygga.views.common import DEFAULT_LIMIT, MAX_LIMIT, Page, masked
from brygga.views.overview import checkpoints, dead_letters, merit_delivery, overview, pending_per_round
from brygga.views.publications import (
    DIFF_FIELDS,
    list_publications,
    publication_detail,
    publication_diff,
    publication_row,
)
from brygga.views.quarantine import list_quarantine, quarantine_counts, quarantine_row
from brygga.views.queue import (
    BULK_MAX,
    QUEUE_SORTS,
    admission_detail,
    count_unhandled,
    list_unhandled,
    long_pending,
    queue_ids,
    queue_query,
    unhandled_page,
    unhandled_row,
)
from brygga.views.reconciliation import drift_row, get_drift, iter_drift, list_drift, runs

__all__ = [
    "ARCHIVE_STATUS_TEXT", "AUDIT_OBJECTS", "BULK_MAX", "DEFAULT_LIMIT", "DIFF_FIELDS", "MAX_LIMIT", "QUEUE_SORTS",
    "Page", "admission_detail", "audit_query", "audit_row", "case_row", "checkpoints", "count_unhandled",
    "dead_letters", "failed_tasks", "drift_row", "get_case", "get_drift", "iter_drift", "list_drift", "merit_delivery", "runs", "iter_audit", "list_archive", "list_aterbud", "list_publications", "list_quarantine",
    "list_unhandled", "long_pending", "masked", "overview", "pending_per_round", "publication_detail",
    "publication_diff", "publication_row", "quarantine_counts", "quarantine_row", "queue_ids", "queue_query",
    "search_audit", "unhandled_page", "unhandled_row",
]
