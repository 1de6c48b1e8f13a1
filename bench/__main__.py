"""Run every benchmark in this package: each module with a ``main(argv)`` function.

    python -m bench                 # all benchmarks, full size
    python -m bench --quick         # all benchmarks, small size (arguments are passed to each main)
    python -m bench --list          # names only

Every module here with a ``main(argv)`` is a benchmark and is found automatically (``--list``), e.g.
``bench.offer_export``: utbud to NyA end to end, 10k instances, per phase, SQLite (+ PostgreSQL).
Results: ``bench/results/<name>[.quick].json`` and ``.md``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def discover() -> list[tuple[str, object]]:
    found = []
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "main", None)):
            found.append((info.name, module.main))
    return found


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    benchmarks = discover()
    if "--list" in argv:
        for name, _ in benchmarks:
            print(name)
        return 0
    failed = []
    for name, run in benchmarks:
        print(f"=== bench.{name} {' '.join(argv)}".rstrip(), flush=True)
        t0 = time.perf_counter()
        try:
            rc = run(list(argv)) or 0
        except SystemExit as e:  # argparse errors, explicit exits
            rc = e.code if isinstance(e.code, int) else 1
        except Exception as e:  # one broken benchmark does not hide the others
            print(f"bench.{name} crashed: {type(e).__name__}: {e}", file=sys.stderr)
            rc = 1
        print(f"=== bench.{name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.perf_counter() - t0:.1f}s\n")
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
