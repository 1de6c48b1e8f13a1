"""What the schedule export reads from Ladok: the instances of a term (search + one GET each,
concurrently), their participants (one search per chunk of instances) and the students' e-mail
addresses (si:Kontaktuppgifter, cached in ``ladok_contact``; never for a protected student)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import delete, insert, select

from adapters.http import UnreadableReply
from brygga.flows.ports import Ladok
from brygga.records import Participant, Utbildningstillfalle
from brygga.store import Store
from brygga.store.models import LadokContact, as_utc, utcnow
from mappings.base import RecordError

T = TypeVar("T")
R = TypeVar("R")
WORKERS = 8
CHUNK = 200  # instances per participant search
EMAIL_MAX_AGE = dt.timedelta(days=7)


@dataclasses.dataclass
class Read:
    instances: list[Utbildningstillfalle] = dataclasses.field(default_factory=list)  # read, in scope
    participants: list[Participant] = dataclasses.field(default_factory=list)
    emails: dict[str, str | None] = dataclasses.field(default_factory=dict)
    errors: list[RecordError] = dataclasses.field(default_factory=list)  # what Ladok sent that breaks the rules
    missing: list[str] = dataclasses.field(default_factory=list)  # instance uids Ladok no longer has
    outside: list[str] = dataclasses.field(default_factory=list)  # read, but outside the run's scope
    kept: set[str] = dataclasses.field(default_factory=set)  # instances not fully read: nothing of theirs ends
    lookups: int = 0  # e-mail lookups made


def _map(fn: Callable[[T], R], items: list[T], pool: ThreadPoolExecutor | None) -> list[R]:
    if pool is None or len(items) < 2:
        return [fn(x) for x in items]
    return list(pool.map(fn, items))


def pool(workers: int = WORKERS) -> ThreadPoolExecutor | None:
    """The worker threads of one run, for every chunk: the HTTP client keeps connections per
    thread until it is closed, so a pool per chunk would leave a set of connections per chunk."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ladok-get") if workers > 1 else None


def term_uids(ladok: Ladok, terms: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(u for t in terms for u in ladok.search_tillfallen(startperiod=t)))


def read(store: Store, ladok: Ladok, uids: list[str], *, workers: ThreadPoolExecutor | None = None,
         email_max_age: dt.timedelta = EMAIL_MAX_AGE, known: set[str] = frozenset(),  # type: ignore[assignment]
         scope: Callable[[Utbildningstillfalle], bool] | None = None) -> Read:
    """The instances (those ``scope`` keeps), their participants and the e-mail addresses of their
    members (not those in ``known``: students already built in this run). An instance whose reply
    or one of whose participants breaks the rules is in ``errors`` and ``kept``: what Brygga holds
    of it stays as it is until Ladok's data can be read."""
    out = Read()
    for uid, t in zip(uids, _map(ladok.tillfalle_or_error, uids, workers), strict=True):
        if t is None:
            out.missing.append(uid)
        elif isinstance(t, RecordError):
            out.errors.append(t)
            out.kept.add(uid)
        elif scope is None or scope(t):
            out.instances.append(t)
        else:
            out.outside.append(uid)
    chunks = [out.instances[i:i + CHUNK] for i in range(0, len(out.instances), CHUNK)]
    for chunk, hits in zip(chunks, _map(lambda c: list(ladok.participants(c)), chunks, workers), strict=True):
        uids = [t.uid for t in chunk]
        for p in hits:
            if isinstance(p, Participant):
                out.participants.append(p)
            else:
                out.errors.append(p)
                out.kept.update([p.within] if p.within in uids else uids)
    wanted = {p.student_uid for p in out.participants
              if not p.protected and p.state in ("ej_paborjad", "registrerad") and p.student_uid not in known}
    out.emails, out.lookups, unreadable = emails(store, ladok, wanted, workers=workers, max_age=email_max_age)
    out.errors += unreadable
    return out


def emails(store: Store, ladok: Ladok, student_uids: set[str], *, workers: ThreadPoolExecutor | None = None,
           max_age: dt.timedelta = EMAIL_MAX_AGE) -> tuple[dict[str, str | None], int, list[RecordError]]:
    """({student uid: e-mail or None}, lookups made, unreadable replies): from the cache, else
    asked of Ladok and cached. A student whose reply cannot be read goes out without an address
    (not cached: asked again next time)."""
    if not student_uids:
        return {}, 0, []
    known: dict[str, str | None] = {}
    fresh_after = utcnow() - max_age
    ids = sorted(student_uids)
    with store.transaction() as s:
        for i in range(0, len(ids), 500):
            for uid, email, fetched in s.execute(select(LadokContact.student_uid, LadokContact.email,
                                                        LadokContact.fetched_at)
                                                 .where(LadokContact.student_uid.in_(ids[i:i + 500]))):
                if as_utc(fetched) >= fresh_after:
                    known[uid] = email
    ask = [u for u in ids if u not in known]

    def one(uid: str) -> str | None | RecordError:
        try:
            return ladok.email(uid)
        except UnreadableReply as e:
            if e.transient:
                raise
            return RecordError(uid, "Kontaktuppgifter", e.reason[:300], "Kontaktuppgifter")

    found: dict[str, str | None] = {}
    unreadable: list[RecordError] = []
    for uid, answer in zip(ask, _map(one, ask, workers), strict=True):
        if isinstance(answer, RecordError):
            unreadable.append(answer)
        else:
            found[uid] = answer
    if found:
        now = utcnow()
        with store.transaction() as s:
            for i in range(0, len(ask), 500):
                s.execute(delete(LadokContact).where(LadokContact.student_uid.in_(ask[i:i + 500])))
            s.execute(insert(LadokContact), [{"student_uid": u, "email": e, "fetched_at": now} for u, e in found.items()])
    return {**known, **{e.record_id: None for e in unreadable}, **found}, len(ask), unreadable
