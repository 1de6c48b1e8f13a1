"""Benchmark: the NyA admission reader (``nya.admission.v1``) against zeep and raw lxml.

One real ``GetAdmissions`` SOAP reply with N admissions is produced by the NyA simulator over
real HTTP; then the same bytes are read, several times each, by

* **zeep**: ``client.service._binding.process_reply(client, GetAdmissions, response)``, i.e.
  exactly what ``client.service.GetAdmissions(...)`` does after the HTTP call returns (parse the
  envelope, build the zeep objects). The client was built from the simulator's ``?wsdl``.
* **brygga**: ``registry.get("nya", "admission", 1).read(io.BytesIO(data))``, fully consumed
  (``Admission`` records, or ``RecordError``s, of which there must be none).
* **lxml**: raw ``lxml.etree.iterparse`` over the same bytes, counting ``Admission`` elements and
  clearing them (and their predecessors) as it goes: the floor for any streaming reader.
* **fields**: the same plus each child's tag and text once into a dict: the floor for any reader
  that looks at every field from Python (the rest of brygga's time is its checks and the record).

All four get the very same ``bytes`` object. zeep and brygga materialise every record (zeep keeps
them all in its result; brygga builds each ``Admission`` and hands it on, as a streaming reader
does); before timing, both must read the N/4 reply to equal records, field by field.

The readers run interleaved (round k: zeep, brygga, lxml, fields), so load from other processes on the
machine falls on all of them alike. Each run records wall time, process CPU time and the 1-minute
load average; the report gives best and median of each, and the brygga/zeep ratio by median, by
best and paired (zeep and brygga of the same round).

Peak memory of the streaming readers is measured at N and N/4 in fresh subprocesses (RSS
high-water delta from VmHWM, reset before the read, plus ``tracemalloc``'s Python-heap peak), to show it is flat
in the input size; zeep's is measured the same way for contrast.

    python -m bench.admission_reader                # N = 100_000
    python -m bench.admission_reader --quick        # N = 10_000
    python -m bench.admission_reader --n 50000 --reps 7 --zeep-reps 3 --check

Results: ``bench/results/admission_reader.json`` and ``.md`` (``admission_reader.quick.*`` in
quick mode, so a smoke run does not overwrite the full figures).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import requests
import zeep
from lxml import etree

from bench._common import proc_status, reset_peak
from brygga.records import Admission
from mappings import registry
from mappings.base import RecordError

NS = "urn:brygga:nya:1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
CONTENT_TYPE = "text/xml; charset=utf-8"
ADMISSION_TAG = f"{{{NS}}}Admission"
ROUND = "HT2027"
GOAL = 5.0  # brygga must read at least GOAL x as many records/s as zeep
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
WSDL_FILE = ROOT / "schemas" / "nya" / "nya-1.wsdl"
MB = 1024 * 1024


# -- producing the reply ------------------------------------------------------------------------


def build_state(n: int, seed_value: int = 1):
    """A round with ``n`` admissions covering every optional part of an ``Admission``: ordinary and
    programme-internal offers, admitted and reserves, accepted or not, fee-liable applicants,
    conditions (some lifted) and some återbud."""
    # Imported here, not at module level: the memory probes run this module in a subprocess and
    # must not depend on (or pay for) the simulator.
    from simulators.nya.state import NyaState, sample_offer, seed

    state = seed(NyaState(), seed_value)  # rounds HT2027 (open), VT2027 (closed)
    n_offers = max(10, min(200, n // 100))
    places = max(1, (n * 6 // 10) // n_offers)  # ~60 % admitted, the rest reserves
    n_prog = max(1, n_offers // 10)
    state.publish_offers(ROUND, "ordinary", [sample_offer(i, places=places, seed=seed_value)
                                             for i in range(1, n_offers - n_prog + 1)])
    state.publish_offers(ROUND, "programme-internal",
                         [sample_offer(i, places=places, kind="programme-internal", seed=seed_value)
                          for i in range(n_offers - n_prog + 1, n_offers + 1)])
    # One choice each: one applicant -> exactly one admission, so the reply has exactly n.
    state.generate_applicants(ROUND, n, seed=seed_value, choices=1, fee_share=0.1, condition_share=0.1)
    state.run_selection(ROUND)
    admissions = list(state.round_state(ROUND).admissions.values())
    conditioned = [a for a in admissions if a.conditions]
    for a in conditioned[::3]:
        state.lift_condition(ROUND, a.admission_id, a.conditions[0].code, dt.date(2027, 8, 1))
    for a in [a for a in admissions if a.admitted][::50]:
        state.register_aterbud(ROUND, admission_id=a.admission_id, date=dt.date(2027, 8, 15), origin="applicant")
    return state


def get_admissions(session: requests.Session, url: str, from_sequence: int | None = None) -> requests.Response:
    """POST a GetAdmissions request to the simulator; the raw HTTP reply (status checked)."""
    from_seq = f"<n:FromSequence>{from_sequence}</n:FromSequence>" if from_sequence else ""
    body = (f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:n="{NS}">'
            f"<soap:Body><n:GetAdmissions><n:Round>{ROUND}</n:Round>{from_seq}</n:GetAdmissions>"
            "</soap:Body></soap:Envelope>")
    r = session.post(url + "/nya/soap", data=body.encode(), timeout=600,
                     headers={"Content-Type": CONTENT_TYPE, "SOAPAction": f"{NS}#GetAdmissions"})
    if r.status_code != 200:
        raise RuntimeError(f"GetAdmissions failed: HTTP {r.status_code}: {r.content[:500]!r}")
    return r


def produce(n: int) -> tuple[requests.Response, requests.Response, zeep.Client, dict]:
    """Full reply (n admissions), quarter reply (the last n/4, via FromSequence) and a zeep client
    built from the simulator's WSDL, all over real HTTP."""
    from simulators._server import serve_in_thread
    from simulators.nya.app import create_app

    t0 = time.perf_counter()
    state = build_state(n)
    t_state = time.perf_counter() - t0
    server = serve_in_thread(create_app(state))
    try:
        with requests.Session() as s:
            t1 = time.perf_counter()
            full = get_admissions(s, server.url)
            t_http = time.perf_counter() - t1
            admissions = list(state.round_state(ROUND).admissions.values())  # in sequence order
            quarter = get_admissions(s, server.url, admissions[len(admissions) - n // 4].sequence)
        client = zeep.Client(server.url + "/nya/soap?wsdl")
    finally:
        server.stop()
    info = {"build_state_s": round(t_state, 2), "http_get_admissions_s": round(t_http, 2),
            "reply_bytes": len(full.content), "quarter_reply_bytes": len(quarter.content)}
    return full, quarter, client, info


# -- the readers --------------------------------------------------------------------------------


def zeep_reader(client: zeep.Client) -> Callable[[requests.Response], int]:
    binding = client.service._binding
    operation = binding.get("GetAdmissions")

    def run(response: requests.Response) -> int:
        result = binding.process_reply(client, operation, response)
        return len(result.Admission)

    return run


def brygga_read(data: bytes) -> int:
    reader = registry.get("nya", "admission", 1)
    n = 0
    for rec in reader.read(io.BytesIO(data)):
        if isinstance(rec, RecordError):
            raise AssertionError(f"brygga reader rejected a simulator record: {rec}")
        n += 1
    return n


def lxml_read(data: bytes) -> int:
    n = 0
    for _, el in etree.iterparse(io.BytesIO(data), events=("end",), tag=ADMISSION_TAG):
        n += 1
        el.clear(keep_tail=False)
        while el.getprevious() is not None:
            del el.getparent()[0]
    return n


def fields_read(data: bytes) -> int:
    """The field-access floor: ``lxml_read`` plus what any reader of every field must do in
    Python: each child's tag and text, once, into a dict (no checks, no record built)."""
    n = 0
    for _, el in etree.iterparse(io.BytesIO(data), events=("end",), tag=ADMISSION_TAG):
        fields = {child.tag: child.text for child in el}
        n += fields is not None
        el.clear(keep_tail=False)
        while el.getprevious() is not None:
            del el.getparent()[0]
    return n


def response_from_bytes(data: bytes) -> requests.Response:
    r = requests.Response()
    r.status_code, r._content, r.encoding = 200, data, "utf-8"
    r.headers["Content-Type"] = CONTENT_TYPE
    return r


def timed_once(fn: Callable[[], int], expect: int) -> dict:
    """One run: wall and process CPU time, and the 1-minute load average before and after."""
    gc.collect()
    load0 = os.getloadavg()[0]
    c0, t0 = time.process_time(), time.perf_counter()
    got = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if got != expect:
        raise AssertionError(f"read {got} records, expected {expect}")
    return {"wall_s": wall, "cpu_s": cpu, "load1": round((load0 + os.getloadavg()[0]) / 2, 2)}


def run_interleaved(readers: dict[str, tuple[Callable[[], int], int]], expect: int,
                    log: Callable[[str], None] = print) -> dict[str, list[dict]]:
    """Round k runs every reader that still has runs to do, in the given order; returns the runs
    of each reader, in order."""
    runs: dict[str, list[dict]] = {name: [] for name in readers}
    for k in range(max(reps for _, reps in readers.values())):
        for name, (fn, reps) in readers.items():
            if k < reps:
                runs[name].append(timed_once(fn, expect))
        log(f"  round {k + 1}: " + ", ".join(f"{name} {r[k]['wall_s']:.2f}s" for name, r in runs.items() if len(r) > k)
            + f" (load {os.getloadavg()[0]:.2f})")
    return runs


def _zeep_key(a) -> tuple:
    """A zeep Admission as the fields of a brygga ``Admission`` (same names, same types)."""
    conditions = tuple((c.Code, c.Text, bool(c.Lifted), c.LiftedDate.isoformat() if c.LiftedDate else None)
                       for c in (a.Condition or ()))
    return (a.AdmissionId, int(a.Sequence), a.Round, a.Personnummer, a.GivenName, a.FamilyName, a.OfferId,
            a.Utbildningskod, a.Tillfalleskod, bool(a.ProgrammeInternal), bool(a.Admitted), bool(a.Accepted),
            bool(a.FeeLiable), a.ApplicationFeePaid, a.ProgrammeCode, a.PackageId, conditions,
            a.Aterbud.Date.isoformat() if a.Aterbud is not None else None)


def _brygga_key(a: Admission) -> tuple:
    return (a.admission_id, a.sequence, a.round, a.personnummer, a.given_name, a.family_name, a.offer_id,
            a.utbildningskod, a.tillfalleskod, a.programme_internal, a.admitted, a.accepted, a.fee_liable,
            a.application_fee_paid, a.programme_code, a.package_id,
            tuple((c.code, c.text, c.lifted, c.lifted_date) for c in a.conditions), a.aterbud_date)


def check_same_records(client: zeep.Client, quarter: requests.Response) -> int:
    """zeep and brygga must read the same admissions, every field, in the same order (so both do
    the same work); returns how many were compared."""
    z = client.service._binding.process_reply(client, client.service._binding.get("GetAdmissions"), quarter)
    zk = [_zeep_key(a) for a in z.Admission]
    bk = [_brygga_key(a) if isinstance(a, Admission) else a
          for a in registry.get("nya", "admission", 1).read(quarter.content)]
    if zk != bk:
        bad = next(i for i, (x, y) in enumerate(zip(zk, bk, strict=True)) if x != y) if len(zk) == len(bk) else "count"
        raise AssertionError(f"zeep and brygga disagree on the admissions in the reply (first difference: {bad})")
    if not any(k[16] for k in zk) or not any(k[17] for k in zk):
        raise AssertionError("the compared reply has no conditions or no återbud: the check would be weak")
    return len(zk)


# -- memory, in fresh subprocesses --------------------------------------------------------------


def probe_memory(path: str, reader: str) -> dict:
    """Run in a fresh process: read ``path`` once with ``reader``; RSS high-water delta over the
    loaded input, then (second pass) tracemalloc's peak of the Python heap. lxml/libxml2 memory
    shows only in RSS."""
    data = Path(path).read_bytes()
    if reader == "zeep":
        client = zeep.Client(str(WSDL_FILE))
        run_z, response = zeep_reader(client), response_from_bytes(data)
        fn = lambda: run_z(response)  # noqa: E731
    else:
        fn = {"brygga": lambda: brygga_read(data), "lxml": lambda: lxml_read(data)}[reader]
    gc.collect()
    reset = reset_peak()
    rss_before, hwm_before = proc_status("VmRSS"), proc_status("VmHWM")
    records = fn()
    hwm_after = proc_status("VmHWM")
    gc.collect()
    tracemalloc.start()
    fn()
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"reader": reader, "records": records, "input_bytes": len(data), "peak_reset": reset,
            "rss_before": rss_before, "rss_hwm_before": hwm_before, "rss_hwm_after": hwm_after,
            "rss_delta": max(0, hwm_after - max(rss_before, hwm_before)), "tracemalloc_peak": py_peak}


def memory_in_subprocess(path: Path, reader: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.admission_reader", "--probe-memory", str(path), reader],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"memory probe {reader} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- machine info and reporting -----------------------------------------------------------------


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    info = {"cpu": cpu, "cores_logical": os.cpu_count(),
            "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(), "python": sys.version.split()[0],
            "python_implementation": platform.python_implementation(),
            "lxml": etree.__version__, "libxml2": ".".join(map(str, etree.LIBXML_VERSION)), "zeep": zeep.__version__}
    try:
        import psutil
        info["cores_physical"] = psutil.cpu_count(logical=False)
        info["memory_total_bytes"] = psutil.virtual_memory().total
    except ImportError:
        pass
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                            text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    # The exact reader code measured (the working tree may differ from the commit).
    info["reader_sources_sha256"] = {
        rel: hashlib.sha256((ROOT / rel).read_bytes()).hexdigest()[:12]
        for rel in ("mappings/nya/v1.py", "mappings/base.py", "brygga/xmlsafe.py", "brygga/personnummer.py")
        if (ROOT / rel).exists()}
    return info


def summary(runs: list[dict], n: int) -> dict:
    walls, cpus = [r["wall_s"] for r in runs], [r["cpu_s"] for r in runs]
    best, med = min(walls), statistics.median(walls)
    cbest, cmed = min(cpus), statistics.median(cpus)
    return {"runs": len(runs), "times_s": [round(t, 4) for t in walls], "cpu_times_s": [round(t, 4) for t in cpus],
            "load1": [r["load1"] for r in runs], "best_s": round(best, 4), "median_s": round(med, 4),
            "records_per_s_best": round(n / best), "records_per_s_median": round(n / med),
            "cpu_best_s": round(cbest, 4), "cpu_median_s": round(cmed, 4),
            "records_per_cpu_s_best": round(n / cbest), "records_per_cpu_s_median": round(n / cmed)}


def ratios(runs: dict[str, list[dict]], readers: dict[str, dict]) -> dict:
    """brygga/zeep records/s: by median wall time (the goal), best wall time, paired rounds, CPU time."""
    z, b = readers["zeep"], readers["brygga"]
    paired = [zr["wall_s"] / br["wall_s"] for zr, br in zip(runs["zeep"], runs["brygga"], strict=False)]
    return {"median": round(z["median_s"] / b["median_s"], 2), "best": round(z["best_s"] / b["best_s"], 2),
            "paired_median": round(statistics.median(paired), 2), "paired": [round(p, 2) for p in paired],
            "cpu_median": round(z["cpu_median_s"] / b["cpu_median_s"], 2),
            "cpu_best": round(z["cpu_best_s"] / b["cpu_best_s"], 2)}


LABELS = {"zeep": "zeep process_reply", "brygga": "brygga nya.admission.v1", "lxml": "lxml iterparse (floor)",
          "fields": "lxml + every field (floor)"}


def _load_text(res: dict) -> str:
    loads = [x for v in res["readers"].values() for x in v["load1"]]
    return (f"1-min load average during the runs {min(loads):.2f} to {max(loads):.2f} (median "
            f"{statistics.median(loads):.2f}) on {res['machine']['cores_available']} cores")


def render(res: dict) -> tuple[str, str]:
    """(terminal table, markdown)."""
    n, r = res["n"], res["readers"]
    zmed = r["zeep"]["median_s"]
    rows = [(LABELS[k], v["best_s"], v["median_s"], v["records_per_s_best"], v["records_per_s_median"],
             zmed / v["median_s"], v["cpu_median_s"], v["records_per_cpu_s_median"]) for k, v in r.items()]
    m = res["machine"]
    head = (f"NyA GetAdmissions reply: N={n:,} admissions, {res['reply']['reply_bytes'] / MB:.1f} MiB; "
            f"{m['cpu']} ({m['cores_available']} cores), Python {m['python']}, lxml {m['lxml']} "
            f"(libxml2 {m['libxml2']}), zeep {m['zeep']}")
    ratio = res["ratio_brygga_zeep"]
    verdict = (f"brygga/zeep: {ratio['median']:.1f}x by median, {ratio['best']:.1f}x best, "
               f"{ratio['paired_median']:.1f}x paired median, {ratio['cpu_median']:.1f}x by CPU time "
               f"(goal >= {GOAL:g}x by median: {'met' if res['goal_met'] else 'NOT met'}); "
               f"brygga runs at {res['brygga_share_of_floor']:.0%} of the raw-iterparse floor"
               + (f" and at {res['brygga_share_of_field_floor']:.0%} of the field-access floor"
                  if res.get("brygga_share_of_field_floor") else ""))
    load = _load_text(res)
    mem_rows = [(f"{LABELS[p['reader']]}", p["records"], p["input_bytes"] / MB, p["rss_delta"] / MB,
                 p["tracemalloc_peak"] / MB) for p in res["memory"]]

    lines = [head, load, "",
             f"{'reader':<26}{'best s':>9}{'median s':>10}{'rec/s best':>13}{'rec/s median':>14}{'vs zeep':>9}"
             f"{'CPU s med':>11}{'rec/CPU s':>11}"]
    lines += [f"{a:<26}{b:>9.3f}{c:>10.3f}{d:>13,}{e:>14,}{f:>8.1f}x{g:>11.3f}{h:>11,}" for a, b, c, d, e, f, g, h in rows]
    lines += ["", verdict]
    if res["memory"]:
        lines += ["", "peak memory, one read in a fresh process (RSS high-water delta; tracemalloc = Python heap only):",
                  f"{'reader':<26}{'records':>9}{'input MiB':>11}{'RSS +MiB':>10}{'tracemalloc MiB':>17}"]
        lines += [f"{a:<26}{b:>9,}{c:>11.1f}{d:>10.1f}{e:>17.2f}" for a, b, c, d, e in mem_rows]
    text = "\n".join(lines)

    cmd = "python -m bench.admission_reader" + (" --quick" if res["mode"] == "quick" else "")
    md = [f"# NyA admission reader benchmark ({res['mode']})", "",
          f"Run {res['timestamp']} by `{cmd}`: {res['reps']} runs each of brygga and lxml, {res['zeep_reps']} of "
          f"zeep, interleaved (round k: zeep, brygga, lxml, fields). {load}.", "", head + ".", "",
          "| reader | best s | median s | records/s (best) | records/s (median) | vs zeep (median) "
          "| CPU s (median) | records/CPU s (median) |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {a} | {b:.3f} | {c:.3f} | {d:,} | {e:,} | {f:.1f}x | {g:.3f} | {h:,} |" for a, b, c, d, e, f, g, h in rows]
    md += ["", f"**{verdict}.**", "",
           "Paired ratios (zeep time / brygga time in the same round): "
           + ", ".join(f"{x:.1f}x" for x in ratio["paired"]) + "."]
    if res["memory"]:
        md += ["", "Peak memory of one read in a fresh process (RSS high-water delta over the loaded input; "
               "tracemalloc counts the Python heap only, not libxml2):", "",
               "| reader | records | input MiB | RSS + MiB | tracemalloc peak MiB |", "|---|---:|---:|---:|---:|"]
        md += [f"| {a} | {b:,} | {c:.1f} | {d:.1f} | {e:.2f} |" for a, b, c, d, e in mem_rows]
    md += ["", f"The reply is produced by the NyA simulator over real HTTP; all readers read the same bytes. "
           f"zeep is timed on `process_reply` only (no HTTP). Before timing, zeep and brygga read the N/4 reply "
           f"({res['records_compared']:,} admissions) to the same records, every field. Full figures, every run "
           f"with its wall time, CPU time and load: the `.json` next to this file.", ""]
    return text, "\n".join(md)


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.admission_reader", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="N = 10_000 (unless --n), fewer repetitions")
    p.add_argument("--n", type=int, help="admissions in the reply (default 100_000, quick 10_000)")
    p.add_argument("--reps", type=int, help="repetitions for brygga and lxml (default 5)")
    p.add_argument("--zeep-reps", type=int, help="repetitions for zeep (default 3)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    p.add_argument("--no-zeep-memory", action="store_true", help="skip zeep's memory probes")
    p.add_argument("--out", type=Path, help="JSON result path (a .md is written next to it)")
    p.add_argument("--check", action="store_true", help=f"exit 1 if brygga is below {GOAL:g}x zeep")
    p.add_argument("--probe-memory", nargs=2, metavar=("FILE", "READER"), help=argparse.SUPPRESS)
    args, _ = p.parse_known_args(argv)  # tolerate flags meant for other benchmarks (python -m bench ...)

    if args.probe_memory:
        print(json.dumps(probe_memory(*args.probe_memory)))
        return 0

    n = args.n or (10_000 if args.quick else 100_000)
    if n < 4:
        p.error("--n must be at least 4")
    reps, zeep_reps = args.reps or 5, args.zeep_reps or 3
    mode = "quick" if args.quick else "full"
    out = args.out or RESULTS / ("admission_reader.quick.json" if args.quick else "admission_reader.json")

    machine = machine_info()  # before the run: the source hashes are of the code being measured
    print(f"producing a GetAdmissions reply with {n:,} admissions from the NyA simulator ...", flush=True)
    full, quarter, client, reply = produce(n)
    data = full.content
    print(f"  {len(data) / MB:.1f} MiB (state {reply['build_state_s']}s, HTTP {reply['http_get_admissions_s']}s)",
          flush=True)
    compared = check_same_records(client, quarter)
    print(f"  zeep and brygga agree on all {compared:,} admissions of the N/4 reply, every field", flush=True)
    run_zeep = zeep_reader(client)

    # Warm up every reader on the quarter reply (imports, schema objects, caches), then measure,
    # interleaved so that load from elsewhere falls on all three alike.
    for fn in (lambda: run_zeep(quarter), lambda: brygga_read(quarter.content), lambda: lxml_read(quarter.content),
               lambda: fields_read(quarter.content)):
        fn()
    print(f"timing, interleaved: zeep x{zeep_reps}, brygga x{reps}, lxml x{reps}, fields x{reps} ...", flush=True)
    runs = run_interleaved({"zeep": (lambda: run_zeep(full), zeep_reps), "brygga": (lambda: brygga_read(data), reps),
                            "lxml": (lambda: lxml_read(data), reps), "fields": (lambda: fields_read(data), reps)}, n)
    readers = {name: summary(r, n) for name, r in runs.items()}

    memory = []
    if not args.no_memory:
        with tempfile.TemporaryDirectory(prefix="brygga-bench-") as tmp:
            files = {n: Path(tmp) / "full.xml", n // 4: Path(tmp) / "quarter.xml"}
            files[n].write_bytes(data)
            files[n // 4].write_bytes(quarter.content)
            probes = ["brygga", "lxml"] + ([] if args.no_zeep_memory else ["zeep"])
            for reader in probes:
                for size in (n, n // 4):
                    print(f"memory probe {reader} N={size:,} ...", flush=True)
                    memory.append(memory_in_subprocess(files[size], reader))

    ratio = ratios(runs, readers)
    by_reader = {}
    for m in memory:
        by_reader.setdefault(m["reader"], {})[m["records"]] = m["rss_delta"]
    flat = {r: round(v[n] / v[n // 4], 2) if v.get(n // 4) else None for r, v in by_reader.items() if n in v}
    res = {
        "benchmark": "admission_reader", "mode": mode, "timestamp": dt.datetime.now(dt.UTC).isoformat(
            timespec="seconds"), "n": n, "n_quarter": n // 4, "reps": reps, "zeep_reps": zeep_reps,
        "machine": machine, "reply": reply, "readers": readers,
        "records_compared": compared, "ratio_brygga_zeep": ratio, "goal": GOAL,
        "goal_met": ratio["median"] >= GOAL,
        "brygga_share_of_floor": round(readers["lxml"]["median_s"] / readers["brygga"]["median_s"], 3),
        "brygga_share_of_field_floor": round(readers["fields"]["median_s"] / readers["brygga"]["median_s"], 3),
        "memory": memory, "memory_rss_ratio_n_over_quarter": flat,
    }
    text, md = render(res)
    print("\n" + text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(md)
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} and .md")
    return 1 if args.check and not res["goal_met"] else 0


if __name__ == "__main__":
    sys.exit(main())
