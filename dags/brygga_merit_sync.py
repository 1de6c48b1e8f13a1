"""Continuous merit sync Ladok → NyA (meriter), every 30 seconds.

`sync` reads the open rounds' new applicants, then Ladok's Atom feed forward from the stored
checkpoint, and queues the merits (registrering, resultat on modules and whole courses,
tillgodoräknande, avbrott, studieuppehåll, examen) of NyA applicants and the withdrawal of what
Ladok took back; the checkpoint advances in the same transaction as the ledger, outbox and inbox
rows. `send` delivers the outbox to NyA (SubmitMerits / WithdrawMerits, RequestId per batch): the
live merits first, the snapshot's (DAG `brygga_merit_snapshot`) between them for at most 20 s. The
two run side by side: sending what is committed never waits on reading more. `report` publishes
the `brygga://ladok/merits` asset with both.

**Operator action, replay:** trigger with `replay_from_page` = N to read the feed again from
archive page N. Safe: handled events are in the inbox and merits have idempotency keys, so
nothing is sent twice; students who became applicants since then get their merits.
A feed that moved on while Brygga was away is recorded in quarantine (kind `feed-gap`).
See docs/flows/merits.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, Param, dag, get_current_context, task

from brygga import dagkit

MERITS_ASSET = Asset("brygga://ladok/merits")


@dag(
    dag_id="brygga_merit_sync",
    schedule=dt.timedelta(seconds=30),
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=20),
    default_args=dagkit.default_args(dt.timedelta(minutes=15)),
    tags=["brygga", "meriter", "ladok", "nya"],
    doc_md=__doc__,
    params={
        "replay_from_page": Param(None, type=["null", "integer"], minimum=1, title="Replay from feed page",
                                  description="Operator action: read Ladok's feed again from this archive page"),
        "max_pages": Param(500, type="integer", minimum=1, title="Max feed pages per run"),
        "batch_size": Param(5000, type="integer", minimum=1, maximum=10000,
                            title="Events per transaction (and per SubmitMerits)",
                            description="Bigger batches spread each transaction's fixed cost over more events: "
                                        "~20 % faster catching up than 1000 (bench/merit_sync.py)"),
        "read_ahead_pages": Param(4, type="integer", minimum=0, maximum=32, title="Feed pages read ahead",
                                  description="Pages fetched and parsed in a thread while the previous one is "
                                              "processed (0: one page at a time)"),
    },
)
def brygga_merit_sync():
    @task(retries=2)
    def replay() -> dict:
        from brygga.flows import merits

        ctx = get_current_context()
        page = ctx["params"].get("replay_from_page")
        if not page:
            return {"replay_from_page": None}
        user = dagkit.actor(ctx)
        return merits.reset_checkpoint(dagkit.store(), int(page), actor=user, reason=f"run {ctx['run_id']}")

    @task(pool="ladok_api", retries=3)
    def sync(_replay: dict) -> dict:
        from brygga.flows import merits

        p = get_current_context()["params"]
        return merits.sync_once(dagkit.store(), dagkit.ladok(), dagkit.nya(),
                                max_pages=int(p["max_pages"]), batch_size=int(p["batch_size"]),
                                read_ahead_pages=int(p.get("read_ahead_pages", 4)))

    @task(pool="nya_api", retries=3)
    def send() -> dict:
        from brygga.flows import merits

        return merits.send_pending(dagkit.store(), dagkit.nya(), batch=int(
            get_current_context()["params"]["batch_size"]))

    @task(retries=1, outlets=[MERITS_ASSET])
    def report(synced: dict, sent: dict) -> dict:
        from brygga.flows import merits

        extra = {"events": synced["events"], "enqueued": synced["merits"], "withdrawn": synced["withdrawn"],
                 "page": synced["page"], "gaps": synced["gaps"], "quarantined": synced["quarantined"], **sent,
                 "lag_seconds": merits.lag_seconds(dagkit.store())}
        get_current_context()["outlet_events"][MERITS_ASSET].extra = extra
        return extra

    report(sync(replay()), send())


brygga_merit_sync()
