import pytest
from sqlalchemy import inspect

from brygga.store import migrate
from brygga.store.models import Base

TABLES = {t.name for t in Base.metadata.sorted_tables}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_upgrade_downgrade_upgrade(empty_store_factory, backend):
    s = empty_store_factory(backend)
    assert migrate.current(s) is None
    migrate.upgrade(s)
    assert migrate.current(s) == migrate.head()
    assert TABLES <= set(inspect(s.engine).get_table_names())
    migrate.downgrade(s, "base")
    assert migrate.current(s) is None
    assert not TABLES & set(inspect(s.engine).get_table_names())
    migrate.upgrade(s)
    assert migrate.current(s) == migrate.head()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_models_match_migrations(empty_store_factory, backend):
    """A model change without a new Alembic revision fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    s = empty_store_factory(backend)
    migrate.upgrade(s)
    with s.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0011_backfills_resolved_at_and_programme_code(empty_store_factory, backend):
    from sqlalchemy import text

    s = empty_store_factory(backend)
    migrate.upgrade(s, "0010")
    with s.engine.begin() as c:
        for aid, status, record in (("A1", "resolved", '{"programme_code": "TKDAT"}'), ("A2", "open", "{}")):
            c.execute(text("INSERT INTO unhandled_admission (nya_admission_id, round, hinder, reason, candidates, "
                           "admission, status, created_at, updated_at) VALUES (:a, 'HT2027', 'ovrigt', 'r', '[]', "
                           ":rec, :st, '2027-04-01 10:00:00+00', '2027-04-02 10:00:00+00')"),
                      {"a": aid, "rec": record, "st": status})
    migrate.upgrade(s)
    with s.engine.connect() as c:
        rows = {a: (r is not None, p) for a, r, p in c.execute(text(
            "SELECT nya_admission_id, resolved_at, programme_code FROM unhandled_admission"))}
    assert rows == {"A1": (True, "TKDAT"), "A2": (False, None)}
