"""The console in a real browser: Debian's chromium driven by Selenium, against a real Airflow
API server (this checkout's airflow.cfg, plugins and DAGs) over a store seeded by Brygga's own
flows against the simulators. Screenshots of each page go to ``var/screenshots/``.

One stack per session: the simulators (in this process), a store, a migrated Airflow metadata DB
with the DAGs serialized (Publicera triggers a run), and ``airflow api-server`` in a session of
its own, stopped with its children at the end."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
USERS = {"operator": ("admin", "brygga"), "viewer": ("viewer", "brygga-viewer")}
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    base_url: str
    store: Any
    scenario: dict[str, Any]
    world: dict[str, Any]
    log: Path

    def token(self, user: str = "operator") -> str:
        r = requests.post(f"{self.base_url}/auth/token", json={"username": user, "password": USERS[user][1]},
                          timeout=30)
        r.raise_for_status()
        return r.json()["access_token"]


def _airflow_env(home: Path, port: int, store_url: str, peers: dict[str, str]) -> dict[str, str]:
    from brygga.connections import PEERS, STORE_CONN_ID

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
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64), "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        f"AIRFLOW_CONN_{STORE_CONN_ID.upper()}": json.dumps({"conn_type": "generic",
                                                             "extra": {"sqlalchemy_url": store_url}}),
        "PATH": f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}",
    })
    for name, url in peers.items():
        host, p = url.split("://", 1)[1].rsplit(":", 1)
        env[f"AIRFLOW_CONN_{PEERS[name].conn_id.upper()}"] = json.dumps(
            {"conn_type": "http", "host": host, "port": int(p), "extra": {"timeout": 20}})
    return env


def _run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("a") as out:
        subprocess.run(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=600)


@pytest.fixture(scope="session")
def console_stack(tmp_path_factory):
    from brygga.store import Store, migrate
    from tests.browser.scenario import seed
    from tests.flows.test_admissions import make_world

    tmp = tmp_path_factory.mktemp("console")
    home = tmp / "airflow"
    home.mkdir()
    log = tmp / "airflow.log"
    store = Store(f"sqlite:///{tmp}/brygga.db")
    migrate.upgrade(store)
    with make_world() as world:
        scenario = seed(store, world)
        peers = {"ladok": world["ladok"].peer.base_url, "nya": world["nya"].peer.base_url,
                 "folkbokforing": world["folk"].peer.base_url}
        port = _free_port()
        env = _airflow_env(home, port, store.url, peers)
        airflow = str(ROOT / ".venv" / "bin" / "airflow")
        _run([airflow, "db", "migrate"], env, log)
        _run([airflow, "dags", "reserialize"], env, log)
        with log.open("a") as out:
            proc = subprocess.Popen([airflow, "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1"], env=env,
                                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if requests.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the API server did not start:\n{log.read_text()[-4000:]}")
                time.sleep(0.5)
            yield Stack(base, store, scenario, world, log)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            store.dispose()


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        if os.environ.get("CI"):
            pytest.fail(f"chromium ({CHROMIUM}) and chromedriver ({DRIVER}) are needed: .ci/run installs them")
        pytest.skip("no chromium/chromedriver here: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--lang=sv-SE", "--disable-gpu"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def login(driver, base_url: str, user: str) -> None:
    """Log in through Airflow's own login page (SimpleAuthManager), as a person does."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()
    driver.get(f"{base_url}/auth/login")
    wait = WebDriverWait(driver, 30)
    name = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[name='username'], input#username")))
    name.send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "input[type='password']").send_keys(USERS[user][1])
    driver.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    wait.until(lambda d: d.get_cookie("_token") is not None)


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 2400)")
    driver.set_window_size(1280, max(int(height) + 40, 700))
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    return path

