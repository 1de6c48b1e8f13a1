"""``brygga admissions``: the ej hanterade antagningar queue (list, count, ompröva, handled)."""

from __future__ import annotations

import argparse
import getpass
import json

from brygga.commands import dump_json


def _store(args):
    from brygga.store import Store

    return Store(args.url)


def _list(args) -> int:
    from brygga import views

    rows = views.list_unhandled(_store(args), round=args.round, hinder=args.hinder,
                                status=None if args.status == "all" else args.status, limit=args.limit,
                                oldest_first=True)["rows"]
    if args.json:
        dump_json(rows)
        return 0
    for r in rows:
        print(f"{r['nya_admission_id']:22s} {r['round']:7s} {r['personnummer'] or '-':13s} "
              f"{(r['utbildningskod'] or '-') + '/' + (r['tillfalleskod'] or '-'):16s} {r['status']:8s} {r['reason']}")
        for c in r["candidates"] or []:
            print(f"{'':24s}kurspaketering {c['package_uid']} {c.get('utbildningskod') or ''} {c.get('name') or ''}")
    print(f"{len(rows)} admission(s)")
    return 0


def _count(args) -> int:
    from brygga import views
    from brygga.states import HINDER_TEXT

    counts = views.count_unhandled(_store(args), round=args.round, status=None if args.status == "all" else args.status)
    for hinder, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{n:6d}  {hinder:28s} {HINDER_TEXT.get(hinder, '')}")
    print(f"{sum(counts.values()):6d}  total")
    return 0


def _retry(args) -> int:
    from adapters.folkbokforing import FolkbokforingAdapter
    from adapters.ladok import LadokAdapter
    from brygga.connections import cli_peer
    from brygga.flows import admissions

    res = admissions.retry(_store(args), LadokAdapter(cli_peer("ladok")), FolkbokforingAdapter(cli_peer("folkbokforing")),
                           args.admission_id, actor=args.actor, package_uid=args.package, fristaende=args.fristaende)
    print(json.dumps(res, ensure_ascii=False))
    return 0 if res["outcome"] == "placed" else 1


def _handled(args) -> int:
    from brygga.flows import admissions

    print(json.dumps(admissions.mark_handled(_store(args), args.admission_id, actor=args.actor, note=args.note),
                     ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("admissions", help="ej hanterade antagningar: list, count, ompröva, mark handled")
    p.add_argument("--url", help="store URL (default: BRYGGA_STORE_URL or var/brygga.db)")
    p.add_argument("--actor", default=getpass.getuser(), help="who acts (audited)")
    a = p.add_subparsers(dest="action", required=True)
    ls = a.add_parser("list", help="queued admissions with hinder, reason and package candidates")
    ls.add_argument("--round")
    ls.add_argument("--hinder")
    ls.add_argument("--status", default="open", choices=["open", "resolved", "manual", "all"])
    ls.add_argument("--limit", type=int, default=500)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    c = a.add_parser("count", help="queued admissions per hinder")
    c.add_argument("--round")
    c.add_argument("--status", default="open", choices=["open", "resolved", "manual", "all"])
    c.set_defaults(func=_count)
    r = a.add_parser("retry", aliases=["ompröva", "omprova"], help="try to place again")
    r.add_argument("admission_id")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--package", help="kurspaketeringstillfälle uid to place the course in")
    g.add_argument("--fristaende", action="store_true", help="place as free-standing")
    r.set_defaults(func=_retry)
    h = a.add_parser("handled", help="mark as handled by hand in Ladok")
    h.add_argument("admission_id")
    h.add_argument("--note", default="")
    h.set_defaults(func=_handled)
