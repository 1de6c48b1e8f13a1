"""Benchmark: the offer export (utbud, ``brygga.flows.offers``) end to end against the simulators.

1. A Ladok simulator with N course instances (utbildningstillfällen) of round HT2027, every one
   advertised and not cancelled, runs in its **own process** (so it does not share the GIL with
   the flow), and so does a NyA simulator with the round open. Both over real loopback HTTP.
2. The flow runs as the DAG runs it: ``start`` -> ``collect`` (search + one GET per instance,
   mapped, validated against the NyA XSD, diff stored) -> ``enqueue`` (outbox) -> ``send``
   (PublishOffer batches) -> ``finish``, on a fresh SQLite store in a temp dir (and on PostgreSQL
   too when ``BRYGGA_TEST_PG_URL`` is set). Then a **re-run** of the same publication (nothing
   changed: collect + diff only, nothing sent) is timed as well.
3. Each repetition uses a fresh store and a fresh NyA; the figures are medians over ``--reps``.
   After every repetition NyA must hold exactly N active offers (read back through the NyA
   simulator's control API) and the publication must be ``done`` with N items ``sent``.
4. Memory: ``ru_maxrss`` of the flow process after the timed runs (simulators excluded), and one
   extra untimed run under ``tracemalloc`` giving the Python-heap peak per phase.

    python -m bench.offer_export              # N = 10 000, 3 repetitions
    python -m bench.offer_export --quick      # N = 2 000, 3 repetitions
    python -m bench.offer_export --profile    # + cProfile of one run (top functions per phase)
    python -m bench.offer_export --ladok-latency-ms 20   # every Ladok response 20 ms late (WAN to a real Ladok)

Results: ``bench/results/offer_export.json`` and ``.md`` (``offer_export.quick.*`` in quick mode).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROUND = "HT2027"
PHASES = ("start", "collect", "enqueue", "send", "finish")


# ----------------------------------------------------------------------------- simulators (child processes)

def _ladok_catalogue(state, n: int, seed: int) -> int:
    """N course instances of ROUND, each its own utbildning (unique codes), all offerable."""
    import random

    from simulators.ladok.catalogue import AMNEN, MODULER, NIVAER, term_start

    rng = random.Random(seed)
    start, end = term_start(ROUND)
    mid = start + dt.timedelta(weeks=9)
    for i in range(n):
        (sv, en), (nsv, nen) = rng.choice(AMNEN), rng.choice(NIVAER)
        hp = rng.choice(["7.5", "7.5", "15", "30"])
        u = state.add_utbildning(f"B{i:05d}", f"{sv}, {nsv}", f"{en}, {nen}", hp, "kurs", MODULER[hp])
        first, last = [(start, mid - dt.timedelta(days=3)), (mid, end), (start, end)][rng.randrange(3)]
        state.add_tillfalle(u, str(100000 + i), first, last, takt=rng.choice([100, 100, 50]),
                            studielokalisering_id=rng.choice([1, 1, 2, 3, 9]), omgangar=[ROUND])
    return n


def _with_latency(app, seconds: float):
    """The app behind a fixed per-request delay (asyncio.sleep: concurrent requests overlap), as a
    stand-in for the network and server time between Brygga and a real Ladok."""
    import asyncio

    async def delayed(scope, receive, send):
        if scope["type"] == "http":
            await asyncio.sleep(seconds)
        await app(scope, receive, send)

    return delayed


def _serve(kind: str, n: int, conn, latency_ms: float = 0.0) -> None:
    """Child process: build the simulator's state, serve it, send back the URL, wait for 'stop'."""
    from simulators._server import serve_in_thread

    if kind == "ladok":
        from simulators.ladok.app import create_app
        from simulators.ladok.state import LadokState

        state = LadokState()
        _ladok_catalogue(state, n, seed=7)
    else:
        from simulators.nya.app import create_app
        from simulators.nya.state import NyaState, seed

        state = seed(NyaState(), 1)
    app = create_app(state)
    if latency_ms:
        app = _with_latency(app, latency_ms / 1000)
    with serve_in_thread(app) as srv:
        conn.send(srv.url)
        conn.recv()  # any message = stop


class SimProcess:
    def __init__(self, kind: str, n: int = 0, latency_ms: float = 0.0):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(kind, n, child, latency_ms), daemon=True, name=f"sim-{kind}")
        self.proc.start()
        if not self.conn.poll(300):
            raise RuntimeError(f"{kind} simulator did not start")
        self.url = self.conn.recv()

    def stop(self) -> None:
        try:
            self.conn.send("stop")
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(15)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _nya_active_offers(nya_url: str) -> int:
    import requests

    r = requests.get(f"{nya_url}/sim/rounds/{ROUND}/offers", params={"kind": "ordinary"}, timeout=120)
    r.raise_for_status()
    return sum(1 for o in r.json() if o.get("status", "active") == "active")


