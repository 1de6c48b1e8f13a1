"""Återbud reconciliation NyA ↔ Ladok, every minute, and the återbudsärende actions for staff.

`brygga_aterbud` (scheduled): `nya_to_ladok` applies återbud registered in NyA (GetAterbud per open
round, from the stored sequence) in Ladok, or opens an återbudsärende when Ladok refuses
(registered / återbud already there); `ladok_to_nya` follows Ladok's Atom feed for återbud entered
in Ladok and queues them for NyA (checkpoint, inbox and outbox in one transaction); `send` reports
them (ReportAterbud) and publishes the `brygga://nya/aterbud` asset — also when a follower failed
(an unreadable feed page): what is committed is never held back by reading more; `report` then
fails the run. Nothing is echoed back either
way. Rules: `brygga/flows/aterbud/`, docs/flows/aterbud.md.

`brygga_aterbud_cases` (manual, trigger form): close återbudsärenden with a note, or carry out the
suggested action in Ladok (avbrott from the date the återbud was reported — early avbrott within
3 weeks of study start — or nothing) and close them. Every action is audited with the triggering user.
The university settings are changed with `brygga aterbud settings`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, Param, dag, get_current_context, task

from brygga import dagkit

ATERBUD_ASSET = Asset("brygga://nya/aterbud")


@dag(
    dag_id="brygga_aterbud",
    schedule=dt.timedelta(minutes=1),
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=20),
    default_args=dagkit.default_args(dt.timedelta(minutes=15)),
    tags=["brygga", "återbud", "ladok", "nya"],
    doc_md=__doc__,
    params={
        "max_pages": Param(500, type="integer", minimum=1, title="Max Ladok feed pages per run"),
    },
)
def brygga_aterbud():
    @task(pool="ladok_api", retries=3)
    def nya_to_ladok() -> dict:
        from brygga.flows import aterbud

        return aterbud.nya_to_ladok(dagkit.store(), dagkit.nya(), dagkit.ladok())

    @task(pool="ladok_api", retries=3)
    def ladok_to_nya(_applied: dict) -> dict:
        from brygga.flows import aterbud

        p = get_current_context()["params"]
        with dagkit.no_retry():  # an unreadable page waits for an operator (docs/flows/aterbud.md)
            return aterbud.ladok_to_nya(dagkit.store(), dagkit.ladok(), max_pages=int(p["max_pages"]))

    # all_done: the återbud already committed to the outbox are reported to NyA whatever became of
    # reading more (an unreadable feed page stops ladok_to_nya until an operator acts, not this)
    @task(pool="nya_api", retries=3, outlets=[ATERBUD_ASSET], trigger_rule="all_done")
    def send() -> dict:
        from brygga.flows import aterbud

        ti = get_current_context()["ti"]
        applied = ti.xcom_pull(task_ids="nya_to_ladok") or {}
        queued = ti.xcom_pull(task_ids="ladok_to_nya") or {}
        store = dagkit.store()
        result = aterbud.send_pending(store, dagkit.nya())
        extra = {"applied": applied.get("applied", 0), "cases": applied.get("case", 0),
                 "declined": applied.get("declined", 0), "enqueued": queued.get("enqueued", 0),
                 "echo": applied.get("echo", 0) + queued.get("echo", 0), **result,
                 "pending": aterbud.pending_count(store)}
        get_current_context()["outlet_events"][ATERBUD_ASSET].extra = extra
        return extra

    @task(trigger_rule="none_failed")
    def report() -> None:
        """The run's outcome: failed when a follower failed (send above ran all the same)."""

    applied = nya_to_ladok()
    queued = ladok_to_nya(applied)
    sent = send()
    [applied, queued] >> sent
    [applied, queued, sent] >> report()


brygga_aterbud()


@dag(
    dag_id="brygga_aterbud_cases",
    schedule=None,
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=1),
    default_args=dagkit.DEFAULT_ARGS,
    tags=["brygga", "återbud", "återbudsärende", "ladok"],
    doc_md=__doc__,
    params={
        "case_ids": Param([], type="array", items={"type": "integer", "minimum": 1}, minItems=1,
                          title="Återbudsärenden", description="Case ids (see `brygga aterbud cases`)"),
        "action": Param("apply", type="string", enum=["apply", "close"], title="Action",
                        values_display={"apply": "Carry out the suggested action in Ladok, then close",
                                        "close": "Close (handled in Ladok by hand)"}),
        "note": Param("", type="string", title="Note", description="Kept on the case and in the audit log"),
    },
)
def brygga_aterbud_cases():
    @task(pool="ladok_api", retries=1)  # safe to repeat: an avbrott already there counts as done
    def act() -> dict:
        from brygga.flows import aterbud

        ctx = get_current_context()
        p = ctx["params"]
        actor = dagkit.actor(ctx)
        store = dagkit.store()
        ladok = dagkit.ladok() if p["action"] == "apply" else None
        done, failed = {}, {}
        for case_id in p["case_ids"]:
            try:
                if p["action"] == "apply":
                    c = aterbud.apply_case(store, ladok, int(case_id), actor=actor, note=p["note"] or "")
                else:
                    c = aterbud.close_case(store, int(case_id), actor=actor, note=p["note"] or "")
                done[str(case_id)] = c["status"]
            except aterbud.CaseError as e:  # one bad case never stops the others
                failed[str(case_id)] = str(e)
                dagkit.log.warning("återbudsärende %s: %s", case_id, e)
        if failed:  # the others are done; a wrong case id does not get better by retrying
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"handled {sorted(done)}; could not handle: {failed}")
        return {"done": done, "failed": failed}

    act()


brygga_aterbud_cases()
