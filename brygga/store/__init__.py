"""The adapter's own store: inbox, outbox, checkpoints, queues, history, quarantine, audit.

SQLAlchemy 2 models with Alembic migrations. SQLite is the embedded default, PostgreSQL the
production store. Work and bookkeeping share one transaction (``Store.transaction()``), which is
what makes effects exactly-once: a checkpoint only moves together with the outbox rows it caused.
"""

from brygga.store.db import Store, StoreUnwritable, store_url

__all__ = ["Store", "StoreUnwritable", "store_url"]
