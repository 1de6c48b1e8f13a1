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
