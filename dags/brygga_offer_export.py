"""Offer export (utbud) to NyA, triggered by an operator with the trigger form.

Dry-run (the default) stores and shows the diff against the last publication without sending.
A real run sends new and changed instances and withdraws cancelled or un-advertised ones; running
it again sends nothing new, and a run that failed half-way resumes from the outbox.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, Param, dag, get_current_context, task

from brygga import dagkit

OFFERS_ASSET = Asset("brygga://nya/offers")


@dag(
    dag_id="brygga_offer_export",
    schedule=None,
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=2),
    default_args=dagkit.DEFAULT_ARGS,
    tags=["brygga", "utbud", "nya"],
    doc_md=__doc__,
    params={
        "round": Param("HT2027", type="string", pattern=r"^(HT|VT)\d{4}$", title="Antagningsomgång",
                       description="Admission round, e.g. HT2027"),
        "kind": Param("ordinary", type="string", enum=["ordinary", "programme-internal"], title="Kind",
                      values_display={"ordinary": "Utbud (ordinary offer)",
                                      "programme-internal": "Underlag för anmälan inom program"}),
        "selection": Param("all", type="string", enum=["all", "codes"], title="Selection",
                           values_display={"all": "All instances flagged for the round",
                                           "codes": "Only the codes below"}),
        "codes": Param([], type="array", items={"type": "string"}, title="Codes",
                       description="Tillfälleskod or utbildningskod, one per line (selection = codes)"),
        "dry_run": Param(True, type="boolean", title="Dry run", description="Show the diff, send nothing"),
        "places": Param(30, type="integer", minimum=0, title="Places per instance (default)"),
        "plan_of": Param(0, type="integer", minimum=0, title="Publish the plan of dry run #",
                         description="Set by the console's Publicera: the run fails, sending nothing, if the plan "
                                     "differs from that dry run's; 0 = no such check"),
    },
)
def brygga_offer_export():
    @task
    def start() -> int:
        from brygga.flows import offers

        ctx = get_current_context()
        p = ctx["params"]
        with dagkit.no_retry():
            return offers.start(dagkit.store(), round_code=p["round"], kind=p["kind"], codes=p["codes"],
                                selection=p["selection"], dry_run=bool(p["dry_run"]), triggered_by=dagkit.actor(ctx),
                                run_id=ctx["run_id"], places=int(p["places"]),
                                plan_of=int(p.get("plan_of") or 0) or None)

    @task(pool="ladok_api")
    def collect(publication_id: int) -> dict:
        from brygga.flows import offers

        return offers.collect(dagkit.store(), dagkit.ladok(), publication_id, nya=dagkit.nya())

    @task(pool="nya_api", retries=4, outlets=[OFFERS_ASSET])
    def publish(publication_id: int, _counts: dict) -> dict:
        from brygga.flows import offers

        ctx = get_current_context()
        p = ctx["params"]
        with dagkit.no_retry():  # Ladok changed since the dry run: publish nothing, the operator looks again
            result = offers.publish(dagkit.store(), dagkit.nya(), publication_id)
        if not result.get("dry_run"):
            ctx["outlet_events"][OFFERS_ASSET].extra = {"round": p["round"], "kind": p["kind"], **result}
        return result

    @task
    def finish(publication_id: int, _sent: dict) -> dict:
        from brygga.flows import offers

        summary = offers.finish(dagkit.store(), publication_id)
        dagkit.log.info("publication %s %s (%s, dry run %s): %s", summary["publication_id"], summary["status"],
                        summary["round"], summary["dry_run"], summary["counts"])
        for line in summary["diff"]:
            dagkit.log.info("  %s", line)
        return {k: summary[k] for k in ("publication_id", "status", "counts")}

    pid = start()
    finish(pid, publish(pid, collect(pid)))


brygga_offer_export()
