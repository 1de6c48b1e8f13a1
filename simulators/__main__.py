"""``python -m simulators``: every simulator in one process, seeded (``make run`` starts it)."""

from __future__ import annotations

import argparse

from simulators.all import run_all


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--admissions", type=int, default=0,
                    help="also N accepted admissions in HT2027 (the scale-out check)")
    ap.add_argument("--demo", action="store_true",
                    help="also the demo round: an admission in every hinder, återbud that open cases (make run)")
    args = ap.parse_args(argv)
    run_all(host=args.host, seed=args.seed, admissions=args.admissions, demo=args.demo)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