# ----------------------------------------------------------------------------- one run

def _stores(backend: str, tmp: str):
    """A fresh, migrated store on the backend, and a cleanup function."""
    from brygga.store import Store, migrate

    if backend == "sqlite":
        store = Store(f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:8]}.db")
        migrate.upgrade(store)
        return store, store.dispose
    pg = os.environ["BRYGGA_TEST_PG_URL"]
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = Store(pg)
    with admin.engine.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pg else "?"
    store = Store(f"{pg}{sep}options=-csearch_path%3D{schema}")
    migrate.upgrade(store)

    def cleanup():
        store.dispose()
        with admin.engine.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()

    return store, cleanup


def run_once(store, ladok_url: str, nya_url: str, n: int, *, memory: bool = False, profile: bool = False) -> dict:
    """The five steps and a no-change re-run; wall seconds (and heap peaks / profiles) per phase."""
    from adapters.ladok import LadokAdapter
    from adapters.nya import NyaAdapter
    from brygga.connections import PeerConfig
    from brygga.flows import offers

    ladok = LadokAdapter(PeerConfig("ladok", ladok_url))
    nya = NyaAdapter(PeerConfig("nya", nya_url))
    out: dict = {"seconds": {}, "heap_peak_mib": {}, "profile": {}}
    state: dict = {}

    steps = {
        "start": lambda: state.setdefault("pid", offers.start(
            store, round_code=ROUND, kind="ordinary", codes=[], dry_run=False, triggered_by="bench")),
        "collect": lambda: offers.collect(store, ladok, state["pid"]),
        "enqueue": lambda: offers.enqueue(store, state["pid"]),
        "send": lambda: offers.send(store, nya, ROUND, "ordinary"),
        "finish": lambda: offers.finish(store, state["pid"]),
    }
    results = {}
    for phase in PHASES:
        results[phase] = _timed(out, phase, steps[phase], memory, profile)
    summary = results["finish"]
    assert results["collect"].get("new") == n, results["collect"]
    assert results["enqueue"] == n, results["enqueue"]
    assert results["send"] == {"sent": n, "rejected": 0}, results["send"]
    assert summary["status"] == "done" and summary["counts"].get("status_sent") == n, summary["counts"]
    out["seconds"]["total"] = round(sum(out["seconds"][p] for p in PHASES), 3)

    # a re-run with nothing changed: the whole publication, nothing may be sent
    def rerun():
        pid = offers.start(store, round_code=ROUND, kind="ordinary", codes=[], dry_run=False, triggered_by="bench")
        offers.collect(store, ladok, pid)
        queued = offers.enqueue(store, pid)
        sent = offers.send(store, nya, ROUND, "ordinary")
        return queued, sent, offers.finish(store, pid)

    queued, sent, again = _timed(out, "rerun", rerun, memory, profile)
    assert queued == 0 and sent == {"sent": 0, "rejected": 0}, (queued, sent)
    assert again["counts"] == {"unchanged": n, "status_done": n}, again["counts"]
    active = _nya_active_offers(nya_url)
    assert active == n, f"NyA holds {active} active offers, expected {n}"
    out["nya_active_offers"] = active
    return out


def _timed(out: dict, phase: str, fn, memory: bool, profile: bool):
    if memory:
        tracemalloc.start()
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    result = fn()
    out["seconds"][phase] = round(time.perf_counter() - t0, 3)
    if prof is not None:
        prof.disable()
        out["profile"][phase] = _top(prof)
    if memory:
        out["heap_peak_mib"][phase] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    return result


def _top(prof, k: int = 12) -> list[str]:
    import io
    import pstats

    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(k)
    return [line for line in buf.getvalue().splitlines() if line.strip()][-k:]


