"""The console's queue list (ej hanterade antagningar) with 50,000 open admissions: server time of
each way officers open it. Goal: every case answers in **≤ 300 ms** server time.

1. A fresh store per backend (SQLite; PostgreSQL too when ``BRYGGA_TEST_PG_URL`` is set) gets N
   open queue entries (and N/5 resolved ones) over 3 rounds, 6 hinder, 400 instances and 12
   programmes, as ``brygga.flows.admissions.queue`` writes them (the admission record included),
   and is ANALYZEd.
2. The console app (``brygga.console.create_app``) is called in-process (Starlette's TestClient:
   no network), as an operator. Each case — the default list (open, oldest first, 50 a page),
   filtered by hinder, by round + instance, by programme, sorted by programme, the last page, the
   JSON API, one admission's page — is warmed up once, then requested ``--reps`` times, the cases
   interleaved so load from elsewhere falls on all alike. Server time is the app's own
   ``Server-Timing`` header (the whole request in the app: queries, template, masking).
3. The same cases once more without the queue's status/created index (dropped): the ratio
   shows what the index is for.

Results: ``bench/results/console_queue[.quick].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GOAL_MS = 300.0
HINDER = ("kunde.inte.placeras.i.plan", "redan.paborjat", "personnummer.okant", "utbildningstillfalle.saknas",
          "antagning.finns", "ovrigt")
ROUNDS = ("HT2026", "VT2027", "HT2027")


def fill(store, n: int) -> None:
    from sqlalchemy import insert

    from brygga.personnummer import with_check_digit
    from brygga.store.models import NyaAdmission, UnhandledAdmission

    t0 = dt.datetime(2027, 4, 1, tzinfo=dt.UTC)
    total = n + n // 5
    rows, admissions = [], []
    for i in range(total):
        pnr = with_check_digit(f"19{(i % 80) + 10:02d}{(i % 12) + 1:02d}{(i % 28) + 1:02d}{i % 1000:03d}")
        status = "open" if i < n else "resolved"
        rnd, hinder = ROUNDS[i % 3], HINDER[(i * 7) % len(HINDER)]
        code, programme = f"{27000 + i % 400}", f"TK{i % 12:02d}"
        aid = f"A-{i:07d}"
        rows.append({"nya_admission_id": aid, "round": rnd, "personnummer": pnr, "tillfalleskod": code,
                     "utbildningstillfalle_uid": f"uid-{i % 400}", "hinder": hinder, "programme_code": programme,
                     "reason": f"Antagning kunde inte placeras ({hinder}) för {pnr}",
                     "candidates": [{"package_uid": f"pkg-{i % 12}", "utbildningskod": programme,
                                     "tillfalleskod": "P1", "name": "Program"}] if i % 3 == 0 else [],
                     "admission": {"admission_id": aid, "personnummer": pnr, "utbildningskod": f"K{i % 400:03d}",
                                   "tillfalleskod": code, "programme_code": programme, "round": rnd},
                     "status": status, "created_at": t0 + dt.timedelta(seconds=37 * i),
                     "updated_at": t0 + dt.timedelta(seconds=37 * i)})
        admissions.append({"admission_id": aid, "round": rnd, "sequence": i, "personnummer": pnr,
                           "tillfalleskod": code, "state": "unhandled" if status == "open" else "placed",
                           "record": {}, "conditions": []})
    with store.transaction() as s:
        for i in range(0, total, 5000):
            s.execute(insert(UnhandledAdmission), rows[i:i + 5000])
            s.execute(insert(NyaAdmission), admissions[i:i + 5000])
    with store.engine.begin() as c:
        c.exec_driver_sql("ANALYZE")


def cases(n: int) -> dict[str, str]:
    last = (n // 50 - 1) * 50
    return {
        "default (open, oldest first)": "/unhandled-admissions",
        "filter: hinder": "/unhandled-admissions?hinder=redan.paborjat",
        "filter: round + instance": "/unhandled-admissions?round=HT2027&instance=27101",
        "filter: programme": "/unhandled-admissions?programme=TK05",
        "sort: programme": "/unhandled-admissions?sort=programme",
        "sort: newest first": "/unhandled-admissions?sort=age&desc=1",
        "last page": f"/unhandled-admissions?offset={last}",
        "JSON API (100)": "/api/unhandled-admissions?status=open",
        "one admission": "/unhandled-admissions/A-0000123",
    }


def measure(store, n: int, reps: int) -> dict[str, dict[str, float]]:
    from fastapi.testclient import TestClient

    from brygga.console import Principal, create_app

    app = create_app(store, lambda r: Principal("bench.operator", frozenset({"admissions"})), secret="bench")
    client = TestClient(app)
    todo = cases(n)
    for path in todo.values():  # warm-up
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    server: dict[str, list[float]] = {k: [] for k in todo}
    wall: dict[str, list[float]] = {k: [] for k in todo}
    for _ in range(reps):
        for name, path in todo.items():
            t0 = time.perf_counter()
            r = client.get(path)
            wall[name].append((time.perf_counter() - t0) * 1000)
            server[name].append(float(r.headers["server-timing"].split("dur=")[1]))
    return {k: {"median_ms": round(statistics.median(v), 1), "max_ms": round(max(v), 1),
                "wall_median_ms": round(statistics.median(wall[k]), 1)} for k, v in server.items()}


def drop_index(store) -> bool:
    with store.engine.begin() as c:
        try:
            c.exec_driver_sql("DROP INDEX ix_unhandled_status_created")
        except Exception:  # noqa: BLE001 - an older schema without it
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    from bench.offer_export import _stores

    ap = argparse.ArgumentParser(prog="python -m bench.console_queue")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args(argv)
    n = args.n or (5_000 if args.quick else 50_000)
    reps = 5 if args.quick else args.reps
    backends = ["sqlite"] + (["postgresql"] if os.environ.get("BRYGGA_TEST_PG_URL") and not args.no_pg else [])
    out: dict = {"open_admissions": n, "resolved": n // 5, "reps": reps, "goal_ms": GOAL_MS, "backends": {},
                 "load_1min": os.getloadavg()[0]}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            store, cleanup = _stores(backend, tmp)
            try:
                t0 = time.perf_counter()
                fill(store, n)
                fill_s = round(time.perf_counter() - t0, 1)
                with_index = measure(store, n, reps)
                dropped = drop_index(store)
                without = measure(store, n, max(3, reps // 3)) if dropped else {}
            finally:
                cleanup()
            worst = max(v["median_ms"] for v in with_index.values())
            ok &= worst <= GOAL_MS
            out["backends"][backend] = {"fill_s": fill_s, "cases": with_index, "without_status_index": without,
                                        "worst_median_ms": worst}
            print(f"{backend}: filled in {fill_s}s; worst median {worst} ms (goal {GOAL_MS:.0f})", flush=True)
    stem = "console_queue.quick" if args.quick else "console_queue"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    lines = [f"# console_queue: the queue list with {n:,} open admissions (+{n // 5:,} resolved)", "",
             f"Server time (the app's Server-Timing), median of {reps} requests per case, interleaved; goal "
             f"≤ {GOAL_MS:.0f} ms. Load average at start {out['load_1min']:.2f} (2 cores).", ""]
    for backend, b in out["backends"].items():
        lines += [f"## {backend} (filled in {b['fill_s']} s)", "",
                  "| case | median ms | max ms | without the status/created index, median ms | ratio |",
                  "|---|---:|---:|---:|---:|"]
        for name, v in b["cases"].items():
            w = b["without_status_index"].get(name)
            ratio = f"{w['median_ms'] / v['median_ms']:.1f}×" if w and v["median_ms"] else "–"
            lines.append(f"| {name} | {v['median_ms']} | {v['max_ms']} | {w['median_ms'] if w else '–'} | {ratio} |")
        lines += ["", f"Worst median: **{b['worst_median_ms']} ms** "
                      f"({'within' if b['worst_median_ms'] <= GOAL_MS else 'OVER'} the goal).", ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
