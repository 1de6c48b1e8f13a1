"""Sending outbox messages in groups: the loop the flows that push to a peer share.

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

from sqlalchemy.orm import Session

from adapters.http import PeerError
from brygga.store import Store, ops
from brygga.store.models import OutboxMessage

Results = dict[str, tuple[str, "str | None"]]


def request_id(prefix: str, keys: Iterable[str]) -> str:
    """A RequestId derived from the idempotency keys sent: the same rows give the same RequestId
    (``brygga-<prefix>-<hash>``; ``brygga-<hash>`` with no prefix, as the offer export has always had)."""
    return f"brygga-{prefix + '-' if prefix else ''}" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:40]


def send_groups(store: Store, destination: str, kind: str, *, prefix: str,
                send: Callable[[list[OutboxMessage], str], Results],
                apply: Callable[[Session, list[OutboxMessage], Results, Counter[str], str], None],
                batch: int = 1000, max_attempts: int = 8, base_seconds: float = 30.0,
                max_requests: int | None = None, correlation: str | None = None,
                ready: Callable[[Session, list[OutboxMessage], Counter[str]], list[OutboxMessage]] | None = None,
                after_send: Callable[[str], None] | None = None) -> tuple[Counter[str], int, PeerError | None]:
    """Send due ``kind`` rows to ``destination`` group by group until none are due.

    ``send(group, request_id)`` builds and sends one request and returns {record id: (outcome,
    reason)} (records its mapping refused included); ``apply(session, group, results, outcomes,
    request_id)`` marks the rows in the same transaction. ``correlation`` keeps to one group (e.g.
    a round); ``ready(session, group, outcomes)`` may leave rows out of a group before it is sent
    (marking them itself). ``after_send`` is called with the RequestId after the peer answered and
    before the rows are marked (tests crash there).
    Returns (outcome counts, requests made, the transient error that stopped the loop or None)."""
    outcomes: Counter[str] = Counter()
    requests = 0
    failure: PeerError | None = None
    while failure is None and (max_requests is None or requests < max_requests):
        with store.transaction() as s:
            due = ops.outbox_due(s, destination, limit=batch, kind=kind, correlation=correlation)
            if not due:
                break
            group = [m for m in due if m.correlation == due[0].correlation]
            if ready is not None:
                group = ready(s, group, outcomes)
                if not group:
                    continue
            rid = request_id(prefix, (m.idempotency_key for m in group))
            requests += 1
            try:
                results = send(group, rid)
            except PeerError as e:
                for m in group:
                    ops.outbox_mark_failed(s, m, str(e), max_attempts=max_attempts, base_seconds=base_seconds,
                                           permanent=not e.transient)
                outcomes["failed" if e.transient else "dead"] += len(group)
                failure = e if e.transient else None
                continue
            if after_send is not None:
                after_send(rid)
            apply(s, group, results, outcomes, rid)
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
