"""Benchmark: packaging Ladok records as an E-ARK SIP (``brygga.flows.archive.packaging``) and the
archive simulator's checks of the package, at two sizes, each in a fresh process.

The records are real Ladok XML: ``rr:ResultatLista`` documents of the Ladok simulator as the
archive export writes them (the attested results on one instance of 500 students a file, valid
against the Ladok XSDs), written until the data reach the size asked for. Timed per size:

* **stage**: the data files written to the staging directory, SHA-256 taken while writing (what
  ``delivery.collect`` does after each Ladok reply);
* **package**: ``packaging.build``: every data file copied into the zip (deflate level 1) with its
  checksum taken again and compared, the schemas, PREMIS, both METS written;
* **archive checks**: ``simulators.arkiv.checks.inspect`` on the zip: unpack, every checksum,
  every data file against the package's XSDs, eark-validator (its own process).

Peak RSS (VmHWM) of each fresh process is reported; flat means the same at 100 MB and 1 GB.

    python -m bench.archive_package                      # 100 MB and 1 GB
    python -m bench.archive_package --sizes 20,100 --no-checks

Results: ``bench/results/archive_package.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import proc_status, reset_peak

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
MB = 1_000_000
GOAL_MB_S = 50.0


def _records(students: int) -> list[bytes]:
    """rr:ResultatLista documents as the archive export writes them (the attested results of up
    to ``RESULTS_PER_FILE`` students each), from the Ladok simulator, valid against the Ladok XSDs."""
    from brygga.flows.archive.delivery import RESULTS_PER_FILE
    from mappings import registry
    from simulators.ladok import representations as rep
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState
    from simulators.ladok.xml import tostring

    state = LadokState()
    seed_catalogue(state, 3, 12, 0, "VT2026")
    ended = [t for t in state.tillfallen.values() if not t.installt]
    state.seed_deltagande(state.seed_students(students, 3), ended, students, seed=3)
    state.seed_resultat(ended, seed=3, share=1.0)
    sip = registry.get("arkiv", "sip", 1)
    t = ended[0]
    lists, held = [], []
    for n, rows in enumerate(state.resultat.values(), start=1):
        held += sip.results_of_instance(tostring(rep.resultat(rows)), t.uid)
        if n % RESULTS_PER_FILE == 0:
            lists.append(sip.result_list(held))
            held = []
    return lists


def probe(size_mb: int, checks: bool) -> dict:
    """In a fresh process: stage ``size_mb`` MB of records, build the package, check it."""
    from brygga.flows.archive.packaging import Staging, build, package_id
    from mappings import registry
    from mappings.arkiv.sip import PackageInfo

    docs = _records(5000)
    sip = registry.get("arkiv", "sip", 1)
    out = Path(tempfile.mkdtemp(prefix="brygga-bench-sip-"))
    import gc

    gc.collect()
    reset = reset_peak()
    base_rss = proc_status("VmRSS")
    try:
        with Staging() as st:
            t0, c0 = time.perf_counter(), time.process_time()
            i = 0
            while st.data_bytes < size_mb * MB:
                st.add(f"resultat-{i:04d}.xml", docs[i % len(docs)].replace(b"<rr:Resultat>", f"<!-- {i} --><rr:Resultat>".encode(), 1))
                i += 1
            stage_s, stage_cpu = time.perf_counter() - t0, time.process_time() - c0
            data_bytes = st.data_bytes
            info = PackageInfo(objid=package_id("kurstillfalle", "bench", st.content_sha256()), label="Bench",
                               created=dt.datetime(2026, 12, 1, tzinfo=dt.UTC), subject_kind="kurstillfalle",
                               subject_uid="bench", archival_creator=("Bench", "2021000000"),
                               submitter=("Bench", "2021000000"))
            t1, c1 = time.perf_counter(), time.process_time()
            (built,) = build(sip, info, st, out, max_part_bytes=10 * 1024**3)
            pack_s, pack_cpu = time.perf_counter() - t1, time.process_time() - c1
        result = {"size_mb": size_mb, "files": i, "data_bytes": data_bytes, "zip_bytes": built.size,
                  "stage_s": round(stage_s, 3), "stage_cpu_s": round(stage_cpu, 3), "package_s": round(pack_s, 3),
                  "package_cpu_s": round(pack_cpu, 3),
                  "mb_per_s": round(data_bytes / MB / (stage_s + pack_s), 1),
                  "package_mb_per_s": round(data_bytes / MB / pack_s, 1),
                  "peak_reset": reset, "rss_before_mib": round(base_rss / 2**20, 1),
                  "peak_rss_mib": round(proc_status("VmHWM") / 2**20, 1),
                  "peak_rss_growth_mib": round((proc_status("VmHWM") - base_rss) / 2**20, 1)}
        if checks:
            from simulators.arkiv.app import eark_command
            from simulators.arkiv.checks import inspect

            with tempfile.TemporaryDirectory(prefix="brygga-bench-arkiv-") as work:
                t2 = time.perf_counter()
                found = inspect(built.path, Path(work), eark_command())
                result["archive_checks_s"] = round(time.perf_counter() - t2, 2)
            result["archive_reasons"] = found.reasons[:5]
            result["archive_warnings"] = sorted({w[0] for w in found.warnings})
        return result
    finally:
        import shutil

        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.archive_package", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", help="MB of records per package, comma separated (default 100,1000; quick 20,100)")
    p.add_argument("--quick", action="store_true", help="20 MB and 100 MB")
    p.add_argument("--no-checks", action="store_true", help="skip the archive simulator's checks")
    p.add_argument("--out", type=Path)
    p.add_argument("--probe", nargs=2, help=argparse.SUPPRESS)
    args, _ = p.parse_known_args(argv)
    if args.probe:
        print(json.dumps(probe(int(args.probe[0]), args.probe[1] == "1")))
        return 0
    args.sizes = args.sizes or ("20,100" if args.quick else "100,1000")
    args.out = args.out or RESULTS / ("archive_package.quick.json" if args.quick else "archive_package.json")
    runs = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"package of {size} MB of records, fresh process ...", flush=True)
        out = subprocess.run([sys.executable, "-m", "bench.archive_package", "--probe", str(size),
                              "0" if args.no_checks else "1"], cwd=ROOT, capture_output=True, text=True,
                             timeout=3600, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print("  " + json.dumps(runs[-1]), flush=True)
    res = {"benchmark": "archive_package", "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "goal_mb_per_s": GOAL_MB_S, "runs": runs, "cores": len(os.sched_getaffinity(0))}
    lines = ["# Archive packaging benchmark", "",
             f"Run {res['timestamp']} by `python -m bench.archive_package --sizes {args.sizes}`, each size in a "
             f"fresh process, {res['cores']} cores. Records: Ladok simulator rr:ResultatLista documents "
             "(500 students a file, as the export writes them). Throughput is MB of records per wall second, staging + packaging.", "",
             "Peak RSS is the process's high-water mark, reset after the records were generated; growth is "
             "over the RSS at that point.", "",
             "| records | files | zip | stage s | package s | MB/s (stage + package) | MB/s (package) "
             "| peak RSS MiB | growth MiB | archive checks s |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['data_bytes'] / MB:,.0f} MB | {r['files']:,} | {r['zip_bytes'] / MB:,.0f} MB | "
                     f"{r['stage_s']} | {r['package_s']} | {r['mb_per_s']} | {r['package_mb_per_s']} | "
                     f"{r['peak_rss_mib']} | {r['peak_rss_growth_mib']} | {r.get('archive_checks_s', '-')} |")
    met = all(r["mb_per_s"] >= GOAL_MB_S for r in runs)
    lines += ["", f"Goal >= {GOAL_MB_S:g} MB/s: {'met' if met else 'NOT met'}; peak RSS growth "
              + " -> ".join(f"{r['peak_rss_growth_mib']} MiB" for r in runs) + " for "
              + " -> ".join(f"{r['data_bytes'] / MB:,.0f} MB" for r in runs) + ".", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
