"""``brygga archive``: what the archive holds from Brygga, and sending an instance again after a fix."""

from __future__ import annotations

import argparse
import getpass
import json
import sys


def _list(args) -> int:
    from sqlalchemy import select

    from brygga.personnummer import mask
    from brygga.store import Store
    from brygga.store.models import ArchivePackage, OutboxMessage

    with Store(args.url).transaction() as s:
        packages = [{"package_id": p.package_id, "uid": p.subject_uid, "part": f"{p.part}/{p.parts}",
                     "status": p.status, "archive_id": p.archive_id, "size": p.size, "reasons": p.reasons}
                    for p in s.scalars(select(ArchivePackage).order_by(ArchivePackage.id))]
        queued = [{"uid": m.payload.get("uid"), "status": m.status, "attempts": m.attempts, "error": m.last_error}
                  for m in s.scalars(select(OutboxMessage).where(OutboxMessage.destination == "arkiv",
                                                                 OutboxMessage.status != "sent"))]
    print(mask(json.dumps({"packages": packages, "not_delivered": queued}, ensure_ascii=False, indent=2)))
    return 0


def _resend(args) -> int:
    from brygga.flows.archive import delivery
    from brygga.store import Store

    if not delivery.resend(Store(args.url), args.uid, args.actor):
        print(f"brygga archive resend: {args.uid}: nothing to send again (not queued, or already delivered)",
              file=sys.stderr)
        return 1
    print(f"{args.uid}: queued again; the next brygga_archive_export run delivers it")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("archive", help="packages delivered to the archive; send one again after a fix")
    cmds = p.add_subparsers(dest="archive_cmd", required=True)
    ls = cmds.add_parser("list", help="packages with their receipts, and what is not delivered yet")
    ls.add_argument("--url", help="store URL (default: BRYGGA_STORE_URL or var/brygga.db)")
    ls.set_defaults(func=_list)
    r = cmds.add_parser("resend", help="send a rejected or given-up instance again (after the fix)")
    r.add_argument("uid", help="the utbildningstillfälle's Ladok UID")
    r.add_argument("--actor", default=getpass.getuser())
    r.add_argument("--url", help="store URL (default: BRYGGA_STORE_URL or var/brygga.db)")
    r.set_defaults(func=_resend)
