"""``brygga stats``: the queues' backlog per day and handling times (pandas), as a table or CSV."""

from __future__ import annotations

import argparse
import sys


def _run(args) -> int:
    from brygga.store import Store
    from brygga.views import statistics

    store = Store(args.url)
    if args.what == "backlog":
        df = statistics.backlog(store, days=args.days, round=args.round)
    elif args.what == "daily":
        df = statistics.daily(store, days=args.days, round=args.round)
    else:
        df = statistics.handling_times(store, round=args.round)
    sys.stdout.write(statistics.to_csv(df) if args.csv else df.to_string() + "\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="backlog per day and handling times of the unhandled queue and återbudsärenden")
    p.add_argument("what", choices=["backlog", "daily", "handling"],
                   help="backlog: open at the end of each day; daily: opened/resolved/open per day and group")
    p.add_argument("--days", type=int, default=30, help="backlog, daily: the last N local days (default 30)")
    p.add_argument("--round", help="only this admission round")
    p.add_argument("--csv", action="store_true", help="CSV for a spreadsheet")
    p.add_argument("--url", help="store URL (default: BRYGGA_STORE_URL or var/brygga.db)")
    p.set_defaults(func=_run)
