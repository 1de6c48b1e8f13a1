"""``python -m simulators.nya --port 8702 [--host H] [--seed N] [--offers N] [--applicants N] [--select]``"""

from __future__ import annotations

import argparse

from simulators._server import serve_forever
from simulators.nya.app import create_app
from simulators.nya.state import NyaState, seed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulators.nya", description="NyA SOAP simulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8702)
    ap.add_argument("--seed", type=int, default=1, help="datagen seed (default 1)")
    ap.add_argument("--offers", type=int, default=0, help="sample offers to publish in HT2027 (default 0)")
    ap.add_argument("--applicants", type=int, default=0, help="generated applicants in HT2027 (needs --offers)")
    ap.add_argument("--select", action="store_true", help="run the selection in HT2027 after seeding")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    if args.applicants and not args.offers:
        ap.error("--applicants needs --offers")
    state = seed(NyaState(), args.seed, offers=args.offers, applicants=args.applicants, select=args.select)
    print(f"NyA simulator on http://{args.host}:{args.port}/nya/soap (WSDL: ?wsdl); rounds HT2027 (open), "
          f"VT2027 (closed); seed {args.seed}", flush=True)
    serve_forever(create_app(state), args.host, args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
