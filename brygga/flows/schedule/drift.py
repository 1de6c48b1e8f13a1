"""The schedule export's reconciliation with the system: what TimeEdit holds read back
(``objects/find``) and compared with what Brygga sent; every object that differs is marked
``drift``, so the full run that follows sends it again (or ends it again)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update

from brygga.flows.ports import Scheduling
from brygga.flows.schedule import destination
from brygga.flows.schedule.queue import UNSENT
from brygga.logmask import get_logger
from brygga.store import Store
from brygga.store.models import OutboxMessage, ScheduleObject

log = get_logger("brygga.flows.schedule")
_T = cast(Table, ScheduleObject.__table__)
_DRIFT = update(_T).where(_T.c.target == bindparam("t"), _T.c.kind == bindparam("k"),
                          _T.c.ext_id == bindparam("e")).values(status="drift")


def mark_drift(store: Store, schedule: Scheduling, *, page: int = 1000) -> int:
    """Compare what the system holds with what Brygga sent it and mark every object that differs
    ``drift``: edited or lost there, or still there after we deleted or deactivated it. An object
    whose latest version is in an unsent batch is in flight, not drift; one whose batch the outbox
    gave up on never got there and is sent again. Only TimeEdit's REST API can be read back; the
    other formats are left as they are. Returns how many."""
    if schedule.target != "timeedit":
        return 0
    target = schedule.target
    with store.transaction() as s:
        unsent = set(s.scalars(select(OutboxMessage.id).where(OutboxMessage.destination == destination(target),
                                                              OutboxMessage.status.in_(UNSENT))))

    def in_flight(outbox_id: int | None) -> bool:
        return outbox_id is not None and outbox_id in unsent

    seen: set[int] = set()  # hash() of every key the system holds: memory ~ 40 bytes per object
    drift: list[tuple[str, str]] = []
    for held in schedule.pages(limit=page):
        seen.update(hash(k) for k in held)
        by_kind: dict[str, list[str]] = {}
        for k in held:
            kind, _, ext = k.partition(":")
            by_kind.setdefault(kind, []).append(ext)
        with store.transaction() as s:
            for kind, exts in by_kind.items():
                for j in range(0, len(exts), 500):
                    for ext, h, st, ob in s.execute(select(_T.c.ext_id, _T.c.content_hash, _T.c.status, _T.c.outbox_id)
                                                    .where(_T.c.target == target, _T.c.kind == kind,
                                                           _T.c.ext_id.in_(exts[j:j + 500]))):
                        there_hash, there_active = held[f"{kind}:{ext}"]
                        if st in ("rejected", "drift") or in_flight(ob):
                            continue  # sent again by the run anyway / still on its way
                        if (st == "active" and there_hash != h) or (st == "deactivated" and there_active) \
                                or st == "deleted":
                            drift.append((kind, ext))
    last_id = 0
    while True:  # what we sent that the system no longer holds (or never got)
        with store.transaction() as s:
            rows: Any = s.execute(select(_T.c.id, _T.c.kind, _T.c.ext_id, _T.c.outbox_id).where(
                _T.c.target == target, _T.c.status.in_(("active", "deactivated")), _T.c.id > last_id)
                .order_by(_T.c.id).limit(5000)).all()
        if not rows:
            break
        last_id = rows[-1][0]
        drift += [(k, e) for _, k, e, ob in rows if hash(f"{k}:{e}") not in seen and not in_flight(ob)]
    with store.transaction() as s:
        for j in range(0, len(drift), 1000):
            s.execute(_DRIFT, [{"t": target, "k": k, "e": e} for k, e in drift[j:j + 1000]])
    if drift:
        log.warning("schedule export: %s objects in %s differ from what Brygga sent; sent again", len(drift), target)
    return len(drift)
