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

from adapters.http import PeerError
from adapters.ladok import LadokAdapter
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
    instances: list[Utbildningstillfalle] = dataclasses.field(default_factory=list)
    participants: list[Participant] = dataclasses.field(default_factory=list)
    emails: dict[str, str | None] = dataclasses.field(default_factory=dict)
    errors: list[RecordError] = dataclasses.field(default_factory=list)  # what Ladok sent that breaks the rules
    missing: list[str] = dataclasses.field(default_factory=list)  # instance uids Ladok no longer has
    lookups: int = 0  # e-mail lookups made


def _map(fn: Callable[[T], R], items: list[T], pool: ThreadPoolExecutor | None) -> list[R]:
    if pool is None or len(items) < 2:
        return [fn(x) for x in items]
    return list(pool.map(fn, items))


def pool(workers: int = WORKERS) -> ThreadPoolExecutor | None:
    """The worker threads of one run, for every chunk: the HTTP client keeps connections per
    thread until it is closed, so a pool per chunk would leave a set of connections per chunk."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ladok-get") if workers > 1 else None


def term_uids(ladok: LadokAdapter, terms: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(u for t in terms for u in ladok.search_tillfallen(startperiod=t)))


def read(store: Store, ladok: LadokAdapter, uids: list[str], *, workers: ThreadPoolExecutor | None = None,
         email_max_age: dt.timedelta = EMAIL_MAX_AGE, known: set[str] = frozenset()) -> Read:  # type: ignore[assignment]
    """The instances, their participants and the e-mail addresses of their members (not those in
    ``known``: students already built in this run)."""
    out = Read()

    def one(uid: str) -> Utbildningstillfalle | RecordError | None:
        try:
            return ladok.tillfalle(uid)
        except PeerError as e:
            if e.status == 404:
                return None
            raise

    for uid, t in zip(uids, _map(one, uids, workers), strict=True):
        if t is None:
            out.missing.append(uid)
        elif isinstance(t, Utbildningstillfalle):
            out.instances.append(t)
    chunks = [[t.uid for t in out.instances[i:i + CHUNK]] for i in range(0, len(out.instances), CHUNK)]
    for hits in _map(lambda c: list(ladok.participants(c)), chunks, workers):
        for p in hits:
            (out.participants if isinstance(p, Participant) else out.errors).append(p)
    wanted = {p.student_uid for p in out.participants
              if not p.protected and p.state in ("ej_paborjad", "registrerad") and p.student_uid not in known}
    out.emails, out.lookups = emails(store, ladok, wanted, workers=workers, max_age=email_max_age)
    return out


def emails(store: Store, ladok: LadokAdapter, student_uids: set[str], *, workers: ThreadPoolExecutor | None = None,
           max_age: dt.timedelta = EMAIL_MAX_AGE) -> tuple[dict[str, str | None], int]:
    """{student uid: e-mail or None}: from the cache, else asked of Ladok and cached."""
    if not student_uids:
        return {}, 0
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
    found = dict(zip(ask, _map(ladok.email, ask, workers), strict=True))
    if found:
        now = utcnow()
        with store.transaction() as s:
            for i in range(0, len(ask), 500):
                s.execute(delete(LadokContact).where(LadokContact.student_uid.in_(ask[i:i + 500])))
            s.execute(insert(LadokContact), [{"student_uid": u, "email": e, "fetched_at": now} for u, e in found.items()])
    return {**known, **found}, len(ask)
