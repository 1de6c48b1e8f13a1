"""The fault-injection harness (issue 33): one schedule of operations over every flow, run twice on
the same seeded world — once clean, once with faults drawn from a seed — and the two end states
compared object by object (``world.end_state``).

The **schedule** is the DAGs' tasks in the order a day would run them (``TASKS``), with the world's
own events between them (``OPS``: applicants apply and NyA selects, a villkor is lifted, återbud in
NyA and in Ladok, results reported in Ladok, a registration). Each task runs in a child process
of its own (forked), as an Airflow worker would run it; a task that fails or dies is run again
(as Airflow's retries would) until it succeeds; what the earlier tasks returned is passed on (XCom).

The **faults** of a seed (``draw``), per task, from its peers' fault plans (``simulators/faults.py``)
and from the harness itself:

* a peer's answer: 500, 503 with Retry-After, 429, a hang past the deadline, a reply cut short, a
  connection reset after the request was done, the client killed before (``kill-before``) or after
  the peer did the work (``kill``);
* what is read: a feed entry or NyA record delivered twice, NyA's records out of order, a feed
  page served late (the page as it was the time before);
* the worker killed at a random moment (``timer-kill``: inside a transaction as often as not);
* two workers over the same task at once (``two-workers``);
* the store briefly unavailable (``store-outage``: PostgreSQL restarted, or SQLite's file locked).

After the last task the faulty run is **driven to completion**: time passes for what waits on a
backoff, and the flows' repeating tasks run once more, fault-free (the next scheduled runs). Then
the invariant: the peers' states and Brygga's outcome tables equal the clean run's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from tests.faults import world as W

PEER_KINDS = ("500", "503", "429", "kill-before", "hang", "cut", "reset", "kill")
FEED_KINDS = ("duplicate", "stale")
STREAM_KINDS = ("duplicate", "reorder")
PROCESS_KINDS = ("timer-kill", "two-workers", "store-outage")
HANG = 3.0  # seconds a hung reply waits: past the harness's client deadline
DEADLINE = 2.0  # the adapters' timeout in the harness (seconds an exchange may take)
MAX_TRIES = 12
WORLD = 1  # the world's seed: one world, the faults' seeds vary (one clean run serves them all)


# ---------------------------------------------------------------- the schedule

@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    flow: str
    run: Callable[[Ctx], Any]
    peers: tuple[str, ...]  # the peers it calls
    reads: str = ""  # "feed" (Ladok's) or "stream" (a NyA stream): the read faults it can meet
    two: bool = False  # may run as two workers at once (it claims or locks what it works on)
    again: bool = False  # a repeating task: run once more fault-free when the run is driven to completion


@dataclasses.dataclass
class Ctx:
    """What a task has in its child process: the store, the adapters, earlier tasks' results."""

    store: Any
    world_urls: dict[str, str]
    xcom: dict[str, Any]
    owner: str

    def peer(self, name: str):
        from brygga.config import SIMULATOR_EXTRA, SIMULATOR_SECRETS
        from brygga.connections import PeerConfig

        return PeerConfig(name, self.world_urls[name], password=SIMULATOR_SECRETS.get(name),
                          extra={**SIMULATOR_EXTRA.get(name, {}), "timeout": DEADLINE})

    @property
    def ladok(self):
        from adapters.ladok import LadokAdapter

        return LadokAdapter(self.peer("ladok"))

    @property
    def nya(self):
        from adapters.nya import NyaAdapter

        return NyaAdapter(self.peer("nya"))

    @property
    def folk(self):
        from adapters.folkbokforing import FolkbokforingAdapter

        return FolkbokforingAdapter(self.peer("folkbokforing"))

    @property
    def schedule(self):
        from adapters.schema import ScheduleAdapter

        return ScheduleAdapter(self.peer("schema"), format="timeedit")

    @property
    def arkiv(self):
        from adapters.arkiv import ArchiveAdapter

        return ArchiveAdapter(self.peer("arkiv"))


def _offers_start(c: Ctx) -> Any:
    from brygga.flows import offers

    return offers.start(c.store, round_code=W.ROUND, kind="ordinary", codes=[], dry_run=False,
                        triggered_by="harness", run_id="harness", places=30)


def _offers_collect(c: Ctx) -> Any:
    from brygga.flows import offers

    return offers.collect(c.store, c.ladok, c.xcom["offers.start"], nya=c.nya)


