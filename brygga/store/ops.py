"""Store operations used by the flows. Each takes the caller's Session: the caller owns the
transaction, so bookkeeping (inbox, outbox, checkpoint) commits or rolls back with the work."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from brygga import tracing
from brygga.limits import bounded
from brygga.store.models import (
    AuditLog,
    CheckpointHistory,
    FeedCheckpoint,
    InboxMessage,
    OutboxMessage,
    Quarantine,
    Setting,
    utcnow,
)

_CHUNK = 500
PAYLOAD_MAX = 256 * 1024  # characters of a quarantined payload kept (a 10 MB reply is not stored whole)
M = TypeVar("M")


def one(session: Session, model: type[M], key: Any, *, with_for_update: bool = False) -> M:
    """The row of ``model`` with primary key ``key`` (locked for update if asked); LookupError when
    there is none."""
    row = session.get(model, key, with_for_update=with_for_update)
    if row is None:
        raise LookupError(f"no {model.__name__} {key!r}")
    return row


def _insert_ignoring_conflicts(session: Session, model: Any, rows: list[dict[str, Any]], index: list[str]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on both SQLite and PostgreSQL; returns rows inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(model)
    total = 0
    for i in range(0, len(rows), _CHUNK):
        stmt = ins.on_conflict_do_nothing(index_elements=index).returning(model.id)
        total += len(session.execute(stmt, rows[i : i + _CHUNK]).all())
    return total


def insert_new(session: Session, model: Any, index: list[str], rows: list[dict[str, Any]]) -> None:
    """``INSERT .. ON CONFLICT DO NOTHING`` of many rows as one executemany: what
    ``outbox_enqueue`` / ``inbox_record`` write, without the ``RETURNING`` they count with (a third
    of the merit sync's time per merit went there)."""
    insert_many(session, model, rows, conflict=index)


def insert_many(session: Session, model: Any, rows: list[dict[str, Any]], *, conflict: list[str] | None = None) -> None:
    """INSERT many rows (all with the same keys) as one driver ``executemany``, ``ON CONFLICT
    (conflict) DO NOTHING`` if given. Each value is bound by its column type's own processor, as
    SQLAlchemy's Core executemany binds it, without its per-row statement work (a term's schedule
    export writes some 650,000 rows; that work was a fifth of its time)."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    table = model.__table__
    cols = list(rows[0])
    quote = dialect.identifier_preparer.quote
    procs = [table.c[c].type._cached_bind_processor(dialect) for c in cols]
    named = dialect.paramstyle in ("named", "pyformat")
    marks = ", ".join(f"%({c})s" if dialect.paramstyle == "pyformat" else f":{c}" if named else "?" for c in cols)
    sql = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in cols)}) VALUES ({marks})"
    if conflict:
        sql += f" ON CONFLICT ({', '.join(quote(c) for c in conflict)}) DO NOTHING"
    same: dict[Any, Any] = {}  # a timestamp most rows share is converted once
    bound = [(i, c, p) for i, (c, p) in enumerate(zip(cols, procs, strict=True)) if p is not None]

    def bind(p: Any, v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, dt.datetime):
            if v not in same:
                same[v] = p(v)
            return same[v]
        return p(v)

    # Only the columns whose type has a processor are touched per row (on SQLite a timestamp, a
    # JSON document); the others go as they are.
    pick = operator.itemgetter(*cols) if len(cols) > 1 else (lambda r: (r[cols[0]],))
    for i in range(0, len(rows), 5000):
        part = rows[i:i + 5000]
        params: Any
        if named:
            params = part if not bound else [{**r, **{c: bind(p, r[c]) for _, c, p in bound}} for r in part]
        elif not bound:
            params = [pick(r) for r in part]
        else:
            params = []
            for r in part:
                t = list(pick(r))
                for j, _, p in bound:
                    t[j] = bind(p, t[j])
                params.append(tuple(t))
        conn.exec_driver_sql(sql, params)


# ---------------------------------------------------------------- inbox (inbound dedupe)

def inbox_seen(session: Session, source: str, message_ids: Iterable[str]) -> set[str]:
    """Which of ``message_ids`` were already handled."""
    ids = list(dict.fromkeys(message_ids))
    seen: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        seen.update(
            session.scalars(
                select(InboxMessage.message_id).where(
                    InboxMessage.source == source, InboxMessage.message_id.in_(chunk)
                )
            )
        )
    return seen


def inbox_record(session: Session, source: str, items: Sequence[tuple[str, str, str]]) -> int:
    """Record handled messages as (message_id, kind, status); duplicates are ignored."""
    now = utcnow()
    rows = [
        {"source": source, "message_id": mid, "kind": kind, "status": status, "received_at": now}
        for mid, kind, status in items
    ]
    return _insert_ignoring_conflicts(session, InboxMessage, rows, ["source", "message_id"])


# ---------------------------------------------------------------- outbox (outbound, idempotent)

def outbox_enqueue(session: Session, messages: Sequence[dict[str, Any]]) -> int:
    """Enqueue messages (keys: destination, kind, idempotency_key, payload, correlation).

    A message whose idempotency key is already in the outbox is not enqueued again; returns how
    many were new.
    """
    return _insert_ignoring_conflicts(session, OutboxMessage, outbox_rows(messages), ["idempotency_key"])


def outbox_rows(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outbox rows of messages (keys: destination, kind, idempotency_key, payload,
    correlation), due now; for ``insert_new`` when the keys are known to be new."""
    now = utcnow()
    return [
        {
            "destination": m["destination"],
            "kind": m["kind"],
            "idempotency_key": m["idempotency_key"],
            "payload": m["payload"],
            "correlation": m.get("correlation"),
            "traceparent": m.get("traceparent") or tracing.new(),  # its cause's trace, or one starting here
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for m in messages
    ]


def outbox_due(
    session: Session, destination: str, *, limit: int = 500, kind: str | tuple[str, ...] | None = None,
    correlation: str | None = None, now: dt.datetime | None = None,
) -> list[OutboxMessage]:
    """Messages ready to send, oldest first (only one ``correlation`` group when given). On
    PostgreSQL rows are locked with SKIP LOCKED so parallel workers (CeleryExecutor) never send the
    same message twice."""
    now = now or utcnow()
    rows: list[OutboxMessage] = []
    # One query per status, each reading the (destination, status, id) index in id order and
    # stopping at ``limit``. A query with status IN (...), or one planned on another index (SQLite,
    # without statistics, took the correlation index or ix_outbox_due's range), reads and sorts
    # every row of the backlog, sent ones too, for every batch: sending a large backlog became
    # quadratic (bench/schedule_export.py). The due time is compared through coalesce() so that no
    # index range on it competes with the index that gives the order.
    for status in ("pending", "failed"):
        q = (
            select(OutboxMessage)
            .where(
                OutboxMessage.destination == destination,
                OutboxMessage.status == status,
                func.coalesce(OutboxMessage.next_attempt_at, OutboxMessage.next_attempt_at) <= now,
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        if isinstance(kind, tuple):
            q = q.where(OutboxMessage.kind.in_(kind))
        elif kind:
            q = q.where(OutboxMessage.kind == kind)
        if correlation:
            q = q.where(OutboxMessage.correlation == correlation)
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows += session.scalars(q)
    rows.sort(key=lambda m: m.id)
    return rows[:limit]


def outbox_mark_sent(session: Session, ids: Sequence[int], response: str | None = None) -> None:
    now = utcnow()
    for i in range(0, len(ids), _CHUNK):
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids[i : i + _CHUNK]))
            .values(status="sent", sent_at=now, response=response, last_error=None,
                    attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False)  # nobody reads the rows after: no per-row evaluation
        )


def outbox_cancel(session: Session, ids: Sequence[int], why: str) -> None:
    """Messages that need not be sent any more (superseded, or taken back before they went): done,
    with the reason; purged with the sent ones."""
    now = utcnow()
    for i in range(0, len(ids), _CHUNK):
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids[i : i + _CHUNK]))
            .values(status="cancelled", sent_at=now, response=why, last_error=None)
            .execution_options(synchronize_session=False))


