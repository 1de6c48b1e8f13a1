"""The merit sync's sending side: the outbox's merits to NyA (SubmitMerits) and withdrawals
(WithdrawMerits), one request per enqueue batch, with a RequestId NyA replays after a crash; and
the sync's health figures.

One sender, one task at a time, so a merit and its withdrawal can never cross: what the feed found
(live merits and withdrawals, in id order) goes first; merits found by the snapshot of a new
applicant go one request at a time between them, within a time budget, so a snapshot backlog never
holds up a live merit for more than one request. Before a group is sent the ledger says what is
stale (a superseded version; a withdrawal of a merit NyA never held): that is cancelled, not sent —
a merit taken back before it was sent costs NyA nothing."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brygga.flows.kit import outbox
from brygga.flows.merits import ledger
from brygga.flows.merits.rules import DESTINATION, KIND, SNAPSHOT_KIND, WITHDRAW_KIND
from brygga.flows.ports import Nya
from brygga.logmask import get_logger
from brygga.records import Merit
from brygga.store import Store, ops
from brygga.store.models import OutboxMessage, as_utc

log = get_logger("brygga.flows.merits")

SUBMITTED = ("accepted", "updated", "duplicate")
WITHDRAWN = ("withdrawn", "not-held")
PREFIXES = {KIND: "merits", SNAPSHOT_KIND: "merit-snapshot", WITHDRAW_KIND: "merit-withdrawals"}


class MeritSender(outbox.OutboxSender):
    """Merits and withdrawals of ``kind`` to NyA, one request per enqueue batch."""

    destination = DESTINATION
    kind: tuple[str, ...] = (KIND, WITHDRAW_KIND)

    def __init__(self, store: Store, nya: Nya, *, kinds: tuple[str, ...] | None = None, **kw: Any):
        super().__init__(store, **kw)
        self.nya = nya
        if kinds is not None:
            self.kind = kinds

    def prefix_for(self, group: list[OutboxMessage]) -> str:
        return PREFIXES[group[0].kind]

    def ready(self, s: Session, group: list[OutboxMessage], outcomes: Counter[str]) -> list[OutboxMessage]:
        keep, drop = ledger.stale(s, group)
        for why in set(drop.values()):
            ops.outbox_cancel(s, [i for i, w in drop.items() if w == why], why)
        outcomes["cancelled"] += len(drop)
        return keep

    def send(self, group: list[OutboxMessage], rid: str) -> outbox.Results:
        if group[0].kind == WITHDRAW_KIND:
            return self.nya.withdraw_merits([m.payload["merit_id"] for m in group], rid,
                                            reason=group[0].payload.get("reason"))
        return self.nya.submit_merits([Merit(**m.payload["merit"]) for m in group], rid)

    def settle(self, s: Session, group: list[OutboxMessage], results: outbox.Results, outcomes: Counter[str],
               rid: str) -> None:
        withdrawal = group[0].kind == WITHDRAW_KIND
        done: list[str] = []
        outbox.settle(s, group, results, outcomes,
                      key=lambda m: m.payload["merit_id"] if withdrawal else m.payload["merit"]["merit_id"],
                      ok=WITHDRAWN if withdrawal else SUBMITTED,
                      missing="NyA did not answer for this merit", max_attempts=self.max_attempts,
                      base_seconds=self.base_seconds, on_ok=lambda m, outcome, reason: done.append(m.payload["ref"]))
        ledger.mark_held(s, done, not withdrawal)


def send_pending(store: Store, nya: Nya, *, batch: int = 1000, max_attempts: int = 8,
                 base_seconds: float = 30.0, max_requests: int | None = None, snapshot_seconds: float = 20.0,
                 after_send: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Send what is due: the live merits and withdrawals, then the snapshot's merits one request at
    a time (live ones again in between) for at most ``snapshot_seconds``.

    Returns counts; raises the PeerError after recording it when NyA is unreachable or failing
    (the rows back off and the task retries). ``after_send`` is called with the RequestId after
    NyA answered and before the rows are marked (tests use it to crash there)."""
    common = dict(batch=batch, max_attempts=max_attempts, base_seconds=base_seconds, after_send=after_send)
    live = MeritSender(store, nya, max_requests=max_requests, **common)  # type: ignore[arg-type]
    snap = MeritSender(store, nya, kinds=(SNAPSHOT_KIND,), max_requests=1, batch=batch, max_attempts=max_attempts,
                       base_seconds=base_seconds, after_send=after_send)
    outcomes: Counter[str] = Counter()
    requests = 0
    until = time.monotonic() + snapshot_seconds
    while True:
        o, n, failure = live.run()
        outcomes.update(o)
        requests += n
        if failure is None and snapshot_seconds > 0 and time.monotonic() < until and (
                max_requests is None or requests < max_requests):
            o, n, failure = snap.run()
            outcomes.update(o)
            requests += n
            if n and failure is None:
                continue
        break
    if failure is not None:
        log.warning("merit send: NyA failing, %s merit(s) backed off: %s", outcomes["failed"], failure)
        raise failure
    summary = {"requests": requests, **{k: outcomes[k] for k in
               ("accepted", "updated", "duplicate", "withdrawn", "not-held", "cancelled", "rejected", "failed",
                "dead")}}
    with store.transaction() as s:
        summary["pending"] = sum(n for st, n in ops.outbox_counts(s, DESTINATION).items() if st in ("pending", "failed"))
    log.info("merit send: %s", summary)
    return summary


def lag_seconds(store: Store) -> float | None:
    """Age of the oldest live merit waiting to be sent (None when nothing waits): the DAG's health
    figure (the snapshot's backlog is reported on its own)."""
    with store.transaction() as s:
        oldest = s.scalar(select(func.min(OutboxMessage.created_at)).where(
            OutboxMessage.destination == DESTINATION, OutboxMessage.kind == KIND,
            OutboxMessage.status.in_(("pending", "failed"))))
    if oldest is None:
        return None
    return (dt.datetime.now(dt.UTC) - as_utc(oldest)).total_seconds()
