"""Alerts: every minute, each subscription's figure against its threshold; an episode that starts
or ends is one e-mail each way, through the SMTP provider's notifier (Connection `brygga_smtp`).
Subscriptions are kept on the console's Bevakningar page. Rules: `brygga/flows/alerts/`,
docs/operations.md ("Alerts").
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from brygga import dagkit


def _measures(store) -> dict:
    """Each kind's figure, read from the views (and the certificates) when the flow asks for it."""
    from brygga import views

    def certificate_days() -> float | None:
        from brygga.certificates import inspect
        from brygga.connections import PEERS

        peers = []
        for name in PEERS:
            try:
                peers.append(dagkit.peer(name))
            except Exception:  # noqa: BLE001 - a peer not configured has no certificate to watch
                continue
        days = [c["days_left"] for c in inspect(peers, fetch_server=True, timeout=5.0) if "days_left" in c]
        return float(min(days)) if days else None

    return {
        "dead_outbox": lambda: float(sum(views.dead_letters(store).values())),
        "quarantine": lambda: float(views.overview(store)["quarantine_open"] or 0),
        "unhandled": lambda: float(views.overview(store)["unhandled_admissions"].get("open", 0)),
        "merit_lag": lambda: views.merit_delivery(store)["p95_seconds"],
        "drift": lambda: float(views.list_drift(store, status="open", limit=1)["total"]),
        "certificate_days": certificate_days,
        "failed_tasks": lambda: float(views.failed_tasks(store)),
    }


@dag(
    dag_id="brygga_alerts",
    schedule=dt.timedelta(minutes=1),
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=10),
    default_args=dagkit.default_args(dt.timedelta(minutes=5)),
    tags=["brygga", "larm"],
    doc_md=__doc__,
)
def brygga_alerts():
    @task(retries=1)
    def evaluate() -> dict:
        from brygga.flows import alerts

        store = dagkit.store()
        return alerts.evaluate(store, _measures(store))

    # all_done: what is queued goes out even when a figure could not be read this minute
    @task(retries=3, trigger_rule="all_done")
    def send() -> dict:
        from brygga.flows import alerts

        return alerts.send(dagkit.store(), dagkit.email_notifier(), dagkit.webhook_notifier())

    evaluate() >> send()


brygga_alerts()