def backoff_delay(attempts: int, base_seconds: float = 30.0, cap_seconds: float = 3600.0) -> dt.timedelta:
    """Exponential backoff: base * 2^(attempts-1), capped."""
    return dt.timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(attempts - 1, 0)))


def outbox_mark_failed(
    session: Session,
    message: OutboxMessage,
    error: str,
    *,
    max_attempts: int = 8,
    base_seconds: float = 30.0,
    permanent: bool = False,
    not_before: float | None = None,
) -> str:
    """Record a failed attempt. Retries later with exponential backoff, at least ``not_before``
    seconds from now (the peer's ``Retry-After``); after ``max_attempts`` (or at once when
    ``permanent``) the message is dead and quarantined with its reason."""
    message.attempts += 1
    message.last_error = error[:4000]
    if permanent or message.attempts >= max_attempts:
        message.status = "dead"
        quarantine(
            session,
            source=message.destination,
            message_id=message.idempotency_key,
            kind=message.kind,
            reason=f"gave up after {message.attempts} attempt(s): {error}",
            payload=None,
        )
    else:
        message.status = "failed"
        delay = backoff_delay(message.attempts, base_seconds)
        if not_before is not None:
            delay = max(delay, dt.timedelta(seconds=min(not_before, 24 * 3600.0)))
        message.next_attempt_at = utcnow() + delay
    return message.status


