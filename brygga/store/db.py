"""Engine and transactions for the adapter's own store."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from brygga.paths import var_dir


class StoreUnwritable(RuntimeError):
    """The store cannot take writes: full, or read-only. Transient for Airflow (a retry after the
    operator freed space or made it writable again succeeds); every unit of work rolled back whole."""


_ADVICE = {
    "is full": "Free disk space (or raise the database's quota) and the task's retry goes on where it stopped.",
    "is not writable": "Make it writable again (file permissions, a read-only replica or transaction mode, "
                       "the disk mounted read-only) and the task's retry goes on where it stopped.",
}
#: The drivers' words and codes for a full or read-only store: SQLite's result codes (13 FULL,
#: 8 READONLY), PostgreSQL's SQLSTATE 53100 disk_full, 53200 out_of_memory is not one, 25006
#: read_only_sql_transaction; "No space left on device" when the server cannot extend a file.
_FULL = ("database or disk is full", "no space left on device", "could not extend file", "disk quota exceeded")
_READONLY = ("attempt to write a readonly database", "read-only transaction", "readonly database",
             "read-only file system")


def unwritable(e: DBAPIError) -> str | None:
    """``"is full"`` / ``"is not writable"`` when the error says the store cannot take writes."""
    code = getattr(e.orig, "sqlstate", None) or getattr(e.orig, "pgcode", None)
    text = str(e.orig).lower()
    if code == "53100" or any(w in text for w in _FULL):
        return "is full"
    if code == "25006" or any(w in text for w in _READONLY):
        return "is not writable"
    return None


def store_url(explicit: str | None = None) -> str:
    """Store URL: explicit > ``BRYGGA_STORE_URL`` > embedded SQLite under ``var/``.

    Inside Airflow tasks the URL comes from the ``brygga_store`` Connection (``brygga.dagkit.store``),
    which passes it here explicitly.
    """
    if explicit:
        return explicit
    env = os.environ.get("BRYGGA_STORE_URL")
    if env:
        return env
    return f"sqlite:///{var_dir() / 'brygga.db'}"


def normalise_url(url: str) -> str:
    # Accept the postgres:// / postgresql:// spellings people paste; always use psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # 32 MiB of page cache per connection (SQLite's default is 2 MiB): a store of a few hundred
    # thousand rows keeps its indexes' hot pages in memory (bench/schedule_export.py)
    cur.execute("PRAGMA cache_size=-32768")
    cur.close()


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)
    return engine


class Store:
    """One store: an engine and a session factory. Cheap to create per task."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None):
        self.url = normalise_url(store_url(url))
        self.engine = engine or make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception. A store that is full or
        not writable says so (``StoreUnwritable``), not in the driver's words."""
        try:
            with self._sessions.begin() as session:
                yield session
        except DBAPIError as e:
            why = unwritable(e)
            if why is None:
                raise
            raise StoreUnwritable(f"Brygga's store ({self.dialect}) {why}: nothing of this unit of work "
                                  f"was written. {_ADVICE[why]}") from e

    def session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()
