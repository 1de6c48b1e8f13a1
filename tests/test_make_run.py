"""`make run` leaves nothing running when it stops: on Ctrl-C, and with `make stop` after the
script itself was killed. Starts the real thing (simulators + `airflow standalone`) in a var/ of its
own; about a minute per case."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
PORTS = (8080, 8701, 8702, 8703, 8704, 8705, 8725)


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def var(tmp_path_factory):
    busy = [p for p in PORTS if not _free(p)]
    if busy:
        pytest.fail(f"ports {busy} are taken: stop what runs there (make stop) before the tests")
    return tmp_path_factory.mktemp("make-run") / "var"


def _env(var: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
    return {**keep, "BRYGGA_VAR": str(var), "BRYGGA_STOP_GRACE": "10"}


def _start(var: Path) -> subprocess.Popen:
    log = open(var.parent / "run.log", "ab")
    p = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=_env(var), stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)  # like a job in a terminal
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert p.poll() is None, (var.parent / "run.log").read_text()[-3000:]
        try:
            if requests.get("http://127.0.0.1:8080/api/v2/monitor/health", timeout=2).ok and not _free(8701):
                return p
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError("make run did not come up in 300 s:\n" + (var.parent / "run.log").read_text()[-3000:])


def _groups(var: Path) -> list[int]:
    """The parts make run started: the simulators, the mail sink, the demo round's steps, Airflow."""
    parts = {f.stem: int(f.read_text().split()[0]) for f in (var / "run").glob("*.pgid")}
    assert set(parts) == {"simulators", "mail", "demo", "airflow"}, parts
    return list(parts.values())


def _gone(groups: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(_alive(g) for g in groups) and all(_free(p) for p in PORTS):
            return True
        time.sleep(0.5)
    return False


def _alive(session: int) -> bool:
    """A process of the session is left that is not a zombie (orphans' zombies wait for whoever
    reaps orphans on this machine; they hold no port and no file). A session, not a process
    group: Airflow runs each task in a process group of its own inside the scheduler's session."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, _, sid = stat.read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError):
            continue
        if int(sid) == session and state != "Z":
            return True
    return False


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_stopping_make_run_stops_everything_it_started(var, how):
    p = _start(var)
    groups = _groups(var)
    if how == "ctrl-c":
        os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C sends: to the terminal's foreground group
    else:
        os.kill(p.pid, signal.SIGTERM)  # `kill <pid>` of the script only
    assert p.wait(timeout=60) != 0
    assert _gone(groups, 5), [g for g in groups if _alive(g)]
    assert not list((var / "run").glob("*.pgid"))


def test_make_stop_ends_what_a_killed_make_run_left(var):
    p = _start(var)
    groups = _groups(var)
    os.kill(p.pid, signal.SIGKILL)  # the script dies without its trap: everything else runs on
    p.wait(timeout=10)
    time.sleep(1)
    assert all(_alive(g) for g in groups)
    out = subprocess.run(["make", "stop"], cwd=ROOT, env=_env(var), capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _gone(groups, 5), [g for g in groups if _alive(g)]
    assert "SIGTERM" in out.stdout


def test_a_record_from_before_the_last_boot_is_only_removed(tmp_path):
    """var/run/ outlives a reboot; a session id recorded before it may now be someone else's."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        run = tmp_path / "var" / "run"
        run.mkdir(parents=True)
        (run / "old.pgid").write_text(f"{other.pid} 1\n")  # boot time 1: another boot
        out = subprocess.run(["bash", "scripts/stop.sh"], cwd=ROOT, env=_env(tmp_path / "var"), capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0 and "before the last boot" in out.stdout
        assert other.poll() is None and not (run / "old.pgid").exists()
    finally:
        other.kill()
        other.wait()


def test_a_record_a_second_off_the_boot_time_is_still_stopped(tmp_path):
    """/proc/stat's btime is the clock minus the uptime: two reads in one boot can differ by a second."""
    boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        run = tmp_path / "var" / "run"
        run.mkdir(parents=True)
        (run / "part.pgid").write_text(f"{other.pid} {boot - 1}\n")
        out = subprocess.run(["bash", "scripts/stop.sh"], cwd=ROOT, env=_env(tmp_path / "var"), capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0 and "SIGTERM" in out.stdout, out.stdout
        assert other.wait(10) is not None
    finally:
        other.kill()
