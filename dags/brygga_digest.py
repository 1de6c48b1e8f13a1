"""Digests: every weekday morning, per subscription of kind "sammandrag" (the console's
Bevakningar page), what happened on its organisation unit's instances since the last one: new
unhandled admissions, new återbudsärenden, places freed by återbud ("kalla reserv?") and late
admissions — one e-mail (or webhook post) each. The digest is queued in the alerts' outbox and
sent by `brygga_alerts` within the minute (one sender for that outbox, never two at once). Rules: `brygga/flows/alerts/digest.py`, docs/operations.md ("Digests").
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from brygga import dagkit


@dag(
    dag_id="brygga_digest",
    schedule="0 6 * * 1-5",  # 07:00 Stockholm time in winter, 08:00 in summer (the cron is UTC)
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=30),
    default_args=dagkit.default_args(dt.timedelta(minutes=20)),
    tags=["brygga", "larm"],
    doc_md=__doc__,
)
def brygga_digest():
    @task(retries=2)
    def compose() -> dict:
        from brygga.flows.alerts import digest

        ladok = dagkit.ladok()

        def instance(uid: str) -> tuple[str | None, dt.date | None]:
            t = ladok.tillfalle(uid)
            return t.organisation, dt.date.fromisoformat(t.start[:10]) if t.start else None

        return digest.compose(dagkit.store(), instance)

    compose()


brygga_digest()
