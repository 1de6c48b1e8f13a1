"""``python -m simulators.schema --port 8704 [--host H]``"""

from __future__ import annotations

import argparse

from simulators._server import serve_forever
from simulators.schema.app import create_app
from simulators.schema.state import ScheduleState


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulators.schema", description="Scheduling-system simulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8704)
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--api-key", default="sim-api-key", help="the TimeEdit API key it takes")
    ap.add_argument("--organization-id", default="brygga-sim", help="the organisation the key belongs to")
    args = ap.parse_args(argv)
    print(f"scheduling-system simulator on http://{args.host}:{args.port}", flush=True)
    serve_forever(create_app(ScheduleState(api_key=args.api_key, organization_id=args.organization_id)), args.host, args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
