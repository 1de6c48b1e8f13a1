"""Benchmark: the snapshot of new applicants' earlier merits (``brygga.flows.merits.snapshot``) while
live merits keep flowing — issue 30's "live merits keep p95 ≤ 30 s while a snapshot backlog of
50,000 applicants drains".

The Ladok and NyA simulators each run in their own process. Ladok has ``--students`` students,
each with a course admission, a registration and a module result; NyA's open round has
``--applicants`` applicants (the students among them), all new to Brygga: the snapshot's backlog.
Then, side by side:

* the **snapshot** runs in a process of its own, as the ``brygga_merit_snapshot`` DAG does: runs of
  ``take`` (4 threads, chunks of 100) until no applicant waits;
* the **merit sync** runs as its DAG does on its schedule (``--interval``, default 30 s): the feed
  (``sync_once``) and the sender (``send_pending``: live merits first, the snapshot's merits between
  them for at most 20 s);
* a **writer** puts ``--rate`` new module results per second of applicants into Ladok.

Both use the Ladok Connection with a rate limit (``--ladok-rate`` requests/s, bursts of 20: the
token bucket every process of a worker host shares), so the backlog drains over minutes, as it
would against the real Ladok, and the live path competes with it for the same tokens.

Reported: the snapshot's drain time and applicants/s, Brygga's CPU per applicant (the snapshot
process) beside the Ladok simulator's (its process, over the same time), the merits queued; the
live merits' latency (write in Ladok → NyA's ``Received``: p50, p95, max) while the backlog drains.

    python -m bench.merit_snapshot            # 50,000 applicants, 10,000 of them Ladok students
    python -m bench.merit_snapshot --quick    # 10,000 applicants, 2,000 students, a 10 s interval

Results: ``bench/results/merit_snapshot.json`` and ``.md`` (``merit_snapshot.quick.*``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import multiprocessing
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from adapters.ladok import LadokAdapter
from adapters.nya import NyaAdapter
from brygga.connections import PeerConfig
from brygga.flows import merits
from brygga.store import Store, migrate, ops
from simulators import datagen
from simulators._server import serve_in_process

RESULTS = Path(__file__).resolve().parent / "results"
LATENCY_GOAL = 30.0


def _world(students: int, applicants: int):
    from simulators.ladok.app import create_app as ladok_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState, Placering
    from simulators.nya.app import create_app as nya_app
    from simulators.nya.state import Applicant, NyaState

    ladok = LadokState(page_size=50)
    seed_catalogue(ladok, 3, 12, 3, "HT2027")
    kurser = [t for t in ladok.tillfallen.values() if t.utbildning.typ == "kurs" and t.utbildning.moduler
              and not t.installt]
    people = list(datagen.people(applicants, 31))
    antagningar = []
    for i, p in enumerate(people[:students]):
        s = ladok.etablera_student(p.personnummer, p.fornamn, p.efternamn)
        t = kurser[i % len(kurser)]
        a, _ = ladok.placera(Placering(s.uid, t.uid, f"NYA-S-{i}"))
        ladok.registrera(a.uid, 1, t.start)
        ladok.rapportera_resultat(a.uid, t.utbildning.moduler[0].kod, "G", dt.date(2027, 10, 1))
        antagningar.append(a)
    nya = NyaState()
    nya.put_round("HT2027", "open")
    from simulators.nya.state import sample_offer

    nya.publish_offers("HT2027", "ordinary", [sample_offer(1, seed=3)])
    offer = next(iter(nya.rounds["HT2027"].offers))
    nya.add_applicants("HT2027", [Applicant(p.personnummer, p.fornamn, p.efternamn, [offer], 10.0) for p in people])
    return ladok, nya, antagningar, ladok_app(ladok), nya_app(nya)


def _ladok_peer(url: str, rate: float | None) -> PeerConfig:
    return PeerConfig("ladok", url, extra={"rate_per_second": rate, "rate_burst": 20} if rate else {})


def _snapshot_process(store_url: str, ladok_url: str, nya_url: str, rate: float | None, out: Any) -> None:
    """The snapshot DAG's runs, in a process of its own (its CPU measured alone)."""
    store = Store(store_url)
    ladok, nya = LadokAdapter(_ladok_peer(ladok_url, rate)), NyaAdapter(PeerConfig("nya", nya_url))
    t0, c0 = time.perf_counter(), time.process_time()
    totals: dict[str, int] = {}
    runs = 0
    while True:
        r = merits.snapshot.take(store, ladok, nya, seconds=240)
        runs += 1
        for k in ("applicants", "students", "no_student", "merits", "already", "rejected"):
            totals[k] = totals.get(k, 0) + r[k]
        if r["waiting"] == 0:
            break
    out.put({"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "runs": runs, **totals})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.merit_snapshot")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--applicants", type=int)
    ap.add_argument("--students", type=int)
    ap.add_argument("--interval", type=float, help="seconds between merit sync runs (the DAG: 30)")
    ap.add_argument("--rate", type=float, default=2.0, help="live merits written in Ladok per second")
    ap.add_argument("--ladok-rate", type=float, help="the Ladok Connection's rate limit, requests/s (0: none)")
    args = ap.parse_args(argv)
    applicants = args.applicants or (10_000 if args.quick else 50_000)
    students = args.students or (2_000 if args.quick else 10_000)
    interval = args.interval or (10.0 if args.quick else 30.0)
    ladok_rate = args.ladok_rate if args.ladok_rate is not None else (150.0 if args.quick else 250.0)

    t0 = time.perf_counter()
    ladok_state, nya_state, antagningar, ladok_app, nya_app = _world(students, applicants)
    setup_s = time.perf_counter() - t0
    gc.collect()
    gc.freeze()
    out: dict[str, Any] = {"applicants": applicants, "students": students, "interval_s": interval,
                           "rate_per_s": args.rate, "ladok_rate": ladok_rate, "setup_s": round(setup_s, 1)}
    with tempfile.TemporaryDirectory() as tmp, serve_in_process(ladok_app) as ls, serve_in_process(nya_app) as ns:
        store_url = f"sqlite:///{tmp}/store.db"
        store = Store(store_url)
        migrate.upgrade(store)
        with store.transaction() as s:  # the live path starts at the feed's head (the backlog is the snapshot's)
            ops.checkpoint_set(s, merits.CHECKPOINT, ladok_state.feed.last, None)
        nya = NyaAdapter(PeerConfig("nya", ns.url))
        follow_t0 = time.perf_counter()
        followed = merits.applicants.follow(store, nya)
        out["applicant_stream_s"] = round(time.perf_counter() - follow_t0, 2)
        assert followed["new_applicants"] == applicants, followed
        ladok_proc = psutil.Process(ls.process.pid)
        ladok_cpu0 = sum(ladok_proc.cpu_times()[:2])

        result: Any = multiprocessing.get_context("fork").Queue()
        snap = multiprocessing.get_context("fork").Process(target=_snapshot_process,
                                                           args=(store_url, ls.url, ns.url, ladok_rate, result),
                                                           daemon=True)
        snap.start()
        stop = threading.Event()
        written: list[tuple[float, str, str]] = []
        cycles: list[float] = []
        errors: list[str] = []
        rng = random.Random(5)

        def dag_runs() -> None:
            next_start = time.monotonic()
            while not stop.is_set():
                c0 = time.monotonic()
                try:
                    ladok, nya_ = LadokAdapter(_ladok_peer(ls.url, ladok_rate)), NyaAdapter(PeerConfig("nya", ns.url))
                    merits.sync_once(store, ladok, nya_)
                    merits.send_pending(store, nya_)
                    cycles.append(time.monotonic() - c0)
                except Exception as e:  # noqa: BLE001 - reported; the next run goes on like the scheduler's
                    errors.append(f"{type(e).__name__}: {e}")
                next_start += interval
                stop.wait(max(0.0, next_start - time.monotonic()))

        def writer() -> None:
            http = requests.Session()
            t_next = time.monotonic()
            while not stop.is_set():
                a = rng.choice(antagningar)
                sent = time.time()
                m = a.tillfalle.utbildning.moduler[-1]
                r = http.post(f"{ls.url}/sim/resultat", json={"tillfallesantagning_uid": a.uid, "modulkod": m.kod,
                                                               "betyg": rng.choice(("G", "VG")),
                                                               "examinationsdatum": "2027-12-01"}, timeout=30)
                if r.status_code < 300:
                    written.append((sent, ladok_state.students[a.student_uid].personnummer,
                                    f"ladok:resultat:{r.json()['uid']}"))
                else:
                    errors.append(f"writer: {r.status_code} {r.text[:100]}")
                t_next += 1.0 / args.rate
                stop.wait(max(0.0, t_next - time.monotonic()))

        threads = [threading.Thread(target=dag_runs, daemon=True), threading.Thread(target=writer, daemon=True)]
        for t in threads:
            t.start()
        snap.join()
        drained = result.get(timeout=60)
        ladok_cpu = sum(ladok_proc.cpu_times()[:2]) - ladok_cpu0
        # let the sends finish the snapshot's merits, with live ones still flowing
        while True:
            with store.transaction() as s:
                waiting = views_waiting(s)
            if not waiting or stop.wait(2):
                break
        stop.set()
        for t in threads:
            t.join(interval + 120)
        ladok, nya = LadokAdapter(PeerConfig("ladok", ls.url)), NyaAdapter(PeerConfig("nya", ns.url))
        merits.sync_once(store, ladok, nya)
        merits.send_pending(store, nya, snapshot_seconds=600)
        received: dict[str, float] = {}
        for pnr in {p for _, p, _ in written}:
            for m in nya.applicant_merits(pnr):
                if m.received:
                    received[m.merit_id] = dt.datetime.fromisoformat(m.received.replace("Z", "+00:00")).timestamp()
        lat = sorted(received[ref] - sent for sent, _, ref in written if ref in received)
        held = sum(len(nya.applicant_merits(a_pnr)) for a_pnr in
                   {ladok_state.students[a.student_uid].personnummer for a in antagningar[:200]})
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else [lat[0]] * 99 if lat else None
        out["snapshot"] = {
            "seconds": round(drained["seconds"], 1), "runs": drained["runs"],
            "applicants": drained["applicants"], "students": drained["students"], "merits": drained["merits"],
            "already": drained["already"], "rejected": drained["rejected"],
            "applicants_per_s": round(drained["applicants"] / drained["seconds"], 1),
            "brygga_cpu_s": round(drained["cpu_seconds"], 2), "ladok_sim_cpu_s": round(ladok_cpu, 2),
            "brygga_cpu_ms_per_applicant": round(1000 * drained["cpu_seconds"] / drained["applicants"], 3),
            "ladok_sim_cpu_ms_per_applicant": round(1000 * ladok_cpu / drained["applicants"], 3),
            "brygga_cpu_ms_per_student": round(1000 * drained["cpu_seconds"] / max(drained["students"], 1), 2),
            "ladok_sim_cpu_ms_per_student": round(1000 * ladok_cpu / max(drained["students"], 1), 2),
        }
        out["live"] = {"written": len(written), "arrived": len(lat), "missing": len(written) - len(lat),
                       "p50_s": round(q[49], 2) if q else None, "p95_s": round(q[94], 2) if q else None,
                       "max_s": round(lat[-1], 2) if lat else None, "runs": len(cycles),
                       "run_mean_s": round(statistics.mean(cycles), 2) if cycles else None,
                       "run_max_s": round(max(cycles), 2) if cycles else None, "errors": errors[:5]}
        out["sample_held"] = held
        store.dispose()
    out["latency_goal_s"] = LATENCY_GOAL
    out["goal_met"] = bool(out["live"]["p95_s"] is not None and out["live"]["p95_s"] <= LATENCY_GOAL
                           and not out["live"]["missing"])
    out["machine"] = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": psutil.cpu_count(),
                      "loadavg_after": [round(x, 2) for x in psutil.getloadavg()]}
    out["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    stem = "merit_snapshot.quick" if args.quick else "merit_snapshot"
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(_markdown(out, stem))
    print(_markdown(out, stem))
    return 0 if out["goal_met"] else 1


def views_waiting(s: Any) -> int:
    """Snapshot merits still to be sent."""
    from sqlalchemy import func, select

    from brygga.store.models import OutboxMessage

    return int(s.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == merits.SNAPSHOT_KIND, OutboxMessage.status.in_(("pending", "failed")))) or 0)


