"""``brygga aterbud``: återbudsärenden and the university's återbud settings.

    brygga aterbud cases [--status open|closed] [--round HT2027] [--cause registered|...] [--json]
    brygga aterbud show ID
    brygga aterbud close ID --note "..."            # after handling it in Ladok by hand
    brygga aterbud apply ID [--note "..."]          # carry out the suggested action in Ladok, then close
    brygga aterbud settings [--accept-from-nya yes|no] [--students-may-enter yes|no]
    brygga aterbud sync                              # both directions and the send, once

Every action is audited with ``--actor`` (default ``cli:<login>``). The store is ``--url`` /
``BRYGGA_STORE_URL`` / the embedded default; Ladok and NyA are ``--ladok-url`` / ``--nya-url``
(default: ``BRYGGA_LADOK_URL`` / ``BRYGGA_NYA_URL``, else the embedded-default peers).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from brygga.commands import dump_json

_YES_NO = {"yes": True, "no": False, "ja": True, "nej": False, "true": True, "false": False}


def _yes_no(value: str) -> bool:
    try:
        return _YES_NO[value.strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError("yes or no") from None


def _store(args):
    from brygga.store import Store

    return Store(args.url) if args.url else Store()


def _peer(name: str, url: str | None):
    from brygga.connections import PeerConfig, cli_peer

    return PeerConfig(name, url) if url else cli_peer(name)


def _ladok(args):
    from adapters.ladok import LadokAdapter

    return LadokAdapter(_peer("ladok", args.ladok_url))


def _nya(args):
    from adapters.nya import NyaAdapter

    return NyaAdapter(_peer("nya", args.nya_url))


def _actor(args) -> str:
    if args.actor:
        return args.actor
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name (containers)
        return "cli:unknown"


def _print_cases(cases: list[dict], as_json: bool) -> None:
    if as_json:
        dump_json(cases)
        return
    if not cases:
        print("no återbudsärenden")
        return
    print(f"{'id':>5}  {'status':6}  {'round':6}  {'reported':10}  {'cause':15}  {'suggested':13}  education")
    for c in cases:
        print(f"{c['id']:>5}  {c['status']:6}  {c['round'] or '-':6}  {c['reported_at'] or '-':10}  "
              f"{c['cause']:15}  {c['suggested_action']:13}  {c['education'] or '-'}")


def _cases(args) -> int:
    from brygga import views

    _print_cases(views.list_aterbud(_store(args), status=args.status, round=args.round, cause=args.cause,
                                    limit=views.MAX_LIMIT, oldest_first=True)["rows"], args.json)
    return 0


def _show(args) -> int:
    from brygga import views

    c = views.get_case(_store(args), args.id)
    if c is None:
        print(f"error: no återbudsärende {args.id}", file=sys.stderr)
        return 1
    dump_json(c)
    return 0


def _close(args) -> int:
    from brygga.flows import aterbud

    try:
        c = aterbud.close_case(_store(args), args.id, actor=_actor(args), note=args.note)
    except aterbud.CaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"case {c['id']}: {c['status']} by {c['closed_by']}")
    return 0


def _apply(args) -> int:
    from brygga.flows import aterbud

    try:
        c = aterbud.apply_case(_store(args), _ladok(args), args.id, actor=_actor(args), note=args.note or "")
    except aterbud.CaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"case {c['id']}: {c['status']}: {json.dumps(c['result'], ensure_ascii=False)}")
    return 0 if c["status"] == "closed" else 2


def _settings(args) -> int:
    from brygga.flows import aterbud

    store = _store(args)
    if args.accept_from_nya is None and args.students_may_enter is None:
        current = aterbud.settings(store)
    else:
        current = aterbud.set_settings(store, actor=_actor(args), accept_from_nya=args.accept_from_nya,
                                       students_may_enter=args.students_may_enter)
    print(f"accept återbud from NyA automatically: {'yes' if current[aterbud.SETTING_ACCEPT_FROM_NYA] else 'no'}")
    print(f"students may enter återbud in Ladok:   {'yes' if current[aterbud.SETTING_STUDENTS_MAY_ENTER] else 'no'}")
    return 0


def _sync(args) -> int:
    from brygga.flows import aterbud

    result = aterbud.sync(_store(args), _nya(args), _ladok(args))
    dump_json(result)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("aterbud", help="återbudsärenden and återbud settings (NyA ↔ Ladok)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="aterbud_cmd", required=True)

    def common(sp, *, peers: bool = False):
        sp.add_argument("--url", help="store SQLAlchemy URL (default: BRYGGA_STORE_URL or var/brygga.db)")
        sp.add_argument("--actor", help="who does this, for the audit log (default cli:<login>)")
        if peers:
            sp.add_argument("--ladok-url", help="Ladok base URL (default BRYGGA_LADOK_URL or the embedded default)")
            sp.add_argument("--nya-url", help="NyA base URL (default BRYGGA_NYA_URL or the embedded default)")

    c = sub.add_parser("cases", help="list återbudsärenden")
    c.add_argument("--status", choices=["open", "closed"])
    c.add_argument("--round", help="admission round, e.g. HT2027")
    c.add_argument("--cause", choices=["registered", "already_aterbud", "avbrott_exists", "not_accepted"])
    c.add_argument("--json", action="store_true")
    common(c)
    c.set_defaults(func=_cases)

    s = sub.add_parser("show", help="one återbudsärende")
    s.add_argument("id", type=int)
    common(s)
    s.set_defaults(func=_show)

    cl = sub.add_parser("close", help="close a case (handled in Ladok by hand)")
    cl.add_argument("id", type=int)
    cl.add_argument("--note", required=True)
    common(cl)
    cl.set_defaults(func=_close)

    a = sub.add_parser("apply", help="carry out the suggested action in Ladok, then close the case")
    a.add_argument("id", type=int)
    a.add_argument("--note")
    common(a, peers=True)
    a.set_defaults(func=_apply)

    st = sub.add_parser("settings", help="show or change the university's återbud settings")
    st.add_argument("--accept-from-nya", type=_yes_no, metavar="yes|no",
                    help="apply återbud from NyA in Ladok automatically (no: each becomes a case)")
    st.add_argument("--students-may-enter", type=_yes_no, metavar="yes|no",
                    help="students may enter återbud themselves in Ladok (mirror of Ladok's setting)")
    common(st)
    st.set_defaults(func=_settings)

    sy = sub.add_parser("sync", help="reconcile once: NyA → Ladok, Ladok → NyA, send")
    common(sy, peers=True)
    sy.set_defaults(func=_sync)
