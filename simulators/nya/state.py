"""In-memory NyA: rounds, offers, applicants, selection, admissions, återbud, villkor and merits.

One ``RLock`` guards everything; the SOAP layer holds it across check-apply-remember so an
idempotent request is applied at most once. All change streams (admissions, återbud, condition
changes) draw from one global counter, so each stream is strictly increasing (with gaps).
Per round, admissions are kept in an ``OrderedDict`` in sequence order (a change moves the
admission to the end), so "changed since N" is a walk from the end.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import threading
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from brygga import personnummer as pnr_mod
from simulators import datagen

ENG6 = ("VILLKOR-ENG6", "Villkorat antagen: Engelska 6 ska vara uppfylld")
MATH4 = ("VILLKOR-MA4", "Villkorat antagen: Matematik 4 ska vara uppfylld")
MERIT_TYPES = ("registrering", "resultat", "tillgodoraknande", "avbrott", "studieuppehall", "examen")


class NyaError(Exception):
    """A request NyA refuses as a whole (becomes a soap:Client fault / a 4xx on the control API)."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def canonical_pnr(raw: str, where: str | None = None) -> str:
    try:
        return pnr_mod.parse(raw).value
    except pnr_mod.InvalidPersonnummer as e:
        prefix = f"{where}: " if where else ""
        raise NyaError("invalid-personnummer", f"{prefix}{e} ({pnr_mod.mask(str(raw))})", where) from None


@dataclass
class Round:
    code: str
    name: str
    status: str  # open | closed
    application_opens: dt.date
    application_closes: dt.date
    admission_notice: dt.date
    term_start: dt.date


@dataclass
class Offer:
    offer_id: str
    kind: str
    utbildningskod: str
    tillfalleskod: str
    name_sv: str
    name_en: str | None
    credits: Decimal
    start: dt.date
    end: dt.date
    studieort: str | None
    studietakt: int
    places: int
    programme_code: str | None = None
    package_id: str | None = None
    status: str = "active"
    withdrawal_reason: str | None = None

    CONTENT = ("utbildningskod", "tillfalleskod", "name_sv", "name_en", "credits", "start", "end",
               "studieort", "studietakt", "places", "programme_code", "package_id")

    def content(self) -> tuple:
        return tuple(getattr(self, f) for f in self.CONTENT)


@dataclass
class Applicant:
    personnummer: str
    given_name: str
    family_name: str
    choices: list[str]  # offer ids, best first
    score: float  # meritvärde used to rank
    fee_liable: bool = False
    application_fee_paid: bool = True
    conditions: tuple[tuple[str, str], ...] = ()  # villkor set on admission
    auto_accept: bool = False


@dataclass
class Condition:
    code: str
    text: str
    lifted: bool = False
    lifted_date: dt.date | None = None


@dataclass
class AterbudRec:
    aterbud_id: str
    sequence: int
    admission_id: str
    personnummer: str
    offer_id: str
    date: dt.date
    registered: dt.datetime
    origin: str  # applicant | staff | ladok
    source: str | None = None
    source_reference: str | None = None


@dataclass
class Admission:
    admission_id: str
    round: str
    personnummer: str
    offer_id: str
    choice_rank: int
    admitted: bool
    reserve_position: int | None
    accepted: bool
    fee_liable: bool
    application_fee_paid: bool
    conditions: list[Condition] = field(default_factory=list)
    aterbud: AterbudRec | None = None
    sequence: int = 0
    xml: bytes | None = None  # rendered fragment cache; cleared on every change


@dataclass
class ConditionChange:
    sequence: int
    admission_id: str
    personnummer: str
    offer_id: str
    code: str
    text: str
    change: str  # added | lifted
    date: dt.date


@dataclass
class Merit:
    merit_id: str
    personnummer: str
    type: str
    utbildningskod: str
    tillfalleskod: str | None
    modul: str | None
    credits: Decimal | None
    grade: str | None
    date: dt.date
    source_reference: str | None
    received: dt.datetime | None = None
    request_id: str | None = None

    def content(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self)[:10])


