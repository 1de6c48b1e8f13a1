"""The scale-out check (.ci/run's own step): Brygga on CeleryExecutor with two workers.

Starts ``scripts/run-celery.sh`` (PostgreSQL for Airflow and the store, Redis, api-server,
scheduler, dag-processor, triggerer, two Celery workers, the simulators seeded with N accepted
admissions and N/20 degree events in Ladok's feed) in a var/ of its own, then runs
``brygga_admission_import`` with 4 shards, ``brygga_merit_sync`` and ``brygga_aterbud`` at the same
time (their first scheduled runs: the DAGs start paused and are unpaused together) and asserts:

* every admission placed exactly once in the Ladok simulator (N created, none posted twice), and
  N rows placed in Brygga's store;
* every merit delivered once to NyA (N/20 examen merits, no duplicate);
* no outbox row answered "duplicate";
* task instances executed on both workers (their hostnames);
* with ``--kill-worker`` (as .ci/run runs it): worker2 is killed with SIGKILL, its whole session,
  when a third of the admissions are placed. Each worker is a host of its own for the claims
  (``BRYGGA_WORKER_NAME``), so the retry of a killed placement task, wherever it runs, must take
  over what its dead try had claimed: the run still ends with every admission placed once and its
  report counting them all; run-celery.sh restarts the lost worker.

Everything it started is stopped at the end. Exit 0 when every assertion holds.

    python scripts/celery_check.py [--admissions 20000] [--timeout 1500] [--kill-worker]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
API = "http://127.0.0.1:8080"
LADOK, NYA = "http://127.0.0.1:8701", "http://127.0.0.1:8702"
STORE = "postgresql+psycopg://brygga:brygga@127.0.0.1:5432/brygga_celery_store"
AIRFLOW_DB = "brygga_celery_airflow"


def log(msg: str) -> None:
    print(f"[celery-check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait(what: str, ok, deadline: float, every: float = 2.0):
    while time.monotonic() < deadline:
        try:
            got = ok()
            if got:
                return got
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


class Airflow:
    def __init__(self) -> None:
        r = requests.post(f"{API}/auth/token", json={"username": "operator", "password": "brygga"}, timeout=10)
        r.raise_for_status()
        self.h = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def get(self, path: str, **params):
        r = requests.get(f"{API}/api/v2{path}", headers=self.h, params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def unpause(self, dag_id: str) -> None:
        r = requests.patch(f"{API}/api/v2/dags/{dag_id}", headers=self.h, json={"is_paused": False}, timeout=30)
        r.raise_for_status()

    def first_runs(self, dags: tuple[str, ...], deadline: float) -> dict[str, str]:
        """Unpause ``dags`` (the stack starts them paused) and return their first runs' ids: the
        scheduled runs, at once, as in production."""
        for d in dags:
            self.unpause(d)

        def first() -> dict[str, str] | None:
            got = {d: self.get(f"/dags/{d}/dagRuns", order_by="run_after", limit=1)["dag_runs"] for d in dags}
            return all(got.values()) and {d: r[0]["dag_run_id"] for d, r in got.items()}

        return wait("the first runs", first, deadline, every=0.5)

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)["task_instances"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--admissions", type=int, default=20_000)
    ap.add_argument("--timeout", type=float, default=1500)
    ap.add_argument("--kill-worker", action="store_true", help="SIGKILL worker2 at a third of the placements")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # .ci/run's timeout: still stop everything
    with stack(2, args.admissions, args.timeout) as (proc, var, deadline):
        return check(args.admissions, args.admissions // 20, deadline, proc, var, kill_worker=args.kill_worker)


def kill_session(var: Path, part: str) -> int:
    """SIGKILL every process of a run-celery part's session (its pgid record); how many."""
    sid = (var / "run" / f"{part}.pgid").read_text().split()[0]
    killed = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[3] == sid and fields[0] != "Z":
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(stat.parent.name), signal.SIGKILL)
                killed += 1
    return killed


