"""Benchmark: the schedule export (``brygga.flows.schedule``) against the simulators over HTTP.

A Ladok simulator with N course instances of HT2027 and about 30 participants each (students,
every tenth without an e-mail address, one in a hundred protected), and the scheduling-system
simulator (TimeEdit-style REST), each in its **own process**. On a fresh SQLite store:

1. **full export** (cold: no e-mail cached): term search, one GET per instance, participants,
   e-mail lookups, build + diff + outbox, and beside it, in a process of its own as the DAG's
   ``send_beside`` task, the sends of each committed chunk (207 per object); then the send after
   the plan (what was left);
2. **re-run**, nothing changed: everything read again, nothing sent;
3. **1 % delta**: återbud for one admission in 1 % of the instances (Ladok control API), then
   follow the feed + delta plan + send, as the 5-minute run does;
4. CPU seconds of Brygga's process and of each simulator process over the whole run, per object.

Memory: ``ru_maxrss`` of the flow process. ``--sizes`` runs each size in a fresh process, so the
peaks compare (flat in N or not).

    python -m bench.schedule_export                     # N = 10 000 instances (~300 000 memberships)
    python -m bench.schedule_export --quick             # N = 1 000
    python -m bench.schedule_export --sizes 5000,10000  # memory per size, one process each
    python -m bench.schedule_export --profile 2000      # where a full export's CPU goes (cProfile)

Results: ``bench/results/schedule_export[.quick|.memory].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PER_INSTANCE = 30


def _ladok_state(n: int, seed: int = 7):
    from simulators.ladok.catalogue import AMNEN, MODULER, term_start
    from simulators.ladok.state import LadokState

    rng = random.Random(seed)
    state = LadokState(page_size=200)
    start, end = term_start("HT2027")
    tillfallen = []
    for i in range(n):
        sv, en = rng.choice(AMNEN)
        u = state.add_utbildning(f"S{i:05d}", sv, en, "7.5", "kurs", MODULER["7.5"])
        tillfallen.append(state.add_tillfalle(u, str(100000 + i), start, end, omgangar=["HT2027"]))
    students = state.seed_students(max(n * 3, 100), seed)  # ~10 instances per student
    for s in students[::100]:
        s.skyddad, s.adress = True, None
    state.seed_deltagande(students, tillfallen, PER_INSTANCE, seed)
    return state


def _serve(kind: str, n: int, conn) -> None:
    from simulators._server import serve_in_thread

    if kind == "ladok":
        from simulators.ladok.app import create_app
        app = create_app(_ladok_state(n))
    else:
        from simulators.schema.app import create_app
        app = create_app()
    with serve_in_thread(app) as srv:
        conn.send((srv.url, os.getpid()))
        conn.recv()


class Sim:
    def __init__(self, kind: str, n: int = 0):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(kind, n, child), daemon=True)
        self.proc.start()
        if not self.conn.poll(900):
            raise RuntimeError(f"{kind} simulator did not start")
        self.url, self.pid = self.conn.recv()

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(15)
        if self.proc.is_alive():
            self.proc.terminate()


def _timeedit(url: str):
    """The TimeEdit gateway to the simulator, with its API key and organisations."""
    from adapters.schema import ScheduleAdapter
    from brygga.config import SIMULATOR_EXTRA, SIMULATOR_SECRETS
    from brygga.connections import PeerConfig

    return ScheduleAdapter(PeerConfig("schema", url, password=SIMULATOR_SECRETS["schema"],
                                      extra={"format": "timeedit", **SIMULATOR_EXTRA["schema"]}))


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _beside(store_url: str, schema_url: str, run_id: str, conn) -> None:
    """The DAG's send_beside task, in a process of its own: sends each chunk the plan commits."""
    from brygga.flows.schedule import sending
    from brygga.store import Store

    store, schedule = Store(store_url), _timeedit(schema_url)
    cpu0 = _self_cpu()
    got = sending.send_beside(store, schedule, run_id=run_id, poll=0.2)
    conn.send((got, _self_cpu() - cpu0))