def _markdown(o: dict[str, Any], stem: str) -> str:
    s, live = o["snapshot"], o["live"]
    return (
        f"# Merit snapshot benchmark ({o['when']})\n\n"
        f"`python -m bench.{stem.replace('.quick', '')}{' --quick' if 'quick' in stem else ''}`: "
        f"{o['applicants']:,} new applicants in NyA's open round, {o['students']:,} of them Ladok students (each with "
        f"a course admission, a registration and a module result); the simulators each in their own process, the "
        f"snapshot in a process of its own, the merit sync every {o['interval_s']:.0f} s, {o['rate_per_s']} live "
        f"results written in Ladok per second; the Ladok Connection limited to {o['ladok_rate']:g} requests/s "
        f"(bursts of 20) for both; SQLite store; {o['machine']['cpus']} CPUs shared.\n\n"
        f"| snapshot | value |\n|---|---:|\n"
        f"| applicant stream read into the store | {o['applicant_stream_s']} s |\n"
        f"| drained in | {s['seconds']} s ({s['runs']} run(s) of `take`) |\n"
        f"| applicants/s | {s['applicants_per_s']:,} |\n"
        f"| students read / merits queued | {s['students']:,} / {s['merits']:,} |\n"
        f"| Brygga CPU per applicant (per student) | {s['brygga_cpu_ms_per_applicant']} ms "
        f"({s['brygga_cpu_ms_per_student']} ms) |\n"
        f"| Ladok simulator CPU per applicant (per student) | {s['ladok_sim_cpu_ms_per_applicant']} ms "
        f"({s['ladok_sim_cpu_ms_per_student']} ms) |\n\n"
        f"Live merits while it drained: {live['arrived']:,} of {live['written']:,} arrived; latency write in Ladok "
        f"→ NyA p50 {live['p50_s']} s, **p95 {live['p95_s']} s**, max {live['max_s']} s (goal p95 ≤ "
        f"{o['latency_goal_s']:.0f} s: **{'met' if o['goal_met'] else 'not met'}**); {live['runs']} sync runs, "
        f"mean {live['run_mean_s']} s, max {live['run_max_s']} s.\n")


if __name__ == "__main__":
    raise SystemExit(main())