def _offers_publish(c: Ctx) -> Any:
    from brygga.flows import offers

    return offers.publish(c.store, c.nya, c.xcom["offers.start"])


def _offers_finish(c: Ctx) -> Any:
    from brygga.flows import offers

    return offers.finish(c.store, c.xcom["offers.start"])["counts"]


def _fetch(c: Ctx) -> Any:
    from brygga.flows import admissions

    return admissions.fetch(c.store, c.nya, W.ROUND)


def _place(c: Ctx) -> Any:
    from brygga.flows import admissions

    counts = admissions.place(c.store, c.ladok, c.folk, W.ROUND, workers=2, owner=c.owner)
    if counts["retry"]:
        raise RuntimeError(f"{counts['retry']} admissions hit a transient error")
    return counts


def _conditions(c: Ctx) -> Any:
    from brygga.flows import admissions

    return admissions.sync_conditions(c.store, c.nya, c.ladok, W.ROUND)


def _aterbud_in(c: Ctx) -> Any:
    from brygga.flows import aterbud

    return aterbud.nya_to_ladok(c.store, c.nya, c.ladok)


def _aterbud_out(c: Ctx) -> Any:
    from brygga.flows import aterbud

    return aterbud.ladok_to_nya(c.store, c.ladok)


def _aterbud_send(c: Ctx) -> Any:
    from brygga.flows import aterbud

    return aterbud.send_pending(c.store, c.nya)


def _applicants(c: Ctx) -> Any:
    from brygga.flows import merits

    return merits.applicants.follow(c.store, c.nya)


def _snapshot(c: Ctx) -> Any:
    from brygga.flows import merits

    return merits.snapshot.take(c.store, c.ladok, c.nya, seconds=60, owner=c.owner)


def _merit_sync(c: Ctx) -> Any:
    from brygga.flows import merits

    return merits.sync_once(c.store, c.ladok, c.nya)


def _merit_send(c: Ctx) -> Any:
    from brygga.flows import merits

    return merits.send_pending(c.store, c.nya)


def _schedule_follow(c: Ctx) -> Any:
    from brygga.flows.schedule import following

    return following.follow(c.store, c.ladok)


def _schedule_full(c: Ctx) -> Any:
    from brygga.flows.schedule import planning

    return planning.run(c.store, c.ladok, c.schedule, mode="full", terms=[W.ROUND], run_id="harness-full",
                        actor="harness")


def _schedule_delta(c: Ctx) -> Any:
    from brygga.flows.schedule import planning

    return planning.run(c.store, c.ladok, c.schedule, mode="delta", terms=[W.ROUND], run_id="harness-delta",
                        actor="harness")


def _schedule_send(c: Ctx) -> Any:
    from brygga.flows.schedule import sending

    return sending.send(c.store, c.schedule)


def _archive_plan(c: Ctx) -> Any:
    from brygga.flows.archive import delivery

    settings = delivery.Settings.of(c.arkiv.settings)
    return delivery.plan(c.store, c.ladok, what="kurstillfallen", up_to=W.today(), settings=settings)


def _archive_deliver(c: Ctx) -> Any:
    from brygga.flows.archive import delivery

    arkiv = c.arkiv
    return delivery.deliver(c.store, c.ladok, arkiv, settings=delivery.Settings.of(arkiv.settings), owner=c.owner)


