"""``python -m simulators.folkbokforing --port 8703 [--host H] [--seed N] [--people N]``"""

from __future__ import annotations

import argparse

from simulators._server import serve_forever
from simulators.folkbokforing.app import create_app
from simulators.folkbokforing.state import FolkbokforingState


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulators.folkbokforing", description="Population register simulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8703)
    ap.add_argument("--seed", type=int, default=1, help="datagen seed (default 1)")
    ap.add_argument("--people", type=int, default=1000, help="number of seeded people (default 1000)")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    if args.people < 0:
        ap.error("--people must be >= 0")
    state = FolkbokforingState(seed=args.seed, people=args.people)
    print(f"folkbokforing simulator: {len(state)} people (seed {args.seed}) on http://{args.host}:{args.port}", flush=True)
    serve_forever(create_app(state), args.host, args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
