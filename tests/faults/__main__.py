"""Run the fault-injection harness by hand: one or more seeds, on SQLite and/or PostgreSQL.

    python -m tests.faults --seed 7                      # one seed on SQLite
    python -m tests.faults --seeds 1-20 --store postgresql   # a soak: 20 seeds
    python -m tests.faults --seed 7 --show-faults       # what seed 7 injects, task by task

PostgreSQL: ``BRYGGA_TEST_PG_URL``; the store outage restarts it with ``BRYGGA_FAULTS_PG_RESTART``
(a shell command). Exits 1 naming every seed whose faulty run ended otherwise than the clean run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def coverage_table(coverage: Counter[tuple[str, str]]) -> str:
    """Faults fired per flow and kind, and what could happen to a flow that no seed made happen."""
    from tests.faults import harness

    possible = {(t.flow, k) for t in harness.TASKS.values() for k in harness.applicable(t)}
    kinds = sorted({k for _, k in possible}, key=lambda k: (harness.PEER_KINDS + harness.FEED_KINDS + harness.STREAM_KINDS
                                                             + harness.PROCESS_KINDS).index(k))
    flows = sorted({f for f, _ in possible})
    lines = ["faults fired, per flow and kind ('-': cannot happen to that flow):",
             " " * 12 + "".join(f"{k[:11]:>12}" for k in kinds)]
    for f in flows:
        lines.append(f"{f:<12}" + "".join(f"{coverage[(f, k)] if (f, k) in possible else '-':>12}" for k in kinds))
    missing = sorted(p for p in possible if not coverage[p])
    lines.append("not covered: " + (", ".join(f"{f}/{k}" for f, k in missing) if missing else "nothing"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from tests.faults import harness

    ap = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, action="append", default=[])
    ap.add_argument("--seeds", help="e.g. 1-20 or 3,5,8")
    ap.add_argument("--store", action="append", choices=("sqlite", "postgresql"), default=[])
    ap.add_argument("--show-faults", action="store_true", help="list the seed's faults and stop")
    ap.add_argument("--report", help="append one JSON line per seed (store, seed, outcome, faults fired) to this file")
    args = ap.parse_args(argv)
    seeds = args.seed + (_seeds(args.seeds) if args.seeds else []) or [1]
    if args.show_faults:
        for seed in seeds:
            for step, faults in sorted(harness.draw(seed).items()):
                for f in faults:
                    print(seed, step, f)
        return 0
    failed: list[str] = []
    coverage: Counter[tuple[str, str]] = Counter()
    for kind in args.store or ["sqlite"]:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.monotonic()
            clean = harness.run_once(None, None, kind, tmp, os.environ.get("BRYGGA_TEST_PG_URL"))
            print(f"{kind}: clean run {clean.seconds:.1f} s, {sum(clean.tries.values())} task runs")
            for seed in seeds:
                _, faulty, diff = harness.check(seed, kind, tmp, clean=clean, pg_url=os.environ.get("BRYGGA_TEST_PG_URL"),
                                                log=lambda line: print(line, flush=True))
                coverage.update(faulty.injected)
                if args.report:
                    with open(args.report, "a") as f:
                        f.write(json.dumps({"store": kind, "seed": seed, "ok": not diff, "seconds": round(faulty.seconds, 1),
                                            "fired": sorted(f"{a}/{b}" for a, b in faulty.injected)}) + "\n")
                extra = sum(faulty.tries.values()) - sum(clean.tries.values())
                print(f"{kind}: seed {seed}: {'OK' if not diff else 'DIFFERS'} in {faulty.seconds:.1f} s; "
                      f"{sum(faulty.injected.values())} faults fired, {extra} task runs more than clean; "
                      f"absorbed {faulty.absorbed}", flush=True)
                for line in diff:
                    print(line)
                if diff:
                    failed.append(f"{kind}:{seed}")
            print(f"{kind}: {len(seeds)} seed(s) in {time.monotonic() - t0:.0f} s")
    print(coverage_table(coverage))
    if failed:
        print("FAILED seeds: " + " ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
