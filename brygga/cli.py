"""``brygga`` command line: store migrations, embedded-default connections, the operators' command
groups. The simulators (test doubles, never imported by production code) run as ``python -m simulators``."""

from __future__ import annotations

import argparse
import json
import sys


def _db(args: argparse.Namespace) -> int:
    from brygga.store import Store, migrate

    store = Store(args.url)
    if args.action == "upgrade":
        migrate.upgrade(store, args.revision or "head")
    elif args.action == "downgrade":
        migrate.downgrade(store, args.revision or "base")
    print(f"store {store.engine.url.render_as_string(hide_password=True)}: revision {migrate.current(store)}")
    return 0


def _connections(args: argparse.Namespace) -> int:
    from brygga.connections import connections_document

    json.dump(connections_document(args.host, args.store_url, args.schedule_format), sys.stdout, indent=2)
    print()
    return 0


COMMAND_MODULES = ("brygga.commands.admissions", "brygga.commands.aterbud", "brygga.commands.checkpoints",
                   "brygga.commands.publications", "brygga.commands.retention", "brygga.commands.stats",
                   "brygga.commands.archive", "brygga.commands.alerts")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="brygga", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    db = sub.add_parser("db", help="migrate Brygga's own store")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?")
    db.add_argument("--url", help="SQLAlchemy URL (default: BRYGGA_STORE_URL or var/brygga.db)")
    db.set_defaults(func=_db)

    c = sub.add_parser("connections-json", help="Airflow Connections of the embedded default")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--store-url")
    c.add_argument("--schedule-format", default="timeedit", choices=("timeedit", "timeedit-file", "lis", "oneroster"),
                   help="what the schedule export delivers (lis: to the local RabbitMQ over AMQP 1.0)")
    c.set_defaults(func=_connections)

    # Operator command groups live next to their flows; each module has register(subparsers).
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        module.register(sub)

    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