T = Task
TASKS: dict[str, Task] = {t.name: t for t in (
    T("offers.start", "offers", _offers_start, ()),
    T("offers.collect", "offers", _offers_collect, ("ladok",)),
    T("offers.publish", "offers", _offers_publish, ("nya",)),
    T("offers.finish", "offers", _offers_finish, ()),
    T("merits.sync", "merits", _merit_sync, ("ladok", "nya"), reads="feed", again=True),
    T("aterbud.out", "aterbud", _aterbud_out, ("ladok",), reads="feed", again=True),
    T("schedule.follow", "schedule", _schedule_follow, ("ladok",), reads="feed", again=True),
    T("admissions.fetch", "admissions", _fetch, ("nya",), reads="stream", again=True),
    T("admissions.place", "admissions", _place, ("ladok", "folkbokforing"), two=True, again=True),
    T("admissions.conditions", "admissions", _conditions, ("nya", "ladok"), reads="stream", again=True),
    T("merits.applicants", "merits", _applicants, ("nya",), reads="stream", again=True),
    T("merits.snapshot", "merits", _snapshot, ("ladok", "nya"), again=True),
    T("merits.send", "merits", _merit_send, ("nya",), two=True, again=True),
    T("aterbud.in", "aterbud", _aterbud_in, ("nya", "ladok"), reads="stream", again=True),
    T("aterbud.send", "aterbud", _aterbud_send, ("nya",), again=True),
    T("schedule.full", "schedule", _schedule_full, ("ladok", "schema")),
    T("schedule.delta", "schedule", _schedule_delta, ("ladok", "schema")),
    T("schedule.send", "schedule", _schedule_send, ("schema",), again=True),
    T("archive.plan", "archive", _archive_plan, ("ladok",)),
    T("archive.deliver", "archive", _archive_deliver, ("ladok", "arkiv"), again=True),
)}


# -- the world's own events between the tasks (in this process, on the simulators' states)

def _apply(w: W.World) -> None:
    """Applicants apply to the offers the export published and NyA selects: students of Ladok (some
    with results: the snapshot's merits), people only the register knows, one with a villkor."""
    from simulators.nya.state import ENG6, Applicant

    rs = w.nya.rounds[W.ROUND]
    offers = [o.offer_id for o in sorted(rs.offers.values(), key=lambda o: (o.utbildningskod, o.tillfalleskod))
              if o.kind == "ordinary" and o.offer_id in w.ladok.tillfallen
              and w.ladok.tillfallen[o.offer_id].utbildning.typ == "kurs" and not w.ladok.tillfallen[o.offer_id].installt]
    people = w.register.all()
    known = {p.personnummer: p for p in people}
    applicants = [known[p] for p in [x.personnummer for x in people[:30]][:12]]  # students already
    applicants += [p for p in people[40:48]]  # new: established from the register
    enrolled = [w.ladok.by_pnr[pnr] for pnr in w.who["enrolled"][:6]]  # with results of VT2026
    rows = [Applicant(p.personnummer, p.fornamn, p.efternamn, [offers[i % len(offers)]], 10.0,
                      conditions=(ENG6,) if i % 7 == 0 else (), auto_accept=True) for i, p in enumerate(applicants)]
    rows += [Applicant(s.personnummer, s.fornamn, s.efternamn, [offers[(i + 3) % len(offers)]], 10.0, auto_accept=True)
             for i, s in enumerate(enrolled)]
    w.nya.add_applicants(W.ROUND, rows)
    w.nya.run_selection(W.ROUND)


def t_key(t: Any) -> str:
    return f"{t.utbildning.kod}:{t.kod}"


def _placed(w: W.World, pnr: str) -> Any:
    s = w.ladok.by_pnr.get(pnr)
    return sorted((a for a in w.ladok.plan.get(s.uid, []) if a.anmalningsnummer), key=lambda a: t_key(a.tillfalle)) \
        if s else []


def _changes(w: W.World) -> None:
    """After placement: NyA lifts a villkor; återbud in NyA (one placed, one registered: a case)
    and in Ladok (by staff); results reported in Ladok for two placed students (the feed's merits);
    the demo's people act."""
    from simulators.demo import Actor
    from simulators.ladok.state import ORSAK

    rs = w.nya.rounds[W.ROUND]
    # (by what they are, never by an id: the simulators hand out ids in the order requests come)
    ordered = sorted(rs.admissions.values(), key=lambda a: (a.personnummer, a.offer_id in w.ladok.tillfallen
                                                            and t_key(w.ladok.tillfallen[a.offer_id])))
    with_villkor = [a for a in ordered if a.conditions and any(not c.lifted for c in a.conditions)]
    for a in with_villkor[:2]:
        w.nya.lift_condition(W.ROUND, a.admission_id, next(c.code for c in a.conditions if not c.lifted))
    placed = [(a, x) for a in ordered if a.accepted for x in _placed(w, a.personnummer)
              if x.anmalningsnummer == a.admission_id and x.aterbud is None
              and not x.tillfalle.utbildning.kod.startswith("DEM")]  # the demo's people act for themselves
    (a1, _), (a2, x2), (_, x3), *rest = placed
    w.nya.register_aterbud(W.ROUND, admission_id=a1.admission_id, date=dt.date(2027, 8, 10))
    w.ladok.registrera(x2.uid)
    w.nya.register_aterbud(W.ROUND, admission_id=a2.admission_id, date=dt.date(2027, 9, 5))
    w.ladok.aterbud(x3.uid, dt.date(2027, 8, 12), ORSAK + "meddelat.av.studenten", None)
    for _, x in rest[:3]:
        w.ladok.registrera(x.uid)
        w.ladok.rapportera_resultat(x.uid, x.tillfalle.utbildning.moduler[0].kod if x.tillfalle.utbildning.moduler
                                    else None, "G", dt.date(2027, 10, 20))
    Actor(w.ladok, w.nya, w.who).act()