def run(n: int) -> dict:
    import requests

    from adapters.ladok import LadokAdapter
    from brygga.connections import PeerConfig
    from brygga.flows.schedule import following, planning, reading, sending
    from brygga.store import Store, migrate

    ladok_sim, schema_sim = Sim("ladok", n), Sim("schema")
    out: dict = {"instances": n}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{tmp}/bench.db")
            migrate.upgrade(store)
            ladok = LadokAdapter(PeerConfig("ladok", ladok_sim.url))
            schedule = _timeedit(schema_sim.url)
            scope = planning.Scope(("HT2027",))
            following.follow(store, ladok)  # the feed's head (the seed wrote no events)
            cpu0, lc0, sc0 = _self_cpu(), ladok_sim.cpu(), schema_sim.cpu()

            # as the DAG runs it: plan, and beside it (a process of its own, as a task is) the sender
            # of each committed chunk; then the send after the plan, for what is left
            ctx = mp.get_context("spawn")
            conn, child_end = ctx.Pipe()
            child = ctx.Process(target=_beside, args=(store.url, schema_sim.url, "bench-full", child_end))
            child.start()
            t = time.perf_counter()
            planned = planning.plan(store, ladok, schedule, mode="full", scope=scope, run_id="bench-full")
            t_plan = time.perf_counter() - t
            beside, beside_cpu = conn.recv()
            child.join()
            sent = sending.send(store, schedule)
            out["full"] = {"seconds": round(time.perf_counter() - t, 2), "plan_seconds": round(t_plan, 2),
                           "objects": planned["objects"], "participants": planned["participants"],
                           "email_lookups": planned["email_lookups"],
                           "requests": beside["requests"] + sent["requests"],
                           "sent_beside": beside.get("sent", 0), "sent_after": sent.get("sent", 0),
                           "sent": beside.get("sent", 0) + sent.get("sent", 0),
                           "rejected": beside.get("rejected", 0) + sent.get("rejected", 0)}
            out["cpu_full"] = {"brygga_s": round(_self_cpu() - cpu0 + beside_cpu, 2),
                               "brygga_sender_s": round(beside_cpu, 2),
                               "ladok_sim_s": round(ladok_sim.cpu() - lc0, 2),
                               "schema_sim_s": round(schema_sim.cpu() - sc0, 2)}
            stats = requests.get(f"{schema_sim.url}/sim/stats", timeout=60).json()
            out["system_holds"] = stats["objects"]

            t = time.perf_counter()
            again = planning.plan(store, ladok, schedule, mode="full", scope=scope)
            resent = sending.send(store, schedule)
            out["rerun"] = {"seconds": round(time.perf_counter() - t, 2), "changes": again["changes"],
                            "email_lookups": again["email_lookups"], "requests": resent["requests"]}

            # 1 % delta: one återbud in 1 % of the instances
            rng = random.Random(3)
            http = requests.Session()
            uids = sorted(reading.term_uids(ladok, ["HT2027"]))
            picked = rng.sample(uids, max(1, n // 100))
            done = 0
            for uid in picked:
                for p in ladok.participants([ladok.tillfalle(uid)]):
                    if getattr(p, "state", "") == "ej_paborjad":
                        r = http.post(f"{ladok_sim.url}/sim/aterbud", json={"tillfallesantagning_uid": p.uid,
                                                                            "datum": "2027-08-20"})
                        r.raise_for_status()
                        done += 1
                        break
            t = time.perf_counter()
            followed = following.follow(store, ladok)
            delta = planning.plan(store, ladok, schedule, mode="delta", scope=scope)
            dsent = sending.send(store, schedule)
            out["delta"] = {"seconds": round(time.perf_counter() - t, 2), "aterbud": done,
                            "email_lookups": delta["email_lookups"],
                            "marked": followed["marked"], "changes": delta["changes"], "requests": dsent["requests"]}
            out["cpu_total"] = {"brygga_s": round(_self_cpu() - cpu0 + beside_cpu, 2),
                                "ladok_sim_s": round(ladok_sim.cpu() - lc0, 2),
                                "schema_sim_s": round(schema_sim.cpu() - sc0, 2)}
    finally:
        ladok_sim.stop()
        schema_sim.stop()
    objs = out["full"]["objects"]
    out["cpu_per_object_ms_full"] = {k: round(v * 1000 / objs, 3) for k, v in out["cpu_full"].items()}
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # the planning process
    return out


#: The phases of a full export, by the function whose cumulative time is the phase's.
PHASES = {"reading Ladok": ("brygga/flows/schedule/reading.py", "read"),
          "build + diff": (("brygga/flows/schedule/model.py", "build"), ("brygga/flows/schedule/model.py", "diff")),
          "writing the outbox": ("brygga/flows/schedule/queue.py", "enqueue"),
          "sending": ("brygga/flows/kit/outbox.py", "run")}
#: Where the time is spent, by the file a function lives in (own time, not cumulative).
PLACES = {"SQLite": ("sqlite3.",), "SQLAlchemy": ("sqlalchemy/",), "Brygga's store code": ("brygga/store/",),
          "XML parsing": ("lxml", "xmlsafe", "mappings/ladok"), "JSON": ("json/", "_json"),
          "HTTP client": ("requests/", "urllib3/", "http/client", "socket", "ssl"), "zip / csv": ("zipfile", "csv", "zlib")}


def profile(n: int) -> dict:
    """A full export of ``n`` instances under cProfile: CPU seconds by phase and by place."""
    import cProfile
    import pstats

    from adapters.ladok import LadokAdapter
    from brygga.connections import PeerConfig
    from brygga.flows.schedule import following, planning, sending
    from brygga.store import Store, migrate

    ladok_sim, schema_sim = Sim("ladok", n), Sim("schema")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{tmp}/bench.db")
            migrate.upgrade(store)
            ladok = LadokAdapter(PeerConfig("ladok", ladok_sim.url))
            schedule = _timeedit(schema_sim.url)
            following.follow(store, ladok)
            lc0, sc0 = ladok_sim.cpu(), schema_sim.cpu()
            prof = cProfile.Profile(time.process_time)
            prof.enable()
            # one thread: cProfile sees the main thread only, and process time counts every thread
            planned = planning.plan(store, ladok, schedule, mode="full", scope=planning.Scope(("HT2027",)), workers=1)
            sending.send(store, schedule)
            prof.disable()
            sims = {"ladok_sim_s": round(ladok_sim.cpu() - lc0, 2), "schema_sim_s": round(schema_sim.cpu() - sc0, 2)}
    finally:
        ladok_sim.stop()
        schema_sim.stop()
    if os.environ.get("BRYGGA_PROFILE_DUMP"):
        prof.dump_stats(os.environ["BRYGGA_PROFILE_DUMP"])
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in stats.values())
    phases = {}
    for name, wanted in PHASES.items():
        wanted = wanted if isinstance(wanted[0], tuple) else (wanted,)
        phases[name] = round(sum(ct for (file, _, fn), (_, _, _, ct, _) in stats.items()
                                 if any(file.endswith(f) and fn == w for f, w in wanted)), 2)
    places = {name: round(sum(tt for (file, _, fn), (_, _, tt, _, _) in stats.items()
                              if any(m in file or m in fn for m in marks)), 2) for name, marks in PLACES.items()}
    objects = planned["objects"]
    return {"instances": n, "objects": objects, "brygga_cpu_s": round(total, 2), **sims,
            "brygga_ms_per_object": round(total * 1000 / objects, 3),
            "ladok_sim_ms_per_object": round(sims["ladok_sim_s"] * 1000 / objects, 3),
            "phases_s": phases, "places_s": places}


def _md(title: str, results: list[dict], note: str) -> str:
    lines = [f"# {title} ({dt.datetime.now(dt.UTC).isoformat(timespec='seconds')})", "", note, "",
             "| instances | objects | full s | re-run s | 1 % delta s | peak RSS MiB | Brygga CPU ms/object | "
             "Ladok sim CPU ms/object | schema sim CPU ms/object |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        c = r["cpu_per_object_ms_full"]
        lines.append(f"| {r['instances']:,} | {r['full']['objects']:,} | {r['full']['seconds']} | {r['rerun']['seconds']} "
                     f"| {r['delta']['seconds']} | {r['peak_rss_mib']} | {c['brygga_s']} | {c['ladok_sim_s']} | "
                     f"{c['schema_sim_s']} |")
    lines += ["", "```json", json.dumps(results, indent=1, ensure_ascii=False), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.schedule_export")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--instances", type=int)
    ap.add_argument("--sizes", help="comma-separated sizes, each in a fresh process (memory)")
    ap.add_argument("--profile", type=int, metavar="N", help="profile a full export of N instances")
    ap.add_argument("--label", default="", help="suffix of the profile's result file (e.g. before)")
    ap.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    env = (f"{os.cpu_count()} CPU(s) shared with other work (load average {[round(x, 2) for x in os.getloadavg()]}), "
           f"Python {platform.python_version()}, SQLite store, simulators in their own processes over loopback HTTP")
    if args.profile:
        result = profile(args.profile)
        name = f"schedule_export.profile{'.' + args.label if args.label else ''}"
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
        total = result["brygga_cpu_s"]
        lines = [f"# Schedule export profile ({dt.datetime.now(dt.UTC).isoformat(timespec='seconds')})", "",
                 f"`python -m bench.schedule_export --profile {args.profile}`: {env}; Brygga under cProfile "
                 "(process time; cProfile's own overhead inflates Brygga's figure, the simulators run unprofiled).", "",
                 f"{result['objects']:,} objects: Brygga {total} CPU-s ({result['brygga_ms_per_object']} ms/object), "
                 f"Ladok simulator {result['ladok_sim_s']} ({result['ladok_sim_ms_per_object']} ms/object), "
                 f"scheduling simulator {result['schema_sim_s']}.", "", "| phase (cumulative) | CPU s | share |",
                 "|---|---:|---:|"]
        lines += [f"| {k} | {v} | {v * 100 / total:.0f} % |" for k, v in result["phases_s"].items()]
        lines += ["", "| place (own time) | CPU s | share |", "|---|---:|---:|"]
        lines += [f"| {k} | {v} | {v * 100 / total:.0f} % |" for k, v in result["places_s"].items()]
        (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
        print((RESULTS / f"{name}.md").read_text())
        return 0
    if args.sizes:
        results = []
        for n in sorted(int(x) for x in args.sizes.split(",")):
            p = subprocess.run([sys.executable, "-m", "bench.schedule_export", "--instances", str(n), "--json-only"],
                               capture_output=True, text=True, check=True)
            results.append(json.loads(p.stdout.strip().splitlines()[-1]))
        name = "schedule_export.memory"
    else:
        n = args.instances or (1000 if args.quick else 10_000)
        results = [run(n)]
        if args.json_only:
            print(json.dumps(results[0]))
            return 0
        name = "schedule_export.quick" if args.quick else "schedule_export"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    (RESULTS / f"{name}.md").write_text(_md("Schedule export benchmark", results, f"`python -m bench.{name.replace('.', ' --').replace('--memory', '--sizes ...')}`: {env}."))
    print((RESULTS / f"{name}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
