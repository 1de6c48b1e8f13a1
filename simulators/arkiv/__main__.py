"""``python -m simulators.arkiv --port 8705 [--host H]``"""

from __future__ import annotations

import argparse

from simulators._server import serve_forever
from simulators.arkiv.app import create_app
from simulators.arkiv.state import ArchiveState


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulators.arkiv", description="Archive (e-arkiv) simulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8705)
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    print(f"archive simulator on http://{args.host}:{args.port}", flush=True)
    serve_forever(create_app(ArchiveState()), args.host, args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