@dataclass
class RoundState:
    round: Round
    offers: dict[str, Offer] = field(default_factory=dict)
    offer_by_code: dict[tuple[str, str, str | None], str] = field(default_factory=dict)  # (kod, tillfälleskod, package)
    applicants: dict[str, Applicant] = field(default_factory=dict)
    admissions: OrderedDict[str, Admission] = field(default_factory=OrderedDict)
    admission_by_key: dict[tuple[str, str], str] = field(default_factory=dict)
    aterbud: list[AterbudRec] = field(default_factory=list)
    changes: list[ConditionChange] = field(default_factory=list)
    generated: int = 0
    raw: list[RawAdmission] = field(default_factory=list)  # the fault surface's broken records, by sequence
    applied: list[Applied] = field(default_factory=list)  # each applicant as they first applied (GetApplicants)


@dataclass
class Applied:
    """An applicant's first appearance in a round, at its place in the round's applicant stream."""

    sequence: int
    personnummer: str


@dataclass
class RawAdmission:
    """An ``<Admission>`` as a broken NyA would send it (tests, demos): bytes, at its sequence."""

    sequence: int
    xml: bytes


def since(items: list, from_seq: int) -> list:
    """Items of an append-only, sequence-ordered list with ``sequence >= from_seq``."""
    lo, hi = 0, len(items)
    while lo < hi:
        mid = (lo + hi) // 2
        if items[mid].sequence < from_seq:
            lo = mid + 1
        else:
            hi = mid
    return items[lo:]


def next_sequence(items: list, from_seq: int) -> int:
    return items[-1].sequence + 1 if items else max(from_seq, 1)


