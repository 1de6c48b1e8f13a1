"""Benchmark: HTTP clients side by side against the Ladok simulator, in one run.

Part 1 (the issue's figure): ``N`` keep-alive GETs of one Ladok student (``GET
/studentinformation/student/personnummer/{pnr}``) per client, the simulator in its own process, so the CPU time
of this process is the client's. Clients: Brygga's transport (``adapters.http``, libcurl driven
through a ``CurlMulti``), plain pycurl ``easy.perform()`` (the floor libcurl sets), Brygga's former
hand-written HTTP/1.1 client (httptools; loaded from git history, commit ``LEGACY_COMMIT``, when
git is at hand), urllib3, requests, httpx and aiohttp (when installed). Rounds interleave the
clients so load from elsewhere falls on all alike; the figure is the median over rounds of client
CPU per request, and each client's ratio to Brygga's transport in the same run.

Part 2: a streamed reply (a Ladok feed page-sized body of ``--stream-mib`` MiB) read in 64 KiB
``read()`` calls through Brygga's transport and the legacy client: MB/s, CPU and the peak RSS
growth of each, showing that libcurl's pause keeps memory flat.

    python -m bench.http_client            # N = 5000, 6 rounds
    python -m bench.http_client --quick    # N = 1000, 3 rounds

Results: ``bench/results/http_client[.quick].{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
LEGACY_COMMIT = "6a10bf7"  # the last commit with the hand-written client in adapters/http.py
ACCEPT = {"Accept": "application/vnd.ladok-studentinformation+xml"}
SEED = 7


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _legacy_module():
    """The hand-written client as it was, from git history (None without git or that commit)."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{LEGACY_COMMIT}:adapters/http.py"],
                             capture_output=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(tempfile.mkdtemp(prefix="brygga-bench-")) / "legacy_http.py"
    path.write_bytes(src)
    spec = importlib.util.spec_from_file_location("legacy_http", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError:  # httptools gone
        return None
    return module


def clients(base: str) -> dict[str, Callable[[], tuple[Callable[[str], bytes], Callable[[], None]]]]:
    """name -> factory giving (get(url) -> body, close)."""
    from adapters.http import session
    from brygga.connections import PeerConfig

    def brygga():
        c = session(PeerConfig("ladok", base))
        return (lambda url: c.get(url, headers=ACCEPT).content), c.close

    def pycurl_easy():
        import pycurl

        easy = pycurl.Curl()
        easy.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in ACCEPT.items()])
        head: list[bytes] = []
        easy.setopt(pycurl.HEADERFUNCTION, head.append)

        def get(url: str) -> bytes:
            body: list[bytes] = []
            head.clear()
            easy.setopt(pycurl.WRITEFUNCTION, body.append)
            easy.setopt(pycurl.URL, url)
            easy.perform()
            return b"".join(body)

        return get, easy.close

    out = {"brygga (libcurl, CurlMulti)": brygga, "pycurl easy.perform": pycurl_easy}
    legacy = _legacy_module()
    if legacy is not None:
        def hand_written():
            c = legacy.session(PeerConfig("ladok", base))
            return (lambda url: c.get(url, headers=ACCEPT).content), c.close

        out[f"hand-written HTTP/1.1 ({LEGACY_COMMIT})"] = hand_written

    def urllib3_():
        import urllib3

        pool = urllib3.PoolManager(maxsize=1)
        return (lambda url: pool.request("GET", url, headers=ACCEPT).data), pool.clear

    def requests_():
        import requests

        s = requests.Session()
        return (lambda url: s.get(url, headers=ACCEPT).content), s.close

    def httpx_():
        import httpx

        c = httpx.Client()
        return (lambda url: c.get(url, headers=ACCEPT).content), c.close

    out.update({"urllib3": urllib3_, "requests": requests_, "httpx": httpx_})
    if importlib.util.find_spec("aiohttp") is not None:
        def aiohttp_():
            import aiohttp

            loop = asyncio.new_event_loop()
            s = loop.run_until_complete(_aiohttp_session(aiohttp))

            async def fetch(url: str) -> bytes:
                async with s.get(url, headers=ACCEPT) as r:
                    return await r.read()

            def close() -> None:
                loop.run_until_complete(s.close())
                loop.close()

            return (lambda url: loop.run_until_complete(fetch(url))), close

        out["aiohttp"] = aiohttp_
    return out


async def _aiohttp_session(aiohttp):
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))


def _serve_ladok(port: int, students: int) -> None:
    from bench._common import serve
    from simulators.ladok.app import create_app
    from simulators.ladok.state import LadokState

    state = LadokState(page_size=50)
    state.seed_students(students, SEED)
    serve(create_app(state), port)


