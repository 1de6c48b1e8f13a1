"""Schedule export: Ladok's course and programme instances, their counts and student groups to
the scheduling system (schemaläggning), every 5 minutes as a delta, nightly in full.

`follow` reads Ladok's feed from its checkpoint and marks the instances an event touched
(admission, registration, återbud, avbrott, inställt); `plan` reads those instances again from
Ladok (every instance of the terms in a full run), compares them with what the system has from us
and puts the changes in the outbox, a chunk of instances per transaction; `send_beside_<format>`
delivers each chunk as soon as it is committed, while `plan` reads the next, and `send_<format>`
what is left when `plan` ended — also when it failed: what is committed is never held back by
reading more (one request per batch, an idempotency key per request); it updates the format's Asset. A re-run with
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
    def route() -> list[str]:
        """The format's senders (none on a dry run): chosen before the plan, so one runs beside it."""
        p = get_current_context()["params"]
        if p["dry_run"]:
            return []
        with dagkit.no_retry():
            fmt = dagkit.schedule(p["format"] or None).target.replace("-", "_")
        return [f"send_beside_{fmt}", f"send_{fmt}"]

    def beside(fmt: str):
        @task(task_id=f"send_beside_{fmt.replace('-', '_')}", pool="schema_api", retries=4)
        def send_beside(_followed: dict) -> dict:
            """Sends each chunk the plan commits while it reads the next."""
            from brygga.flows.schedule import sending

            schedule = dagkit.schedule(fmt)
            return sending.send_beside(dagkit.store(), schedule, run_id=get_current_context()["run_id"],
                                       start_wait=schedule.settings.beside_wait)

        return send_beside

    def sender(fmt: str):
        # all_done: what is committed is sent even when reading more failed (a bad page, Ladok away)
        @task(task_id=f"send_{fmt.replace('-', '_')}", pool="schema_api", retries=4, outlets=[ASSETS[fmt]],
              trigger_rule="all_done")
        def send() -> dict:
            """Sends what is left once the plan ended (the removals it released among them)."""
            from brygga.flows.schedule import sending

            ctx = get_current_context()
            result = sending.send(dagkit.store(), dagkit.schedule(fmt))
            planned = ctx["ti"].xcom_pull(task_ids="plan") or {}
            ctx["outlet_events"][ASSETS[fmt]].extra = {"mode": planned.get("mode", ctx["params"]["mode"]),
                                                       "terms": planned.get("terms"),
                                                       "changes": planned.get("changes"), **result}
            return result

        return send

    @task(trigger_rule="none_failed")
    def report() -> dict:
        """The run's outcome: failed when the plan failed (the senders above still ran)."""
        ti = get_current_context()["ti"]
        sent = [r for r in (ti.xcom_pull(task_ids=f"send_{f.replace('-', '_')}") for f in FORMATS) if r]
        return {"planned": ti.xcom_pull(task_ids="plan"), "sent": sent[0] if sent else None}

    followed = follow()
    planned = plan(followed)
    routed = route()
    senders = []
    for fmt in FORMATS:
        # the send after the plan starts when the sender beside it has stopped too: never two
        # senders over one outbox at once (SQLite has no row locks to keep them apart)
        early, after = beside(fmt)(followed), sender(fmt)()
        routed >> [early, after]
        [planned, early] >> after
        senders.append(after)
    [planned, *senders] >> report()

brygga_schedule_export()