def outbox_counts(session: Session, destination: str | None = None) -> dict[str, int]:
    from sqlalchemy import func

    q = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    if destination:
        q = q.where(OutboxMessage.destination == destination)
    return {status: n for status, n in session.execute(q)}


# ---------------------------------------------------------------- feed checkpoints

def checkpoint_get(session: Session, name: str) -> FeedCheckpoint | None:
    return session.get(FeedCheckpoint, name)


def checkpoint_set(session: Session, name: str, page: int, entry_id: str | None, add_seen: int = 0) -> FeedCheckpoint:
    cp = session.get(FeedCheckpoint, name)
    if cp is None or cp.page != page:  # the position moved: when, for a replay from a time
        session.add(CheckpointHistory(name=name, position=page, at=utcnow()))
    if cp is None:
        cp = FeedCheckpoint(name=name, page=page, entry_id=entry_id, events_seen=add_seen)
        session.add(cp)
    else:
        cp.page, cp.entry_id = page, entry_id
        cp.events_seen = (cp.events_seen or 0) + add_seen
    session.flush()
    return cp


# ---------------------------------------------------------------- quarantine and audit

def quarantine(
    session: Session, *, source: str, reason: str, message_id: str | None = None,
    kind: str | None = None, payload: str | bytes | None = None,
) -> Quarantine:
    """Set a message aside with its reason. Values it was sent are bounded to their columns (a
    digest keeps over-long ones distinct); a payload is kept up to ``PAYLOAD_MAX`` characters."""
    if isinstance(payload, bytes):
        payload = payload[:PAYLOAD_MAX * 4].decode("utf-8", "replace")
    if payload is not None and len(payload) > PAYLOAD_MAX:
        payload = f"{payload[:PAYLOAD_MAX]}\n… ({len(payload) - PAYLOAD_MAX} more characters not kept)"
    q = Quarantine(source=bounded(source, 32), message_id=None if message_id is None else bounded(message_id, 128),
                   kind=None if kind is None else bounded(kind, 96), reason=reason, payload=payload, attempts=1)
    session.add(q)
    return q


def quarantine_again(
    session: Session, *, source: str, message_id: str, kind: str, reason: str, payload: str | bytes | None = None,
) -> Quarantine:
    """Quarantine input that is met again on every try (an unreadable page or reply at the same
    position): one open row per position, its ``attempts`` counted and its reason the latest."""
    mid = bounded(message_id, 128)
    row = session.scalars(select(Quarantine).where(
        Quarantine.source == bounded(source, 32), Quarantine.message_id == mid, Quarantine.kind == kind,
        Quarantine.released_at.is_(None)).order_by(Quarantine.id.desc()).limit(1)).first()
    if row is None:
        return quarantine(session, source=source, message_id=message_id, kind=kind, reason=reason, payload=payload)
    row.attempts += 1
    row.reason, row.last_seen_at = reason, utcnow()
    return row


def quarantine_release(session: Session, source: str, message_id: str, kind: str | None = None) -> int:
    """Mark the open rows of one message released (handled); returns how many."""
    q = update(Quarantine).where(Quarantine.source == source, Quarantine.message_id == bounded(message_id, 128),
                                 Quarantine.released_at.is_(None))
    if kind is not None:
        q = q.where(Quarantine.kind == kind)
    return session.execute(q.values(released_at=utcnow())).rowcount or 0  # type: ignore[attr-defined]


def audit(
    session: Session, actor: str, action: str, object_type: str, object_id: str | None = None, **detail: Any
) -> AuditLog:
    entry = AuditLog(actor=bounded(actor, 128), action=action, object_type=object_type,
                     object_id=None if object_id is None else bounded(object_id, 128), detail=detail)
    session.add(entry)
    return entry


# ---------------------------------------------------------------- settings

def setting_get(session: Session, key: str, default: Any = None) -> Any:
    row = session.get(Setting, key)
    return default if row is None else row.value


def setting_set(session: Session, key: str, value: Any, actor: str) -> None:
    """Change a university setting; the change is audited with the old and the new value."""
    row = session.get(Setting, key)
    old = None if row is None else row.value
    if row is None:
        session.add(Setting(key=key, value=value, updated_by=actor))
    else:
        row.value, row.updated_by = value, actor
    audit(session, actor, "setting.set", "setting", key, old=old, new=value)
