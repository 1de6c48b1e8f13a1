"""Brygga's internal records: what mappings produce from and turn into external formats."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LadokEvent:
    """One event from Ladok's Atom feed (a Handelse)."""

    entry_id: str
    handelse_uid: str
    event_type: str  # local name, e.g. "RegistreringEvent"
    service: str  # e.g. "studiedeltagande"
    updated: str
    student_uid: str | None
    fields: dict[str, Any]


@dataclass
class FeedPage:
    """One page of the Atom feed, events oldest first."""

    self_url: str | None
    via_url: str | None
    prev_archive: str | None
    next_archive: str | None
    events: list[LadokEvent] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)  # mappings.base.RecordError
    skipped: Counter[str] = field(default_factory=Counter)  # unknown event types -> count
    feed_id: str | None = None  # the page's Atom id, ``urn:id:N``

    @property
    def number(self) -> int | None:
        """The archive page number: the page's id ``urn:id:N`` (as go_ladok reads it), else the
        ``via`` (or ``self``) link's last path segment."""
        tail = (self.feed_id or "").rsplit(":", 1)[-1]
        if tail.isdigit():
            return int(tail)
        for url in (self.via_url, self.self_url):
            tail = (url or "").rstrip("/").rsplit("/", 1)[-1]
            if tail.isdigit():
                return int(tail)
        return None


@dataclass(frozen=True)
class Offer:
    """An utbildningstillfälle offered in an admission round (utbud)."""

    offer_id: str  # Ladok utbildningstillfälle UID
    utbildningskod: str
    tillfalleskod: str
    name_sv: str
    credits: str  # hp, decimal as text ("7.5")
    start: str  # ISO dates
    end: str
    studietakt: int
    places: int
    name_en: str | None = None
    studieort: str | None = None
    programme_code: str | None = None  # programme-internal offers
    package_id: str | None = None


