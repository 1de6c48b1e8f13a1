"""Operator health check: store schema at the expected revision, every peer reachable (Ladok: its
authenticated probe accepts the client certificate), the Ladok certificate holding every right the
flows read with, and no certificate (a Connection's client certificate, a peer's server
certificate) within 7 days of expiry: the run fails then, so Airflow's own alerting fires a week
ahead (the console's Certifikat page warns from 90 days and lists the rights)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from brygga import dagkit


@dag(
    dag_id="brygga_healthcheck",
    schedule=dt.timedelta(minutes=30),
    start_date=dagkit.START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=10),
    default_args=dagkit.default_args(dt.timedelta(minutes=2)),
    tags=["brygga", "ops"],
    doc_md=__doc__,
)
def brygga_healthcheck():
    @task(retries=0)
    def store_schema() -> dict:
        from brygga.health import check_store

        return check_store(dagkit.store())

    @task(retries=1)
    def peer_reachable(name: str) -> dict:
        from brygga.health import check_peer

        return check_peer(dagkit.peer(name))

    @task(retries=1)
    def ladok_rights() -> dict:
        from brygga import certificates as certs

        return certs.check_ladok_access(dagkit.peer("ladok"))

    @task(retries=0)
    def certificates(names: list[str]) -> list[dict]:
        from brygga import certificates as certs

        return certs.check([dagkit.peer(n) for n in names])

    peers = ["ladok", "nya", "folkbokforing", "schema", "arkiv"]
    store_schema()
    peer_reachable.expand(name=peers)
    ladok_rights()
    certificates(peers)


brygga_healthcheck()
