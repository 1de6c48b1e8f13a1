"""The admission import on CeleryExecutor: 1 worker against 2 workers, side by side in one run.

Each configuration is a fresh ``make run-celery`` (``scripts/celery_check.py``'s stack: PostgreSQL
for Airflow and the store, Redis, api-server, scheduler, dag-processor, triggerer, the simulators
seeded with N accepted admissions) with ``--workers`` Celery workers of concurrency 4. The DAGs start
paused; only ``brygga_admission_import`` is unpaused and its first scheduled run (4 shards) is measured. Measured per configuration:

* wall time from trigger to the run's success, and admissions placed per second;
* CPU of the whole machine (``/proc/stat``, every process: simulators, PostgreSQL, Airflow) and of
  the workers alone (their processes and reaped children), per admission;
* the ``place`` tasks' durations and which worker ran them.

Order 1, 2 (``--rounds 2``: 1, 2, 2, 1). ``--concurrency 1``: one task slot per worker
(results ``celery_workers.c1``), where a worker's slots, not the CPU, are the limit. Needs root (apt-get, ``su postgres``) like make run-celery.

    python -m bench.celery_workers [--admissions 20000] [--rounds 1] [--quick]

Results: ``bench/results/celery_workers[.quick].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DAG = "brygga_admission_import"


def _check():
    sys.path.insert(0, str(ROOT / "scripts"))
    import celery_check

    return celery_check


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (all cores; not idle, not iowait)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


def worker_cpu(sessions: list[int]) -> float:
    """CPU seconds of the Celery workers' processes (the sessions run-celery.sh started them in),
    children reaped by them included."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in sessions:
            total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def one(workers: int, n: int, timeout: float, concurrency: int) -> dict:
    cc = _check()
    with cc.stack(workers, n, timeout, concurrency) as (proc, var, deadline):
        af = cc.ready(proc, var, deadline, (DAG,))
        sessions = [int((var / "run" / f"worker{i}.pgid").read_text().split()[0]) for i in range(1, workers + 1)]
        cpu0, wcpu0, t0 = machine_cpu(), worker_cpu(sessions), time.monotonic()
        run = af.first_runs((DAG,), deadline)[DAG]  # its scheduled run (4 shards); the other DAGs stay paused

        def placed() -> int:
            return requests.get(f"{cc.LADOK}/sim/stats", timeout=10).json()["placements_created"]

        def done():
            state = af.run_state(DAG, run)
            if state == "failed":
                raise AssertionError(f"{DAG} failed")
            return state == "success" and placed() == n

        cc.wait(DAG, done, deadline, every=1)
        wall, cpu, wcpu = time.monotonic() - t0, machine_cpu() - cpu0, worker_cpu(sessions) - wcpu0
        places = [ti for ti in af.task_instances(DAG, run) if ti["task_id"] == "place"]
        return {"workers": workers, "admissions": n, "placed": placed(), "wall_s": round(wall, 1),
                "admissions_per_s": round(n / wall), "machine_cpu_s": round(cpu, 1),
                "machine_cpu_ms_per_admission": round(cpu * 1000 / n, 2),
                "worker_cpu_s": round(wcpu, 1), "worker_cpu_ms_per_admission": round(wcpu * 1000 / n, 2),
                "place_s": sorted(round(ti["duration"] or 0, 1) for ti in places),
                "place_on": sorted({(ti.get("hostname") or "?").split("@")[0] for ti in places})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--admissions", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1500)
    ap.add_argument("--concurrency", type=int, default=4, help="task slots per worker")
    ap.add_argument("--quick", action="store_true", help="2,000 admissions")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    n = 2000 if args.quick else args.admissions
    order = [w for r in range(args.rounds) for w in ((1, 2) if r % 2 == 0 else (2, 1))]
    runs = []
    for w in order:
        runs.append(one(w, n, args.timeout, args.concurrency))
        print("  " + json.dumps(runs[-1]), flush=True)

    def median(w: int, key: str) -> float:
        xs = sorted(r[key] for r in runs if r["workers"] == w)
        return xs[len(xs) // 2]

    res = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "cores": os.cpu_count(),
           "admissions": n, "concurrency": args.concurrency, "order": order, "runs": runs,
           "speedup_2_over_1": round(median(1, "wall_s") / median(2, "wall_s"), 2)}
    name = "celery_workers" + (f".c{args.concurrency}" if args.concurrency != 4 else "") + (".quick" if args.quick else "")
    args.out = args.out or RESULTS / f"{name}.json"
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    lines = [f"# Admission import on CeleryExecutor, 1 vs 2 workers ({n:,} admissions, 4 shards, "
             f"{res['cores']} cores, {args.concurrency} task slots per worker, {res['when']})", "",
             "| workers | wall s | admissions/s | machine CPU ms/admission | worker CPU ms/admission | place tasks s | on |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['workers']} | {r['wall_s']} | {r['admissions_per_s']} | {r['machine_cpu_ms_per_admission']} | "
              f"{r['worker_cpu_ms_per_admission']} | {', '.join(map(str, r['place_s']))} | {', '.join(r['place_on'])} |"
              for r in runs]
    lines += ["", f"2 workers / 1 worker, wall time: **{res['speedup_2_over_1']}×**"]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r["placed"] == n for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