class NyaState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.register_people = 0  # > 0: applicants come from datagen.people(register_people, seed)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.rounds: dict[str, RoundState] = {}
            self.merits: dict[str, Merit] = {}
            self.merits_by_pnr: dict[str, list[str]] = {}
            self.merit_duplicates = 0  # merits sent again with the same content
            self.merits_withdrawn = 0
            self.replies: dict[str, tuple[str, str, bytes]] = {}
            self.replayed = 0  # requests answered from the replay store (a RequestId seen before)
            self._seq = 0
            self.seed = 1

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- rounds ---------------------------------------------------------------------------
    def put_round(self, code: str, status: str = "open", name: str | None = None, **dates: dt.date) -> Round:
        if not re.fullmatch(r"(HT|VT)[0-9]{4}", code or "") or status not in ("open", "closed"):
            raise NyaError("bad-request", "round code must look like HT2027 and status be open or closed")
        year, term = int(code[2:]), code[:2]
        defaults = (
            dict(application_opens=dt.date(year, 3, 15), application_closes=dt.date(year, 4, 15),
                 admission_notice=dt.date(year, 7, 10), term_start=dt.date(year, 8, 30))
            if term == "HT"
            else dict(application_opens=dt.date(year - 1, 9, 15), application_closes=dt.date(year - 1, 10, 15),
                      admission_notice=dt.date(year - 1, 12, 10), term_start=dt.date(year, 1, 18))
        )
        defaults.update({k: v for k, v in dates.items() if v is not None})
        name = name or f"{'Höstterminen' if term == 'HT' else 'Vårterminen'} {year}"
        with self.lock:
            rs = self.rounds.get(code)
            rnd = Round(code, name, status, **defaults)
            if rs is None:
                self.rounds[code] = RoundState(rnd)
            else:
                rs.round = rnd
            return rnd

    def round_state(self, code: str, *, open_only: bool = False) -> RoundState:
        rs = self.rounds.get(code)
        if rs is None:
            raise NyaError("unknown-round", f"unknown admission round {code}", "Round")
        if open_only and rs.round.status != "open":
            raise NyaError("round-closed", f"admission round {code} is closed", "Round")
        return rs

    # -- offers ---------------------------------------------------------------------------
    def publish_offers(self, code: str, kind: str, offers: list[Offer]) -> list[tuple[str, str, str | None]]:
        with self.lock:
            rs = self.round_state(code, open_only=True)
            out = []
            for o in offers:
                o.kind = kind
                cur = rs.offers.get(o.offer_id)
                owner = rs.offer_by_code.get((o.utbildningskod, o.tillfalleskod, o.package_id))
                reason = None
                if o.end < o.start:
                    reason = "StudyPeriodEnd is before StudyPeriodStart"
                elif cur is not None and cur.kind != kind:
                    reason = f"offer already published as {cur.kind}"
                elif kind == "programme-internal" and not (o.programme_code and o.package_id):
                    reason = "a programme-internal offer needs ProgrammeCode and PackageId"
                elif owner is not None and owner != o.offer_id:
                    reason = f"{o.utbildningskod}/{o.tillfalleskod} is already published as offer {owner}"
                if reason:
                    out.append((o.offer_id, "rejected", reason))
                    continue
                if cur is None:
                    outcome = "created"
                elif cur.content() == o.content() and cur.status == "active":
                    out.append((o.offer_id, "unchanged", None))
                    continue
                else:
                    outcome = "updated"
                    rs.offer_by_code.pop((cur.utbildningskod, cur.tillfalleskod, cur.package_id), None)
                rs.offers[o.offer_id] = o
                rs.offer_by_code[(o.utbildningskod, o.tillfalleskod, o.package_id)] = o.offer_id
                again = cur is not None and cur.status != "active"
                out.append((o.offer_id, outcome, "withdrawn offer published again" if again else None))
            return out

    def withdraw_offers(self, code: str, offer_ids: list[str], reason: str) -> list[tuple[str, str, str | None]]:
        with self.lock:
            rs = self.round_state(code, open_only=True)
            out = []
            for oid in offer_ids:
                o = rs.offers.get(oid)
                if o is None:
                    out.append((oid, "rejected", f"no offer {oid} in round {code}"))
                elif o.status == "withdrawn":
                    out.append((oid, "unchanged", "already withdrawn"))
                else:
                    o.status, o.withdrawal_reason = "withdrawn", reason
                    out.append((oid, "withdrawn", None))
            return out

    def get_offers(self, code: str, kind: str | None = None) -> list[Offer]:
        with self.lock:
            return [o for o in self.round_state(code).offers.values() if kind is None or o.kind == kind]

    # -- applicants -----------------------------------------------------------------------
    def add_applicants(self, code: str, applicants: Iterable[Applicant]) -> int:
        with self.lock:
            rs = self.round_state(code)
            n = 0
            for a in applicants:
                unknown = [c for c in a.choices if c not in rs.offers]
                if unknown:
                    raise NyaError("unknown-offer", f"no offer {unknown[0]} in round {code}")
                if a.personnummer not in rs.applicants:
                    n += 1
                    rs.applied.append(Applied(self.next_seq(), a.personnummer))
                rs.applicants[a.personnummer] = a
            return n

    def generate_applicants(self, code: str, n: int, *, seed: int | None = None, choices: int | None = None,
                            fee_share: float = 0.05, fee_paid_share: float = 0.8, interim_share: float = 0.7,
                            condition_share: float = 0.1, accept_share: float = 0.7) -> int:
        """``n`` new applicants from ``datagen.people`` applying to the round's active offers; of the
        fee-liable ones (international applicants) ``interim_share`` have no Swedish number and
        apply with the interimspersonnummer antagning.se gives them."""
        with self.lock:
            rs = self.round_state(code)
            offers = [o.offer_id for o in rs.offers.values() if o.status == "active"]
            if not offers:
                raise NyaError("no-offers", f"round {code} has no active offers to apply to")
            rs.generated += 1
            seed = seed if seed is not None else zlib.crc32(f"{self.seed}/{code}/{rs.generated}".encode())
            rng = random.Random(seed)
            added = []
            # With a population register next to us (``brygga simulators``), applicants are people
            # it knows (same datagen seed), so the admission import finds them; else fresh people.
            pool = (datagen.people(self.register_people, self.seed) if self.register_people
                    else datagen.people(n + len(rs.applicants), seed))
            for p in pool:
                if len(added) == n:
                    break
                if p.personnummer in rs.applicants:
                    continue
                k = min(len(offers), choices or rng.randint(1, 3))
                fee = rng.random() < fee_share
                pnr = p.personnummer
                if fee and rng.random() < interim_share:
                    pnr = datagen.interimspersonnummer(rng, p.personnummer[:8])
                    if pnr in rs.applicants:
                        continue
                cond = ()
                if rng.random() < condition_share:
                    cond = (ENG6,) if rng.random() < 0.8 else (ENG6, MATH4)
                added.append(Applicant(
                    pnr, p.fornamn, p.efternamn, rng.sample(offers, k), round(rng.uniform(0, 22.5), 2),
                    fee_liable=fee, application_fee_paid=(not fee) or rng.random() < fee_paid_share,
                    conditions=cond, auto_accept=rng.random() < accept_share))
            return self.add_applicants(code, added)

    def list_applicants(self, code: str) -> list[str]:
        with self.lock:
            return list(self.round_state(code, open_only=True).applicants)

    def is_open_applicant(self, pnr: str) -> bool:
        return any(pnr in rs.applicants for rs in self.rounds.values() if rs.round.status == "open")

    # -- selection ------------------------------------------------------------------------
    def _touch(self, rs: RoundState, adm: Admission) -> None:
        adm.sequence = self.next_seq()
        adm.xml = None
        rs.admissions.move_to_end(adm.admission_id)

    def _condition_event(self, rs: RoundState, adm: Admission, c: Condition, change: str, date: dt.date) -> None:
        rs.changes.append(ConditionChange(self.next_seq(), adm.admission_id, adm.personnummer, adm.offer_id,
                                          c.code, c.text, change, date))

    def run_selection(self, code: str) -> dict[str, int]:
        """Per active offer: rank applicants by score (ties by personnummer), admit up to ``places``
        minus places already held, the rest become reserves. Re-running admits new applicants and
        promotes reserves into places freed by återbud; existing admissions are never revoked."""
        with self.lock:
            rs = self.round_state(code, open_only=True)
            by_offer: dict[str, list[tuple[Applicant, int]]] = {}
            for a in rs.applicants.values():
                for rank, oid in enumerate(a.choices, 1):
                    by_offer.setdefault(oid, []).append((a, rank))
            summary = {"admitted": 0, "reserves": 0, "created": 0, "promoted": 0}
            today = dt.date.today()
            for oid, cands in by_offer.items():
                offer = rs.offers[oid]
                if offer.status != "active":
                    continue
                cands.sort(key=lambda ar: (-ar[0].score, ar[0].personnummer))
                held = 0
                pending: list[tuple[Applicant, int, Admission | None]] = []
                for a, rank in cands:
                    aid = rs.admission_by_key.get((a.personnummer, oid))
                    adm = rs.admissions[aid] if aid else None
                    if adm is not None and (adm.aterbud is not None):
                        continue
                    if adm is not None and adm.admitted:
                        held += 1
                    else:
                        pending.append((a, rank, adm))
                reserve = 0
                for a, rank, adm in pending:
                    admit = held < offer.places
                    held += admit
                    position = None if admit else reserve + 1
                    reserve += not admit
                    if adm is None:
                        adm = Admission(f"{code}-A{len(rs.admissions) + 1:07d}", code, a.personnummer, oid, rank,
                                        admit, position, admit and a.auto_accept, a.fee_liable,
                                        a.application_fee_paid, [Condition(c, t) for c, t in a.conditions])
                        rs.admissions[adm.admission_id] = adm
                        rs.admission_by_key[(a.personnummer, oid)] = adm.admission_id
                        summary["created"] += 1
                        for c in adm.conditions:
                            self._condition_event(rs, adm, c, "added", today)
                        self._touch(rs, adm)
                    elif admit or adm.reserve_position != position:
                        if admit:
                            adm.admitted, adm.accepted = True, a.auto_accept
                            summary["promoted"] += 1
                        adm.reserve_position = position
                        self._touch(rs, adm)
                summary["admitted"] += held
                summary["reserves"] += reserve
            return summary

    # -- admissions -----------------------------------------------------------------------
    def admission(self, rs: RoundState, admission_id: str | None = None, pnr: str | None = None,
                  offer_id: str | None = None) -> Admission | None:
        if admission_id is None:
            admission_id = rs.admission_by_key.get((pnr, offer_id))
        return rs.admissions.get(admission_id) if admission_id else None

    def add_raw_admissions(self, code: str, fragments: list[str]) -> list[int]:
        """Put ``<Admission>`` fragments, as sent, into the round's GetAdmissions replies, each at a
        new sequence (``{sequence}`` in a fragment becomes it). Returns the sequences."""
        with self.lock:
            rs = self.round_state(code)
            out = []
            for xml in fragments:
                seq = self.next_seq()
                rs.raw.append(RawAdmission(seq, xml.replace("{sequence}", str(seq)).encode("utf-8", "surrogatepass")))
                out.append(seq)
            return out

    def admissions_since(self, code: str, from_seq: int = 0, only_accepted: bool = False
                         ) -> tuple[RoundState, list[Admission], int]:
        """Admissions with ``sequence >= from_seq`` in sequence order, and NextSequence."""
        with self.lock:
            rs = self.round_state(code)
            out = []
            for adm in reversed(rs.admissions.values()):
                if adm.sequence < from_seq:
                    break
                out.append(adm)
            out.reverse()
            nxt = next_sequence(out, from_seq)
            if only_accepted:
                out = [a for a in out if a.admitted and a.accepted]
            return rs, out, nxt

    def accept(self, code: str, pnr: str, offer_id: str | None = None) -> list[Admission]:
        """The applicant tackar ja to their admitted offers (or one of them)."""
        with self.lock:
            rs = self.round_state(code)
            done = []
            for oid in ([offer_id] if offer_id else rs.applicants.get(pnr, Applicant(pnr, "", "", [], 0)).choices):
                adm = self.admission(rs, pnr=pnr, offer_id=oid)
                if adm is not None and adm.admitted and not adm.accepted and adm.aterbud is None:
                    adm.accepted = True
                    self._touch(rs, adm)
                    done.append(adm)
            return done

    def lift_condition(self, code: str, admission_id: str, cond_code: str, date: dt.date | None = None) -> Admission:
        with self.lock:
            rs = self.round_state(code)
            adm = self.admission(rs, admission_id)
            if adm is None:
                raise NyaError("unknown-admission", f"no admission {admission_id} in round {code}")
            c = next((c for c in adm.conditions if c.code == cond_code), None)
            if c is None:
                raise NyaError("unknown-condition", f"admission {admission_id} has no condition {cond_code}")
            if not c.lifted:
                c.lifted, c.lifted_date = True, date or dt.date.today()
                self._condition_event(rs, adm, c, "lifted", c.lifted_date)
                self._touch(rs, adm)
            return adm

    def register_aterbud(self, code: str, *, admission_id: str | None = None, pnr: str | None = None,
                         offer_id: str | None = None, date: dt.date | None = None, origin: str = "applicant",
                         source: str | None = None, source_reference: str | None = None
                         ) -> tuple[str, Admission | None, AterbudRec | None, str | None]:
        """Returns (outcome, admission, återbud, reason); outcome registered | duplicate | rejected."""
        with self.lock:
            rs = self.round_state(code)
            adm = self.admission(rs, admission_id, pnr, offer_id)
            if adm is None:
                what = admission_id or f"applicant {pnr_mod.mask(pnr or '')} on offer {offer_id}"
                return "rejected", None, None, f"no admission for {what} in round {code}"
            if adm.aterbud is not None:
                return "duplicate", adm, adm.aterbud, f"återbud already registered ({adm.aterbud.origin})"
            rec = AterbudRec(f"{code}-R{len(rs.aterbud) + 1:07d}", self.next_seq(), adm.admission_id, adm.personnummer,
                             adm.offer_id, date or dt.date.today(), _now(), origin, source, source_reference)
            rs.aterbud.append(rec)
            adm.aterbud = rec
            self._touch(rs, adm)
            return "registered", adm, rec, None

    # -- merits ---------------------------------------------------------------------------
    def submit_merits(self, merits: list[Merit], request_id: str) -> list[tuple[str, str, str | None]]:
        with self.lock:
            out = []
            now = _now()
            for m in merits:
                cur = self.merits.get(m.merit_id)
                if not self.is_open_applicant(m.personnummer):
                    out.append((m.merit_id, "rejected", "unknown applicant: not an applicant in any open round"))
                    continue
                if m.type == "resultat" and not m.grade:
                    out.append((m.merit_id, "rejected", "a resultat needs a Grade"))
                    continue
                if cur is not None and cur.content() == m.content():
                    self.merit_duplicates += 1
                    out.append((m.merit_id, "duplicate", f"already received {cur.received.isoformat()}"))
                    continue
                m.received, m.request_id = now, request_id
                if cur is None:
                    self.merits_by_pnr.setdefault(m.personnummer, []).append(m.merit_id)
                elif cur.personnummer != m.personnummer:
                    self.merits_by_pnr[cur.personnummer].remove(m.merit_id)
                    self.merits_by_pnr.setdefault(m.personnummer, []).append(m.merit_id)
                self.merits[m.merit_id] = m
                out.append((m.merit_id, "accepted" if cur is None else "updated", None))
            return out

    def withdraw_merits(self, merit_ids: list[str]) -> list[tuple[str, str, str | None]]:
        """Merits the sender no longer has: removed (``withdrawn``), or ``not-held``."""
        with self.lock:
            out = []
            for mid in merit_ids:
                cur = self.merits.pop(mid, None)
                if cur is None:
                    out.append((mid, "not-held", "no merit with this MeritId is held"))
                    continue
                self.merits_by_pnr[cur.personnummer].remove(mid)
                self.merits_withdrawn += 1
                out.append((mid, "withdrawn", None))
            return out

    def applicants_since(self, code: str, from_seq: int) -> tuple[list[Applied], int]:
        """The round's applicants who first applied at or after ``from_seq``, and the NextSequence."""
        with self.lock:
            rs = self.round_state(code, open_only=True)
            items = since(rs.applied, from_seq)
            return items, next_sequence(items, from_seq)

    def applicant_merits(self, pnr: str) -> list[Merit]:
        with self.lock:
            return [self.merits[i] for i in self.merits_by_pnr.get(pnr, ())]

    # -- idempotency ----------------------------------------------------------------------
    def stored_reply(self, request_id: str, operation: str, digest: str) -> bytes | None:
        hit = self.replies.get(request_id)
        if hit is None:
            return None
        if hit[:2] != (operation, digest):
            raise NyaError("request-id-conflict",
                           f"RequestId {request_id} was already used for a different {hit[0]} request", "RequestId")
        self.replayed += 1
        return hit[2]

    def remember(self, request_id: str, operation: str, digest: str, reply: bytes) -> None:
        self.replies[request_id] = (operation, digest, reply)

    # -- read-back for the control API ----------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "sequence": self._seq,
                "merits": len(self.merits), "merit_duplicates": self.merit_duplicates,
                "merits_withdrawn": self.merits_withdrawn,
                "rounds": {c: {"status": rs.round.status, "offers": len(rs.offers), "applicants": len(rs.applicants),
                               "admissions": len(rs.admissions), "aterbud": len(rs.aterbud),
                               "condition_changes": len(rs.changes)} for c, rs in self.rounds.items()},
            }


