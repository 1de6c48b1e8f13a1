"""NyA↔Ladok reconciliation (avstämning), nightly and on a trigger form.

Per open round (or the one chosen): the admissions NyA transferred against Ladok's
tillfällesantagningar (missing, in another package), återbud on one side only, villkor that
differ, and the applicants' merits NyA lacks or holds otherwise than Ladok. It reads both peers
through their gateways and changes nothing in them: each drift is a row the console's
Avstämning page lists with the action that repairs it (place again, ompröva, an återbudsärende,
report the återbud, align the villkor, send the merit again, withdraw it). A dry run lists what it
found and what each action would do, and writes nothing. See docs/flows/reconciliation.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

from brygga import dagkit


@dag(
    dag_id="brygga_reconciliation",
    schedule="30 2 * * *",
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=2),
    default_args=dagkit.default_args(dt.timedelta(minutes=90)),
    tags=["brygga", "avstämning", "ladok", "nya"],
    doc_md=__doc__,
    params={
        "round": Param("", type="string", title="Antagningsomgång",
                       description="One round (e.g. HT2027); empty: every open round"),
        "dry_run": Param(False, type="boolean", title="Provkörning",
                         description="List what differs and what each action would do; record nothing"),
        "merits": Param(True, type="boolean", title="Jämför meriter",
                        description="Also the applicants' merits (one NyA call per applicant with merits)"),
    },
)
def brygga_reconciliation():
    @task(pool="ladok_api", retries=2)
    def reconcile() -> dict:
        from brygga.flows import reconciliation

        ctx = get_current_context()
        p = ctx["params"]
        return reconciliation.reconcile(dagkit.store(), dagkit.nya(), dagkit.ladok(),
                                        rounds=[p["round"]] if p.get("round") else None,
                                        dry_run=bool(p["dry_run"]), merits=bool(p.get("merits", True)),
                                        actor=dagkit.actor(ctx, reconciliation.FLOW))

    reconcile()


brygga_reconciliation()
