"""Benchmark: admission import NyA → Ladok end to end, against the three simulators over HTTP.

N applicants are admitted and have accepted in NyA (one admission each, some with a
behörighetsvillkor). A share of them already exist in Ladok; the rest are found in the population
register and established first. Brygga then runs the import as the DAG does: ``fetch`` (one
streamed ``GetAdmissions`` reply into the store), ``place`` (instances, students, establishment,
placement, in 2 processes like the DAG's 2 mapped place tasks; ``--shards``) and
``sync_conditions``. Each simulator runs in its own process so it does not share
the GIL with Brygga; with 2 cores the simulators and Brygga compete for CPU, as they would not
against the real systems.

    python -m bench.admission_import            # N = 100_000 (goal: <= 120 s end to end)
    python -m bench.admission_import --quick    # N = 10_000

Reports wall time per phase, admissions/s, the peak RSS of the largest Brygga process, and checks
that the store holds exactly N placements. Results: ``bench/results/admission_import[.quick].{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench._common import proc_status, reset_peak

RESULTS = Path(__file__).resolve().parent / "results"
GOAL_S = 120.0
SEED = 41
ROUND = "HT2027"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _catalogue(state):
    from simulators.ladok.catalogue import seed_catalogue

    return [t for t in seed_catalogue(state, SEED, 200, 0, ROUND) if not t.installt and t.omgangar]


def _serve_ladok(port: int, n_existing: int) -> None:
    from simulators.ladok.app import create_app
    from simulators.ladok.state import LadokState

    state = LadokState(page_size=200)
    _catalogue(state)
    state.seed_students(n_existing, SEED)
    _serve(create_app(state), port)


def _serve_folk(port: int, people: int) -> None:
    from simulators.folkbokforing.app import create_app
    from simulators.folkbokforing.state import FolkbokforingState

    _serve(create_app(FolkbokforingState(seed=SEED, people=people)), port)


def _serve_nya(port: int, n: int) -> None:
    from decimal import Decimal

    from simulators import datagen
    from simulators.ladok.state import LadokState
    from simulators.nya.app import create_app
    from simulators.nya.state import ENG6, Applicant, NyaState, Offer

    courses = _catalogue(LadokState())  # same codes as the Ladok process (same seed)
    state = NyaState()
    state.put_round(ROUND, "open")
    state.publish_offers(ROUND, "ordinary", [
        Offer(t.uid, "ordinary", t.utbildning.kod, t.kod, t.utbildning.sv, None, Decimal("7.5"), t.start,
              t.slut, None, 100, n) for t in courses])  # NyA's OfferId is the Ladok instance's UID
    applicants = [Applicant(p.personnummer, p.fornamn, p.efternamn, [courses[i % len(courses)].uid], 10.0,
                            fee_liable=i % 20 == 0, conditions=(ENG6,) if i % 10 == 0 else (), auto_accept=True)
                  for i, p in enumerate(datagen.people(n, SEED))]
    state.add_applicants(ROUND, applicants)
    state.run_selection(ROUND)
    _serve(create_app(state), port)


def _serve(app, port: int) -> None:
    """Serve on the simulators' socket setup (TCP_NODELAY), with uvloop + httptools as a production
    ASGI server would, until the parent terminates us."""
    import uvicorn

    from simulators._server import _bind

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", loop="uvloop",
                            http="httptools", proxy_headers=False)
    uvicorn.Server(config).run(sockets=[_bind("127.0.0.1", port)])


def _wait(url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/sim/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"simulator {url} did not start")


def _place_shard(args: tuple) -> tuple[dict, float]:
    """One placement shard in its own process (what one mapped DAG task does)."""
    from adapters.folkbokforing import FolkbokforingAdapter
    from adapters.http import session
    from adapters.ladok import LadokAdapter
    from brygga.connections import PeerConfig
    from brygga.flows import admissions
    from brygga.store import Store

    url, urls, workers, shard, shards = args
    ladok = LadokAdapter(PeerConfig("ladok", urls["ladok"]))
    folk = FolkbokforingAdapter(PeerConfig("folkbokforing", urls["folkbokforing"]))
    ladok.http, folk.http = session(ladok.peer, pool=workers), session(folk.peer, pool=workers)
    c = time.process_time()
    counts = admissions.place(Store(url), ladok, folk, ROUND, workers=workers, shard=shard, shards=shards)
    return counts, time.process_time() - c, _peak_rss_mib()


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mib(field: str) -> float:
    """A /proc/self/status size (VmRSS, VmHWM) in MiB."""
    return proc_status(field) / 2**20


def _place_sharded(url: str, urls: dict, workers: int, shards: int) -> tuple[dict, float, float]:
    with mp.get_context("spawn").Pool(shards) as pool:
        results = pool.map(_place_shard, [(url, urls, workers, i, shards) for i in range(shards)])
    total: dict[str, int] = {}
    for counts, _, _ in results:
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    return total, sum(cpu for _, cpu, _ in results), max(rss for _, _, rss in results)


def run(n: int, existing_share: float, workers: int, store_url: str | None, shards: int = 1) -> dict:
    from adapters.folkbokforing import FolkbokforingAdapter
    from adapters.ladok import LadokAdapter
    from adapters.nya import NyaAdapter
    from brygga.connections import PeerConfig
    from brygga.flows import admissions
    from brygga.store import Store, migrate

    ctx = mp.get_context("spawn")
    ports = {k: _free_port() for k in ("ladok", "nya", "folkbokforing")}
    procs = [ctx.Process(target=_serve_ladok, args=(ports["ladok"], int(n * existing_share)), daemon=True),
             ctx.Process(target=_serve_folk, args=(ports["folkbokforing"], n), daemon=True),
             ctx.Process(target=_serve_nya, args=(ports["nya"], n), daemon=True)]
    for p in procs:
        p.start()
    urls = {k: f"http://127.0.0.1:{v}" for k, v in ports.items()}
    t0 = time.perf_counter()
    for u in urls.values():
        _wait(u)
    setup_s = time.perf_counter() - t0
    tmp = tempfile.TemporaryDirectory()
    try:
        store = Store(store_url or f"sqlite:///{tmp.name}/bench.db")
        if store_url:
            migrate.downgrade(store, "base")
        migrate.upgrade(store)
        ladok = LadokAdapter(PeerConfig("ladok", urls["ladok"]))
        nya = NyaAdapter(PeerConfig("nya", urls["nya"]))
        folk = FolkbokforingAdapter(PeerConfig("folkbokforing", urls["folkbokforing"]))
        for a in (ladok, folk):  # one keep-alive connection per worker
            from adapters.http import session

            a.http = session(a.peer, pool=workers)
        phases, cpu, shard_rss, phase_rss, phase_start = {}, {}, 0.0, {}, {}

        def timed(name, fn, *a, **kw):
            reset_peak()
            phase_start[name] = round(_status_mib("VmRSS"), 1)
            t, c = time.perf_counter(), time.process_time()
            out = fn(*a, **kw)
            phases[name], cpu[name] = time.perf_counter() - t, time.process_time() - c
            phase_rss[name] = round(_status_mib("VmHWM"), 1)  # this process's peak during the phase
            return out

        fetched = timed("fetch", admissions.fetch, store, nya, ROUND)
        if shards == 1:
            placed = timed("place", admissions.place, store, ladok, folk, ROUND, workers=workers)
        else:  # like the DAG's mapped place tasks: one process per shard
            t0 = time.perf_counter()
            placed, cpu["place"], shard_rss = _place_sharded(store.url, urls, workers, shards)
            phases["place"] = time.perf_counter() - t0
            phase_rss["place"] = round(shard_rss, 1)  # the largest shard process
        villkor = timed("conditions", admissions.sync_conditions, store, nya, ladok, ROUND)
        total = sum(phases.values())
        summary = admissions.summary(store, ROUND)
        ladok_count = requests.get(urls["ladok"] + "/sim/feed/stats", timeout=30).json()
        store.dispose()
    finally:
        for p in procs:
            p.terminate()
        tmp.cleanup()
    peak_mib = max(_peak_rss_mib(), shard_rss)  # the largest Brygga process (fetch + villkor, or a shard)
    return {
        "n": n, "existing_share": existing_share, "workers": workers, "shards": shards,
        "store": "postgresql" if store_url else "sqlite",
        "setup_s": round(setup_s, 1), "phases_s": {k: round(v, 2) for k, v in phases.items()},
        "brygga_cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "total_s": round(total, 2), "admissions_per_s": round(n / total), "goal_s": GOAL_S,
        "goal_met": total <= GOAL_S and summary.get("placed") == n,
        "fetched": fetched, "placed": placed, "conditions": villkor, "store_summary": summary,
        "ladok_feed": ladok_count, "peak_rss_mib": round(peak_mib, 1), "phase_peak_rss_mib": phase_rss,
        "phase_start_rss_mib": phase_start,
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.admission_import", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int)
    ap.add_argument("--existing-share", type=float, default=0.3, help="share of applicants already in Ladok")
    ap.add_argument("--workers", type=int, default=8, help="threads per placement process")
    ap.add_argument("--shards", type=int, default=2,
                    help="placement processes, as the DAG's mapped place tasks (its default: 2)")
    ap.add_argument("--store-url", default=os.environ.get("BRYGGA_BENCH_STORE_URL"),
                    help="PostgreSQL URL to bench against (default: a temporary SQLite file)")
    ap.add_argument("--sizes", help="memory mode: comma-separated sizes (e.g. 10000,40000), one run each, "
                                    "peak RSS per phase side by side (admission_import.memory.*)")
    ap.add_argument("--out", help=argparse.SUPPRESS)  # memory mode's child: the result JSON here, nothing else
    args = ap.parse_args(argv)
    if args.out:
        res = run(args.n or 10_000, args.existing_share, args.workers, args.store_url, args.shards)
        Path(args.out).write_text(json.dumps(res))
        return 0
    if args.sizes:
        return memory(sorted(int(x) for x in args.sizes.split(",")), args)
    n = args.n or (10_000 if args.quick else 100_000)
    res = run(n, args.existing_share, args.workers, args.store_url, args.shards)
    name = ("admission_import" + (".quick" if args.quick else "") + (f".shards{args.shards}" if args.shards != 2 else "")
            + (".postgresql" if args.store_url else ""))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    md = [f"# Admission import benchmark ({res['when']})", "",
          f"{res['n']} admissions ({int(res['existing_share'] * 100)} % of the students already in Ladok, the rest "
          f"established from the population register), {res['shards']} placement process(es) x {res['workers']} threads, "
          f"{res['store']} store, "
          f"Python {res['python']}, {res['cpus']} CPUs, simulators in separate processes.", "",
          "| phase | seconds | Brygga CPU seconds |", "|---|---|---|"]
    md += [f"| {k} | {v} | {res['brygga_cpu_s'][k]} |" for k, v in res["phases_s"].items()]
    md += [f"| **total** | **{res['total_s']}** | {round(sum(res['brygga_cpu_s'].values()), 1)} |", "",
           f"* {res['admissions_per_s']} admissions/s end to end; goal ≤ {GOAL_S:.0f} s: "
           f"{'met' if res['goal_met'] else 'NOT met'}",
           f"* placed {res['placed'].get('placed')}, established {res['placed'].get('established')}, "
           f"unhandled {res['placed'].get('unhandled')}; store: {res['store_summary']}",
           f"* peak RSS of the largest Brygga process: {res['peak_rss_mib']} MiB", ""]
    (RESULTS / f"{name}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0 if res["store_summary"].get("placed") == n else 1


def memory(sizes: list[int], args: argparse.Namespace) -> int:
    """Peak RSS per phase at several sizes, in one invocation, each size in a fresh process (so no
    size inherits another's high-water mark): flat means no growth with N."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            out = Path(tmp) / f"{n}.json"
            cmd = [sys.executable, "-m", "bench.admission_import", "-n", str(n), "--out", str(out),
                   "--existing-share", str(args.existing_share), "--workers", str(args.workers),
                   "--shards", str(args.shards)] + (["--store-url", args.store_url] if args.store_url else [])
            subprocess.run(cmd, check=True, cwd=Path(__file__).resolve().parent.parent)
            runs.append(json.loads(out.read_text()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "admission_import.memory.json").write_text(json.dumps(runs, indent=2, ensure_ascii=False) + "\n")
    phases = list(runs[0]["phase_peak_rss_mib"])
    md = [f"# Admission import: peak RSS per phase at {', '.join(f'{n:,}' for n in sizes)} admissions "
          f"({runs[-1]['when']})", "",
          f"One invocation of `python -m bench.admission_import --sizes {args.sizes}`; {args.shards} placement "
          f"process(es), {runs[0]['store']} store. fetch and conditions: the main process's RSS high-water mark "
          "during the phase (reset before it); place: the largest shard process's peak.", "",
          "| admissions | " + " | ".join(f"{p} MiB" for p in phases) + " | total s |",
          "|---:|" + "---:|" * (len(phases) + 1)]
    for r in runs:
        start = r["phase_start_rss_mib"]
        md.append(f"| {r['n']:,} | " + " | ".join(
            (f"{start[p]} → {r['phase_peak_rss_mib'][p]}" if p in start else str(r["phase_peak_rss_mib"][p]))
            for p in phases) + f" | {r['total_s']} |")
    lo, hi = runs[0], runs[-1]
    kib = {p: (hi["phase_peak_rss_mib"][p] - lo["phase_peak_rss_mib"][p]) * 1024 / max(hi["n"] - lo["n"], 1)
           for p in phases}
    within = {p: ((hi["phase_peak_rss_mib"][p] - hi["phase_start_rss_mib"][p])
                  - (lo["phase_peak_rss_mib"][p] - lo["phase_start_rss_mib"][p])) * 1024 / max(hi["n"] - lo["n"], 1)
              for p in phases if p in lo["phase_start_rss_mib"]}
    md += ["", "Growth of the peak from the smallest to the largest size, KiB per admission: "
           + ", ".join(f"{p} {kib[p]:.3f}" for p in phases) + "; of the rise within the phase (peak − start): "
           + ", ".join(f"{p} {within[p]:.3f}" for p in within) + ".", ""]
    (RESULTS / "admission_import.memory.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0 if all(r["store_summary"].get("placed") == r["n"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
