"""``brygga checkpoints`` and ``brygga quarantine``: where the flows stand, and the input they set aside."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from brygga.commands import dump_json


def _store(args):
    from brygga.store import Store

    return Store(args.url)


def _list_checkpoints(args) -> int:
    from brygga import views

    rows = views.checkpoints(_store(args))
    if args.json:
        dump_json(rows)
        return 0
    for r in rows:
        print(f"{r['name']:32s} {r['position']!s:>10s}  {r['entry_id'] or '-':40s} {r['seen']!s:>9s} seen  "
              f"{r['updated_at'] or ''}")
    return 0


def _set(args) -> int:
    from brygga.flows import checkpoints

    try:
        res = checkpoints.set_position(_store(args), args.name, args.position, actor=args.actor, reason=args.reason,
                                       entry_id=args.entry)
    except (KeyError, ValueError) as e:
        print(f"brygga checkpoints set: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, ensure_ascii=False))
    return 0


def _list_quarantine(args) -> int:
    from brygga import views

    page = views.list_quarantine(_store(args), open_only=not args.all, source=args.source, kind=args.kind,
                                 limit=args.limit)
    if args.json:
        dump_json(page.rows)
        return 0
    for r in page.rows:
        state = "released" if r["released_at"] else f"open ×{r['attempts']}"
        print(f"{r['id']:6d} {r['source']:6s} {r['kind'] or '-':22s} {r['message_id'][:40]:40s} {state:10s} "
              f"{r['reason'][:160]}")
    print(f"{len(page.rows)} of {page.total} row(s)")
    return 0


def _release(args) -> int:
    from brygga.flows import checkpoints

    try:
        res = checkpoints.release(_store(args), args.id, actor=args.actor, note=args.note)
    except KeyError as e:
        print(f"brygga quarantine release: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, ensure_ascii=False))
    return 0


def _retry(args) -> int:
    from brygga.flows import checkpoints

    try:
        res = checkpoints.retry(_store(args), args.id, actor=args.actor, note=args.note)
    except (KeyError, ValueError) as e:
        print(f"brygga quarantine retry: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    print(json.dumps(res, ensure_ascii=False))
    return 0


def _replay(args) -> int:
    import datetime as dt

    from adapters.ladok import LadokAdapter
    from brygga.connections import cli_peer
    from brygga.flows import checkpoints

    try:
        since = dt.datetime.fromisoformat(args.since)
        if args.name.startswith(checkpoints.NYA_STREAMS):  # from where the stream stood then
            out = checkpoints.replay_sequence_since(_store(args), args.name, since, actor=args.actor,
                                                    reason=args.reason, dry_run=args.dry_run)
        else:  # a Ladok feed follower: the page found by its events' times
            out = checkpoints.replay_since(_store(args), LadokAdapter(cli_peer("ladok")), args.name, since,
                                           actor=args.actor, reason=args.reason, dry_run=args.dry_run)
    except (KeyError, ValueError) as e:
        print(f"brygga checkpoints replay: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, ensure_ascii=False, default=str))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help="store URL (default: BRYGGA_STORE_URL or var/brygga.db)")

    p = sub.add_parser("checkpoints", help="where each flow stands in the Ladok feed and NyA's streams")
    c = p.add_subparsers(dest="action", required=True)
    ls = c.add_parser("list", help="every checkpoint")
    ls.add_argument("--json", action="store_true")
    common(ls)
    ls.set_defaults(func=_list_checkpoints)
    st = c.add_parser("set", help="move a checkpoint (read a feed page again, move past an unreadable page or reply)")
    st.add_argument("name", help="e.g. ladok-merits, ladok-aterbud, nya-admissions:HT2027")
    st.add_argument("position", type=int, help="feed page (read from its start) or NyA sequence to read from")
    st.add_argument("--entry", help="feed only: resume after this entry id on the page")
    st.add_argument("--reason", required=True)
    st.add_argument("--actor", default=getpass.getuser())
    common(st)
    st.set_defaults(func=_set)
    rp = c.add_parser("replay", help="read a Ladok feed follower (the page found by its events' times) or a NyA "
                                     "stream (from where it stood then) again from a point in time; nothing "
                                     "already handled is done again")
    rp.add_argument("name", help="ladok-merits, ladok-aterbud, schedule, or a NyA stream: nya-admissions:<omgång>, "
                                 "nya-villkor:<omgång>, nya-aterbud:<omgång>, nya-applicants:<omgång>")
    rp.add_argument("--since", required=True, help="a time with its offset, e.g. 2027-08-20T14:00+02:00")
    rp.add_argument("--dry-run", action="store_true", help="list the events since then and what would be handled")
    rp.add_argument("--reason", required=True)
    rp.add_argument("--actor", default=getpass.getuser())
    common(rp)
    rp.set_defaults(func=_replay)

    q = sub.add_parser("quarantine", help="input set aside with its reason (bad records, unreadable pages, gaps)")
    qa = q.add_subparsers(dest="action", required=True)
    ql = qa.add_parser("list", help="open rows, newest first")
    ql.add_argument("--all", action="store_true", help="released rows too")
    ql.add_argument("--source")
    ql.add_argument("--kind")
    ql.add_argument("--limit", type=int, default=100)
    ql.add_argument("--json", action="store_true")
    common(ql)
    ql.set_defaults(func=_list_quarantine)
    rl = qa.add_parser("release", help="mark a row handled")
    rl.add_argument("id", type=int)
    rl.add_argument("--note", required=True)
    rl.add_argument("--actor", default=getpass.getuser())
    common(rl)
    rl.set_defaults(func=_release)
    rt = qa.add_parser("retry", help="send a message given up on again (its outbox row back to pending)")
    rt.add_argument("id", type=int)
    rt.add_argument("--note", default="")
    rt.add_argument("--actor", default=getpass.getuser())
    common(rt)
    rt.set_defaults(func=_retry)
