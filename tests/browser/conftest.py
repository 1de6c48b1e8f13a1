"""The console in a real browser: Debian's chromium driven by Selenium, against a real Airflow
API server (this checkout's airflow.cfg, plugins and DAGs) over a store seeded by Brygga's own
flows against the simulators. Screenshots of each page go to ``var/screenshots/``.

One stack per session (``console_stack``): the five simulators (in this process, on free ports),
a store seeded by ``tests.browser.scenario.seed``, a migrated Airflow metadata DB with the DAGs
serialized (Publicera triggers a run), and ``airflow api-server`` in a session (process group) of
its own, stopped with its children at the end. Set up in about 15 s: the metadata DB is migrated
while the store is seeded, and the DAGs are serialized while the API server starts.

``browser``: one chromium for the session; ``login``/``logout`` switch between Airflow users
(SimpleAuthManager's login page; the UI keeps the JWT in the ``_token`` cookie)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
AIRFLOW = ROOT / ".venv" / "bin" / "airflow"
# the logins of make run (scripts/airflow-env.sh): user -> (SimpleAuthManager role, password)
USERS = {"operator": ("admin", "brygga"), "viewer": ("viewer", "brygga-viewer")}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's chromium and chromium-driver
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SETUP_TIMEOUT = 180  # seconds the API server may take to answer its health check


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    """What ``console_stack`` yields."""

    base_url: str  # the API server, e.g. http://127.0.0.1:41234 (the console: base_url + "/brygga-ops/")
    store: Any  # brygga.store.Store, the one behind the brygga_store Connection
    scenario: dict[str, Any]  # tests.browser.scenario.seed's ids
    world: dict[str, Any]  # tests.flows.admissions_world.make_world(): adapters and simulator states
    simulators: dict[str, str]  # peer name (brygga.connections.PEERS) -> simulator URL
    log: Path  # the Airflow commands' and the API server's output
    airflow_home: Path
    timings: dict[str, float] = field(default_factory=dict)  # seconds after the start: seeded, migrated, ...

    @property
    def admission_id(self) -> str:
        return self.scenario["admission_id"]

    @property
    def package_uid(self) -> str:
        return self.scenario["package_uid"]

    @property
    def case_id(self) -> int:
        return self.scenario["case_id"]

    @property
    def publication_id(self) -> int:
        return self.scenario["publication_id"]

    def token(self, user: str = "operator") -> str:
        """A JWT from Airflow's token endpoint, for API calls as ``user`` (Authorization: Bearer)."""
        r = requests.post(f"{self.base_url}/auth/token", json={"username": user, "password": USERS[user][1]},
                          timeout=30)
        r.raise_for_status()
        return r.json()["access_token"]


def _connections(store_url: str, simulators: dict[str, str]) -> dict[str, dict[str, Any]]:
    """make run's Connections (``brygga connections-json``), the peers on the simulators' ports."""
    from brygga.connections import PEERS, connections_document

    doc = connections_document(store=store_url)
    for name, url in simulators.items():
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        doc[PEERS[name].conn_id].update(host=host, port=int(port))
    return doc


def _airflow_env(home: Path, port: int, connections: dict[str, dict[str, Any]]) -> dict[str, str]:
    """scripts/airflow-env.sh's environment, in ``home``, with fresh secrets; the Connections as
    AIRFLOW_CONN_<ID> (JSON). The test process's own Airflow settings (unit-test mode) are left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({u: pw for u, (_, pw) in USERS.items()}))
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW_CONFIG": str(ROOT / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}", "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{role}" for u, (role, _) in USERS.items()),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),  # >= 64 bytes for HS512
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATH": f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}",
    })
    env.update({f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(c) for conn_id, c in connections.items()})
    return env


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``cmd`` in a session (process group) of its own, its output appended to ``log``."""
    with log.open("a") as out:
        out.write(f"==> {' '.join(cmd[1:])}\n")
        out.flush()
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _finish(proc: subprocess.Popen, what: str, log: Path, timeout: float = 300) -> None:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise RuntimeError(f"{what} took more than {timeout:.0f} s:\n{log.read_text()[-4000:]}") from None
    if rc != 0:
        raise RuntimeError(f"{what} failed (exit {rc}):\n{log.read_text()[-4000:]}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(proc: subprocess.Popen, grace: float = 15) -> None:
    """Stop ``proc``'s whole process group (the API server and its uvicorn worker): TERM, then KILL."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group's id
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.2)  # reap the leader (else it stays a zombie and the group "lives")
            if not _group_alive(pgid):
                break
        else:
            continue
        break
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _ours(base: str, jwt_secret: str) -> bool:
    """Whether the server at ``base`` is this stack's (not another test run's that took the port):
    its login hands out tokens signed with this stack's secret."""
    import jwt

    r = requests.post(f"{base}/auth/token", json={"username": "viewer", "password": USERS["viewer"][1]}, timeout=10)
    if r.status_code != 201:
        return False
    try:
        jwt.decode(r.json()["access_token"], jwt_secret, algorithms=["HS512"], options={"verify_aud": False})
    except jwt.InvalidTokenError:
        return False
    return True


def _wait_healthy(proc: subprocess.Popen, base: str, jwt_secret: str, log: Path) -> None:
    deadline = time.monotonic() + SETUP_TIMEOUT
    while True:
        try:
            if (requests.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200
                    and _ours(base, jwt_secret)):
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the API server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API server did not answer within {SETUP_TIMEOUT} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.25)


