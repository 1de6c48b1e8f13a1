"""Schedule export: Ladok's course and programme instances, their counts and student groups to
the scheduling system (schemaläggning), every 5 minutes as a delta, nightly in full.

`follow` reads Ladok's feed from its checkpoint and marks the instances an event touched
(admission, registration, återbud, avbrott, inställt); `plan` reads those instances again from
Ladok (every instance of the terms in a full run), compares them with what the system has from us
and puts the changes in the outbox in one transaction; `send_<format>` delivers the outbox (one
request per batch, an idempotency key per request) and updates that format's Asset. A re-run with
nothing changed sends nothing; a run that failed half-way resumes from the outbox.

The first scheduled run from 02:00 (Europe/Stockholm) that finds no reconciliation since that
night's 02:00 (kept in the store: a missed or long night still gets one, the night the clocks go
back one, not two) is a **full reconciliation**: everything in the terms, what ended is removed,
and what the system holds otherwise than we sent is sent again.
**Trigger form:** mode, terms, organisation unit, format, dry run (shows what would change and
what the system would refuse; nothing is sent). See docs/flows/schedule.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, Param, dag, get_current_context, task

from brygga import dagkit

FORMATS = ("timeedit", "timeedit-file", "lis", "oneroster")
ASSETS = {f: Asset(f"brygga://schema/{f}") for f in FORMATS}


def _scheduled(ctx: dict) -> bool:
    run = ctx.get("dag_run")
    return run is not None and getattr(run, "run_type", "") == "scheduled"


@dag(
    dag_id="brygga_schedule_export",
    schedule=dt.timedelta(minutes=5),
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=1),
    default_args=dagkit.default_args(dt.timedelta(minutes=45)),
    tags=["brygga", "schema", "ladok"],
    doc_md=__doc__,
    params={
        "mode": Param("delta", type="string", enum=["delta", "full", "reconcile"], title="Mode",
                      values_display={"delta": "Ändringar sedan förra körningen (delta)",
                                      "full": "Hela terminen (full)",
                                      "reconcile": "Hela terminen och avstämning mot schemasystemet"}),
        "terms": Param([], type="array", items={"type": "string", "pattern": r"^(HT|VT)\d{4}$"},
                       title="Terms (terminer)",
                       description="e.g. HT2027, one per line; empty: the brygga_schema Connection's extra.terms"),
        "organisation": Param("", type="string", title="Organisation unit",
                              description="Only instances of this organisationsenhet (empty: all)"),
        "format": Param("", type="string", enum=["", *FORMATS], title="Format",
                        values_display={"": "The Connection's (extra.format)", "timeedit": "TimeEdit REST",
                                        "timeedit-file": "TimeEdit XML files (katalog)",
                                        "lis": "IMS LIS records (AMQP 1.0)", "oneroster": "OneRoster 1.2 CSV"}),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Show what would change and what the system would refuse; send nothing"),
    },
)
def brygga_schedule_export():
    @task(pool="ladok_api")
    def follow() -> dict:
        from brygga.flows.schedule import following

        return following.follow(dagkit.store(), dagkit.ladok())

    @task(pool="ladok_api")
    def plan(_followed: dict) -> dict:
        from brygga.flows.schedule import FLOW, planning

        ctx = get_current_context()
        p = ctx["params"]
        with dagkit.no_retry():
            return planning.run(dagkit.store(), dagkit.ladok(), dagkit.schedule(p["format"] or None), mode=p["mode"],
                                terms=p["terms"], organisation=p["organisation"], dry_run=bool(p["dry_run"]),
                                scheduled=_scheduled(ctx), run_id=ctx["run_id"], actor=dagkit.actor(ctx, FLOW))

    @task.branch
    def route(planned: dict) -> list[str]:
        return [] if planned["dry_run"] else [f"send_{planned['target'].replace('-', '_')}"]

    def sender(fmt: str):
        @task(task_id=f"send_{fmt.replace('-', '_')}", pool="schema_api", retries=4, outlets=[ASSETS[fmt]])
        def send(planned: dict) -> dict:
            from brygga.flows.schedule import sending

            ctx = get_current_context()
            result = sending.send(dagkit.store(), dagkit.schedule(fmt))
            ctx["outlet_events"][ASSETS[fmt]].extra = {"mode": planned["mode"], "terms": planned["terms"],
                                                       "changes": planned["changes"], **result}
            return result

        return send

    planned = plan(follow())
    route(planned) >> [sender(fmt)(planned) for fmt in FORMATS]


brygga_schedule_export()