# ----------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.offer_export")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top functions per phase (one run)")
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL even when BRYGGA_TEST_PG_URL is set")
    ap.add_argument("--ladok-latency-ms", type=float, default=0.0,
                    help="delay every Ladok response by this much (a WAN round trip to a real Ladok)")
    ap.add_argument("--out", help="results stem (default offer_export[.quick])")
    args = ap.parse_args(argv)
    n = args.n or (2_000 if args.quick else 10_000)
    backends = ["sqlite"] + (["postgresql"] if os.environ.get("BRYGGA_TEST_PG_URL") and not args.no_pg else [])

    out: dict = {"n_instances": n, "reps": args.reps, "round": ROUND, "ladok_latency_ms": args.ladok_latency_ms,
                 "backends": {}}
    t0 = time.perf_counter()
    ladok = SimProcess("ladok", n, args.ladok_latency_ms)
    out["ladok_setup_s"] = round(time.perf_counter() - t0, 2)
    print(f"Ladok simulator with {n:,} instances up in {out['ladok_setup_s']}s at {ladok.url}", flush=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend in backends:
                runs = []
                for rep in range(args.reps):
                    store, cleanup = _stores(backend, tmp)
                    try:
                        with SimProcess("nya") as nya:
                            r = run_once(store, ladok.url, nya.url, n)
                    finally:
                        cleanup()
                    runs.append(r)
                    print(f"{backend:10s} rep {rep + 1}: " + ", ".join(
                        f"{p} {r['seconds'][p]:.2f}s" for p in (*PHASES, "total", "rerun")), flush=True)
                out["backends"][backend] = _summarise(runs, n)
            out["client_ru_maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            if not args.no_memory or args.profile:
                store, cleanup = _stores("sqlite", tmp)
                try:
                    with SimProcess("nya") as nya:
                        r = run_once(store, ladok.url, nya.url, n, memory=not args.no_memory, profile=args.profile)
                finally:
                    cleanup()
                if not args.no_memory:
                    out["heap_peak_mib"] = r["heap_peak_mib"]
                    print("tracemalloc peak MiB per phase: " + ", ".join(
                        f"{k} {v}" for k, v in r["heap_peak_mib"].items()), flush=True)
                if args.profile:
                    for phase, lines in r["profile"].items():
                        print(f"--- profile: {phase}")
                        print("\n".join(lines))
    finally:
        ladok.stop()

    out["machine"] = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": _cpus(),
                      "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]}
    out["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out["command"] = "python -m bench.offer_export " + " ".join(argv if argv is not None else sys.argv[1:])
    RESULTS.mkdir(exist_ok=True)
    stem = args.out or ("offer_export.quick" if args.quick else "offer_export")
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(_markdown(out))
    print(f"results: {RESULTS / stem}.md")
    return 0


def _summarise(runs: list[dict], n: int) -> dict:
    keys = (*PHASES, "total", "rerun")
    med = {k: round(statistics.median(r["seconds"][k] for r in runs), 3) for k in keys}
    return {
        "median_s": med,
        "min_s": {k: round(min(r["seconds"][k] for r in runs), 3) for k in keys},
        "max_s": {k: round(max(r["seconds"][k] for r in runs), 3) for k in keys},
        "instances_per_s": {k: (round(n / v) if v > 0 else None) for k, v in med.items()},
        "runs": [r["seconds"] for r in runs],
        "nya_active_offers": [r["nya_active_offers"] for r in runs],
    }


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _markdown(o: dict) -> str:
    n = o["n_instances"]
    latency = (f" (every Ladok response delayed by {o['ladok_latency_ms']:g} ms, as a stand-in for the round trip "
               "to a real Ladok)") if o.get("ladok_latency_ms") else ""
    lines = [
        f"# Offer export benchmark ({o['when']})", "",
        f"`{o['command'].strip()}`: {n:,} course instances of {o['round']} in the Ladok simulator, exported "
        f"end to end (start, collect = search + one GET per instance + mapping + XSD validation + diff, enqueue "
        f"= outbox, send = PublishOffer batches, finish) to the NyA simulator. Simulators in their own processes, "
        f"over loopback HTTP{latency}; fresh store and NyA per repetition; medians of {o['reps']} repetitions; "
        f"{o['machine']['cpus']} CPU(s) shared with other work (load average at the end "
        f"{o['machine']['load_avg_at_end']}), Python {o['machine']['python']}.", "",
    ]
    for backend, b in o["backends"].items():
        lines += [f"## {backend}", "", "| phase | median s | min s | max s | instances/s (median) |",
                  "|---|---:|---:|---:|---:|"]
        for k in (*PHASES, "total", "rerun"):
            label = {"total": "**total (first publication)**",
                     "rerun": "re-run, nothing changed (whole publication)"}.get(k, k)
            ips = b["instances_per_s"][k] if k != "start" else None  # one row, not per instance
            lines.append(f"| {label} | {b['median_s'][k]} | {b['min_s'][k]} | {b['max_s'][k]} | "
                         f"{f'{ips:,}' if ips else '-'} |")
        lines += ["", f"NyA held {', '.join(str(x) for x in b['nya_active_offers'])} active offers after the "
                      f"repetitions (expected {n:,} each).", ""]
    lines += [f"Memory of the flow process: ru_maxrss {o['client_ru_maxrss_mib']} MiB (peak RSS over all runs, "
              f"simulators excluded)."]
    if o.get("heap_peak_mib"):
        lines += ["", "Python heap peak per phase (tracemalloc, one extra untimed SQLite run): " + ", ".join(
            f"{k} {v} MiB" for k, v in o["heap_peak_mib"].items()) + "."]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
