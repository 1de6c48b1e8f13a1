"""Shared fixtures. Airflow-free unless a test asks for the ``airflow_home`` fixture."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Airflow reads its configuration at import: point it at this checkout and a throw-away home
# before any test imports it. Nothing here imports Airflow itself.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="brygga-airflow-")
os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW_CONFIG": str(ROOT / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,  # 64 bytes, as HS512 wants
        "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
        "BRYGGA_VAR": str(Path(_AIRFLOW_HOME) / "var"),
    }
)
# Unit-test mode makes Airflow read its own test defaults, not airflow.cfg: the settings Brygga's
# behaviour rests on are carried over from airflow.cfg as they are written there.
_CFG = __import__("configparser").ConfigParser(interpolation=None)
_CFG.read(ROOT / "airflow.cfg")
os.environ["AIRFLOW__LOGGING__SECRET_MASK_ADAPTER"] = _CFG["logging"]["secret_mask_adapter"]

from brygga.store import Store
from brygga.store import migrate

PG_URL = os.environ.get("BRYGGA_TEST_PG_URL")
REQUIRE_PG = os.environ.get("BRYGGA_REQUIRE_PG") == "1"


def _backends():
    yield pytest.param("sqlite", id="sqlite")
    yield pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres)


@pytest.fixture
def empty_store_factory(tmp_path):
    """Makes an empty, unmigrated store on SQLite or on a fresh PostgreSQL schema."""
    created: list[tuple[Store, str | None]] = []

    def make(backend: str) -> Store:
        if backend == "sqlite":
            s = Store(f"sqlite:///{tmp_path / f'store-{uuid.uuid4().hex[:6]}.db'}")
            created.append((s, None))
            return s
        if not PG_URL:
            if REQUIRE_PG:
                pytest.fail("BRYGGA_REQUIRE_PG=1 but BRYGGA_TEST_PG_URL is not set")
            pytest.skip("PostgreSQL not configured (set BRYGGA_TEST_PG_URL)")
        # Each test gets its own schema so tests never see each other's rows.
        schema = f"t_{uuid.uuid4().hex[:10]}"
        admin = Store(PG_URL)
        with admin.engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        admin.dispose()
        sep = "&" if "?" in PG_URL else "?"
        s = Store(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
        created.append((s, schema))
        return s

    yield make
    for s, schema in created:
        s.dispose()
        if schema:
            admin = Store(PG_URL)
            with admin.engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()


@pytest.fixture(params=list(_backends()))
def store(request, empty_store_factory) -> Store:
    """A migrated store, once on SQLite and once on PostgreSQL."""
    s = empty_store_factory(request.param)
    migrate.upgrade(s)
    return s


def needs_eark_validator() -> pytest.MarkDecorator:
    """Tests that run eark-validator (``.venv-eark``, made by ``scripts/bootstrap.sh``): skipped
    where it is not installed, except in CI (``CI`` set), where a missing validator is a failure."""
    from simulators.arkiv.app import eark_command

    if eark_command() is None and os.environ.get("CI"):
        raise RuntimeError("CI: eark-validator (.venv-eark) is not installed; scripts/bootstrap.sh makes it")
    return pytest.mark.skipif(eark_command() is None, reason="eark-validator (.venv-eark) not installed: "
                              "run scripts/bootstrap.sh")


AMQP_URL = os.environ.get("BRYGGA_TEST_AMQP_URL")
REQUIRE_AMQP = os.environ.get("BRYGGA_REQUIRE_AMQP") == "1"


@pytest.fixture
def amqp_queue():
    """(broker URL, a fresh queue's AMQP 1.0 address) on the RabbitMQ that scripts/rabbitmq.sh
    starts (.ci/run sets BRYGGA_TEST_AMQP_URL and BRYGGA_REQUIRE_AMQP=1)."""
    if not AMQP_URL:
        if REQUIRE_AMQP:
            pytest.fail("BRYGGA_REQUIRE_AMQP=1 but BRYGGA_TEST_AMQP_URL is not set")
        pytest.skip("no AMQP broker (run scripts/rabbitmq.sh, set BRYGGA_TEST_AMQP_URL=amqp://127.0.0.1:5672)")
    return AMQP_URL, f"/queue/brygga-test-{uuid.uuid4().hex[:10]}"


def amqp_drain(url: str, address: str, *, idle: float = 2.0, user: str = "guest", password: str = "guest") -> list:
    """Every message waiting at ``address`` (read until none came for ``idle`` seconds), accepted."""
    from proton.handlers import MessagingHandler
    from proton.reactor import Container

    class Drain(MessagingHandler):
        def __init__(self):
            super().__init__()
            self.got, self.timer = [], None

        def on_start(self, event):
            self.conn = event.container.connect(url, user=user, password=password, allowed_mechs="PLAIN")
            event.container.create_receiver(self.conn, address)
            self.timer = event.container.schedule(idle, self)

        def on_timer_task(self, event):
            self.conn.close()

        def on_message(self, event):
            self.got.append(event.message)
            self.timer.cancel()
            self.timer = event.container.schedule(idle, self)

    d = Drain()
    Container(d).run()
    return d.got
