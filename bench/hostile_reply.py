"""Benchmark: memory of the admission fetch on a hostile NyA reply (huge names), side by side.

The NyA simulator (its own process) serves a round whose ``GetAdmissions`` reply holds K
admissions, each with a ``GivenName`` of S bytes (the issue's case: K = 22, S = 9.5 MB, a 208 MB
reply). Brygga fetches it with the real path — ``NyaAdapter`` streaming over HTTP (libcurl),
``nya.admission.v1``'s reader, ``admissions.fetch`` writing to a SQLite store — in a fresh process
per case, and reports that process's RSS high-water delta (VmHWM, reset before the fetch). Every
such admission is refused at the mapping boundary (a name over 300 characters) and quarantined with
a bounded payload.

Cases, run in one go so they share the machine's state: the hostile reply, the same count of
admissions with ordinary names, a tenth of the hostile reply (K/10 huge names). Memory is flat
when the hostile peak is close to the small one and does not grow with K.

    python -m bench.hostile_reply                     # K = 22, S = 9.5 MB
    python -m bench.hostile_reply --quick             # K = 6, S = 4 MB
    python -m bench.hostile_reply --before 6ed3efa    # also Brygga of that commit, in the same run

With ``--before COMMIT`` the hostile cases are also fetched by Brygga's ``brygga``, ``adapters`` and
``mappings`` packages of that commit (a git worktree; simulators and this benchmark stay current).

Results: ``bench/results/hostile_reply.json`` and ``.md`` (``.quick.*`` in quick mode).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench._common import free_port, proc_status, serve, wait_port

ROUND = "HT2027"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MB = 1024 * 1024


def _fragment(n: int, name_bytes: int) -> str:
    from brygga.personnummer import with_check_digit

    name = "Å" * (name_bytes // 2)  # two bytes each in UTF-8
    pnr = with_check_digit(f"19850312{100 + n:03d}")
    return (f"<Admission><AdmissionId>HT2027-B{n}</AdmissionId><Sequence>{{sequence}}</Sequence>"
            f"<Round>{ROUND}</Round><Personnummer>{pnr}</Personnummer><GivenName>{name}</GivenName>"
            "<FamilyName>Svensson</FamilyName><OfferId>0b0b7f9e-8a52-4d7a-9d8e-000000000001</OfferId>"
            "<Utbildningskod>TDA100</Utbildningskod><Tillfalleskod>11001</Tillfalleskod>"
            "<ProgrammeInternal>false</ProgrammeInternal><Admitted>true</Admitted><Accepted>true</Accepted>"
            "<FeeLiable>false</FeeLiable></Admission>")


def _serve_nya(port: int, k: int, name_bytes: int) -> None:
    from simulators.nya.app import create_app
    from simulators.nya.state import NyaState

    state = NyaState()
    state.put_round(ROUND, "open")
    state.add_raw_admissions(ROUND, [_fragment(i, name_bytes) for i in range(k)])
    serve(create_app(state), port)


def _fetch(args: tuple[str, str, str | None]) -> dict:
    """In a fresh process: fetch the round once; RSS high-water delta over the process before it.
    With ``path``, Brygga is imported from there (multiprocessing hands the child the parent's
    sys.path, so PYTHONPATH would not do)."""
    url, db, path = args
    if path:
        import sys

        sys.path.insert(0, path)
    from adapters.nya import NyaAdapter
    from brygga.connections import PeerConfig
    from brygga.flows import admissions
    from brygga.store import Store, migrate

    store = Store(f"sqlite:///{db}")
    migrate.upgrade(store)
    nya = NyaAdapter(PeerConfig("nya", url, extra={"timeout": 300}))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = proc_status("VmRSS")
    t = time.perf_counter()
    counts = admissions.fetch(store, nya, ROUND)
    return {"seconds": round(time.perf_counter() - t, 2), "counts": counts,
            "rss_before_mib": round(before / MB, 1), "peak_delta_mib": round((proc_status("VmHWM") - before) / MB, 1)}


@contextlib.contextmanager
def brygga_of(commit: str) -> Iterator[str]:
    """A directory whose ``brygga``, ``adapters``, ``mappings`` are those of ``commit`` and whose
    ``bench``, ``simulators`` are this tree's: put first on PYTHONPATH."""
    with tempfile.TemporaryDirectory() as tmp:
        tree, mix = Path(tmp) / "tree", Path(tmp) / "mix"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), commit], check=True)
        try:
            mix.mkdir()
            for name in ("brygga", "adapters", "mappings"):
                (mix / name).symlink_to(tree / name)
            for name in ("bench", "simulators"):
                (mix / name).symlink_to(ROOT / name)
            yield str(mix)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def case(label: str, k: int, name_bytes: int, pythonpath: str | None = None) -> dict:
    ctx = mp.get_context("spawn")
    port = free_port()
    sim = ctx.Process(target=_serve_nya, args=(port, k, name_bytes), daemon=True)
    sim.start()
    try:
        wait_port(port)
        with tempfile.TemporaryDirectory() as tmp, ctx.Pool(1) as pool:
            out = pool.apply(_fetch, ((f"http://127.0.0.1:{port}", f"{tmp}/bench.db", pythonpath),))
    finally:
        sim.terminate()
        sim.join()
    reply_mib = k * (name_bytes + 520) / MB
    return {"case": label, "admissions": k, "name_mib": round(name_bytes / MB, 2), "reply_mib": round(reply_mib, 1),
            **out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--k", type=int)
    ap.add_argument("--name-mb", type=float)
    ap.add_argument("--before", metavar="COMMIT", help="also fetch with Brygga of this commit")
    a = ap.parse_args(argv)
    k = a.k or (6 if a.quick else 22)
    size = int((a.name_mb or (4 if a.quick else 9.5)) * 1_000_000)
    runs = [case("hostile: huge names", k, size), case("same count, ordinary names", k, 12),
            case("a tenth of the huge names", max(1, k // 10), size)]
    if a.before:
        with brygga_of(a.before) as path:
            runs += [case(f"hostile: huge names — Brygga at {a.before}", k, size, path),
                     case(f"a tenth of the huge names — Brygga at {a.before}", max(1, k // 10), size, path)]
    res = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
           "machine": platform.processor() or platform.machine(), "runs": runs}
    suffix = ".quick" if a.quick else ""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"hostile_reply{suffix}.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = ["# Admission fetch on a hostile NyA reply: memory", "",
             f"Run {res['when']} by `python -m bench.hostile_reply{' --quick' if a.quick else ''}`, Python "
             f"{res['python']}; the NyA simulator in its own process, Brygga's fetch (HTTP stream, reader, SQLite "
             "store) in a fresh process per case; RSS high-water delta of that process over the fetch.", "",
             "| case | admissions | name MiB | reply MiB | stored pending | invalid (quarantined) | fetch s "
             "| RSS peak + MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        c = r["counts"]
        lines.append(f"| {r['case']} | {r['admissions']} | {r['name_mib']} | {r['reply_mib']} | "
                     f"{c['read'] - c['invalid'] - c['declined']} | {c['invalid']} | {r['seconds']} | "
                     f"{r['peak_delta_mib']} |")
    hostile, tenth = runs[0]["peak_delta_mib"], runs[2]["peak_delta_mib"]
    lines += ["", f"Peak of the full hostile reply / peak of a tenth of it: {hostile / max(tenth, 0.1):.2f}x "
                  f"(for a reply {runs[0]['reply_mib'] / max(runs[2]['reply_mib'], 0.1):.0f}x larger).", ""]
    if a.before:
        old = runs[3]["peak_delta_mib"]
        lines += [f"Brygga at {a.before} on the same hostile reply, in the same run: {old} MiB peak, "
                  f"{runs[3]['seconds']} s (now {hostile} MiB, {runs[0]['seconds']} s: {old / max(hostile, 0.1):.0f}x "
                  "less memory); it stored the huge names whole.", ""]
    (RESULTS / f"hostile_reply{suffix}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