def _later(w: W.World) -> None:
    """Later: a result taken back (a withdrawn merit), one more registration (the schedule's delta)."""
    by_pnr = {s.uid: s.personnummer for s in w.ladok.students.values()}
    for _, results in sorted(w.ladok.resultat.items(), key=lambda kv: by_pnr.get(kv[0], kv[0])):
        fresh = sorted((r for r in results if r.antagning.tillfalle.startperiod == W.ROUND and not r.makulerat),
                       key=lambda r: (t_key(r.antagning.tillfalle), r.modul.kod if r.modul else ""))
        if fresh:
            w.ladok.makulera_resultat(fresh[0].uid)
            break


SCHEDULE: list[str | Callable[[W.World], None]] = [
    "offers.start", "offers.collect", "offers.publish", "offers.finish",
    "merits.sync", "aterbud.out", "schedule.follow",  # the feed followers start at the feed's head
    _apply,
    "merits.applicants", "merits.snapshot", "merits.send",
    "admissions.fetch", "admissions.place", "admissions.conditions",
    "schedule.follow", "schedule.full", "schedule.send",
    _changes,
    "admissions.fetch", "admissions.conditions", "aterbud.in", "aterbud.out", "aterbud.send",
    "merits.sync", "merits.send",
    "schedule.follow", "schedule.delta", "schedule.send",
    _later,
    "merits.sync", "merits.send", "schedule.follow", "schedule.delta", "schedule.send",
    "archive.plan", "archive.deliver",
]


# ---------------------------------------------------------------- the faults of a seed

def applicable(task: Task) -> list[str]:
    if not task.peers:
        return ["timer-kill", "store-outage"]
    kinds = list(PEER_KINDS) + ["timer-kill", "store-outage"]
    kinds += list(FEED_KINDS) if task.reads == "feed" else list(STREAM_KINDS) if task.reads == "stream" else []
    if task.two:
        kinds.append("two-workers")
    return kinds


def draw(seed: int, per_task: int = 2) -> dict[int, list[dict[str, Any]]]:
    """The faults of ``seed``: for each step of the schedule that is a task, ``per_task`` kinds taken
    in turn from what can happen to it (from an offset of the seed's), each aimed at one of its
    peers' requests (the 1st or 2nd matching one; the first reply for what is read)."""
    rng = random.Random(seed)
    out: dict[int, list[dict[str, Any]]] = {}
    for i, step in enumerate(SCHEDULE):
        if not isinstance(step, str):
            continue
        task = TASKS[step]
        kinds = applicable(task)
        start = (seed * 7 + i * 3) % len(kinds)
        faults: list[dict[str, Any]] = []
        picked: list[str] = []
        for k in range(len(kinds)):  # (one read fault per task: a stream is often read in one reply)
            kind = kinds[(start + k) % len(kinds)]
            if len(picked) == per_task:
                break
            if kind in FEED_KINDS + STREAM_KINDS and any(p in FEED_KINDS + STREAM_KINDS for p in picked):
                continue
            picked.append(kind)
            f: dict[str, Any] = {"kind": kind, "task": task.name, "flow": task.flow}
            if kind in PEER_KINDS or kind in FEED_KINDS or kind in STREAM_KINDS:
                peer = _peer_for(task, kind, rng)
                # what is read: the first reply (a stream may be read in one request); else the 1st or 2nd call
                nth = 1 if kind in FEED_KINDS or kind in STREAM_KINDS else rng.randint(1, 2)
                f.update(peer=peer, match=_match(peer, kind), nth=nth, seconds=HANG)
            elif kind == "timer-kill":
                f["after"] = round(rng.uniform(0.02, 0.6), 3)
            faults.append(f)
        # what is read first: a reply mangled must be the first one, before another fault on that peer
        # fails the task (which then runs again without faults)
        reads = {f["peer"] for f in faults if f["kind"] in FEED_KINDS + STREAM_KINDS}
        for f in faults:
            if f.get("peer") in reads and f["kind"] not in FEED_KINDS + STREAM_KINDS:
                f["nth"] += 1
        out[i] = sorted(faults, key=lambda f: f["kind"] not in FEED_KINDS + STREAM_KINDS)
    return out


