"""Sending outbox messages in groups: the loop every flow that pushes to a peer shares, as a class
with hooks (``OutboxSender``).

One request per group of due rows (the rows of one ``correlation``: an enqueue batch, a round),
with a RequestId derived from their idempotency keys, so a crash after the peer applied a request
but before the rows were marked sent re-sends the *same* request, which the peer answers from its
replay store. A peer that cannot be reached backs the group off (``ops.outbox_mark_failed``) and
the error is raised after the loop, so the task retries; a permanent refusal marks it dead.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.orm import Session

from adapters.http import PeerError
from brygga import tracing
from brygga.flows.ports import Results
from brygga.logmask import get_logger
from brygga.store import Store, ops
from brygga.store.models import OutboxMessage, utcnow

__all__ = ["OutboxSender", "Results", "request_id", "resend", "settle"]
log = get_logger("brygga.flows.kit.outbox")


#: The peer refused *us* (credentials, API key, certificate): no message is to blame, none is
#: failed or given up on; the send stops, the task fails saying so, the outbox is kept as it was.
REFUSED_US = frozenset({401, 403})


def request_id(prefix: str, keys: Iterable[str]) -> str:
    """A RequestId derived from the idempotency keys sent: the same rows give the same RequestId
    (``brygga-<prefix>-<hash>``; ``brygga-<hash>`` with no prefix, as the offer export has always had)."""
    return f"brygga-{prefix + '-' if prefix else ''}" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:40]


class OutboxSender:
    """Sends one kind of outbox message to its peer, group by group. Subclasses set ``destination``
    and ``kind`` (and ``prefix``, the RequestId's) and implement the hooks:

    * ``send(group, request_id)`` — build and send one request; {record id: (outcome, reason)}
      (records its mapping refused included);
    * ``settle(session, group, results, outcomes, request_id)`` — mark the rows by the answer, in
      the transaction that claimed them (``settle`` below does the usual);
    * ``ready(session, group, outcomes)`` (optional) — leave rows out of a group before it is sent
      (marking them itself);
    * ``prefix_for(group)`` (optional) — the RequestId's prefix for a group (``prefix``).

A peer that refuses Brygga itself (401/403: a wrong API key, an expired certificate) stops the
run with that error and leaves the group untouched: no message is failed or dead for it.

    ``kind`` may be several kinds (a tuple): due rows of any of them, in id order, one group per
    correlation and kind.

    ``run()`` sends until nothing is due and returns (outcome counts, requests made, the transient
    error that stopped it or None)."""

    destination: str
    kind: str | tuple[str, ...]
    prefix: str = ""
    batch = 1000
    max_attempts = 8
    base_seconds = 30.0

    def __init__(self, store: Store, *, batch: int | None = None, max_attempts: int | None = None,
                 base_seconds: float | None = None, max_requests: int | None = None, correlation: str | None = None,
                 after_send: Callable[[str], None] | None = None):
        self.store = store
        self.batch = batch or self.batch
        self.max_attempts = max_attempts or self.max_attempts
        self.base_seconds = base_seconds if base_seconds is not None else self.base_seconds
        self.max_requests, self.correlation = max_requests, correlation  # correlation: keep to one group (a round)
        self.after_send = after_send  # called with the RequestId after the peer answered, before the rows are marked

    # ------------------------------------------------------------------ the hooks
    def ready(self, s: Session, group: list[OutboxMessage], outcomes: Counter[str]) -> list[OutboxMessage]:
        return group

    def prefix_for(self, group: list[OutboxMessage]) -> str:
        return self.prefix

    def send(self, group: list[OutboxMessage], rid: str) -> Results:
        raise NotImplementedError

    def settle(self, s: Session, group: list[OutboxMessage], results: Results, outcomes: Counter[str],
               rid: str) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ the loop
    def run(self) -> tuple[Counter[str], int, PeerError | None]:
        outcomes: Counter[str] = Counter()
        requests = 0
        failure: PeerError | None = None
        while failure is None and (self.max_requests is None or requests < self.max_requests):
            with self.store.transaction() as s:
                due = ops.outbox_due(s, self.destination, limit=self.batch, kind=self.kind,
                                     correlation=self.correlation)
                if not due:
                    break
                group = [m for m in due if m.correlation == due[0].correlation and m.kind == due[0].kind]
                group = self.ready(s, group, outcomes)
                if not group:
                    continue
                rid = request_id(self.prefix_for(group), (m.idempotency_key for m in group))
                requests += 1
                try:
                    results = self.send(group, rid)
                except PeerError as e:
                    if e.status in REFUSED_US:  # our credentials, not this message: it stays as it was
                        failure = e
                        outcomes["not_authorised"] += len(group)
                        continue
                    for m in group:
                        ops.outbox_mark_failed(s, m, str(e), max_attempts=self.max_attempts,
                                               base_seconds=self.base_seconds, permanent=not e.transient,
                                               not_before=e.retry_after)
                    outcomes["failed" if e.transient else "dead"] += len(group)
                    failure = e if e.transient else None
                    continue
                if self.after_send is not None:
                    self.after_send(rid)
                self.settle(s, group, results, outcomes, rid)
                traces = [t for t in (tracing.trace_id(m.traceparent) for m in group) if t]
                log.info("%s %s: %d message(s), trace %s", self.destination, rid, len(group),
                         " ".join(traces[:5]) + (f" (+{len(traces) - 5})" if len(traces) > 5 else ""))
        return outcomes, requests, failure


def settle(s: Session, group: list[OutboxMessage], results: Results, outcomes: Counter[str], *,
           key: Callable[[OutboxMessage], str], ok: tuple[str, ...], missing: str, max_attempts: int,
           base_seconds: float, on_ok: Callable[[OutboxMessage, str, str | None], None] | None = None) -> None:
    """Mark a group by the peer's answer per record (``key(message)`` -> results): an ``ok`` outcome
    is sent (``on_ok`` runs for it), anything else failed and backed off, ``rejected`` for good
    (dead); a record the peer did not answer for is failed with ``missing``."""
    sent: dict[str, list[int]] = {}
    for m in group:
        outcome, reason = results.get(key(m), ("missing", missing))
        if outcome in ok:
            sent.setdefault(outcome, []).append(m.id)
            outcomes[outcome] += 1
            if on_ok is not None:
                on_ok(m, outcome, reason)
        else:
            status = ops.outbox_mark_failed(s, m, f"NyA {outcome}: {reason}", max_attempts=max_attempts,
                                            base_seconds=base_seconds, permanent=outcome == "rejected")
            outcomes["rejected" if outcome == "rejected" else status] += 1
    for outcome, ids in sent.items():
        ops.outbox_mark_sent(s, ids, response=outcome)


def resend(store: Store, message_id: int, *, actor: str, note: str) -> dict[str, Any]:
    """Send one outbox message again, as it was (the LIS adapter's "skicka om"): a sent row goes
    back to pending, due now, with the same idempotency key — a peer that has it absorbs it, one
    that lost it takes it; a stale merit version is still cancelled by its sender. A row that is
    due anyway is ``already``; a dead one goes back through its quarantine row. Audited."""
    if not note.strip():
        raise ValueError("skriv varför meddelandet skickas om")
    with store.transaction() as s:
        m = s.get(OutboxMessage, message_id)
        if m is None or m.purged_at is not None:
            raise LookupError(f"inget meddelande {message_id} i utkorgen")
        if m.status in ("pending", "failed"):
            return {"already": True, "status": m.status}
        if m.status != "sent":
            raise ValueError(f"meddelandet är {m.status}: skicka om det från karantänen")
        m.status, m.attempts, m.next_attempt_at, m.last_error = "pending", 0, utcnow(), None
        ops.audit(s, actor, "outbox.resent", "outbox_message", str(m.id), key=m.idempotency_key, kind=m.kind,
                  destination=m.destination, note=note.strip(), trace=tracing.trace_id(m.traceparent))
        return {"already": False, "key": m.idempotency_key}
