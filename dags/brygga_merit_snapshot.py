"""The merits Ladok already has when a student applies (the snapshot), every minute.

`applicants` reads the open rounds' new applicants from NyA (GetApplicants from each round's
checkpoint) into the store; `snapshot` takes the applicants whose earlier merits have not been
read yet, claims them in chunks, reads each student's results, registrations, avbrott, study breaks,
credit transfers and certificates through Ladok REST and queues the merits for NyA — the same merit
ids as the feed path, so nothing is sent twice. A run works for at most 4 minutes (paced by the
Ladok Connection's rate limit and the `ladok_api` pool); the next goes on where it stopped, and a
killed worker's claims lapse after 10 minutes. The merit sync's `send` sends what it queued, after
the live merits. Progress: the console overview and the task log. See docs/flows/merits.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, get_current_context, task

from brygga import dagkit


@dag(
    dag_id="brygga_merit_snapshot",
    schedule=dt.timedelta(minutes=1),
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=15),
    default_args=dagkit.default_args(dt.timedelta(minutes=10)),
    tags=["brygga", "meriter", "ladok", "nya"],
    doc_md=__doc__,
)
def brygga_merit_snapshot():
    @task(pool="nya_api", retries=3)
    def applicants() -> dict:
        from brygga.flows import merits

        return merits.applicants.follow(dagkit.store(), dagkit.nya())

    @task(pool="ladok_api", retries=3)
    def snapshot(_new: dict) -> dict:
        from brygga.flows import merits

        owner = f"brygga_merit_snapshot/{get_current_context()['run_id']}/snapshot"  # a retry takes over its claims
        return merits.snapshot.take(dagkit.store(), dagkit.ladok(), dagkit.nya(), seconds=240, owner=owner)

    snapshot(applicants())


brygga_merit_snapshot()