def _peer_for(task: Task, kind: str, rng: random.Random) -> str:
    if kind in FEED_KINDS and task.reads == "feed":
        return "ladok"
    if kind in STREAM_KINDS and task.reads == "stream":
        return "nya"
    return rng.choice(task.peers)


def _match(peer: str, kind: str) -> str:
    if kind in FEED_KINDS and peer == "ladok":
        return r"^GET /uppfoljning/feed/"
    if kind in STREAM_KINDS and peer == "nya":
        return r"#Get(Admissions|Aterbud|ConditionChanges|Applicants)"
    return r"." if peer != "ladok" else r"^(GET|POST|PUT|DELETE) /"


# ---------------------------------------------------------------- running it

@dataclasses.dataclass
class Outcome:
    seed: int | None
    store: str
    seconds: float
    tries: Counter[str]
    injected: Counter[tuple[str, str]]  # (flow, kind) -> how many fired
    state: dict[str, Any]
    absorbed: dict[str, int]
    near: Counter[str] = dataclasses.field(default_factory=Counter)  # faults fired on tasks calling each peer


def _child(task: Task, store_url: str, urls: dict[str, str], xcom: dict[str, Any], owner: str,
           go: Any, conn: Any) -> None:
    os.environ["BRYGGA_LOG_LEVEL"] = "WARNING"
    from brygga.store import Store

    go.wait(30)
    store = Store(store_url)
    try:
        result = task.run(Ctx(store, urls, xcom, owner))
    except BaseException as e:  # noqa: BLE001 - the task failed: the parent runs it again
        conn.send(("failed", f"{type(e).__name__}: {e}"[:500]))
        os._exit(1)
    conn.send(("ok", result if isinstance(result, (int, dict, list, str, type(None))) else str(result)))
    os._exit(0)


