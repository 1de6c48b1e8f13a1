"""``brygga alerts``: the alert subscriptions (what the console's Bevakningar page shows and changes)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys


def _subscribe(args) -> int:
    from brygga.flows import alerts
    from brygga.store import Store

    try:
        sid = alerts.subscribe(Store(args.url), args.kind, args.to.split(","), threshold=args.threshold,
                               for_minutes=args.minutes, actor=args.actor)
    except ValueError as e:
        print(f"brygga alerts: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"subscription": sid}))
    return 0


def _list(args) -> int:
    from brygga.flows import alerts
    from brygga.store import Store

    print(json.dumps(alerts.subscriptions(Store(args.url)), ensure_ascii=False, default=str, indent=1))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from brygga.flows.alerts import KINDS

    p = sub.add_parser("alerts", help="alert subscriptions: who is told when trouble starts and ends")
    s = p.add_subparsers(dest="alerts_cmd", required=True)
    a = s.add_parser("subscribe", help="add a subscription (audited)")
    a.add_argument("--kind", required=True, choices=sorted(KINDS))
    a.add_argument("--to", required=True, help="e-mail addresses, comma-separated")
    a.add_argument("--threshold", type=float, help="default: the kind's")
    a.add_argument("--minutes", type=int, help="how long a breach must last (default: the kind's)")
    a.add_argument("--actor", default=getpass.getuser())
    a.add_argument("--url", help="store URL (default: BRYGGA_STORE_URL or var/brygga.db)")
    a.set_defaults(func=_subscribe)
    li = s.add_parser("list", help="every subscription and its open episode (JSON)")
    li.add_argument("--url")
    li.set_defaults(func=_list)
