"""Benchmark: the merit sync (``brygga.flows.merits``) against the Ladok and NyA simulators.

1. **Throughput** (feed events/s through ``sync_once``; goal ≥ 10k/s). N feed events (a third
   registrering, a third resultat, a third non-merit events, about real students so enrichment
   works; half of the students are NyA applicants) are published in the Ladok simulator, which
   then runs in its **own process** (forked: its CPU work does not share Brygga's GIL, as with the
   real, remote Ladok). ``sync_once`` reads them, filters, enriches, validates against the NyA XSD
   and commits them (outbox + inbox + checkpoint per batch) into a SQLite store:

   * ``http cold``: over loopback HTTP, every REST lookup included (a fresh worker);
   * ``http``: over HTTP with the enrichment caches warm (what a long-running worker has),
     pages read ahead in a thread (``read_ahead_pages``, default 4), and ``http no read-ahead``;
   * ``processing``: the same pages already in memory (bytes fetched once, parsed by
     ``ladok.events.v1`` on every run): what the flow itself achieves, without the network.

   Each warm mode runs ``--reps`` times on a fresh store; the median is reported (and all runs).
2. **Latency event → NyA at steady state** (goal ≤ 60 s). For ``--latency-seconds`` a writer puts
   ``--rate`` registreringar/resultat per second of NyA applicants into the Ladok simulator
   through its ``/sim`` API (plus background events of other kinds), while a loop does what the
   DAG does on its schedule (``--interval``, default 30 s = ``brygga_merit_sync``'s schedule,
   ``max_active_runs=1``): every run gets fresh adapters and caches, runs ``sync_once`` then
   ``send_pending``. Latency = NyA's ``Received`` of the merit (``GetApplicantMerits``, matched
   on SourceReference) − the moment the write was sent to Ladok. Airflow's own task start-up is
   not in this loop (see docs/flows/merits.md for that part).

    python -m bench.merit_sync            # N = 100_000, 3 reps, 300 s of latency
    python -m bench.merit_sync --quick    # N = 20_000, 3 reps, 95 s of latency

Results: ``bench/results/merit_sync.json`` and ``.md`` (``merit_sync.quick.*`` in quick mode).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from adapters.ladok import LadokAdapter
from adapters.nya import NyaAdapter
from brygga.connections import PeerConfig
from brygga.flows import merits
from brygga.records import FeedPage
from brygga.store import Store, migrate
from simulators import datagen
from simulators._server import serve_in_process, serve_in_thread

GOAL = 10_000.0  # feed events/s processed
LATENCY_GOAL = 60.0  # seconds, event in Ladok -> merit in NyA
DAG_INTERVAL = 30.0  # dags/brygga_merit_sync.py: schedule=timedelta(seconds=30)
RESULTS = Path(__file__).resolve().parent / "results"


def _world(students: int, page_size: int):
    from simulators.ladok import events as ev
    from simulators.ladok.app import create_app as ladok_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState, Placering, Registrering, Resultat
    from simulators.nya.app import create_app as nya_app
    from simulators.nya.state import NyaState, seed

    ladok = LadokState(page_size=page_size)
    seed_catalogue(ladok, 3, 12, 3, "HT2027")
    nya = seed(NyaState(), 5, offers=5, applicants=students // 2)
    people = list(datagen.people(students // 2, 5)) + list(datagen.people(students // 2, 99))
    kurser = [t for t in ladok.tillfallen.values() if t.utbildning.typ == "kurs" and t.utbildning.moduler
              and not t.installt]
    antagningar = []
    for i, p in enumerate(people):
        s = ladok.etablera_student(p.personnummer, p.fornamn, p.efternamn, emit=False)
        a, _ = ladok.placera(Placering(s.uid, kurser[i % len(kurser)].uid, f"NYA-B-{i}"))
        antagningar.append(a)

    def publish(n: int, rng: random.Random) -> None:
        """n events: registrering / resultat / non-merit kinds in turn, about random students."""
        with ladok.lock:
            for i in range(n):
                a = rng.choice(antagningar)
                kind = i % 3
                if kind == 0:
                    e = ev.registrering(a, Registrering(_uid(), 1, a.tillfalle.start))
                elif kind == 1:
                    m = a.tillfalle.utbildning.moduler[0]
                    e = ev.resultat(a, Resultat(_uid(), a, m, "G", 101312, 101314, dt.date(2027, 10, 1)))
                else:
                    e = ev.nuvarande_villkor(a)
                ladok._emit(e)

    return ladok, nya, antagningar, publish, ladok_app, nya_app


def _uid() -> str:
    return str(uuid.uuid4())


class MemoryFeed(LadokAdapter):
    """The Ladok adapter with the feed pages already in memory (bytes as the simulator served
    them): every ``feed_page`` still parses the page with the configured events mapping."""

    def __init__(self, peer: PeerConfig, pages: dict[int, bytes]):
        super().__init__(peer)
        self.pages = pages

    def feed_page(self, number: int | None = None, *, url: str | None = None, first: bool = False) -> FeedPage:
        if url:
            number = int(url.rstrip("/").rsplit("/", 1)[-1])
        if first:
            number = min(self.pages)
        return self.events.read_page(self.pages[number if number is not None else max(self.pages)])


def _fetch_pages(base: str) -> dict[int, bytes]:
    pages, http = {}, requests.Session()
    n = 1
    while True:
        r = http.get(f"{base}/uppfoljning/feed/{n}", timeout=60)
        if r.status_code == 404:
            return pages
        r.raise_for_status()
        pages[n] = r.content
        n += 1


def _template(store_dir: str, nya) -> Path:
    """A migrated store that already knows NyA's applicants (what a running worker's store has: the
    applicant stream is read incrementally, not per run); each run starts from a copy."""
    path = Path(store_dir) / "template.db"
    if not path.exists():
        store = Store(f"sqlite:///{path}")
        migrate.upgrade(store)
        merits.applicants.follow(store, nya)
        store.dispose()
    return path


def _run(store_dir: str, label: str, ladok, nya, n: int, args, **kw) -> dict:
    import shutil

    path = Path(store_dir) / f"{label.replace(' ', '-')}-{_uid()[:8]}.db"
    shutil.copyfile(_template(store_dir, nya), path)
    store = Store(f"sqlite:///{path}")
    t0, c0 = time.perf_counter(), time.process_time()
    summary = merits.sync_once(store, ladok, nya, max_pages=10**6, batch_size=args.batch_size, **kw)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    store.dispose()
    assert summary["events"] >= n and summary["caught_up"], summary
    out = {"seconds": round(secs, 2), "cpu_seconds": round(cpu, 2), "events": summary["events"],
           "events_per_s": round(summary["events"] / secs), "events_per_cpu_s": round(summary["events"] / cpu),
           "merits": summary["merits"], "lookups": summary["lookups"], "pages": summary["pages"]}
    print(f"{label:22s}: {summary['events']} events in {secs:5.2f}s = {out['events_per_s']:>7,} events/s "
          f"(cpu {cpu:.2f}s; {summary['merits']} merits, {summary['pages']} pages, "
          f"{summary['lookups']} lookups)", flush=True)
    return out


def _median_of(runs: list[dict]) -> dict:
    runs = sorted(runs, key=lambda r: r["events_per_s"])
    return {**runs[len(runs) // 2], "runs_events_per_s": [r["events_per_s"] for r in runs]}


def throughput(args, n: int, world, ladok_url: str, nya_url: str, tmp: str) -> dict:
    ladok_state, nya_state, antagningar, *_ = world
    peer = PeerConfig("ladok", ladok_url)
    nya = NyaAdapter(PeerConfig("nya", nya_url))
    out: dict = {}
    http = LadokAdapter(peer)
    out["http_cold"] = _run(tmp, "http cold", http, nya, n, args, read_ahead_pages=args.read_ahead)
    # warm caches, as the cold run left them in a long-running worker
    enricher = merits.Enricher(http)
    enricher.students.update({a.student_uid: ladok_state.students[a.student_uid].personnummer for a in antagningar})
    for uid in {a.tillfalle.uid for a in antagningar}:
        enricher.tillfalle(uid)
    enricher.grades.refresh()
    enricher.requests = 0
    warm = {"enricher": enricher}
    memory = MemoryFeed(peer, _fetch_pages(ladok_url))
    modes = (("http", http, args.read_ahead), ("http no read-ahead", http, 0), ("processing", memory, args.read_ahead))
    runs: dict[str, list[dict]] = {label: [] for label, *_ in modes}
    for _ in range(args.reps):
        for label, adapter, ahead in modes:
            runs[label].append(_run(tmp, label, adapter, nya, n, args, read_ahead_pages=ahead, **warm))
    for label, rs in runs.items():
        out[label.replace(" ", "_").replace("-", "_")] = _median_of(rs)
    return out


# ----------------------------------------------------------------------------- latency

def latency(args, world, ladok_url: str, nya_url: str, tmp: str) -> dict:
    """Steady-state latency with the DAG's schedule; see the module doc."""
    ladok_state, nya_state, antagningar, *_ = world
    store = Store(f"sqlite:///{tmp}/latency.db")
    migrate.upgrade(store)
    # start from the newest page: the backlog of the throughput phase is not steady state
    with store.transaction() as s:
        from brygga.store import ops

        ops.checkpoint_set(s, merits.CHECKPOINT, ladok_state.feed.last, None)
    applicant_pnrs = set(nya_state.list_applicants("HT2027"))
    pool = [a for a in antagningar if ladok_state.students[a.student_uid].personnummer in applicant_pnrs]
    rng = random.Random(11)
    stop = threading.Event()
    cycles: list[dict] = []
    written: list[tuple[float, str, str]] = []  # (time sent, personnummer, SourceReference)
    errors: list[str] = []

    def dag_runs():
        next_start = time.monotonic()
        while not stop.is_set():
            c0 = time.monotonic()
            try:
                ladok, nya = LadokAdapter(PeerConfig("ladok", ladok_url)), NyaAdapter(PeerConfig("nya", nya_url))
                a = merits.sync_once(store, ladok, nya, batch_size=args.batch_size)
                b = merits.send_pending(store, nya, batch=args.batch_size)
                cycles.append({"seconds": time.monotonic() - c0, "events": a["events"], "merits": a["merits"],
                               "sent": b["accepted"]})
            except Exception as e:  # reported, the loop goes on like the scheduler's next run
                errors.append(f"{type(e).__name__}: {e}")
            next_start += args.interval
            stop.wait(max(0.0, next_start - time.monotonic()))

    def writer():
        http = requests.Session()
        registered: set[str] = set()
        period = 1.0 / args.rate
        t_next = time.monotonic()
        while not stop.is_set():
            a = rng.choice(pool)
            pnr = ladok_state.students[a.student_uid].personnummer
            sent = time.time()
            if a.uid not in registered:
                r = http.post(f"{ladok_url}/sim/registrering", json={"tillfallesantagning_uid": a.uid}, timeout=30)
                ref = "registrering"
                registered.add(a.uid)
            else:
                r = http.post(f"{ladok_url}/sim/resultat", json={
                    "tillfallesantagning_uid": a.uid, "modulkod": a.tillfalle.utbildning.moduler[0].kod,
                    "betyg": rng.choice(("G", "VG", "U")), "examinationsdatum": "2027-10-02"}, timeout=30)
                ref = "resultat"
            if r.status_code >= 300:
                errors.append(f"ladok /sim/{ref}: {r.status_code} {r.text[:200]}")
            else:
                written.append((sent, pnr, f"ladok:{ref}:{r.json()['uid']}"))
            if args.background:  # other kinds of events between the merits
                http.post(f"{ladok_url}/sim/feed/generate?n={args.background}&seed={len(written)}", timeout=30)
            t_next += period
            stop.wait(max(0.0, t_next - time.monotonic()))

    threads = [threading.Thread(target=dag_runs, daemon=True), threading.Thread(target=writer, daemon=True)]
    print(f"latency: {args.latency_seconds:.0f} s, runs every {args.interval:.0f} s, {args.rate}/s merits written",
          flush=True)
    for t in threads:
        t.start()
    time.sleep(args.latency_seconds)
    stop.set()
    for t in threads:
        t.join(args.interval + 120)
    # one last run delivers what was written during the last interval (as the next DAG run would)
    ladok, nya = LadokAdapter(PeerConfig("ladok", ladok_url)), NyaAdapter(PeerConfig("nya", nya_url))
    merits.sync_once(store, ladok, nya)
    merits.send_pending(store, nya)
    received: dict[str, float] = {}
    for pnr in {p for _, p, _ in written}:
        for m in nya.applicant_merits(pnr):
            if m.received and m.source_reference:
                received[m.source_reference] = dt.datetime.fromisoformat(m.received.replace("Z", "+00:00")).timestamp()
    lat = sorted(received[ref] - sent for sent, _, ref in written if ref in received)
    missing = sum(1 for _, _, ref in written if ref not in received)
    store.dispose()
    if not lat:
        raise RuntimeError(f"no merit arrived in NyA: {errors[:3]}")
    q = statistics.quantiles(lat, n=100, method="inclusive")
    run_s = [c["seconds"] for c in cycles[1:]] or [c["seconds"] for c in cycles]
    out = {"interval_s": args.interval, "seconds": args.latency_seconds, "rate_per_s": args.rate,
           "background_per_write": args.background, "written": len(written), "arrived": len(lat),
           "missing": missing, "p50_s": round(q[49], 2), "p95_s": round(q[94], 2), "max_s": round(lat[-1], 2),
           "min_s": round(lat[0], 2), "runs": len(cycles), "run_mean_s": round(statistics.mean(run_s), 3),
           "run_max_s": round(max(run_s), 3), "errors": errors[:5]}
    print(f"latency: p50 {out['p50_s']} s, p95 {out['p95_s']} s, max {out['max_s']} s over {len(lat)} merits "
          f"({missing} missing); {len(cycles)} runs, run time mean {out['run_mean_s']} s, max {out['run_max_s']} s",
          flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.merit_sync")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, help="feed events for the throughput phase")
    ap.add_argument("--students", type=int, default=2000)
    ap.add_argument("--page-size", type=int, default=50, help="Ladok's Atom page size (Ladok's own: 50)")
    ap.add_argument("--batch-size", type=int, default=5000, help="events per transaction (the DAG's default)")
    ap.add_argument("--read-ahead", type=int, default=4, help="feed pages fetched ahead in a thread")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--interval", type=float, default=DAG_INTERVAL, help="seconds between runs (DAG schedule)")
    ap.add_argument("--latency-seconds", type=float)
    ap.add_argument("--rate", type=float, default=5.0, help="merits written in Ladok per second")
    ap.add_argument("--background", type=int, default=10, help="other feed events per merit written")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args(argv)
    n = args.n or (20_000 if args.quick else 100_000)
    if args.latency_seconds is None:
        args.latency_seconds = 95.0 if args.quick else 300.0

    world = _world(args.students, args.page_size)
    t0 = time.perf_counter()
    world[3](n if not args.skip_throughput else 0, random.Random(7))
    out: dict = {"n_events": n, "students": args.students, "page_size": args.page_size,
                 "batch_size": args.batch_size, "read_ahead": args.read_ahead, "reps": args.reps,
                 "generate_s": round(time.perf_counter() - t0, 2)}
    ladok_state, nya_state, _, _, ladok_app, nya_app = world
    # The simulators' state (~100k objects) lives in this process only because of the harness: keep
    # the cyclic garbage collector from rescanning it during the runs, as it would not exist in a
    # worker (a few % of the processing time otherwise).
    gc.collect()
    gc.freeze()
    # fork the Ladok simulator before any thread starts; NyA stays in this process (its state is
    # read directly for the set-up; it sees one ListApplicants and the SubmitMerits)
    with tempfile.TemporaryDirectory() as tmp, serve_in_process(ladok_app(ladok_state)) as ls, \
            serve_in_thread(nya_app(nya_state)) as ns:
        if not args.skip_throughput:
            out["throughput"] = throughput(args, n, world, ls.url, ns.url, tmp)
        if not args.skip_latency:
            out["latency"] = latency(args, world, ls.url, ns.url, tmp)

    out["goal_events_per_s"] = GOAL
    out["latency_goal_s"] = LATENCY_GOAL
    ok = []
    if "throughput" in out:
        out["goal_met"] = out["throughput"]["processing"]["events_per_s"] >= GOAL
        out["goal_met_over_http"] = out["throughput"]["http"]["events_per_s"] >= GOAL
        ok.append(out["goal_met"])
    if "latency" in out:
        out["latency_goal_met"] = out["latency"]["max_s"] <= LATENCY_GOAL and not out["latency"]["missing"]
        ok.append(out["latency_goal_met"])
    out["machine"] = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": _cpus(),
                      "loadavg_after": [round(x, 2) for x in _loadavg()]}
    out["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if "throughput" in out or "latency" in out:  # a partial run writes what it measured, never keeps an old .md
        RESULTS.mkdir(exist_ok=True)
        stem = ("merit_sync.quick" if args.quick else "merit_sync") + (
            "" if "throughput" in out and "latency" in out else ".throughput" if "throughput" in out else ".latency")
        (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
        (RESULTS / f"{stem}.md").write_text(_markdown(out))
    if "throughput" in out:
        t = out["throughput"]
        print(f"goal {GOAL:,.0f} events/s: processing {t['processing']['events_per_s']:,}/s "
              f"({'met' if out['goal_met'] else 'NOT met'}), over HTTP {t['http']['events_per_s']:,}/s")
    return 0 if all(ok) else 1


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _loadavg() -> tuple[float, ...]:
    import os

    return os.getloadavg() if hasattr(os, "getloadavg") else ()


def _markdown(o: dict) -> str:
    t, lat = o.get("throughput"), o.get("latency")

    def row(label: str, r: dict) -> str:
        runs = ", ".join(f"{x:,}" for x in r.get("runs_events_per_s", [r["events_per_s"]]))
        return (f"| {label} | {r['seconds']} | **{r['events_per_s']:,}** | {runs} | {r['events_per_cpu_s']:,} | "
                f"{r['merits']:,} | {r['lookups']:,} |\n")

    head = f"# Merit sync benchmark ({o['when']})\n\n"
    return head + (_throughput_md(o, t, row) if t else "") + (_latency_md(o, lat) if lat else "")


def _throughput_md(o: dict, t: dict, row: Any) -> str:
    return (
        f"{o['n_events']:,} Ladok feed events (1/3 registrering, 1/3 resultat, 1/3 non-merit) about "
        f"{o['students']:,} students, half of them NyA applicants; Atom pages of {o['page_size']} entries, "
        f"{o['batch_size']} events per transaction, {o['read_ahead']} pages read ahead; SQLite store; the Ladok "
        f"simulator in its own process over loopback HTTP; {o['machine']['cpus']} CPUs shared with other work "
        f"(load average after the run {o['machine']['loadavg_after']}), Python {o['machine']['python']}. "
        f"Median of {o['reps']} runs (all runs listed).\n\n"
        "| mode | seconds | events/s (median) | runs | events per CPU-second | merits enqueued | REST lookups |\n"
        "|---|---|---|---|---|---|---|\n"
        + row("processing (pages in memory, caches warm)", t["processing"])
        + row("over HTTP, read-ahead, caches warm", t["http"])
        + row("over HTTP, no read-ahead, caches warm", t["http_no_read_ahead"])
        + row("over HTTP, cold (every lookup)", t["http_cold"])
        + f"\nGoal ≥ {o['goal_events_per_s']:,.0f} feed events/s processing: "
        f"**{'met' if o['goal_met'] else 'not met'}**; over HTTP: "
        f"**{'met' if o['goal_met_over_http'] else 'not met'}**.\n\n")


def _latency_md(o: dict, lat: dict) -> str:
    return (
        f"Latency event in Ladok → merit in NyA at steady state: {lat['seconds']:.0f} s with a run every "
        f"{lat['interval_s']:.0f} s (the DAG's schedule; fresh adapters and caches per run, sync then send), "
        f"{lat['rate_per_s']} merits/s written through Ladok's `/sim` API plus {lat['background_per_write']} other "
        f"events per merit: **p50 {lat['p50_s']} s, p95 {lat['p95_s']} s, max {lat['max_s']} s** over "
        f"{lat['arrived']:,} merits ({lat['missing']} missing); {lat['runs']} runs, run time mean "
        f"{lat['run_mean_s']} s (max {lat['run_max_s']} s). Goal ≤ {o['latency_goal_s']:.0f} s: "
        f"**{'met' if o['latency_goal_met'] else 'not met'}** (Airflow's task start-up comes on top; see "
        "docs/flows/merits.md).\n"
    )


if __name__ == "__main__":
    sys.exit(main())
