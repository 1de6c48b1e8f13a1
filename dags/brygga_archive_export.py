"""Archive export: study documentation from Ladok to the digital archive (e-arkiv) as E-ARK SIP 2.1
/ FGS Paketstruktur 2.0 packages, monthly.

`plan` finds what the archive does not hold yet and puts one outbox message per subject: the
course instances whose study period ended at least the closing delay (the brygga_arkiv
Connection's `extra.closing_days`, 90 by default) before the chosen date, and the degree
certificates (utfärdade bevis) issued in the chosen period; `deliver` packages each (Ladok's own
XML — catalogue data, participants and registrations, attested results; for a degree the
certificate and the student's results — with the Ladok XSDs inside, METS, PREMIS 3 with SHA-256,
Dublin Core), sends it and records the archive's receipt (kvittens). A rejected package is kept
with the archive's reasons in the quarantine; after a fix, `brygga archive resend <uid>` sends it
again. A resend of an accepted package is recognised by the archive ("redan mottaget").

**Trigger form:** what (both, course instances, degrees), ended up to, the degrees' period, only
these UIDs, dry run (lists what would be packaged, with sizes and parts; nothing is sent). See
docs/flows/archive.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, Param, dag, get_current_context, task

from brygga import dagkit

ARCHIVE = Asset("brygga://arkiv/sip")


@dag(
    dag_id="brygga_archive_export",
    schedule="@monthly",
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=12),
    default_args=dagkit.default_args(dt.timedelta(hours=8)),
    tags=["brygga", "arkiv", "ladok"],
    doc_md=__doc__,
    params={
        "what": Param("alla", type="string", enum=["alla", "kurstillfallen", "examina"], title="What",
                      values_display={"alla": "Kurstillfällen och examina", "kurstillfallen": "Avslutade kurstillfällen",
                                      "examina": "Utfärdade examensbevis"}),
        "up_to": Param("", type="string", title="Ended up to (slutdatum till och med)",
                       description="YYYY-MM-DD: course instances whose study period ended by this date, less the "
                                   "closing delay; empty: today",
                       pattern=r"^(\d{4}-\d{2}-\d{2})?$"),
        "degrees_from": Param("", type="string", title="Degrees issued from (utfärdade från)",
                              description="YYYY-MM-DD; empty: the Connection's extra.degrees_from, else 2020-01-01",
                              pattern=r"^(\d{4}-\d{2}-\d{2})?$"),
        "degrees_to": Param("", type="string", title="Degrees issued up to (utfärdade till och med)",
                            description="YYYY-MM-DD; empty: today", pattern=r"^(\d{4}-\d{2}-\d{2})?$"),
        "instances": Param([], type="array", items={"type": "string"}, title="Only these UIDs",
                           description="Ladok UIDs of utbildningstillfällen or utfärdade bevis, one per line; "
                                       "empty: everything due"),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="List what would be packaged, with sizes; send nothing"),
    },
)
def brygga_archive_export():
    @task(pool="ladok_api")
    def plan() -> dict:
        from brygga.flows.archive import delivery

        p = get_current_context()["params"]
        settings = delivery.Settings.of(dagkit.arkiv().settings)
        today = dt.date.today()
        up_to = dt.date.fromisoformat(p["up_to"]) if p["up_to"] else today
        period = settings.period(p["degrees_from"], p["degrees_to"], today)
        only = [u.strip() for u in p["instances"] if u.strip()] or None
        out: dict = {"dry_run": bool(p["dry_run"])}
        for what in (["kurstillfallen", "examina"] if p["what"] == "alla" else [p["what"]]):
            summary = delivery.plan(dagkit.store(), dagkit.ladok(), what=what, up_to=up_to, period=period,
                                    dry_run=bool(p["dry_run"]), only=only,
                                    settings=settings)
            for row in summary.get("would_package", [])[:200]:
                dagkit.log.info("would package %s %s (%s): %d files, %d bytes of data, %d part(s)", row["kind"],
                                row["uid"], row["label"], row["files"], row["data_bytes"], row["parts"])
            out[what] = {k: v for k, v in summary.items() if k not in ("would_package", "dry_run")} | {
                "would_package": len(summary.get("would_package", []))}
        return out

    @task.short_circuit
    def to_send(planned: dict) -> bool:
        return not planned["dry_run"]

    @task(pool="arkiv_api", retries=4, outlets=[ARCHIVE])
    def deliver() -> dict:
        from brygga.flows.archive import delivery

        ctx = get_current_context()
        arkiv = dagkit.arkiv()
        result = delivery.deliver(dagkit.store(), dagkit.ladok(), arkiv,
                                  settings=delivery.Settings.of(arkiv.settings),
                                  owner=f"brygga_archive_export/{ctx['run_id']}/deliver")  # a retry takes over
        ctx["outlet_events"][ARCHIVE].extra = result
        return result

    to_send(plan()) >> deliver()


brygga_archive_export()
