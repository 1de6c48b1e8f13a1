"""The schedule export's outbox → the scheduling system, one batch (outbox message) per request,
file or package (the kit's ``OutboxSender``). A batch's items were encoded when it was planned:
sending joins them, nothing is encoded again. Its RequestId is derived from the batch (and the
objects still in it), so a crash between the system's answer and our marking sends the same
batch again, which upserts by extId and deletes (404: already gone) make harmless.

Per object: ``ok`` is done (a quarantine row of an earlier refusal is released); ``in-use`` (the
system refuses to delete a membership or student still used) is deactivated instead; ``rejected``
(the system's refusal) is quarantined with the reason, one row per object, and the rest of the
batch goes on; anything else stays in the batch, which is retried with backoff (only what failed)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from brygga.flows.kit import outbox
from brygga.flows.ports import Scheduling
from brygga.flows.schedule import destination, model, queue
from brygga.flows.schedule.queue import ACTION_I, EXT_I, INSTANCE_I, KIND_I, RETRY_I, VERSION_I
from brygga.logmask import get_logger
from brygga.store import Store, ops
from brygga.store.models import OutboxMessage, ScheduleObject

log = get_logger("brygga.flows.schedule")
MAX_ATTEMPTS = 8


def _key(o: list[Any]) -> str:
    return f"{o[KIND_I]}:{o[EXT_I]}"


class ScheduleSender(outbox.OutboxSender):
    """One target system's batches, one request (file, package) each."""

    kind, prefix, batch = queue.KIND, "", 1

    def __init__(self, store: Store, schedule: Scheduling, **kw: Any):
        self.target = schedule.target
        self.destination = destination(self.target)
        super().__init__(store, correlation=f"schedule:{self.target}", batch=1, **kw)
        self.schedule = schedule

    def prefix_for(self, group: list[OutboxMessage]) -> str:
        # the objects left in the batch are part of its RequestId: a batch retried with only what
        # failed is another request
        return f"schema-{self.target}-{len(group[0].payload['objects'])}"

    def send(self, group: list[OutboxMessage], rid: str) -> outbox.Results:
        p = group[0].payload
        sent = [(o, x) for o, x in zip(p["objects"], p["items"], strict=True) if x is not None]
        results: outbox.Results = {_key(o): ("ok", None) for o, x in zip(p["objects"], p["items"], strict=True)
                                   if x is None}  # nothing of its own in this format
        if sent:
            results.update(self.schedule.deliver(p["lane"], [x for _, x in sent], [_key(o) for o, _ in sent],
                                                 [o[VERSION_I] for o, _ in sent], rid))
        return results

    def settle(self, s: Session, group: list[OutboxMessage], results: outbox.Results, outcomes: Counter[str],
               rid: str) -> None:
        m = group[0]
        p = m.payload
        target = self.target
        left: list[tuple[list[Any], Any]] = []
        errors: list[str] = []
        rejected: list[dict[str, Any]] = []
        for o, item in zip(p["objects"], p["items"], strict=True):
            key = _key(o)
            outcome, reason = results.get(key, ("missing", "the system did not answer for this object"))
            if outcome == "ok" or (outcome == "in-use" and o[ACTION_I] != "delete"):
                outcomes["sent"] += 1
                if o[RETRY_I]:  # refused before, accepted now
                    ops.quarantine_release(s, destination(target), key, "schedule-object")
            elif outcome == "in-use":  # may not be deleted: deactivate it instead (unless changed since)
                current = queue.held(s, target, keys=[key])
                if key in current and current[key].version == o[VERSION_I]:
                    obj = model.ScheduleObject(o[KIND_I], o[EXT_I], {}, False, o[INSTANCE_I])
                    queue.enqueue(s, self.schedule, [model.Change("deactivate", obj)], current)
                    outcomes["deactivated_instead"] += 1
            elif outcome == "rejected":
                ops.quarantine_again(s, source=destination(target), message_id=key, kind="schedule-object",
                                     reason=f"The scheduling system ({target}) refused {o[KIND_I]} {o[EXT_I]} "
                                            f"({o[ACTION_I]}): {reason}. The rest of the batch went on; the object is "
                                            "sent again when it changes in Ladok, and by the nightly reconciliation.")
                rejected.append({"t": target, "k": o[KIND_I], "e": o[EXT_I], "v": o[VERSION_I]})
                outcomes["rejected"] += 1
            else:
                left.append((o, item))
                errors.append(f"{key}: {outcome}: {reason}")
        if rejected:
            s.execute(_REJECTED, rejected)
        if left:  # only what failed is tried again
            m.payload = {**p, "objects": [o for o, _ in left], "items": [x for _, x in left]}
            status = ops.outbox_mark_failed(s, m, f"{target}: {len(left)} object(s) not taken: " + "; ".join(errors[:5]),
                                            max_attempts=self.max_attempts, base_seconds=self.base_seconds)
            outcomes[status] += len(left)
        else:
            ops.outbox_mark_sent(s, [m.id], response=f"{len(p['objects'])} object(s)"
                                 + (f", {len(rejected)} refused" if rejected else ""))


def send(store: Store, schedule: Scheduling, *, max_attempts: int = MAX_ATTEMPTS, after_send: Any = None,
         max_requests: int | None = None) -> dict[str, int]:
    """Send every due batch of the gateway's target; raises the transient PeerError that stopped
    it (after recording it) so the task retries."""
    outcomes, requests, failure = ScheduleSender(store, schedule, max_attempts=max_attempts, after_send=after_send,
                                                 max_requests=max_requests).run()
    summary = {"requests": requests, **dict(outcomes)}
    log.info("schedule export sent: %s", summary)
    if failure is not None:
        raise failure
    return summary


def send_beside(store: Store, schedule: Scheduling, *, run_id: str | None = None, start_wait: float = 60.0,
                poll: float = 1.0, max_attempts: int = MAX_ATTEMPTS, sleep: Any = time.sleep,
                clock: Any = time.monotonic) -> dict[str, int]:
    """Send what the run ``run_id`` (None: whichever) commits, chunk by chunk, while it plans (the
    store's planning mark), and what is left when it ended: a large full export is delivered while
    it is still read, and what is committed is never held back by reading more. Waits at most
    ``start_wait`` seconds for that run to begin; a run whose mark went stale (killed) ends the
    wait. Raises the transient PeerError that stopped it, as ``send`` does."""
    from brygga.flows.schedule.planning import planning_state

    totals: Counter[str] = Counter()
    began = clock()
    while True:
        st = planning_state(store, schedule.target)  # read before sending: nothing committed after is missed
        mine = st is not None and (run_id is None or st.run_id == run_id)
        running = mine and not st.done and not st.stale  # type: ignore[union-attr]
        outcomes, requests, failure = ScheduleSender(store, schedule, max_attempts=max_attempts).run()
        totals.update(outcomes)
        totals["requests"] += requests
        if failure is not None:
            log.info("schedule export sent beside the run: %s", dict(totals))
            raise failure
        if not running and (mine or clock() - began >= start_wait):
            break
        if not requests:
            sleep(poll)
    summary = {"requests": totals.pop("requests"), **dict(totals)}
    log.info("schedule export sent beside the run: %s", summary)
    return summary


_T = cast(Table, ScheduleObject.__table__)
#: The system refused this version: it is sent again when it changes, or by the reconciliation.
_REJECTED = (update(_T).where(_T.c.target == bindparam("t"), _T.c.kind == bindparam("k"),
                              _T.c.ext_id == bindparam("e"), _T.c.version == bindparam("v"))
             .values(status="rejected"))
