"""``brygga retention``: purge personal data past its retention (what the daily DAG does)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys


def _purge(args) -> int:
    from brygga.flows import retention
    from brygga.store import Store

    try:
        r = retention.Retention.from_env(**{k: getattr(args, k) for k in retention.Retention.KINDS})
    except ValueError as e:
        print(f"brygga retention: {e}", file=sys.stderr)
        return 2
    out = retention.purge(Store(args.url), r, dry_run=args.dry_run, actor=args.actor)
    print(json.dumps(out, ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retention", help="purge the personal data of closed rounds, closed cases and old input")
    p.add_argument("--dry-run", action="store_true", help="only count what would be purged")
    for kind, what in (("admissions", "after a closed round's last activity"), ("aterbud_cases", "after closing"),
                       ("quarantine", "after it was set aside"), ("outbox", "after it was sent")):
        p.add_argument(f"--{kind.replace('_', '-')}", dest=kind, type=int, metavar="DAYS",
                       help=f"retention in days {what} (default: BRYGGA_RETENTION_{kind.upper()}_DAYS or built in)")
    p.add_argument("--actor", default=getpass.getuser())
    p.add_argument("--url", help="store URL (default: BRYGGA_STORE_URL or var/brygga.db)")
    p.set_defaults(func=_purge)
