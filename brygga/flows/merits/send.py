"""The merit sync's sending side: the outbox's merits to NyA (SubmitMerits), one request per
enqueue batch, with a RequestId NyA replays after a crash; and the sync's health figure."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brygga.flows.kit import outbox
from brygga.flows.merits.rules import DESTINATION, KIND
from brygga.flows.ports import Nya
from brygga.logmask import get_logger
from brygga.records import Merit
from brygga.store import Store, ops
from brygga.store.models import OutboxMessage, as_utc

log = get_logger("brygga.flows.merits")


class MeritSender(outbox.OutboxSender):
    """The outbox's merits to NyA, one request per enqueue batch."""

    destination, kind, prefix = DESTINATION, KIND, "merits"

    def __init__(self, store: Store, nya: Nya, **kw: Any):
        super().__init__(store, **kw)
        self.nya = nya

    def send(self, group: list[OutboxMessage], rid: str) -> outbox.Results:
        return self.nya.submit_merits([Merit(**m.payload["merit"]) for m in group], rid)

    def settle(self, s: Session, group: list[OutboxMessage], results: outbox.Results, outcomes: Counter[str],
               rid: str) -> None:
        outbox.settle(s, group, results, outcomes, key=lambda m: m.payload["merit"]["merit_id"],
                      ok=("accepted", "updated", "duplicate"), missing="NyA did not answer for this merit",
                      max_attempts=self.max_attempts, base_seconds=self.base_seconds)


def send_pending(store: Store, nya: Nya, *, batch: int = 1000, max_attempts: int = 8,
                 base_seconds: float = 30.0, max_requests: int | None = None,
                 after_send: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Send the due merits, one SubmitMerits per enqueue batch (at most ``batch`` merits each).

    Returns counts; raises the PeerError after recording it when NyA is unreachable or failing
    (the rows back off and the task retries). ``after_send`` is called with the RequestId after
    NyA answered and before the rows are marked (tests use it to crash there)."""
    outcomes, requests, failure = MeritSender(
        store, nya, batch=batch, max_attempts=max_attempts, base_seconds=base_seconds, max_requests=max_requests,
        after_send=after_send).run()
    if failure is not None:
        log.warning("merit send: NyA failing, %s merit(s) backed off: %s", outcomes["failed"], failure)
        raise failure
    summary = {"requests": requests, **{k: outcomes[k] for k in
               ("accepted", "updated", "duplicate", "rejected", "failed", "dead")}}
    with store.transaction() as s:
        summary["pending"] = sum(n for st, n in ops.outbox_counts(s, DESTINATION).items() if st in ("pending", "failed"))
    log.info("merit send: %s", summary)
    return summary


def lag_seconds(store: Store) -> float | None:
    """Age of the oldest merit waiting to be sent (None when nothing waits): the DAG's health figure."""
    with store.transaction() as s:
        oldest = s.scalar(select(func.min(OutboxMessage.created_at)).where(
            OutboxMessage.destination == DESTINATION, OutboxMessage.kind == KIND,
            OutboxMessage.status.in_(("pending", "failed"))))
    if oldest is None:
        return None
    return (dt.datetime.now(dt.UTC) - as_utc(oldest)).total_seconds()
