"""Run the fault-injection harness by hand: one or more seeds, on SQLite and/or PostgreSQL.

    python -m tests.faults --seed 7                      # one seed on SQLite
    python -m tests.faults --seeds 1-20 --store postgresql   # a soak: 20 seeds
    python -m tests.faults --seed 7 --show-faults       # what seed 7 injects, task by task

PostgreSQL: ``BRYGGA_TEST_PG_URL``; the store outage restarts it with ``BRYGGA_FAULTS_PG_RESTART``
(a shell command). Exits 1 naming every seed whose faulty run ended otherwise than the clean run.
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    from tests.faults import harness

    ap = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, action="append", default=[])
    ap.add_argument("--seeds", help="e.g. 1-20 or 3,5,8")
    ap.add_argument("--store", action="append", choices=("sqlite", "postgresql"), default=[])
    ap.add_argument("--show-faults", action="store_true", help="list the seed's faults and stop")
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
                extra = sum(faulty.tries.values()) - sum(clean.tries.values())
                print(f"{kind}: seed {seed}: {'OK' if not diff else 'DIFFERS'} in {faulty.seconds:.1f} s; "
                      f"{sum(faulty.injected.values())} faults fired, {extra} task runs more than clean; "
                      f"absorbed {faulty.absorbed}", flush=True)
                for line in diff:
                    print(line)
                if diff:
                    failed.append(f"{kind}:{seed}")
            print(f"{kind}: {len(seeds)} seed(s) in {time.monotonic() - t0:.0f} s")
    kinds = sorted({k for _, k in coverage})
    flows = sorted({f for f, _ in coverage})
    print("faults fired, per flow and kind:")
    print("  " + " ".join(f"{k:>12}" for k in kinds))
    for f in flows:
        print(f"  {f:<11}" + " ".join(f"{coverage[(f, k)]:>12}" for k in kinds))
    if failed:
        print("FAILED seeds: " + " ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
