"""The fault-injection harness's world (issue 33): every peer's simulator, seeded, in this process
(threads on loopback ports), and how an end state is read from them and from Brygga's store —
object by object, with every generated uid named by what it is, so a clean and a faulty run of the
same seed compare even though the simulators handed out other uids."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import Counter
from typing import Any

from sqlalchemy import select

from brygga.config import SIMULATOR_EXTRA, SIMULATOR_SECRETS
from brygga.connections import PeerConfig
from brygga.store import Store
from brygga.store.models import (
    ArchivePackage,
    AterbudCase,
    NyaAdmission,
    NyaMerit,
    PublishedOffer,
    Quarantine,
    ScheduleObject,
    UnhandledAdmission,
)
from simulators._server import serve_in_thread

ROUND = "HT2027"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?:HT|VT)\d{4}-[AR]\d{7}")


@dataclasses.dataclass
class World:
    seed: int
    ladok: Any
    nya: Any
    register: Any
    schema: Any
    arkiv: Any
    who: dict[str, Any]
    servers: dict[str, Any] = dataclasses.field(default_factory=dict)
    known: dict[str, str] = dataclasses.field(default_factory=dict)  # every uid named so far (``remember``)

    def remember(self) -> None:
        """Name what the simulators hold now (a placement Ladok later removes keeps its name)."""
        self.known.update(names(self.ladok, self.nya))

    @property
    def urls(self) -> dict[str, str]:
        return {name: s.url for name, s in self.servers.items()}

    def peer(self, name: str, **extra: Any) -> PeerConfig:
        return PeerConfig(name, self.urls[name], password=SIMULATOR_SECRETS.get(name),
                          extra={**SIMULATOR_EXTRA.get(name, {}), **extra})

    def close(self) -> None:
        for s in self.servers.values():
            s.stop()


def build(seed: int) -> World:
    """A small world over every flow: a catalogue of HT2027 (courses, a programme) and an ended
    VT2026 term with results (the archive's), students in Ladok, the demo round's admission in
    every hinder, and the population register."""
    from simulators.arkiv.app import create_app as arkiv_app
    from simulators.arkiv.state import ArchiveState
    from simulators.demo import add_demo
    from simulators.folkbokforing.app import create_app as fbf_app
    from simulators.folkbokforing.state import FolkbokforingState
    from simulators.ladok.app import create_app as ladok_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState
    from simulators.nya.app import create_app as nya_app
    from simulators.nya.state import NyaState
    from simulators.schema.app import create_app as schema_app
    from simulators.schema.state import ScheduleState

    ladok = LadokState(page_size=10)
    seed_catalogue(ladok, seed, 6, 1, ROUND)
    ladok.seed_students(30, seed)  # the register's first 30 people are students already
    enrolled = ladok.seed_students(16, seed + 1000)  # earlier terms' students: groups, results, the archive
    ladok.seed_deltagande(enrolled, [t for t in ladok.tillfallen.values() if not t.installt], 4, seed)
    seed_catalogue(ladok, seed + 500, 2, 0, "VT2026")
    ended = [t for t in ladok.tillfallen.values() if t.startperiod == "VT2026" and not t.installt]
    ladok.seed_deltagande(enrolled, ended, 6, seed + 500)
    ladok.seed_resultat(ended, seed + 500)
    nya = NyaState()
    nya.put_round(ROUND, "open")
    register = FolkbokforingState(seed=seed, people=400)
    who = add_demo(ladok, nya, register)
    who["enrolled"] = [s.personnummer for s in enrolled]
    schema, arkiv = ScheduleState(), ArchiveState()
    w = World(seed, ladok, nya, register, schema, arkiv, who)
    apps = {"ladok": ladok_app(ladok), "nya": nya_app(nya), "folkbokforing": fbf_app(register),
            "schema": schema_app(schema), "arkiv": arkiv_app(arkiv, eark=False)}
    w.servers = {name: serve_in_thread(app) for name, app in apps.items()}
    return w


# ---------------------------------------------------------------- what a run ends with

def names(ladok: Any, nya: Any) -> dict[str, str]:
    """Every uid the Ladok simulator and id NyA handed out, named by what it is (stable across
    runs: the simulators number in the order requests come)."""
    out: dict[str, str] = {}
    with nya.lock:
        for rs in nya.rounds.values():
            for a in rs.admissions.values():
                out[a.admission_id] = f"admission:{a.personnummer}:{a.offer_id}"
            for x in rs.aterbud:
                out[x.aterbud_id] = f"aterbud:{x.admission_id}:{x.origin}"
    with ladok.lock:
        pnr = {s.uid: s.personnummer for s in ladok.students.values()}
        for s in ladok.students.values():
            out[s.uid] = f"student:{s.personnummer}"
        for u in ladok.utbildningar.values():
            out[u.uid], out[u.instans_uid] = f"utbildning:{u.kod}", f"utbildningsinstans:{u.kod}"
            for m in u.moduler:
                out[m.uid] = f"modul:{u.kod}:{m.kod}"
        for t in ladok.tillfallen.values():
            out[t.uid] = f"tillfalle:{t.utbildning.kod}:{t.kod}"
        for a in ladok.antagningar.values():
            key = f"antagning:{pnr.get(a.student_uid, a.student_uid)}:{t_name(a.tillfalle)}:{a.anmalningsnummer or ''}"
            out[a.uid] = key
            if a.aterbud is not None:
                out[a.aterbud.uid] = key + ":aterbud"
            if a.avbrott is not None:
                out[a.avbrott.uid] = key + ":avbrott"
            for i, r in enumerate(a.registreringar):
                out[r.uid] = f"{key}:registrering:{i}"
        for student_uid, results in ladok.resultat.items():
            for r in results:
                out[r.uid] = (f"resultat:{pnr.get(student_uid, student_uid)}:{t_name(r.antagning.tillfalle)}:"
                              f"{r.modul.kod if r.modul else ''}:{r.betyg}:{r.makulerat}")
        for b in ladok.bevis.values():
            out[b.uid] = f"bevis:{pnr.get(b.student_uid, b.student_uid)}:{b.datum}"
    return out


def t_name(t: Any) -> str:
    return f"{t.utbildning.kod}:{t.kod}"


def named(value: Any, table: dict[str, str]) -> Any:
    """``value`` with every uid in it replaced by its name (an unknown one stays as it is)."""
    if isinstance(value, str):
        for _ in range(3):  # a name may hold another id (an admission's offer, an återbud's admission)
            value = UUID.sub(lambda m: table.get(m.group(0), m.group(0)), value)
        return value
    if isinstance(value, dict):
        return {named(k, table): named(v, table) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [named(v, table) for v in value]
    return value


def end_state(w: World, store: Store) -> dict[str, Any]:
    """Every peer's state and Brygga's outcome tables, object by object, uids named."""
    w.remember()
    table = w.known
    L, N = w.ladok, w.nya
    state: dict[str, Any] = {}
    with L.lock:
        pnr = {s.uid: s.personnummer for s in L.students.values()}
        state["ladok.students"] = sorted(s.personnummer for s in L.students.values())
        state["ladok.antagningar"] = sorted(
            (pnr.get(a.student_uid, a.student_uid), t_name(a.tillfalle), a.anmalningsnummer or "", a.avgift,
             a.paket.tillfalle.kod if a.paket else "", sorted(k for k, v in a.villkor.items() if not v.borttaget),
             str(a.aterbud.datum) if a.aterbud else "", str(a.avbrott.datum) if a.avbrott else "",
             len(a.registreringar)) for a in L.antagningar.values())
    with N.lock:
        state["nya.offers"] = sorted((r, o.offer_id, repr(o)) for r, rs in N.rounds.items() for o in rs.offers.values())
        state["nya.merits"] = sorted((m.merit_id, m.personnummer, repr(m.content())) for m in N.merits.values())
        state["nya.aterbud"] = sorted((r, x.admission_id, str(x.date), x.origin, x.source or "", x.source_reference or "")
                                      for r, rs in N.rounds.items() for x in rs.aterbud)
    with w.schema.lock:
        state["schema.objects"] = sorted((k[0], k[1], o.active, repr(sorted(o.fields.items())), o.organizations)
                                         for k, o in w.schema.objects.items())
        state["schema.lis"] = sorted((k, repr(sorted(v.items()))) for k, v in w.schema.lis.items())
    with w.arkiv.lock:  # (a package's OBJID hashes its content, uids and all: its files, and Brygga's row below)
        state["arkiv.accepted"] = sorted([r.files] for r in w.arkiv.accepted.values())
    with store.transaction() as s:
        state["brygga.admissions"] = sorted(
            (a.admission_id, a.state, a.personnummer or "", a.utbildningstillfalle_uid or "", a.antagning_uid or "",
             a.package_uid or "", a.aterbud_date or "", repr(a.conditions)) for a in s.scalars(select(NyaAdmission)))
        state["brygga.queue"] = sorted((u.nya_admission_id, u.hinder, u.status, u.resolution or "")
                                       for u in s.scalars(select(UnhandledAdmission)))
        state["brygga.cases"] = sorted((c.nya_aterbud_id, c.cause, c.status, c.suggested_action)
                                       for c in s.scalars(select(AterbudCase)))
        state["brygga.merits"] = sorted((m.ref, m.version, m.state, m.held, bool(m.content_hash))
                                        for m in s.scalars(select(NyaMerit)))
        state["brygga.offers"] = sorted((o.round, o.kind, o.offer_id, o.status)
                                        for o in s.scalars(select(PublishedOffer)))
        state["brygga.schedule"] = sorted((o.target, o.kind, o.ext_id, o.status, o.version)
                                          for o in s.scalars(select(ScheduleObject)))
        state["brygga.archive"] = sorted((p.subject_kind, p.subject_uid, p.part, p.parts, p.status)
                                         for p in s.scalars(select(ArchivePackage)))
        state["brygga.quarantine"] = sorted(Counter((q.source, q.kind or "") for q in s.scalars(
            select(Quarantine).where(Quarantine.released_at.is_(None)))).items())
    # content hashes are over content that holds uids (other in each run): the peers' states above
    # hold the content itself, named; sorted once named
    return {part: sorted(named(rows, table), key=repr) for part, rows in state.items()}


def absorbed(w: World) -> dict[str, int]:
    """What each peer's idempotency had to absorb: requests it had seen before (a placement Ladok
    already made, a NyA RequestId answered from its replay store or a merit it held in that
    content, a TimeEdit object upserted unchanged, a package the archive was sent again)."""
    return {"ladok": w.ladok.placements_replayed, "nya": w.nya.replayed + w.nya.merit_duplicates,
            "schema": sum(v for k, v in w.schema.stats.items() if k.endswith(".unchanged")),
            "arkiv": len(w.arkiv.deliveries) - len(w.arkiv.accepted)}


def differences(clean: dict[str, Any], faulty: dict[str, Any], limit: int = 8) -> list[str]:
    """Object by object: what one run has and the other lacks, per part."""
    out: list[str] = []
    for part in sorted(set(clean) | set(faulty)):
        a, b = clean.get(part, []), faulty.get(part, [])
        if a == b:
            continue
        sa, sb = {repr(x) for x in a}, {repr(x) for x in b}
        only_clean, only_faulty = sorted(sa - sb), sorted(sb - sa)
        dup = len(b) - len(sb) - (len(a) - len(sa))
        out.append(f"{part}: {len(only_clean)} only in the clean run, {len(only_faulty)} only in the faulty run"
                   + (f", {dup} duplicated" if dup else ""))
        out += [f"  clean:  {x}" for x in only_clean[:limit]] + [f"  faulty: {x}" for x in only_faulty[:limit]]
    return out


def today() -> dt.date:
    return dt.date.today()
