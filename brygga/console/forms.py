"""Small readings of a request both the pages and the actions need."""

from __future__ import annotations

import secrets
import uuid
from typing import Any


def root(request: Any) -> str:
    """The console's mount point (``/brygga-ops`` in Airflow), for the links it writes."""
    return (request.scope.get("root_path") or "").rstrip("/")


def int_or_none(v: str | None) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except ValueError:
        return None


def new_nonce() -> str:
    """A fresh form key of the letters a-f only: a run of digits in it could look like a
    personnummer to the page's masking, which would turn it into asterisks (a CI run met one)."""
    return "".join(secrets.choice("abcdef") for _ in range(32))


def nonce(v: str) -> str:
    """A form's one-time key (a double click sends the same one): hex, bounded."""
    v = "".join(c for c in v if c in "0123456789abcdef")[:32]
    return v or uuid.uuid4().hex