def sample_offer(i: int, *, places: int = 30, kind: str = "ordinary", seed: int = 1) -> Offer:
    """A plausible course offer for demos and tests (deterministic per ``i``/``seed``)."""
    rng = random.Random(f"{seed}-{i}")
    subj = rng.choice(["Matematik", "Datavetenskap", "Svenska", "Historia", "Fysik", "Ekonomi"])
    return Offer(
        str(uuid.UUID(int=rng.getrandbits(128), version=4)), kind, f"{subj[:2].upper()}{100 + i:03d}",
        f"{10000 + i}", f"{subj} {i}", f"{subj} {i} (in English)", Decimal("7.5"),
        dt.date(2027, 8, 30), dt.date(2027, 11, 1), rng.choice(["Umeå", "Uppsala", "Distans"]), 50, places,
        *(("PROG1", str(uuid.UUID(int=rng.getrandbits(128), version=4))) if kind == "programme-internal" else ()),
    )


def seed(state: NyaState, seed: int = 1, *, offers: int = 0, applicants: int = 0, select: bool = False) -> NyaState:
    """Rounds HT2027 (open) and VT2027 (closed); optionally sample offers, applicants and a selection in HT2027."""
    with state.lock:
        state.seed = seed
        state.put_round("HT2027", "open")
        state.put_round("VT2027", "closed")
        if offers:
            state.publish_offers("HT2027", "ordinary", [sample_offer(i, seed=seed) for i in range(1, offers + 1)])
        if applicants:
            state.generate_applicants("HT2027", applicants, seed=seed)
        if select:
            state.run_selection("HT2027")
    return state