def _serve_blob(port: int, mib: int) -> None:
    """A peer whose reply to any GET is ``mib`` MiB of XML (sent at loopback speed)."""
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from bench._common import serve

    entry = b"<entry><id>urn:x</id><content>" + b"x" * 900 + b"</content></entry>\n"

    async def blob(request):
        async def body():
            yield b"<feed>"
            chunk = entry * 64
            for _ in range(mib * (1 << 20) // len(chunk)):
                yield chunk
            yield b"</feed>"

        return StreamingResponse(body(), media_type="application/xml")

    serve(Starlette(routes=[Route("/blob", blob)]), port)


def part1(base: str, personnummer: str, n: int, rounds: int) -> dict:
    url = f"{base}/studentinformation/student/personnummer/{personnummer}"
    made = clients(base)
    want = None
    cpu: dict[str, list[float]] = {k: [] for k in made}
    wall: dict[str, list[float]] = {k: [] for k in made}
    for r in range(rounds):
        names = list(made)
        names = names[r % len(names):] + names[:r % len(names)]  # rotate who goes first
        for name in names:
            get, close = made[name]()
            body = get(url)  # warm up: connect, first request
            want = want or body
            assert body == want, f"{name} read a different body"
            t, c = time.perf_counter(), _cpu()
            for _ in range(n):
                get(url)
            cpu[name].append((_cpu() - c) / n * 1000)
            wall[name].append((time.perf_counter() - t) / n * 1000)
            close()
    ref = statistics.median(cpu["brygga (libcurl, CurlMulti)"])
    return {name: {"cpu_ms_median": round(statistics.median(v), 4), "cpu_ms_best": round(min(v), 4),
                   "wall_ms_median": round(statistics.median(wall[name]), 4),
                   "ratio_to_brygga": round(statistics.median(v) / ref, 2)} for name, v in cpu.items()}


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1 << 20)


def part2(base: str, mib: int, rounds: int) -> dict:
    from adapters.http import session
    from brygga.connections import PeerConfig

    legacy = _legacy_module()
    variants = {"brygga (libcurl, CurlMulti)": lambda: session(PeerConfig("blob", base))}
    if legacy is not None:
        variants[f"hand-written HTTP/1.1 ({LEGACY_COMMIT})"] = lambda: legacy.session(PeerConfig("blob", base))
    out: dict[str, dict] = {}
    for name, make in variants.items():
        rates, cpus, growth = [], [], []
        for _ in range(rounds):
            c = make()
            before = _rss_mib()
            peak = before
            t, c0 = time.perf_counter(), _cpu()
            r = c.get(base + "/blob", stream=True)
            size = 0
            while piece := r.raw.read(65536):
                size += len(piece)
                if size % (8 << 20) < 65536:
                    peak = max(peak, _rss_mib())
                    time.sleep(0.002)  # a reader that also does work: the reply must wait for it
            r.close()
            seconds = time.perf_counter() - t
            rates.append(size / seconds / 1e6)
            cpus.append((_cpu() - c0) / (size / 1e6) * 1000)
            growth.append(peak - before)
            c.close()
        out[name] = {"mb_per_s_median": round(statistics.median(rates), 1),
                     "cpu_ms_per_mb_median": round(statistics.median(cpus), 3),
                     "rss_growth_mib_max": round(max(growth), 1), "bytes": size}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.http_client", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--stream-mib", type=int, default=256)
    args = ap.parse_args(argv)
    n = args.n or (1000 if args.quick else 5000)
    rounds = args.rounds or (3 if args.quick else 6)
    import multiprocessing as mp

    from bench._common import free_port, wait_port
    from simulators import datagen

    ctx = mp.get_context("spawn")
    ports = {"ladok": free_port(), "blob": free_port()}
    procs = [ctx.Process(target=_serve_ladok, args=(ports["ladok"], 10), daemon=True),
             ctx.Process(target=_serve_blob, args=(ports["blob"], args.stream_mib), daemon=True)]
    for p in procs:
        p.start()
    try:
        for port in ports.values():
            wait_port(port)
        base = f"http://127.0.0.1:{ports['ladok']}"
        personnummer = next(iter(datagen.people(1, SEED))).personnummer
        res = {"n": n, "rounds": rounds, "python": platform.python_version(), "cpus": os.cpu_count(),
               "loadavg_before": os.getloadavg()[0],
               "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               "get": part1(base, personnummer, n, rounds),
               "stream": part2(f"http://127.0.0.1:{ports['blob']}", args.stream_mib, max(2, rounds // 2)),
               "stream_mib": args.stream_mib, "loadavg_after": os.getloadavg()[0]}
    finally:
        for p in procs:
            p.terminate()
    name = "http_client" + (".quick" if args.quick else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    md = [f"# HTTP client benchmark ({res['when']})", "",
          f"{n} keep-alive GETs of a Ladok student per client and round, {rounds} rounds interleaved, the Ladok "
          f"simulator in its own process; Python {res['python']}, {res['cpus']} CPUs, load "
          f"{res['loadavg_before']:.1f} → {res['loadavg_after']:.1f}.", "",
          "| client | CPU ms/request (median) | best | wall ms/request | CPU ratio to Brygga's |", "|---|---:|---:|---:|---:|"]
    md += [f"| {k} | {v['cpu_ms_median']} | {v['cpu_ms_best']} | {v['wall_ms_median']} | {v['ratio_to_brygga']} |"
           for k, v in sorted(res["get"].items(), key=lambda kv: kv[1]["cpu_ms_median"])]
    md += ["", f"Streamed reply of {args.stream_mib} MiB read in 64 KiB pieces by a reader that pauses 2 ms every 8 MiB:", "",
           "| client | MB/s | CPU ms per MB | RSS growth (MiB, max) |", "|---|---:|---:|---:|"]
    md += [f"| {k} | {v['mb_per_s_median']} | {v['cpu_ms_per_mb_median']} | {v['rss_growth_mib_max']} |"
           for k, v in res["stream"].items()]
    (RESULTS / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