@dataclass(frozen=True)
class Merit:
    merit_id: str  # stable id of the Ladok object: ladok:<kind>:<uid> (merits/rules.merit_ref)
    personnummer: str
    type: str  # registrering|resultat|tillgodoraknande|avbrott|studieuppehall|examen
    utbildningskod: str
    date: str
    tillfalleskod: str | None = None
    modul: str | None = None
    credits: str | None = None
    grade: str | None = None
    source_reference: str | None = None

    def content_hash(self) -> str:
        """What NyA holds of the merit, hashed (its id and reference aside): the merit sync never
        sends the same content twice, the reconciliation compares NyA's with it."""
        content = json.dumps({f: getattr(self, f) for f in MERIT_CONTENT}, sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()


#: A merit's content: a change of any of these is sent again.
MERIT_CONTENT = ("personnummer", "type", "utbildningskod", "date", "tillfalleskod", "modul", "credits", "grade")


@dataclass(frozen=True)
class Applicant:
    """An applicant as they first appear in a NyA round's applicant stream (``GetApplicants``)."""

    sequence: int
    personnummer: str


@dataclass(frozen=True)
class Condition:
    code: str
    text: str
    lifted: bool = False
    lifted_date: str | None = None


@dataclass(frozen=True)
class Admission:
    admission_id: str
    sequence: int
    round: str
    personnummer: str
    given_name: str
    family_name: str
    offer_id: str
    utbildningskod: str
    tillfalleskod: str
    programme_internal: bool
    admitted: bool
    accepted: bool
    fee_liable: bool
    application_fee_paid: bool | None = None
    programme_code: str | None = None
    package_id: str | None = None
    conditions: tuple[Condition, ...] = ()
    aterbud_date: str | None = None


@dataclass(frozen=True)
class NyaAterbud:
    aterbud_id: str
    sequence: int
    admission_id: str
    personnummer: str
    offer_id: str
    date: str
    origin: str  # applicant|staff|ladok
    registered: str | None = None


@dataclass(frozen=True)
class AterbudReport:
    """An återbud entered in Ladok, reported to NyA."""

    admission_id: str
    date: str
    source_reference: str | None = None


@dataclass(frozen=True)
class ConditionChange:
    sequence: int
    admission_id: str
    personnummer: str
    offer_id: str
    code: str
    text: str
    change: str  # added|lifted
    date: str


@dataclass(frozen=True)
class Address:
    utdelningsadress: str
    postnummer: str
    postort: str


@dataclass(frozen=True)
class Student:
    personnummer: str
    fornamn: str
    efternamn: str
    uid: str | None = None
    protected: bool = False  # skyddade personuppgifter: never with an address
    address: Address | None = None


@dataclass(frozen=True)
class Utbildningstillfalle:
    """A Ladok course/programme instance as the offer export needs it."""

    uid: str
    utbildningskod: str | None
    tillfalleskod: str | None
    name_sv: str | None
    name_en: str | None
    credits: str | None
    start: str | None
    end: str | None
    studietakt: int | None
    studieort: str | None
    installt: bool
    utannonserat: bool
    is_programme: bool
    rounds: tuple[str, ...] = ()
    course_uids: tuple[str, ...] = ()  # programme: the course instances of its package
    undervisningssprak: str | None = None  # teaching language (sv, en)
    undervisningstid: str | None = None  # DAG | KVALL | BLANDAD
    organisation: str | None = None  # organisationsenhet code


@dataclass(frozen=True)
class Participant:
    """One tillfällesantagning of a course/programme instance as Ladok lists its participants
    (sd:Deltagare). ``state`` is Ladok's tillstånd (ej_paborjad, registrerad, aterbud, avbrott,
    tidigtavbrott). A student with skyddade personuppgifter comes by UID only: ``protected`` and
    no name."""

    uid: str  # the tillfällesantagning
    student_uid: str
    instance_uid: str
    state: str
    fornamn: str | None = None
    efternamn: str | None = None
    protected: bool = False


@dataclass(frozen=True)
class Placement:
    """An admission to place in a student's study plan (Tillfallesantagning)."""

    student_uid: str
    utbildningstillfalle_uid: str
    anmalningsnummer: str  # NyA admission id, Ladok's idempotency key
    fee: str = "ej_aktuell"  # Studieavgiftsbetalning value suffix
    package_uid: str | None = None
    fristaende: bool = False
    inom_kurspaketering: bool = False
    villkor: tuple[str, ...] = ()  # behörighetsvillkor codes
    application_fee_paid: bool | None = None  # betald anmälningsavgift (fee-liable applicants)
    traceparent: str | None = None  # the admission's W3C trace context, sent as a header (brygga.tracing)


@dataclass(frozen=True)
class Hinder:
    """A Ladok rule that stops what was asked: a ``base:Hinder`` of a rule result
    (``sd:Regelresultat``), or a ``base:LadokException`` of a business rule (its Detaljkod)."""

    key: str
    text: str
    stoppande: bool = True
    fel_uid: str | None = None  # the LadokException's FelUID, when it came as one

    def describe(self) -> str:
        """Ladok's words, the rule's key and the FelUID (which finds it in Ladok's own logs): what
        a queue entry, a case and a quarantine row keep."""
        return f"{self.text or 'Ladok refused'} ({self.key}" + (f", FelUID {self.fel_uid})" if self.fel_uid else ")")


@dataclass(frozen=True)
class LadokFel:
    """A refusal or failure as Ladok answers it (``base:LadokException``): the codes say what kind
    (``felkategori``: applikationsfel, valideringsfel, sakerhetsovertradelse …; ``felgrupp``:
    domanregel, felaktigt_format …; ``detaljkod``: the rule or field), ``fel_uid`` finds it in
    Ladok's own logs."""

    felkategori: str | None = None
    felkategori_text: str | None = None
    felgrupp: str | None = None
    felgrupp_text: str | None = None
    detaljkod: str | None = None
    detaljkod_text: str | None = None
    fel_uid: str | None = None
    felkalla_attribut: str | None = None
    felkalla_objekt: str | None = None
    meddelande: str | None = None

    def describe(self) -> str:
        """What an operator reads (and a quarantine row keeps): the texts, the codes, the FelUID."""
        texts = "; ".join(t for t in (self.felkategori_text, self.felgrupp_text, self.detaljkod_text,
                                      self.meddelande) if t)
        codes = ", ".join(c for c in (self.felkategori, self.felgrupp, self.detaljkod) if c)
        where = f" (attribut {self.felkalla_attribut})" if self.felkalla_attribut else ""
        return f"{texts or 'Ladok refused'} [{codes}]{where}" + (f" FelUID {self.fel_uid}" if self.fel_uid else "")


@dataclass(frozen=True)
class Grade:
    """One grade of a Ladok grade scale (``ki:Betygsgrad``)."""

    grade_id: str
    code: str  # A, B, …, F, FX; P; G, VG, U …
    valid_final: bool  # GiltigSomSlutbetyg: a pass that counts as a final grade
    ordinal: int


@dataclass(frozen=True)
class GradeScale:
    """A Ladok grade scale (``ki:Betygsskala``, grunddata): its grades."""

    scale_id: str
    code: str  # AF, PF, UV …
    grades: tuple[Grade, ...]


@dataclass(frozen=True)
class LadokUser:
    """Who the client certificate is in Ladok (``ki:Anvandare``) and what it may do: its
    permission profiles and the system activities (rights) they grant, id -> level."""

    uid: str | None
    username: str | None
    larosate_id: str | None
    profiles: tuple[tuple[str, str, str], ...] = ()  # (uid, name, status AKTIV/INAKTIV/OBEHANDLAD)
    activities: dict[int, str] = field(default_factory=dict)  # Systemaktivitet id -> Rattighetsniva


@dataclass(frozen=True)
class PlanNode:
    """One admission (tillfällesantagning) in a student's study plan."""

    antagning_uid: str
    tillfalle_uid: str | None
    utbildningskod: str | None
    tillfalleskod: str | None
    parent_uid: str | None  # the package admission it sits in
    aterbud: bool = False
    tillstand: str | None = None  # ej_paborjad|registrerad|tidigtavbrott|avbrott|aterbud


@dataclass(frozen=True)
class ArchiveReceipt:
    """The archive's receipt (kvittens) for one delivered package: ``mottaget`` (accepted),
    ``redan-mottaget`` (the same package was accepted before) or ``avvisat`` with its reasons
    (rule, text)."""

    package_id: str
    status: str
    archive_id: str | None = None
    received: str | None = None
    sha256: str | None = None
    reasons: tuple[tuple[str, str], ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status in ("mottaget", "redan-mottaget")


# ----------------------------------------------------------------------------- scheduling objects
# What a scheduling system gets from Ladok (the schedule export's model, brygga/flows/schedule/model.py,
# builds them; the mappings in mappings/schema/ write them in each format).

KINDS = ("student", "instance", "group", "membership")  # the order objects are sent in (references first)
ORDER = {k: i for i, k in enumerate(KINDS)}


@dataclass(frozen=True)
class ScheduleObject:
    kind: str
    ext_id: str
    fields: dict[str, Any]
    active: bool = True
    instance_uid: str | None = None  # the instance it belongs to (None: a student)
    term: str | None = None  # that instance's start term and organisation unit: the scope it was
    organisation: str | None = None  # exported in (kept beside the object, not part of its content)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ext_id}"

    content_hash: str = field(init=False, repr=False, compare=False)  # computed once: diff and row ask

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_hash", content_hash(self.kind, self.fields, self.active))

    def payload(self) -> dict[str, Any]:
        return {"kind": self.kind, "ext_id": self.ext_id, "fields": self.fields, "active": self.active,
                "instance_uid": self.instance_uid, "organisation": self.organisation}


def content_hash(kind: str, fields: dict[str, Any], active: bool) -> str:
    """The same for the same content, whoever computes it (what the reconciliation reads back from
    the system too): the values of the kind's fields in their fixed order (``FIELDS``), an absent
    field the same as an empty one (None; an empty list too: PATCH clears a field by sending it
    empty), hashed over their ``repr`` (deterministic for the strings, numbers, booleans and
    tuples the model holds; one pass in C, no sorting or JSON)."""
    values = [fields.get(n) for n in FIELDS[kind]]
    for i in _LISTS.get(kind, ()):
        v = values[i]
        values[i] = tuple(v) if v else None
    return hashlib.blake2b(repr((kind, bool(active), values)).encode(), digest_size=32).hexdigest()


#: Every field of each kind: an upsert names them all (None clears one in the system).
FIELDS = {
    "instance": ("typ", "kod", "tillfalleskod", "namn_sv", "namn_en", "omfattning", "start", "slut", "studietakt",
                 "undervisningstid", "studieort", "undervisningssprak", "organisation", "period", "antal_antagna",
                 "antal_forvantade", "antal_registrerade", "antal_aterbud", "antal_avbrott", "kurstillfallen"),
    "group": ("namn", "tillfalle"),
    "student": ("fornamn", "efternamn", "epost", "skyddad"),
    "membership": ("grupp", "student", "roll"),
}
#: Where each kind's list fields are among its FIELDS (a list hashes as a tuple, an empty one as None).
_LISTS = {kind: tuple(i for i, n in enumerate(names) if n == "kurstillfallen") for kind, names in FIELDS.items()}
