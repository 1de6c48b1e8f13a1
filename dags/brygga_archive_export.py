"""Archive export: study documentation from Ladok to the digital archive (e-arkiv) as E-ARK SIP 2.1
/ FGS Paketstruktur 2.0 packages, monthly.

`plan` finds the course instances whose study period ended at least the closing delay (the
brygga_arkiv Connection's `extra.closing_days`, 90 by default) before the chosen date, that the
archive does not hold yet, and puts one outbox message per instance; `deliver` packages each
(Ladok's own XML for the catalogue, the participants and their registrations, the attested
results; the Ladok XSDs inside; METS, PREMIS 3 with SHA-256, Dublin Core), sends it and records
the archive's receipt (kvittens). A rejected package is kept with the archive's reasons in the
quarantine; after a fix, `brygga archive resend <uid>` sends it again. A resend of an accepted
package is recognised by the archive ("redan mottaget").

**Trigger form:** up to which date instances count as ended, specific instances, dry run (lists
what would be packaged, with sizes and parts; nothing is sent). See docs/flows/archive.md.
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
        "up_to": Param("", type="string", title="Ended up to (slutdatum till och med)",
                       description="YYYY-MM-DD: instances whose study period ended by this date, less the "
                                   "closing delay; empty: today",
                       pattern=r"^(\d{4}-\d{2}-\d{2})?$"),
        "instances": Param([], type="array", items={"type": "string"}, title="Only these instances",
                           description="Ladok UIDs of utbildningstillfällen, one per line; empty: every ended one"),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="List what would be packaged, with sizes; send nothing"),
    },
)
def brygga_archive_export():
    @task(pool="ladok_api")
    def plan() -> dict:
        from brygga.flows.archive import delivery

        p = get_current_context()["params"]
        up_to = dt.date.fromisoformat(p["up_to"]) if p["up_to"] else dt.date.today()
        only = [u.strip() for u in p["instances"] if u.strip()] or None
        summary = delivery.plan(dagkit.store(), dagkit.ladok(), up_to=up_to, dry_run=bool(p["dry_run"]), only=only,
                                settings=delivery.Settings.from_extra(dagkit.peer("arkiv").extra))
        for row in summary.get("would_package", [])[:200]:
            dagkit.log.info("would package %s (%s, ended %s): %d files, %d bytes of data, %d part(s)",
                            row["uid"], row["kod"], row["slut"], row["files"], row["data_bytes"], row["parts"])
        return {k: v for k, v in summary.items() if k != "would_package"} | {
            "would_package": len(summary.get("would_package", []))}

    @task.short_circuit
    def to_send(planned: dict) -> bool:
        return not planned["dry_run"]

    @task(pool="arkiv_api", retries=4, outlets=[ARCHIVE])
    def deliver() -> dict:
        from brygga.flows.archive import delivery
        from brygga.flows.archive.delivery import ArchiveAdapter

        ctx = get_current_context()
        peer = dagkit.peer("arkiv")
        result = delivery.deliver(dagkit.store(), dagkit.ladok(), ArchiveAdapter(peer),
                                  settings=delivery.Settings.from_extra(peer.extra))
        ctx["outlet_events"][ARCHIVE].extra = result
        return result

    to_send(plan()) >> deliver()


brygga_archive_export()
