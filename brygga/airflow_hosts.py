"""Airflow's ``[core] hostname_callable`` for the scale-out run mode: a worker started with
``BRYGGA_WORKER_NAME`` reports ``<name>@<host>`` as its hostname, so two Celery workers on one
machine are told apart in the task instances (the CI check asserts both ran tasks)."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    name = os.environ.get("BRYGGA_WORKER_NAME")
    host = socket.getfqdn()
    return f"{name}@{host}" if name else host
