"""Retention: the personal data of closed rounds, closed återbudsärenden and old input is purged.

Daily. What goes and what stays, per kind of record: ``brygga.flows.retention`` and
``docs/operations.md``. The days come from ``BRYGGA_RETENTION_<KIND>_DAYS`` (defaults: admissions
548 after a round's last activity, återbud cases 365 after closing, quarantine 180, outbox 90);
the form overrides them for one run. A dry run only counts. Every run that purged something
writes a ``retention.purge`` audit row.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

from brygga import dagkit


def _days(title: str) -> Param:
    return Param(None, type=["null", "integer"], minimum=1, title=title,
                 description="Days; empty = the configured retention")


@dag(
    dag_id="brygga_retention",
    schedule="15 3 * * *",
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=1),
    default_args=dagkit.default_args(dt.timedelta(minutes=45)),
    tags=["brygga", "gdpr", "ops"],
    doc_md=__doc__,
    params={
        "dry_run": Param(False, type="boolean", title="Dry run", description="Only count what would be purged"),
        "admissions": _days("Antagningsomgångar (after a closed round's last activity)"),
        "aterbud_cases": _days("Återbudsärenden (after closing)"),
        "quarantine": _days("Quarantined input"),
        "outbox": _days("Sent messages"),
    },
)
def brygga_retention():
    @task(retries=1)
    def purge() -> dict:
        from brygga.flows import retention

        p = get_current_context()["params"]
        r = retention.Retention.from_env(**{k: p.get(k) for k in retention.Retention.KINDS})
        return retention.purge(dagkit.store(), r, dry_run=bool(p["dry_run"]))

    purge()


brygga_retention()
