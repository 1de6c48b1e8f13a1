"""``brygga publications list|show ID``: the offer-export history (utbud to NyA), read-only.

The same queries as the "Brygga operations" pages (``brygga.views``); the store is ``--url``,
else ``BRYGGA_STORE_URL``, else ``var/brygga.db`` (like ``brygga db``). Personnummer are masked.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from brygga.commands import dump_json


def register(subparsers) -> None:
    p = subparsers.add_parser("publications", help="offer-export history (who published what to NyA, and NyA's answer)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="publications_cmd", required=True)

    ls = sub.add_parser("list", help="publications, newest first")
    ls.add_argument("--round", help="antagningsomgång, e.g. HT2027")
    ls.add_argument("--kind", choices=["ordinary", "programme-internal"])
    ls.add_argument("--status", choices=["running", "done", "partial", "failed"])
    ls.add_argument("--dry-run", dest="dry_run", choices=["yes", "no"], help="only dry runs / only real runs")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--offset", type=int, default=0)
    _common(ls)
    ls.set_defaults(func=_list)

    show = sub.add_parser("show", help="one publication: selection, counts, items and NyA's answer")
    show.add_argument("id", type=int)
    show.add_argument("--action", choices=["new", "changed", "withdrawn", "invalid", "unchanged"])
    show.add_argument("--status", choices=["planned", "sent", "rejected", "invalid", "done"])
    show.add_argument("--all", action="store_true", help="include unchanged items (left out by default)")
    show.add_argument("--limit", type=int, default=200)
    show.add_argument("--offset", type=int, default=0)
    _common(show)
    show.set_defaults(func=_show)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="SQLAlchemy URL (default: BRYGGA_STORE_URL or var/brygga.db)")
    p.add_argument("--json", action="store_true", help="JSON instead of text")


def _store(args):
    from brygga.store import Store

    return Store(args.url)


def _list(args: argparse.Namespace) -> int:
    from brygga import views as opsview

    store = _store(args)
    try:
        page = opsview.list_publications(
            store, round=args.round, kind=args.kind, status=args.status,
            dry_run=None if args.dry_run is None else args.dry_run == "yes", limit=args.limit, offset=args.offset)
    finally:
        store.dispose()
    if args.json:
        dump_json(page.__dict__)
        return 0
    if not page.rows:
        print("no publications")
        return 0
    rows = [[str(r["id"]), r["round"], r["kind"], "dry run" if r["dry_run"] else "real", r["status"],
             r["triggered_by"] or "-", _short(r["started_at"]), _counts(r["counts"])] for r in page.rows]
    _table(["id", "round", "kind", "mode", "status", "triggered by", "started", "counts"], rows)
    print(f"{len(page.rows)} of {page.total} (offset {page.offset})")
    return 0


def _show(args: argparse.Namespace) -> int:
    from brygga import views as opsview

    store = _store(args)
    try:
        d = opsview.publication_detail(store, args.id, action=args.action, status=args.status,
                                       limit=args.limit if (args.action or args.status or args.all) else opsview.MAX_LIMIT,
                                       offset=args.offset)
    finally:
        store.dispose()
    if d is None:
        print(f"no publication {args.id}", file=sys.stderr)
        return 1
    items = d["items"]["rows"]
    if not (args.action or args.status or args.all):  # the changes, not the unchanged bulk
        items = [it for it in items if it["action"] != "unchanged"][: args.limit]
    if args.json:
        dump_json({**d, "items": {**d["items"], "rows": items}})
        return 0
    p = d["publication"]
    print(f"publication {p['id']}: {p['round']} {p['kind']} ({'dry run' if p['dry_run'] else 'real'}) "
          f"- {p['status']}")
    print(f"  triggered by {p['triggered_by'] or '-'}, Airflow run {p['run_id'] or '-'}")
    print(f"  started {_short(p['started_at'])}, finished {_short(p['finished_at'])}")
    sel = p["selection"] or {}
    print(f"  selection: {', '.join(sel.get('codes') or []) or 'all instances of the round'}; "
          f"places {sel.get('places', '-')}")
    print(f"  items by action: {_counts(d['counts']['action'])}")
    print(f"  items by status: {_counts(d['counts']['status'])}")
    if items:
        print()
        _table(["action", "tillfälleskod", "offer", "status", "NyA's answer / reason", "outbox"],
               [[it["action"], it["tillfalleskod"] or "-", it["offer_id"], it["status"], it["nya_answer"] or "-",
                 _outbox(it["outbox"])] for it in items])
    for a in d["audit"]:
        print(f"  {_short(a['at'])} {a['actor']}: {a['action']}")
    return 0


def _outbox(o: dict | None) -> str:
    if not o:
        return "-"
    return f"{o['status']} x{o['attempts']}" + (f" ({o['last_error']})" if o.get("last_error") else "")


def _counts(c: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "-"


def _short(ts: str | None) -> str:
    return ts[:19].replace("T", " ") if ts else "-"


def _table(head: list[str], rows: list[list[str]]) -> None:
    widths = [min(max(len(str(x)) for x in col), 60) for col in zip(head, *rows, strict=True)]
    for r in [head, *rows]:
        print("  ".join(str(x)[:60].ljust(w) for x, w in zip(r, widths, strict=True)).rstrip())