@pytest.fixture(scope="session")
def console_stack(tmp_path_factory):
    """The simulators, a seeded store and a real ``airflow api-server`` (core app: the UI, the
    REST API, the auth manager's login and the plugins) on a free port; yields a ``Stack``."""
    from brygga.store import Store, migrate
    from simulators._server import serve_in_thread
    from simulators.arkiv.app import create_app as arkiv_app
    from simulators.schema.app import create_app as schema_app
    from tests.browser.scenario import seed
    from tests.flows.admissions_world import make_world

    t0 = time.monotonic()
    timings: dict[str, float] = {}
    tmp = tmp_path_factory.mktemp("console")
    home = tmp / "airflow"
    home.mkdir()
    log = tmp / "airflow.log"
    store = Store(f"sqlite:///{tmp}/brygga.db")
    procs: list[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        stack.callback(store.dispose)
        world = stack.enter_context(make_world())
        sims = {"ladok": world["ladok"].peer.base_url, "nya": world["nya"].peer.base_url,
                "folkbokforing": world["folk"].peer.base_url,
                "schema": stack.enter_context(serve_in_thread(schema_app())).url,
                "arkiv": stack.enter_context(serve_in_thread(arkiv_app(eark=False))).url}  # no deliveries here
        stack.callback(lambda: [_stop(p) for p in reversed(procs)])  # first of all: Airflow's processes
        env = _airflow_env(home, _free_port(), _connections(store.url, sims))
        # the metadata DB is migrated while the store is seeded
        migrating = _start([str(AIRFLOW), "db", "migrate"], env, log)
        procs.append(migrating)
        migrate.upgrade(store)
        scenario = seed(store, world)
        timings["seeded"] = time.monotonic() - t0
        _finish(migrating, "airflow db migrate", log)
        timings["migrated"] = time.monotonic() - t0
        # the DAGs are serialized (so a DAG run can be triggered) while the API server starts
        serializing = _start([str(AIRFLOW), "dags", "reserialize"], env, log)
        procs.append(serializing)
        for attempt in range(3):  # the free port was taken meanwhile by someone else: another one
            port = int(env["AIRFLOW__API__PORT"])
            base = f"http://127.0.0.1:{port}"
            api = _start([str(AIRFLOW), "api-server", "--apps", "core", "-H", "127.0.0.1", "-p", str(port),
                          "-w", "1"], env, log)
            procs.append(api)
            try:
                _wait_healthy(api, base, env["AIRFLOW__API_AUTH__JWT_SECRET"], log)
                break
            except RuntimeError:
                if api.poll() is None or "address already in use" not in log.read_text().lower() or attempt == 2:
                    raise
            port = _free_port()
            env = {**env, "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}"}
        timings["api_server_up"] = time.monotonic() - t0
        _finish(serializing, "airflow dags reserialize", log)
        timings["setup"] = time.monotonic() - t0
        yield Stack(base, store, scenario, world, sims, log, home, timings)


@pytest.fixture(scope="session")
def browser():
    """Headless chromium (Debian's, with its chromedriver), 1280x1000. Skipped where chromium is
    not installed, except in CI (``CI`` set): there that is a failure (``.ci/run`` installs it)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        if os.environ.get("CI"):
            pytest.fail(f"CI: chromium ({CHROMIUM}) and chromedriver ({DRIVER}) are needed for the browser tests; "
                        ".ci/run installs them (apt-get install chromium chromium-driver)")
        pytest.skip(f"no chromium ({CHROMIUM}) or chromedriver ({DRIVER}) here: "
                    "apt-get install chromium chromium-driver to run the browser tests")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--lang=sv-SE", "--disable-gpu"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def login(driver, base_url: str, user: str, password: str | None = None, timeout: float = 30) -> None:
    """Log in through Airflow's own login page (SimpleAuthManager's ``/auth/login``: fields
    ``username`` and ``password``, a submit button), as a person does, and wait until the Airflow UI
    has loaded with the JWT in the ``_token`` cookie. Whoever was logged in before is logged out
    first. ``password``: by default the user's in ``USERS``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    logout(driver, base_url)  # (which ends on the login page)
    if "/auth/login" not in driver.current_url:
        driver.get(f"{base_url}/auth/login")
    wait = WebDriverWait(driver, timeout)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[name='username']"))).send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "input[name='password']").send_keys(
        USERS[user][1] if password is None else password)
    driver.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    try:
        wait.until(lambda d: d.get_cookie("_token") is not None and "/auth/" not in d.current_url
                   and d.execute_script("return document.readyState") == "complete")
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text[:500]
        raise AssertionError(f"login as {user} did not succeed within {timeout:.0f} s (at {driver.current_url}): "
                             f"{body!r}") from None


def logout(driver, base_url: str) -> None:
    """Log out as the UI does (``/api/v2/auth/logout``: Airflow revokes the token and deletes the
    ``_token`` cookie, then shows its login page) and drop whatever cookies are left: the next page
    is seen logged out, the next ``login`` may be another user's."""
    driver.get(f"{base_url}/api/v2/auth/logout")
    driver.delete_all_cookies()


def screenshot(driver, name: str) -> Path:
    """The whole page (up to 2400 px high) as ``var/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 2400)")
    driver.set_window_size(1280, max(int(height) + 40, 700))
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    return path
