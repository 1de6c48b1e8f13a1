"""The schedule export's outbox → the scheduling system, batch by batch (the kit's ``OutboxSender``:
one request per group, its RequestId the ``Idempotency-Key``, so a crash between the system's
answer and our marking re-sends the same request, which the system answers from its replay store).

Per object: ``ok`` is sent (``sent_hash`` records what the system acknowledged); ``in-use`` (the
system refuses to delete a membership or student still used) is deactivated instead; ``rejected``
(the system's or the mapping's per-object refusal) is quarantined with the reason and the rest of
the batch goes on; anything else is retried with backoff."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from brygga.flows.kit import outbox
from brygga.flows.ports import Scheduling
from brygga.flows.schedule import KIND, destination, model
from brygga.flows.schedule.planning import current_versions, enqueue_changes
from brygga.logmask import get_logger
from brygga.store import Store, ops
from brygga.store.models import OutboxMessage, ScheduleObject

log = get_logger("brygga.flows.schedule")
BATCH = 500
ONEROSTER_BATCH = 10_000  # rows per OneRoster package: a backlog goes out as several, memory stays flat
MAX_ATTEMPTS = 8


def _key(m: OutboxMessage) -> str:
    return f"{m.payload['kind']}:{m.payload['ext_id']}"


class ScheduleSender(outbox.OutboxSender):
    """One target system's outbox, batch by batch."""

    kind, prefix = KIND, ""

    def __init__(self, store: Store, schedule: Scheduling, **kw: Any):
        self.target = schedule.target
        self.destination, self.prefix = destination(self.target), f"schema-{self.target}"
        super().__init__(store, correlation=f"schedule:{self.target}", **kw)
        self.schedule = schedule

    def send(self, group: list[OutboxMessage], rid: str) -> outbox.Results:
        results, errors = self.schedule.send([m.payload for m in group], rid)
        refused = {e.record_id: f"{e.field}: {e.rule}" for e in errors}
        return {**results, **{k: ("rejected", f"Brygga's mapping: {why}") for k, why in refused.items()}}

    def settle(self, s: Session, group: list[OutboxMessage], results: outbox.Results, outcomes: Counter[str],
               rid: str) -> None:
        target, max_attempts = self.target, self.max_attempts
        sent: list[int] = []
        acknowledged: list[dict[str, Any]] = []
        for m in group:
            p = m.payload
            outcome, reason = results.get(f"{p['kind']}:{p['ext_id']}",
                                          ("missing", "the system did not answer for this object"))
            if outcome == "ok" or (outcome == "in-use" and p["op"] != "delete"):
                sent.append(m.id)
                acknowledged.append({"t": target, "k": p["kind"], "e": p["ext_id"], "h": p["hash"]})
                outcomes["sent"] += 1
            elif outcome == "in-use":  # may not be deleted: deactivate it instead (unless changed since)
                sent.append(m.id)
                if current_versions(s, target, [_key(m)]).get(_key(m)) == p["version"]:
                    obj = model.ScheduleObject(p["kind"], p["ext_id"], {}, False, p.get("instance_uid"))
                    enqueue_changes(s, target, [model.Change("deactivate", obj)])
                    outcomes["deactivated_instead"] += 1
            elif outcome == "rejected":
                ops.outbox_mark_failed(s, m, f"{target} refused: {reason}", max_attempts=max_attempts, permanent=True)
                ops.quarantine_again(s, source="schema", message_id=_key(m), kind="schedule-object",
                                     reason=f"The scheduling system ({target}) refused {p['kind']} {p['ext_id']} "
                                            f"({p['op']}): {reason}. The rest of the batch went on; the object is "
                                            "sent again when it changes in Ladok, and by the nightly reconciliation.")
                s.execute(update(ScheduleObject).where(ScheduleObject.target == target,
                                                       ScheduleObject.kind == p["kind"],
                                                       ScheduleObject.ext_id == p["ext_id"],
                                                       ScheduleObject.version == p["version"]).values(status="rejected"))
                outcomes["rejected"] += 1
            else:
                status = ops.outbox_mark_failed(s, m, f"{target} {outcome}: {reason}", max_attempts=max_attempts)
                outcomes[status] += 1
        if acknowledged:
            s.execute(_ACKNOWLEDGE, acknowledged)
        if sent:
            ops.outbox_mark_sent(s, sent, response="ok")


def send(store: Store, schedule: Scheduling, *, batch: int | None = None, max_attempts: int = MAX_ATTEMPTS,
         after_send: Any = None) -> dict[str, int]:
    """Send every due change of the adapter's target; raises the transient PeerError that stopped
    it (after recording it) so the task retries. A OneRoster package is one file per send: its
    batch is 10,000 rows, a backlog goes out as several packages."""
    if batch is None:
        batch = ONEROSTER_BATCH if schedule.target == "oneroster" else BATCH
    outcomes, requests, failure = ScheduleSender(store, schedule, batch=batch, max_attempts=max_attempts,
                                                 after_send=after_send).run()
    summary = {"requests": requests, **dict(outcomes)}
    log.info("schedule export sent: %s", summary)
    if failure is not None:
        raise failure
    return summary


_T = cast(Table, ScheduleObject.__table__)
#: What the system acknowledged, one executemany per batch (Core: no ORM bookkeeping per row).
_ACKNOWLEDGE = (update(_T).where(_T.c.target == bindparam("t"), _T.c.kind == bindparam("k"),
                                 _T.c.ext_id == bindparam("e")).values(sent_hash=bindparam("h")))