class Runner:
    def __init__(self, world: W.World, store_url: str, *, pg_restart: Callable[[], None] | None = None,
                 log: Callable[[str], None] = print):
        self.w, self.store_url, self.pg_restart, self.log = world, store_url, pg_restart, log
        self.xcom: dict[str, Any] = {}
        self.tries: Counter[str] = Counter()
        self.injected: Counter[tuple[str, str]] = Counter()
        self.near: Counter[str] = Counter()  # faults fired on tasks that call each peer
        self.outage_errors: list[str] = []
        self.mp = multiprocessing.get_context("fork")

    # -- one task, until it succeeds
    def task(self, step: int, name: str, faults: list[dict[str, Any]]) -> None:
        """Run a task until it succeeds. ``two-workers``: two task instances of it at once (two
        owners, as two runs or shards would be), each run again until it succeeds."""
        task = TASKS[name]
        peer_faults = [f for f in faults if "peer" in f]
        process = {f["kind"]: f for f in faults if "peer" not in f}
        owners = [f"{name}#{step}"] + ([f"{name}#{step}/2"] if "two-workers" in process else [])
        for attempt in range(1, MAX_TRIES + 1):
            first = attempt == 1
            self.tries[name] += len(owners)
            children = [self._start(task, owner) for owner in owners]
            if first and peer_faults:
                self._plans(peer_faults, victim=children[0][0].pid)
            timer = None
            if first and "timer-kill" in process:
                timer = threading.Timer(process["timer-kill"]["after"], _kill, (children[0][0].pid,))
            outage = threading.Thread(target=self._outage, daemon=True) if first and "store-outage" in process else None
            for _, go, _ in children:
                go.set()
            if timer:
                timer.start()
            if outage:
                outage.start()
            results = [self._join(p, conn) for p, _, conn in children]
            if timer:
                timer.cancel()
            if outage:
                outage.join()
                if self.outage_errors:
                    raise RuntimeError(f"the store outage could not be made: {self.outage_errors[0]}")
            if first and peer_faults:
                self._count_fired(task)
                self._plans([])
            if first:
                for kind in process:
                    self.injected[(task.flow, kind)] += 1
                    self.near.update(task.peers)
            for owner, result in zip(list(owners), results, strict=True):
                if result[0] == "ok":
                    self.xcom.setdefault(name, result[1])
                    if owner == owners[0] or len(owners) == 1:
                        self.xcom[name] = result[1]
                    owners.remove(owner)
                else:
                    self.log(f"    {name} ({owner}): try {attempt} {result[1][:160]}")
            if not owners:
                return
            self._time_passes()
        raise RuntimeError(f"{name} did not succeed in {MAX_TRIES} tries")

    def _start(self, task: Task, owner: str):
        go = self.mp.Event()
        parent, child = self.mp.Pipe(duplex=False)
        p = self.mp.Process(target=_child, args=(task, self.store_url, self.w.urls, dict(self.xcom), owner, go, child),
                            daemon=True)
        p.start()
        child.close()
        return p, go, parent

    def _join(self, p: Any, conn: Any) -> tuple[str, Any]:
        p.join(180)
        if p.is_alive():
            p.kill()
            p.join()
            return "failed", "hung past 180 s"
        try:
            if conn.poll(0.1):
                return conn.recv()
        except (EOFError, OSError):
            pass
        return "failed", f"died (exit {p.exitcode})"

    def _plans(self, faults: list[dict[str, Any]], victim: int | None = None) -> None:
        import json
        import urllib.request

        per: dict[str, list[dict[str, Any]]] = {}
        for f in faults:
            per.setdefault(f["peer"], []).append({k: f[k] for k in ("kind", "match", "nth", "seconds")})
        for name, url in self.w.urls.items():
            body = json.dumps({"faults": per.get(name, []), "victim": victim}).encode()
            req = urllib.request.Request(url + "/sim/faults", data=body, headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=10).read()

    def _count_fired(self, task: Task) -> None:
        import json
        import urllib.request

        for url in self.w.urls.values():
            view = json.loads(urllib.request.urlopen(url + "/sim/faults", timeout=10).read())
            for i in view["injected"]:
                self.injected[(task.flow, i["kind"])] += 1
                self.near.update(task.peers)

    def _outage(self) -> None:
        """The store briefly away: PostgreSQL restarted, or SQLite's file locked for two seconds."""
        try:
            self._store_away()
        except Exception as e:  # noqa: BLE001 - the fault could not be made: the run says so
            self.outage_errors.append(f"{type(e).__name__}: {e}")

    def _store_away(self) -> None:
        if self.store_url.startswith("postgresql"):
            if self.pg_restart is None:
                raise RuntimeError("PostgreSQL store-outage needs BRYGGA_FAULTS_PG_RESTART (the restart command)")
            time.sleep(0.1)
            self.pg_restart()
            return
        if self.store_url.startswith("sqlite"):
            path = self.store_url.split("///", 1)[1]
            con = sqlite3.connect(path, timeout=30)
            try:
                con.execute("BEGIN EXCLUSIVE")
                time.sleep(2.0)
            finally:
                con.rollback()
                con.close()

    def _time_passes(self) -> None:
        """What waits on a backoff is due (as it would be by the next scheduled run)."""
        from brygga.store import Store
        from brygga.store.models import OutboxMessage, utcnow

        store = Store(self.store_url)
        try:
            with store.transaction() as s:
                s.execute(update(OutboxMessage).where(OutboxMessage.status == "failed").values(next_attempt_at=utcnow()))
        finally:
            store.engine.dispose()

    # -- the whole schedule
    def run(self, faults: dict[int, list[dict[str, Any]]] | None = None) -> None:
        for i, step in enumerate(SCHEDULE):
            if isinstance(step, str):
                self.task(i, step, (faults or {}).get(i, []))
            else:
                self.w.remember()
                step(self.w)

    def complete(self) -> None:
        """Drive the run to completion: time passes, each repeating task runs once more, fault-free."""
        self._time_passes()
        for name in dict.fromkeys(s for s in SCHEDULE if isinstance(s, str) and TASKS[s].again):
            self.task(9999, name, [])


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def pg_restart_command() -> Callable[[], None] | None:
    """``BRYGGA_FAULTS_PG_RESTART``: the shell command that restarts the test PostgreSQL."""
    cmd = os.environ.get("BRYGGA_FAULTS_PG_RESTART")
    if not cmd:
        return None
    return lambda: subprocess.run(cmd, shell=True, check=True, timeout=120, capture_output=True)


