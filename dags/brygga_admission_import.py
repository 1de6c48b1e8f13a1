"""Admission import (antagning) NyA → Ladok, every 5 minutes.

For each open admission round (or the one given): read new and changed admitted-and-accepted
admissions from NyA, place them in the students' study plans in Ladok (establishing new students
from the population register first), and apply NyA's behörighetsvillkor changes. Admissions that
cannot be placed go to the *ej hanterade antagningar* queue; handle them with the
``brygga_admission_review`` DAG or ``brygga admissions``.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import Asset, Param, dag, get_current_context, task

from brygga import dagkit

ADMISSIONS_ASSET = Asset("brygga://ladok/admissions")


def _owner(run_id: str, map_index: int) -> str:
    """A placement task instance's identity, the same in each of its tries (claims.py)."""
    return f"brygga_admission_import/{run_id}/place/{map_index}"


@dag(
    dag_id="brygga_admission_import",
    schedule=dt.timedelta(minutes=5),
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=2),  # a national round: ~300k admissions
    default_args=dagkit.DEFAULT_ARGS,
    tags=["brygga", "antagning", "nya", "ladok"],
    doc_md=__doc__,
    params={
        "round": Param("", type="string", pattern=r"^((HT|VT)\d{4})?$", title="Antagningsomgång",
                       description="Only this round (empty: every open round in NyA)"),
        # the scheduled runs' shards: BRYGGA_ADMISSION_SHARDS (a deployment's setting, docs/deployment.md)
        "shards": Param(int(os.environ.get("BRYGGA_ADMISSION_SHARDS", "2")), type="integer", minimum=1, maximum=10, title="Parallel placement tasks",
                        description="Pending admissions are split by the personnummer's check digit; each "
                                    "part is placed by its own task (more workers on CeleryExecutor)"),
    },
)
def brygga_admission_import():
    @task(pool="nya_api")
    def rounds() -> list[str]:
        from brygga.flows import admissions

        return admissions.rounds_to_import(dagkit.store(), dagkit.nya(), get_current_context()["params"]["round"])

    @task(pool="nya_api", retries=4)
    def fetch(round_code: str) -> dict:
        from brygga.flows import admissions

        return {"round": round_code, **admissions.fetch(dagkit.store(), dagkit.nya(), round_code)}

    @task
    def shards(_fetched: list[dict]) -> list[int]:
        return list(range(int(get_current_context()["params"]["shards"])))

    @task(pool="ladok_api", retries=4)
    def place(shard: int) -> dict:
        from brygga.flows import admissions

        ctx = get_current_context()
        n = int(ctx["params"]["shards"])
        counts = admissions.place(dagkit.store(), dagkit.ladok(), dagkit.folkbokforing(), shard=shard, shards=n,
                                  owner=_owner(ctx["run_id"], ctx["ti"].map_index))
        dagkit.log.info("shard %s/%s placed: %s", shard, n, counts)
        if counts["retry"]:
            raise RuntimeError(f"{counts['retry']} admissions hit a transient Ladok error; retrying the task")
        return counts

    @task(outlets=[ADMISSIONS_ASSET])
    def report(placed: list[dict]) -> dict:
        from brygga import views
        from brygga.flows import admissions

        ctx = get_current_context()
        # counted in the store: a try lost with its worker returned nothing, its retry only its own part
        since = ctx["dag_run"].start_date
        owners = [_owner(ctx["run_id"], i) for i in range(int(ctx["params"]["shards"]))]
        total = {**dagkit.total(placed), **admissions.outcome(dagkit.store(), since, owners)}
        if total["claimed_unplaced"]:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{total['claimed_unplaced']} admissions claimed by this run's placement "
                                       "tasks are not placed (a worker lost?): the next run takes them over")
        dagkit.log.info("placed: %s; queue per hinder: %s", total, views.count_unhandled(dagkit.store(), status="open"))
        waiting = views.long_pending(dagkit.store())
        if waiting:  # a peer keeps failing them (an outage leaves admissions pending, never 'ovrigt')
            dagkit.log.warning("admissions pending for over 6 hours, per round: %s", waiting)
        get_current_context()["outlet_events"][ADMISSIONS_ASSET].extra = {
            k: v for k, v in total.items() if ":" not in k}
        return total

    @task(pool="ladok_api", retries=4)
    def conditions(round_code: str, _placed: dict) -> dict:
        from brygga.flows import admissions

        return admissions.sync_conditions(dagkit.store(), dagkit.nya(), dagkit.ladok(), round_code)

    codes = rounds()
    placed = report(place.expand(shard=shards(fetch.expand(round_code=codes))))
    conditions.partial(_placed=placed).expand(round_code=codes)


brygga_admission_import()