@contextlib.contextmanager
def stack(workers: int, n: int, timeout: float, concurrency: int = 4):
    """``make run-celery`` with ``workers`` Celery workers, fresh databases and the simulators
    seeded with ``n`` admissions, in a var/ of its own; stopped (everything) on leaving."""
    deadline = time.monotonic() + timeout
    var = Path(tempfile.mkdtemp(prefix="brygga-celery-"))
    env = {**os.environ, "BRYGGA_VAR": str(var), "BRYGGA_SIMULATOR_ARGS": f"--admissions {n}",
           "BRYGGA_CELERY_AIRFLOW_DB": AIRFLOW_DB, "BRYGGA_CELERY_STORE_DB": "brygga_celery_store",
           "BRYGGA_STOP_GRACE": "15", "BRYGGA_WORKERS": str(workers),
           "BRYGGA_WORKER_CONCURRENCY": str(concurrency),
           "BRYGGA_DAGS_PAUSED": "1", "BRYGGA_ADMISSION_SHARDS": "4"}  # started when unpaused
    # a fresh Airflow and store each time
    subprocess.run(["bash", "scripts/postgres.sh"], cwd=ROOT, check=True)
    for db in (AIRFLOW_DB, "brygga_celery_store"):
        subprocess.run(["su", "postgres", "-c", f"dropdb --if-exists {db}"], check=True)
    log(f"starting make run-celery ({workers} worker(s)) with {n:,} admissions; logs in {var}/log")
    proc = subprocess.Popen(["bash", "scripts/run-celery.sh"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=open(var / "run-celery.out", "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield proc, var, deadline
    finally:
        log("stopping")
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(["bash", "scripts/stop.sh"], cwd=ROOT, env=env)


def ready(proc: subprocess.Popen, var: Path, deadline: float, dags: tuple[str, ...]) -> Airflow:
    """Once Airflow, the simulators and ``dags`` are up: a client of Airflow's REST API."""
    def up():
        if proc.poll() is not None:
            raise SystemExit(f"run-celery.sh ended ({proc.returncode}):\n"
                             + (var / "run-celery.out").read_text()[-3000:])
        return (requests.get(f"{API}/api/v2/monitor/health", timeout=3).ok
                and requests.get(f"{LADOK}/sim/health", timeout=3).ok)

    wait("Airflow and the simulators", up, deadline)
    af = Airflow()
    wait("the DAGs parsed", lambda: all(af.get(f"/dags/{d}")["dag_id"] for d in dags), deadline)
    return af


def check(n: int, merits: int, deadline: float, proc: subprocess.Popen, var: Path, *, kill_worker: bool = False) -> int:
    dags = ("brygga_admission_import", "brygga_merit_sync", "brygga_aterbud")
    af = ready(proc, var, deadline, dags)
    started = time.monotonic()
    runs = af.first_runs(dags, deadline)  # their scheduled runs, the import's with 4 shards
    log(f"started {', '.join(runs)}")
    engine = create_engine(STORE)

    def placed() -> int:
        with engine.connect() as c:
            return c.execute(text("SELECT count(*) FROM nya_admission WHERE state = 'placed'")).scalar_one()

    def done():
        states = {d: af.run_state(d, r) for d, r in runs.items()}
        if any(s == "failed" for s in states.values()):
            raise AssertionError(f"a run failed: {states}")
        return all(s == "success" for s in states.values()) and states

    killed = None
    if kill_worker:
        wait(f"a third of {n:,} placed", lambda: placed() >= n // 3, deadline, every=0.5)
        at, n_killed = placed(), kill_session(var, "worker2")
        killed = {"at_placed": at, "processes": n_killed, "monotonic": time.monotonic()}
        log(f"SIGKILL to worker2's {n_killed} processes with {at:,} placed")
    states = wait("the three runs", done, deadline, every=5)
    log(f"runs done in {time.monotonic() - started:.0f} s: {states}; placed {placed():,}")

    def merits_in() -> bool:  # the merit sync also runs on its schedule: wait for every merit
        return requests.get(f"{NYA}/sim/stats", timeout=10).json()["merits"] >= merits

    wait(f"{merits:,} merits in NyA", merits_in, deadline, every=5)
    time.sleep(20)  # let any scheduled run in flight finish (a resend would show as a duplicate)
    ladok = requests.get(f"{LADOK}/sim/stats", timeout=10).json()
    nya = requests.get(f"{NYA}/sim/stats", timeout=10).json()
    with engine.connect() as c:
        outbox = dict(c.execute(text("SELECT coalesce(response, status), count(*) FROM outbox_message "
                                     "GROUP BY 1")).all())
    hosts: dict[str, set[str]] = {}
    for dag_id, run_id in runs.items():
        for ti in af.task_instances(dag_id, run_id):
            hosts.setdefault(ti.get("hostname") or "?", set()).add(f"{dag_id}.{ti['task_id']}")
    workers = {h.split("@", 1)[0] for h in hosts if "@" in h}
    result = {"admissions": n, "placements_created": ladok["placements_created"],
              "placements_replayed": ladok["placements_replayed"], "placed_in_store": placed(),
              "merits_expected": merits, "merits_in_nya": nya["merits"], "merit_duplicates": nya["merit_duplicates"],
              "outbox": outbox, "hosts": {h: sorted(t) for h, t in hosts.items()},
              "seconds": round(time.monotonic() - started)}
    report = next((ti for ti in af.task_instances("brygga_admission_import", runs["brygga_admission_import"])
                   if ti["task_id"] == "report"), None)
    restarted = "worker2 ended; restarting it" in (var / "run-celery.out").read_text(errors="replace")
    if killed is not None:
        result["worker_killed"] = {"at_placed": killed["at_placed"], "processes": killed["processes"],
                                   "restarted": restarted, "report_try": report and report.get("try_number"),
                                   "tries": {ti["task_id"] + str(ti.get("map_index", "")): ti.get("try_number")
                                             for ti in af.task_instances("brygga_admission_import",
                                                                         runs["brygga_admission_import"])}}
    log(json.dumps(result, indent=2))
    failures = []
    if ladok["placements_created"] != n:
        failures.append(f"Ladok has {ladok['placements_created']:,} placements, {n:,} expected")
    if result["placed_in_store"] != n:
        failures.append(f"the store has {result['placed_in_store']:,} placed admissions, {n:,} expected")
    if nya["merits"] != merits or nya["merit_duplicates"]:
        failures.append(f"NyA has {nya['merits']:,} merits ({nya['merit_duplicates']} duplicates), {merits:,} expected")
    if outbox.get("duplicate"):
        failures.append(f"{outbox['duplicate']} outbox rows were answered 'duplicate'")
    if killed is not None and not restarted:
        failures.append("run-celery.sh did not restart the killed worker2")
    if workers != {"worker1", "worker2"}:
        failures.append(f"task instances ran on {sorted(hosts)}, not on both workers")
    for f in failures:
        log("FAILED: " + f)
    if not failures:
        log("OK: every admission placed once, every merit delivered once, tasks on both workers")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
