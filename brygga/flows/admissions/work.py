"""One admission while it is being placed: plain data, detached from the session, shared by the
lookups (``resolving``) and the placement (``placing``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from brygga.records import Utbildningstillfalle


@dataclasses.dataclass
class Work:
    """One admission being placed (plain data, detached from the session)."""

    admission_id: str
    round: str
    personnummer: str | None
    record: dict[str, Any]
    utbildningskod: str | None
    tillfalleskod: str | None
    programme_internal: bool
    package_id: str | None
    fee_liable: bool
    application_fee_paid: bool | None
    conditions: list[dict[str, Any]]
    attempts: int
    transient_failures: int = 0
    failing_since: dt.datetime | None = None
    traceparent: str | None = None  # from when NyA's admission was read (brygga.tracing)
    post_failed: bool = False  # the placement POST itself failed transiently (not a lookup before it)
    tillfalle: Utbildningstillfalle | None = None
    student_uid: str | None = None
    outcome: str | None = None  # placed | unhandled | retry
    hinder: str | None = None
    reason: str | None = None
    candidates: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    placed: dict[str, Any] | None = None
    established: bool = False

    @property
    def instance(self) -> Utbildningstillfalle:
        """The utbildningstillfälle, once it was found (before placing)."""
        assert self.tillfalle is not None, f"{self.admission_id}: placed before its instance was found"
        return self.tillfalle

    @property
    def student(self) -> str:
        """The student's Ladok uid, once the student was found or established (before placing)."""
        assert self.student_uid is not None, f"{self.admission_id}: placed before its student was found"
        return self.student_uid

    @property
    def placement(self) -> dict[str, Any]:
        """Ladok's answer to the placement (once placed)."""
        assert self.placed is not None, f"{self.admission_id}: not placed"
        return self.placed

    def unhandled(self, code: str, reason: str) -> None:
        self.outcome, self.hinder, self.reason = "unhandled", code, reason

    def retry(self, e: Exception) -> None:
        self.outcome, self.reason = "retry", str(e)


WORK_COLUMNS = ("admission_id", "round", "personnummer", "record", "utbildningskod", "tillfalleskod",
                "programme_internal", "package_id", "fee_liable", "application_fee_paid", "conditions", "attempts",
                "transient_failures", "failing_since", "traceparent")


def work(r: Any) -> Work:
    return Work(r.admission_id, r.round, r.personnummer, r.record, r.utbildningskod, r.tillfalleskod,
                r.programme_internal, r.package_id, r.fee_liable, r.application_fee_paid, list(r.conditions or []),
                r.attempts, r.transient_failures or 0, r.failing_since, r.traceparent)
