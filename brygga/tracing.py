"""W3C Trace Context (``traceparent``) for what enters Brygga: one trace id per record from where
it is read (a NyA admission), carried on every request it causes (its placement in Ladok, as the
``traceparent`` header), its audit rows and log lines — so one id follows an admission from NyA's
reply to Ladok's answer. Format: ``00-<32 hex trace id>-<16 hex span id>-01``
(https://www.w3.org/TR/trace-context/)."""

from __future__ import annotations

import re
import secrets

_TP = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def new() -> str:
    """A fresh traceparent: a new trace, its first span, sampled."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def valid(tp: str | None) -> bool:
    m = _TP.fullmatch(tp or "")
    return m is not None and m.group(1) != "0" * 32 and m.group(2) != "0" * 16


def child(tp: str | None) -> str:
    """The traceparent of a step ``tp`` causes: the same trace, a new span (a new trace when
    ``tp`` is missing or malformed)."""
    return f"00-{tp[3:35]}-{secrets.token_hex(8)}-01" if tp and valid(tp) else new()


def trace_id(tp: str | None) -> str | None:
    """The trace id alone (what logs and the console show), None when there is none."""
    return tp[3:35] if tp and valid(tp) else None
