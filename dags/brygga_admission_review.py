"""Ej hanterade antagningar: an operator handles queued admissions from the trigger form.

* **ompröva** — try to place again (after fixing the cause in Ladok), optionally in a chosen
  kurspaketering (package uid from the queue entry's candidates) or as free-standing;
* **handled** — the admission was settled by hand in Ladok (e.g. after a tillfällesbyte).

Every action is audited with the triggering user. A Ladok outage fails the task and it retries;
an unknown or already handled admission fails it at once with the reason. The queue itself: ``brygga admissions list``
or the Brygga operations view.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

from brygga import dagkit


@dag(
    dag_id="brygga_admission_review",
    schedule=None,
    start_date=dagkit.START,
    catchup=False,
    dagrun_timeout=dt.timedelta(hours=1),
    default_args=dagkit.DEFAULT_ARGS,
    tags=["brygga", "antagning", "operator"],
    doc_md=__doc__,
    params={
        "admission_ids": Param([], type="array", items={"type": "string"}, minItems=1, title="Antagningar",
                               description="NyA admission ids (AdmissionId), one per line"),
        "action": Param("ompröva", type="string", enum=["ompröva", "fristående", "handled"], title="Action",
                        values_display={"ompröva": "Ompröva (optionally in the package below)",
                                        "fristående": "Ompröva: place as free-standing",
                                        "handled": "Mark as handled by hand"}),
        "package_uid": Param("", type="string", title="Kurspaketeringstillfälle",
                             description="Package uid for ompröva (from the queue's candidates); empty = none"),
        "note": Param("", type="string", title="Note", description="Kept with the audit entry"),
    },
)
def brygga_admission_review():
    @task(pool="ladok_api")
    def handle() -> list[dict]:
        from brygga.flows import admissions

        ctx = get_current_context()
        p = ctx["params"]
        actor = dagkit.actor(ctx)
        store = dagkit.store()
        out = []
        for admission_id in [a.strip() for a in p["admission_ids"] if a.strip()]:
            try:
                if p["action"] == "handled":
                    out.append(admissions.mark_handled(store, admission_id, actor=actor, note=p["note"]))
                else:
                    out.append(admissions.retry(
                        store, dagkit.ladok(), dagkit.folkbokforing(),
                        admission_id, actor=actor, package_uid=p["package_uid"] or None,
                        fristaende=p["action"] == "fristående"))
            except (KeyError, ValueError) as e:
                out.append({"admission_id": admission_id, "error": str(e)})
            dagkit.log.info("%s", out[-1])
        if any("error" in o for o in out):
            from airflow.sdk.exceptions import AirflowFailException  # a wrong id does not get better by retrying

            raise AirflowFailException("some admissions could not be handled: " + "; ".join(
                f"{o['admission_id']}: {o['error']}" for o in out if "error" in o))
        return out

    handle()


brygga_admission_review()