# ---------------------------------------------------------------- a seed, clean and faulty

def fresh_store(kind: str, tmp: str, pg_url: str | None) -> tuple[str, Callable[[], None]]:
    """An empty, migrated store: a SQLite file in ``tmp``, or a schema of its own in PostgreSQL."""
    import uuid

    from brygga.store import Store, migrate

    if kind == "sqlite":
        url = f"sqlite:///{tmp}/harness-{uuid.uuid4().hex[:8]}.db"
        drop: Callable[[], None] = lambda: None  # noqa: E731
    else:
        if not pg_url:
            raise RuntimeError("PostgreSQL: set BRYGGA_TEST_PG_URL")
        schema = f"h_{uuid.uuid4().hex[:10]}"
        admin = Store(pg_url)
        with admin.engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        admin.dispose()
        url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"

        def drop() -> None:
            a = Store(pg_url)
            with a.engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            a.dispose()
    s = Store(url)
    migrate.upgrade(s)
    s.dispose()
    return url, drop


def run_once(seed: int | None, faults: dict[int, list[dict[str, Any]]] | None, store_kind: str, tmp: str,
             pg_url: str | None = None, log: Callable[[str], None] = print) -> Outcome:
    """One run of the schedule on the world (faulty when ``faults`` are given: those of ``seed``)."""
    from brygga.store import Store

    t0 = time.monotonic()
    world = W.build(WORLD)
    url, drop = fresh_store(store_kind, tmp, pg_url)
    try:
        r = Runner(world, url, pg_restart=pg_restart_command(), log=log)
        r.run(faults)
        if faults:
            r.complete()
        store = Store(url)
        try:
            state = W.end_state(world, store)
        finally:
            store.dispose()
        return Outcome(seed, store_kind, time.monotonic() - t0, r.tries, r.injected, state,
                       W.absorbed(world), r.near)
    finally:
        world.close()
        drop()


def check(seed: int, store_kind: str, tmp: str, *, clean: Outcome | None = None, pg_url: str | None = None,
          log: Callable[[str], None] = print) -> tuple[Outcome, Outcome, list[str]]:
    """The invariant for ``seed``: the faulty run, driven to completion, ends as the clean run did.
    Returns (clean, faulty, differences); the differences name the seed to run it again."""
    if clean is None:
        clean = run_once(seed, None, store_kind, tmp, pg_url, log)
    try:
        faulty = run_once(seed, draw(seed), store_kind, tmp, pg_url, log)
    except Exception as e:  # noqa: BLE001 - the world itself went wrong (no offers in NyA, nothing placed …)
        faulty = dataclasses.replace(clean, seed=seed, state={}, tries=Counter(), injected=Counter())
        diff = [f"the faulty run could not go on: {type(e).__name__}: {e}"]
    else:
        diff = W.differences(clean.state, faulty.state) + unexplained(clean, faulty)
    if diff:
        diff.insert(0, f"seed {seed} on {store_kind}: the faulty run ends otherwise than the clean one — "
                       f"run it again: python -m tests.faults --seed {seed} --store {store_kind}")
    return clean, faulty, diff


#: The most records one request to a peer carries (a placement chunk, a NyA batch, a TimeEdit batch,
#: one package): one fault can make a peer see at most this many again.
BATCH = {"ladok": 2000, "nya": 1000, "schema": 1000, "arkiv": 1}


def unexplained(clean: Outcome, faulty: Outcome) -> list[str]:
    """A peer that absorbed requests it had seen before more than the faults near it explain: none
    where no fault fired on a task calling it, at most a request's records per fault."""
    out = []
    for peer, n in faulty.absorbed.items():
        extra, near = n - clean.absorbed.get(peer, 0), faulty.near.get(peer, 0)
        if extra > near * BATCH[peer] or (extra > 0 and near == 0):
            out.append(f"{peer}: absorbed {extra} repeated request record(s) more than the clean run, "
                       f"with {near} fault(s) on the tasks that call it")
    return out
