"""Benchmark: the NyA↔Ladok reconciliation (``brygga.flows.reconciliation``) of a round of N
admissions with 1 % of injected drift of each kind — every drifted row found, no false positive;
its time and Brygga's CPU per admission beside the simulators'.

The three simulators run in their own processes (as ``bench/admission_import.py`` sets them up);
the admission import places the round (fetch, place in 2 processes). Then, through the simulators'
control APIs, 1 % of the admissions each: lose their tillfällesantagning in Ladok, get an återbud
in Ladok only, get an återbud in NyA only, and (among those with a villkor) have it lifted by hand
in Ladok; and 1 % of the applicants each have a merit NyA lost, holds in another grade, or holds
although Ladok took it back (beside 2 % whose merits agree). One reconciliation run compares it all.

    python -m bench.reconciliation            # N = 40,000
    python -m bench.reconciliation --quick    # N = 10,000

Results: ``bench/results/reconciliation[.quick].{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.admission_import import ROUND, _free_port, _place_sharded, _serve_folk, _serve_ladok, _serve_nya, _wait

RESULTS = Path(__file__).resolve().parent / "results"


def _cpu(procs: list[Any]) -> float:
    return sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs)


def run(n: int, share: float) -> dict[str, Any]:
    from sqlalchemy import select

    from adapters.ladok import LadokAdapter
    from adapters.nya import NyaAdapter
    from brygga.connections import PeerConfig
    from brygga.flows import admissions, reconciliation
    from brygga.records import Merit
    from brygga.store import Store, migrate
    from brygga.store.models import Drift, NyaAdmission, NyaApplicant, NyaMerit, utcnow

    ctx = mp.get_context("spawn")
    ports = {k: _free_port() for k in ("ladok", "nya", "folkbokforing")}
    procs = {"ladok": ctx.Process(target=_serve_ladok, args=(ports["ladok"], int(n * 0.3)), daemon=True),
             "folkbokforing": ctx.Process(target=_serve_folk, args=(ports["folkbokforing"], n), daemon=True),
             "nya": ctx.Process(target=_serve_nya, args=(ports["nya"], n), daemon=True)}
    for p in procs.values():
        p.start()
    urls = {k: f"http://127.0.0.1:{v}" for k, v in ports.items()}
    for u in urls.values():
        _wait(u)
    tmp = tempfile.TemporaryDirectory()
    http = requests.Session()
    try:
        store = Store(f"sqlite:///{tmp.name}/bench.db")
        migrate.upgrade(store)
        ladok, nya = LadokAdapter(PeerConfig("ladok", urls["ladok"])), NyaAdapter(PeerConfig("nya", urls["nya"]))
        t0 = time.perf_counter()
        admissions.fetch(store, nya, ROUND)
        placed, _, _ = _place_sharded(store.url, urls, 8, 2)
        import_s = time.perf_counter() - t0
        assert placed["placed"] == n, placed

        with store.transaction() as s:
            rows = [(r.admission_id, r.antagning_uid, r.personnummer, [c["code"] for c in r.conditions or []])
                    for r in s.scalars(select(NyaAdmission).where(NyaAdmission.state == "placed"))]
        rng = random.Random(30)
        rng.shuffle(rows)
        k = max(1, int(n * share))
        with_villkor = [r for r in rows if r[3]]
        plain = [r for r in rows if not r[3]]
        missing, only_ladok, only_nya = plain[:k], plain[k:2 * k], plain[2 * k:3 * k]
        villkor = with_villkor[:k]
        t0 = time.perf_counter()
        for _aid, auid, _, _ in missing:
            http.post(f"{urls['ladok']}/sim/forvantat-deltagande/borttag", json={"tillfallesantagning_uid": auid},
                      timeout=30).raise_for_status()
        for _aid, auid, _, _ in only_ladok:
            http.post(f"{urls['ladok']}/sim/aterbud", json={"tillfallesantagning_uid": auid, "datum": "2027-08-20"},
                      timeout=30).raise_for_status()
        for aid, _, _, _ in only_nya:
            http.post(f"{urls['nya']}/sim/rounds/{ROUND}/aterbud", json={"admission_id": aid, "date": "2027-08-21"},
                      timeout=30).raise_for_status()
        for _aid, auid, _, codes in villkor:
            http.delete(f"{urls['ladok']}/sim/tillfallesantagning/{auid}/behorighetsvillkor/{codes[0]}",
                        timeout=30).raise_for_status()
        # merits: the ledger as Brygga read Ladok, NyA as it holds them
        people = [r[2] for r in plain[3 * k:]]
        lost, other, taken_back, agree = people[:k], people[k:2 * k], people[2 * k:3 * k], people[3 * k:5 * k]
        now = utcnow()

        def merit(pnr: str, tag: str, grade: str) -> Merit:
            return Merit(f"ladok:resultat:{tag}-{pnr}", pnr, "resultat", "TDA100", "2027-01-15", grade=grade)

        submit = [merit(p, "o", "B") for p in other] + [merit(p, "w", "C") for p in taken_back] + \
                 [merit(p, "a", "A") for p in agree]
        for i in range(0, len(submit), 5000):
            nya.submit_merits(submit[i:i + 5000], f"bench-merits-{i}")
        with store.transaction() as s:
            for group, tag, grade, state in ((lost, "l", "A", "present"), (other, "o", "A", "present"),
                                             (taken_back, "w", "C", "withdrawn"), (agree, "a", "A", "present")):
                for p in group:
                    m = merit(p, tag, grade)
                    s.add(NyaMerit(ref=m.merit_id, merit_id=m.merit_id, personnummer=p, type=m.type,
                                   content_hash=m.content_hash() if state == "present" else None,
                                   version=1, state=state, held=True, source="feed", created_at=now, updated_at=now))
                    s.add(NyaApplicant(round=ROUND, personnummer=p, sequence=1, snapshot="done", merits=1, attempts=1,
                                       created_at=now))
        inject_s = time.perf_counter() - t0
        injected = {"admission.missing_in_ladok": {r[0] for r in missing},
                    "aterbud.only_in_ladok": {r[0] for r in only_ladok},
                    "aterbud.only_in_nya": {r[0] for r in only_nya},
                    "villkor.differ": {r[0] for r in villkor},
                    "merit.missing_in_nya": {f"ladok:resultat:l-{p}" for p in lost},
                    "merit.other_version": {f"ladok:resultat:o-{p}" for p in other},
                    "merit.withdrawn_in_ladok": {f"ladok:resultat:w-{p}" for p in taken_back}}

        sims0 = {k: _cpu([p]) for k, p in procs.items()}
        t0, c0 = time.perf_counter(), time.process_time()
        summary = reconciliation.reconcile(store, nya, ladok, actor="bench")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        sims = {k: _cpu([p]) - sims0[k] for k, p in procs.items()}
        with store.transaction() as s:
            found: dict[str, set[str]] = {}
            for d in s.scalars(select(Drift).where(Drift.status == "open")):
                found.setdefault(d.kind, set()).add(d.subject)
        exact = {kind: {"injected": len(injected[kind]), "found": len(found.get(kind, set())),
                        "missed": len(injected[kind] - found.get(kind, set())),
                        "false_positives": len(found.get(kind, set()) - injected[kind])} for kind in injected}
        extra = {kind: len(v) for kind, v in found.items() if kind not in injected}
        store.dispose()
    finally:
        for p in procs.values():
            p.terminate()
        tmp.cleanup()
    return {
        "n": n, "share": share, "import_s": round(import_s, 1), "inject_s": round(inject_s, 1),
        "seconds": round(seconds, 2), "brygga_cpu_s": round(cpu, 2),
        "brygga_cpu_ms_per_admission": round(1000 * cpu / n, 3),
        "sim_cpu_s": {k: round(v, 2) for k, v in sims.items()},
        "sim_cpu_ms_per_admission": {k: round(1000 * v / n, 3) for k, v in sims.items()},
        "compared": summary["compared"], "per_kind": exact, "unexpected_kinds": extra,
        "all_found_no_false_positive": all(v["missed"] == 0 and v["false_positives"] == 0 for v in exact.values())
        and not extra,
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _markdown(o: dict[str, Any], stem: str) -> str:
    rows = "".join(f"| `{k}` | {v['injected']} | {v['found']} | {v['missed']} | {v['false_positives']} |\n"
                   for k, v in o["per_kind"].items())
    sims = ", ".join(f"{k} {v} ms" for k, v in o["sim_cpu_ms_per_admission"].items())
    return (
        f"# Reconciliation benchmark ({o['when']})\n\n"
        f"`python -m bench.reconciliation{' --quick' if 'quick' in stem else ''}`: a round of {o['n']:,} admissions "
        f"placed by the admission import ({o['import_s']} s), {o['share']:.0%} drift of each kind injected through "
        f"the simulators' control APIs; the three simulators in their own processes, SQLite store, "
        f"{o['cpus']} CPUs shared.\n\n"
        f"One run: **{o['seconds']} s**; Brygga's CPU {o['brygga_cpu_s']} s = **{o['brygga_cpu_ms_per_admission']} ms "
        f"per admission**; the simulators' CPU per admission over the same run: {sims}. Compared: "
        f"{', '.join(f'{k} {v:,}' for k, v in o['compared'].items())}.\n\n"
        f"| kind | injected | found | missed | false positives |\n|---|---:|---:|---:|---:|\n{rows}\n"
        f"Every drift found and no false positive: **{'yes' if o['all_found_no_false_positive'] else 'NO'}**"
        f"{' (other kinds found: ' + str(o['unexpected_kinds']) + ')' if o['unexpected_kinds'] else ''}.\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.reconciliation")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int)
    ap.add_argument("--share", type=float, default=0.01)
    args = ap.parse_args(argv)
    n = args.n or (10_000 if args.quick else 40_000)
    out = run(n, args.share)
    stem = "reconciliation.quick" if args.quick else "reconciliation"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(_markdown(out, stem))
    print(_markdown(out, stem))
    return 0 if out["all_found_no_false_positive"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
