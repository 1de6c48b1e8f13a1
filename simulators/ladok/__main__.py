"""``python -m simulators.ladok --port 8701 [--seed N] [--tls-cert F --tls-key F --tls-ca F]``"""

from __future__ import annotations

import argparse
import ssl

import uvicorn

from simulators._server import serve_forever
from simulators.ladok.app import create_app
from simulators.ladok.catalogue import seed_catalogue
from simulators.ladok.state import LadokState


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulators.ladok", description="Ladok3 simulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8701)
    ap.add_argument("--seed", type=int, help="seed a catalogue and students (deterministic per seed)")
    ap.add_argument("--courses", type=int, default=40)
    ap.add_argument("--programmes", type=int, default=6)
    ap.add_argument("--students", type=int, default=200)
    ap.add_argument("--round", default="HT2027", help="antagningsomgång of the seeded instances")
    ap.add_argument("--page-size", type=int, default=50, help="Atom feed page size")
    ap.add_argument("--tls-cert", help="server certificate (PEM); enables HTTPS")
    ap.add_argument("--tls-key", help="server private key (PEM)")
    ap.add_argument("--tls-ca", help="CA bundle (PEM): clients must present a certificate signed by it")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key) or (args.tls_ca and not args.tls_cert):
        ap.error("--tls-cert and --tls-key go together; --tls-ca needs them")
    state = LadokState(page_size=args.page_size)
    if args.seed is not None:
        seed_catalogue(state, args.seed, args.courses, args.programmes, args.round)
        state.seed_students(args.students, args.seed)
    app = create_app(state)
    scheme = "https" if args.tls_cert else "http"
    print(f"ladok simulator: {len(state.tillfallen)} instances, {len(state.students)} students "
          f"on {scheme}://{args.host}:{args.port}", flush=True)
    if not args.tls_cert:
        serve_forever(app, args.host, args.port, log_level=args.log_level)
        return
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False, lifespan="off",
                ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key, ssl_ca_certs=args.tls_ca,
                ssl_cert_reqs=ssl.CERT_REQUIRED if args.tls_ca else ssl.CERT_NONE)


if __name__ == "__main__":
    main()
