"""A full or read-only store says so (issue: operators saw a raw driver message), on SQLite and
PostgreSQL; the unit of work is rolled back whole and the store works again once writable."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from brygga.store import Store, StoreUnwritable, ops
from brygga.store.db import make_engine, unwritable
from brygga.store.models import Quarantine


def _quarantine(s, n: int) -> None:
    ops.quarantine(s, source="test", message_id=f"m{n}", kind="test", reason="x" * 2000)


def _count(store: Store) -> int:
    with store.transaction() as s:
        return s.scalar(select(func.count()).select_from(Quarantine)) or 0


def test_a_read_only_store_says_it_is_not_writable(store):
    engine = make_engine(store.url)
    sql = "PRAGMA query_only = ON" if store.dialect == "sqlite" else "SET default_transaction_read_only = on"

    @event.listens_for(engine, "connect")
    def read_only(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute(sql)
        cur.close()
        if store.dialect != "sqlite":
            dbapi_conn.commit()

    ro = Store(store.url, engine=engine)
    with pytest.raises(StoreUnwritable, match=r"store \((sqlite|postgresql)\) is not writable: nothing of this") as e:
        with ro.transaction() as s:
            _quarantine(s, 1)
    assert "read-only" in str(e.value) or "writable again" in str(e.value)
    engine.dispose()
    with store.transaction() as s:  # the same store, writable: works
        _quarantine(s, 2)
    assert _count(store) == 1


def test_a_full_sqlite_store_says_it_is_full_and_keeps_nothing_half_written(tmp_path):
    from brygga.store import migrate

    store = Store(f"sqlite:///{tmp_path / 'full.db'}")
    migrate.upgrade(store)
    with store.engine.connect() as c:
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(store.engine, "connect")
    def small(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 2}")

    store.engine.dispose()
    with pytest.raises(StoreUnwritable, match=r"store \(sqlite\) is full: nothing of this unit of work was written"):
        with store.transaction() as s:
            for n in range(200):
                _quarantine(s, n)
    assert _count(store) == 0  # rolled back whole


def test_postgresql_codes_are_read_as_full_or_read_only():
    from sqlalchemy.exc import DBAPIError

    class Orig(Exception):
        def __init__(self, sqlstate):
            super().__init__("could not write")
            self.sqlstate = sqlstate

    assert unwritable(DBAPIError("INSERT", {}, Orig("53100"))) == "is full"
    assert unwritable(DBAPIError("INSERT", {}, Orig("25006"))) == "is not writable"
    assert unwritable(DBAPIError("INSERT", {}, Orig("23505"))) is None  # a unique violation is not
