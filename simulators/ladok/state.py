"""In-memory Ladok domain: students, catalogue, study plans, grunddata, and the rules of the REST API.

Everything is indexed (personnummer, uid, Anmalningsnummer) so each operation is O(1) apart
from the per-student plan. All public methods take ``self.lock``; rule violations raise
``LadokError`` (status, Ladok-style key, Swedish text), which the app renders as Ladok does: a
``base:LadokException`` (a rule's key as its Detaljkod), or a rule result (``sd:Regelresultat``
with its ``base:Hinder``) for a placement a rule stops.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from dataclasses import dataclass, field

from brygga import personnummer as pnr_mod
from brygga.rights import SYSTEMAKTIVITETER
from simulators import datagen
from simulators.ladok import events as ev
from simulators.ladok.events import new_uid
from simulators.ladok.feed import Feed

TIDIGT_AVBROTT_DAGAR = 21  # avbrott before study start + 21 days is an early avbrott
AVGIFT = "studiedeltagande.domain.studieavgiftsbetalningsvarde."
AVGIFTSVARDEN = {AVGIFT + v for v in ("ej_betald", "ej_aktuell", "betald", "aterbetald", "ej_provad", "undantag")}
VILLKORSTYPER = {f"studiedeltagande.domain.behorighetsvillkor.typ.{t}" for t in ("sb", "gba", "ov")}
ORSAK = "studiedeltagande.domain.aterbudsorsak."
ATERBUDSORSAKER = {ORSAK + "meddelat.av.studenten", ORSAK + "uteblev"}
UTBILDNINGSTYP_ID = {"kurs": 22, "program": 42}
#: Grade scales (grunddata betygsskala): BetygsskalaID -> (Kod, {betyg: (BetygsgradID, GiltigSomSlutbetyg)}).
#: AF and PF with the ids KTH/transfer-to-ladok and KTH/course-survey-integration-api use against
#: the real Ladok (131657 AF: 131661 A … 131697 F; 131656 PF: 131658 P, 131663 F); UV's scale id
#: 101312 appears in go_ladok's mocks, its grade ids are the simulator's own.
BETYGSSKALOR: dict[int, tuple[str, dict[str, tuple[int, bool]]]] = {
    131657: ("AF", {"A": (131661, True), "B": (131667, True), "C": (131673, True), "D": (131679, True),
                    "E": (131691, True), "FX": (131696, False), "F": (131697, False)}),
    131656: ("PF", {"P": (131658, True), "F": (131663, False)}),
    101312: ("UV", {"VG": (101313, True), "G": (101314, True), "U": (101315, False)}),
}
STUDIEORTER = {1: "Göteborg", 2: "Stockholm", 3: "Lund", 9: "Distans"}  # StudielokaliseringID
ORGANISATIONER = ["DATA", "MATE", "FYSI", "EKON", "HUMA"]  # organisationsenhet codes, by utbildningskod
PERIOD_ID_BASE = 100000  # grunddata period IDs are the simulator's own: 100000 + year*2 (+1 for HT)
#: Ladok tillstånd of a participant -> sd:DeltagaretillstandEnum (what the participant search filters by).
DELTAGARETILLSTAND = {"ej_paborjad": "EJ_PABORJAD", "registrerad": "REGISTRERAD", "aterbud": "ATERBUD",
                      "avbrott": "AVBROTT", "tidigtavbrott": "AVBROTT", "tillfallesbyte": "EJ_PAGAENDE_TILLFALLESBYTE"}


def organisation_uid(code: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://ladok.se/sim/organisation/{code}"))


def _epost(fornamn: str, efternamn: str, pnr: str) -> str | None:
    """The e-mail address Ladok holds for a student (every tenth has none)."""
    if int(pnr[-2:]) % 10 == 0:
        return None
    local = "".join(c for c in f"{fornamn}.{efternamn}".lower().translate(str.maketrans("åäöé", "aaoe"))
                    if c.isascii() and (c.isalnum() or c == "."))
    return f"{local}{pnr[-4:]}@student.example.se"


class LadokError(Exception):
    def __init__(self, status: int, key: str, text: str):
        super().__init__(f"{status} {key}: {text}")
        self.status, self.key, self.text = status, key, text


def _hinder(key: str, text: str) -> LadokError:
    return LadokError(409, f"studiedeltagande.hinder.{key}", text)


def _missing(what: str, uid: str) -> LadokError:
    return LadokError(404, f"{what}.hittades.ej", f"{what} {uid} finns inte")


@dataclass
class Adress:
    utdelningsadress: str
    postnummer: str
    postort: str


@dataclass
class Student:
    uid: str
    personnummer: str
    fornamn: str
    efternamn: str
    skyddad: bool = False
    adress: Adress | None = None
    epost: str | None = None


@dataclass
class Modul:
    uid: str
    kod: str
    benamning: str
    omfattning: str


@dataclass
class Utbildning:
    uid: str
    instans_uid: str
    kod: str
    sv: str
    en: str
    omfattning: str
    typ: str  # "kurs" | "program"
    moduler: list[Modul] = field(default_factory=list)

    @property
    def utbildningstyp_id(self) -> int:
        return UTBILDNINGSTYP_ID[self.typ]


@dataclass
class Tillfalle:
    uid: str
    utbildning: Utbildning
    kod: str
    start: dt.date
    slut: dt.date
    takt: int = 100
    studielokalisering_id: int = 1
    omgangar: list[str] = field(default_factory=list)
    installt: bool = False
    utannonserat: bool = True
    ingaende: list[str] = field(default_factory=list)  # programme: course instance uids in the package
    paketeringar: list[str] = field(default_factory=list)  # course: programme instances containing it
    undervisningssprak: str = "sv"
    undervisningstid: str = "DAG"  # DAG | KVALL | BLANDAD
    organisation: str = ""  # organisationsenhet code; "" = from the utbildningskod

    @property
    def startperiod(self) -> str:
        """The term the instance starts in: ``HT2027`` (July-December) or ``VT2028``."""
        return f"{'HT' if self.start.month >= 7 else 'VT'}{self.start.year}"

    @property
    def organisationsenhet(self) -> str:
        return self.organisation or ORGANISATIONER[sum(map(ord, self.utbildning.kod)) % len(ORGANISATIONER)]

    @property
    def organisation_uid(self) -> str:
        """The organisationsenhet's uid (what ``filtrera`` takes as ``organisationUID``)."""
        return organisation_uid(self.organisationsenhet)

    @property
    def reg_start(self) -> dt.date:
        return self.start - dt.timedelta(days=14)

    @property
    def reg_slut(self) -> dt.date:
        return self.start + dt.timedelta(days=TIDIGT_AVBROTT_DAGAR)

    @property
    def studieort(self) -> str:
        return STUDIEORTER.get(self.studielokalisering_id, "Okänd")

    def attribut(self) -> list[tuple[int, str, str]]:
        """(Grupp, Namn, Varde) for the facts ui:Utbildningstillfalle has no own element for."""
        u = self.utbildning
        out = [
            (0, "utbildningstillfalle.attribut.utbildningskod", u.kod),
            (0, "utbildningstillfalle.attribut.studieort", self.studieort),
            (0, "utbildningstillfalle.attribut.studietakt", str(self.takt)),
            (0, "utbildningstillfalle.attribut.undervisningssprak", self.undervisningssprak),
            (0, "utbildningstillfalle.attribut.undervisningstid", self.undervisningstid),
            (0, "utbildningstillfalle.attribut.organisation", self.organisationsenhet),
        ]
        out += [(i, "utbildningstillfalle.attribut.antagningsomgang", o) for i, o in enumerate(self.omgangar)]
        out += [(i, "utbildningstillfalle.attribut.ingaende.utbildningstillfalle", c) for i, c in enumerate(self.ingaende)]
        return out

    def json(self) -> dict:
        u = self.utbildning
        return {
            "uid": self.uid, "utbildningskod": u.kod, "tillfalleskod": self.kod, "typ": u.typ,
            "benamning": {"sv": u.sv, "en": u.en}, "omfattning": u.omfattning,
            "start": self.start.isoformat(), "slut": self.slut.isoformat(), "studietakt": self.takt,
            "studieort": self.studieort, "antagningsomgangar": self.omgangar, "installt": self.installt,
            "utannonserat": self.utannonserat, "ingaende": self.ingaende, "paketeringar": self.paketeringar,
            "moduler": [m.kod for m in u.moduler],
        }


@dataclass
class Villkor:
    kod: str  # ExternTextUID (NyA's villkor id)
    typ: str
    borttaget: bool = False
    manuellt: bool = False


@dataclass
class Registrering:
    uid: str
    period: int
    datum: dt.date
    aterkallad: dt.date | None = None


@dataclass
class Aterbud:
    uid: str
    datum: dt.date
    orsak: str
    externt_system: str | None
    av_student: bool = False  # entered by the student in Ladok's student web (not by staff or a system)


@dataclass
class Avbrott:
    uid: str
    datum: dt.date
    tidigt: bool
    externreferens: str | None


@dataclass
class Antagning:
    uid: str
    student_uid: str
    tillfalle: Tillfalle
    anmalningsnummer: str | None
    avgift: str
    paket: Antagning | None = None
    villkor: dict[str, Villkor] = field(default_factory=dict)
    aterbud: Aterbud | None = None
    avbrott: Avbrott | None = None
    registreringar: list[Registrering] = field(default_factory=list)
    barn: list[Antagning] = field(default_factory=list)
    anmalningsavgift_betald: bool | None = None
    bytt_till: str | None = None  # the instance switch (omregistrering) that ended it: the new antagning

    def aktuella_villkor(self) -> list[Villkor]:
        return [v for v in self.villkor.values() if not v.borttaget]

    def aktiva_registreringar(self) -> list[Registrering]:
        return [r for r in self.registreringar if r.aterkallad is None]

    @property
    def registrerad(self) -> bool:
        return bool(self.aktiva_registreringar()) or any(b.registrerad for b in self.barn)

    @property
    def villkorsvarning(self) -> bool:
        """Ladok warns on the course row (its own villkor or its package's), never on the programme row."""
        if self.tillfalle.utbildning.typ != "kurs":
            return False
        return bool(self.aktuella_villkor()) or bool(self.paket and self.paket.aktuella_villkor())

    @property
    def aktiv(self) -> bool:
        return self.aterbud is None and self.avbrott is None and self.bytt_till is None

    @property
    def tillstand(self) -> str:
        if self.bytt_till:
            return "tillfallesbyte"
        if self.aterbud:
            return "aterbud"
        if self.avbrott:
            return "tidigtavbrott" if self.avbrott.tidigt else "avbrott"
        return "registrerad" if self.registrerad else "ej_paborjad"

    def json(self) -> dict:
        return {
            "uid": self.uid, "student_uid": self.student_uid, "utbildningstillfalle_uid": self.tillfalle.uid,
            "utbildningskod": self.tillfalle.utbildning.kod, "typ": self.tillfalle.utbildning.typ,
            "anmalningsnummer": self.anmalningsnummer, "studieavgiftsbetalning": self.avgift,
            "anmalningsavgift_betald": self.anmalningsavgift_betald,
            "villkorsvarning": self.villkorsvarning,
            "kurspaketeringstillfalle_uid": self.paket.tillfalle.uid if self.paket else None,
            "paket_tillfallesantagning_uid": self.paket.uid if self.paket else None,
            "tillstand": self.tillstand,
            "villkor": [{"kod": v.kod, "typ": v.typ, "borttaget": v.borttaget, "manuellt": v.manuellt}
                        for v in self.villkor.values()],
            "aterbud": self.aterbud and {"datum": self.aterbud.datum.isoformat(), "orsak": self.aterbud.orsak,
                                         "externt_system": self.aterbud.externt_system,
                                         "av_student": self.aterbud.av_student},
            "avbrott": self.avbrott and {"datum": self.avbrott.datum.isoformat(), "tidigt": self.avbrott.tidigt},
            "registreringar": [{"uid": r.uid, "period": r.period, "datum": r.datum.isoformat(),
                                "aterkallad": r.aterkallad and r.aterkallad.isoformat()} for r in self.registreringar],
            "barn": [b.uid for b in self.barn],
        }


@dataclass
class Resultat:
    uid: str
    antagning: Antagning
    modul: Modul | None  # None: the grade on the whole course (ResultatPaHelKurs)
    betyg: str
    betygsskala_id: int
    betygsgrad_id: int
    examinationsdatum: dt.date
    giltig_som_slutbetyg: bool = True
    makulerat: bool = False


@dataclass
class Uppehall:
    uid: str
    antagning: Antagning
    start: dt.date
    slut: dt.date


@dataclass
class Bevis:
    """An issued degree certificate (utfärdat bevis) of a degree (examen)."""

    uid: str
    student_uid: str
    datum: dt.date
    benamning_sv: str
    benamning_en: str
    kod: str  # bevisbenämningskod
    omfattning: str
    paket_instans_uid: str | None = None
    avslutade_studier: dt.date | None = None
    borttaget: bool = False


@dataclass
class Tillgodoraknande:
    uid: str
    student_uid: str
    benamning: str
    omfattning: str
    beslutsdatum: dt.date
    kurspaketeringstillfalle_uid: str | None = None


@dataclass
class Placering:
    """A request to place an admission (from NyA, via Brygga) in the student's study plan."""

    student_uid: str
    tillfalle_uid: str
    anmalningsnummer: str
    avgift: str = AVGIFT + "ej_aktuell"
    kurspaketeringstillfalle_uid: str | None = None
    fristaende: bool = False
    inom_kurspaketering: bool = False
    villkor: list[tuple[str, str]] = field(default_factory=list)  # (kod, typ)
    anmalningsavgift_betald: bool | None = None  # NyA: paid application fee (fee-liable applicants)


class LadokState:
    def __init__(self, page_size: int = 50):
        self.lock = threading.RLock()
        self.page_size = page_size
        # Lärosätesinställning: may students enter återbud themselves in Ladok's student web?
        # A university setting, kept across reset().
        self.studenter_far_lamna_aterbud = True
        # who the integration's client certificate is, and its permission profiles:
        # uid -> (name, status AKTIV/INAKTIV/OBEHANDLAD, {Systemaktivitet id: Rattighetsniva})
        self.integration_uid = "1a7e0000-1a7e-4000-8000-000000000027"
        self.integration_anvandarnamn = "brygga-integration@larosatet.example.se"
        self.behorighetsprofiler: dict[str, tuple[str, str, dict[int, str]]] = {
            "9b0f0000-9b0f-4000-8000-000000000001": (
                "Brygga (integration)", "AKTIV", dict.fromkeys(SYSTEMAKTIVITETER, "rattighetsniva.las")),
        }
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.feed = Feed(self.page_size)
            self.students: dict[str, Student] = {}
            self.by_pnr: dict[str, Student] = {}
            self.utbildningar: dict[str, Utbildning] = {}  # by kod
            self.tillfallen: dict[str, Tillfalle] = {}
            self.antagningar: dict[str, Antagning] = {}
            self.by_tillfalle: dict[str, list[Antagning]] = {}  # tillfalle uid -> antagningar (participants)
            self.by_anmalningsnummer: dict[str, Antagning] = {}
            self.traceparents: dict[str, list[str]] = {}  # Anmalningsnummer -> traceparent headers received
            self.plan: dict[str, list[Antagning]] = {}  # student uid -> antagningar
            self.resultat: dict[str, list[Resultat]] = {}
            self.tillgodo: dict[str, list[Tillgodoraknande]] = {}
            self.bevis: dict[str, Bevis] = {}  # utfärdade bevis by uid
            self.uppehall_by_uid: dict[str, Uppehall] = {}
            self.betygsskalor = {k: (kod, dict(g)) for k, (kod, g) in BETYGSSKALOR.items()}
            self.placements_created = self.placements_replayed = 0  # POST tillfallesantagning: new / the same again
            self._index: dict[tuple[str, str], list[Tillfalle]] = {}  # (field, value) -> instances

    def _emit(self, *events: ev.Event) -> None:
        """The events of one action, in order, on one feed page."""
        self.feed.append_action(list(events))

    # --- students -------------------------------------------------------------------------
    def etablera_student(self, personnummer: str, fornamn: str, efternamn: str, *, skyddad: bool = False,
                         adress: Adress | None = None, emit: bool = True) -> Student:
        try:
            pnr = pnr_mod.parse(personnummer).value
        except pnr_mod.InvalidPersonnummer as e:
            raise LadokError(400, "studentinformation.hinder.personnummer.ogiltigt", f"Ogiltigt personnummer: {e}") from None
        if not fornamn or not efternamn:
            raise LadokError(400, "studentinformation.hinder.namn.saknas", "Förnamn och efternamn krävs")
        if skyddad and adress is not None:
            raise LadokError(400, "studentinformation.hinder.skyddad.adress",
                             "Adress får inte lämnas för en person med skyddade personuppgifter")
        with self.lock:
            if pnr in self.by_pnr:
                raise LadokError(409, "studentinformation.hinder.personnummer.finns",
                                 "Det finns redan en student med detta personnummer")
            s = Student(new_uid(), pnr, fornamn, efternamn, skyddad, adress, _epost(fornamn, efternamn, pnr))
            self.students[s.uid] = self.by_pnr[pnr] = s
            if emit:
                self._emit(ev.lokal_student(s), ev.student_till_larosate(s))
            return s

    def byt_personnummer(self, student_uid: str, personnummer: str) -> Student:
        """A student's personnummer changes (an interimspersonnummer replaced by a Swedish one, a
        samordningsnummer by a personnummer): LokalStudentEvent UPPDATERAD with TidigarePersonnummer."""
        try:
            pnr = pnr_mod.parse(personnummer).value
        except pnr_mod.InvalidPersonnummer as e:
            raise LadokError(400, "studentinformation.hinder.personnummer.ogiltigt", f"Ogiltigt personnummer: {e}") from None
        with self.lock:
            s = self.student(student_uid)
            if pnr in self.by_pnr and self.by_pnr[pnr] is not s:
                raise LadokError(409, "studentinformation.hinder.personnummer.finns",
                                 "Det finns redan en student med detta personnummer")
            old = s.personnummer
            del self.by_pnr[old]
            s.personnummer = pnr
            self.by_pnr[pnr] = s
            self._emit(ev.lokal_student(s, "UPPDATERAD", old))
            return s

    def skydda(self, student_uid: str) -> Student:
        """The student gets skyddade personuppgifter: name and address are no longer given out."""
        with self.lock:
            s = self.student(student_uid)
            if not s.skyddad:
                s.skyddad, s.adress, s.epost = True, None, None
                self._emit(ev.skyddade_personuppgifter(s))
            return s

    def andra_epost(self, student_uid: str, epost: str | None) -> Student:
        """The student changes their contact details in the student web."""
        with self.lock:
            s = self.student(student_uid)
            s.epost = epost
            self._emit(ev.kontaktuppgifter(s))
            return s

    def student(self, uid: str) -> Student:
        s = self.students.get(uid)
        if s is None:
            raise _missing("student", uid)
        return s

    def student_by_pnr(self, personnummer: str) -> Student:
        try:
            pnr = pnr_mod.parse(personnummer).value
        except pnr_mod.InvalidPersonnummer as e:
            raise LadokError(400, "studentinformation.hinder.personnummer.ogiltigt", f"Ogiltigt personnummer: {e}") from None
        s = self.by_pnr.get(pnr)
        if s is None:
            raise LadokError(404, "student.hittades.ej", "Ingen student med detta personnummer")
        return s

    def filtrera_studenter(self, personnummer: list[str], *, page: int = 1,
                           limit: int = 400) -> tuple[int, list[Student]]:
        """The students with any of these numbers, in the order asked (stable paging); unknown
        numbers are simply not in the result, an invalid one refuses the search like the single lookup."""
        try:
            wanted = dict.fromkeys(pnr_mod.canonical(p) for p in personnummer)
        except pnr_mod.InvalidPersonnummer as e:
            raise LadokError(400, "studentinformation.hinder.personnummer.ogiltigt", f"Ogiltigt personnummer: {e}") from None
        with self.lock:
            hits = [self.by_pnr[p] for p in wanted if p in self.by_pnr]
        start = (max(page, 1) - 1) * limit
        return len(hits), hits[start:start + limit]

    # --- catalogue ------------------------------------------------------------------------
    def add_utbildning(self, kod: str, sv: str, en: str, omfattning: str, typ: str,
                       moduler: list[tuple[str, str, str]] = ()) -> Utbildning:
        if typ not in UTBILDNINGSTYP_ID:
            raise LadokError(400, "utbildningsinformation.typ.ogiltig", f"Okänd utbildningstyp {typ}")
        with self.lock:
            if kod in self.utbildningar:
                return self.utbildningar[kod]
            u = Utbildning(new_uid(), new_uid(), kod, sv, en, omfattning, typ,
                           [Modul(new_uid(), k, b, o) for k, b, o in moduler])
            self.utbildningar[kod] = u
            return u

    def add_tillfalle(self, utbildning: Utbildning, kod: str, start: dt.date, slut: dt.date, *, takt: int = 100,
                      studielokalisering_id: int = 1, omgangar: list[str] = (), ingaende: list[str] = (),
                      utannonserat: bool = True, installt: bool = False) -> Tillfalle:
        with self.lock:
            if ingaende and utbildning.typ != "program":
                raise LadokError(400, "utbildningsinformation.ingaende.ej.program", "Endast program kan paketera")
            kurser = [self.tillfalle(c) for c in ingaende]
            t = Tillfalle(new_uid(), utbildning, kod, start, slut, takt, studielokalisering_id, list(omgangar),
                          installt, utannonserat, list(ingaende))
            for c in kurser:
                c.paketeringar.append(t.uid)
            self.tillfallen[t.uid] = t
            keys = [("utbildningskod", utbildning.kod), ("tillfalleskod", kod), ("alla", ""),
                    ("startperiod", t.startperiod)]
            for key in keys + [("antagningsomgang", o) for o in t.omgangar]:
                self._index.setdefault(key, []).append(t)
            return t

    def flytta_tillfalle(self, uid: str, start: dt.date) -> Tillfalle:
        """Move an instance to another start date (and so perhaps another term), as an edit in
        Ladok would: the term search finds it under its new term."""
        with self.lock:
            t = self.tillfalle(uid)
            old = self._index.get(("startperiod", t.startperiod), [])
            if t in old:
                old.remove(t)
            t.start = start
            self._index.setdefault(("startperiod", t.startperiod), []).append(t)
            return t

    def tillfalle(self, uid: str) -> Tillfalle:
        t = self.tillfallen.get(uid)
        if t is None:
            raise _missing("utbildningstillfalle", uid)
        return t

    def filtrera(self, *, antagningsomgang: str | None = None, tillfalleskod: list[str] = (),  # type: ignore[assignment]
                 utbildningskod: list[str] = (), startperiod: str | None = None,  # type: ignore[assignment]
                 organisation: list[str] = (), status: list[int] = (), page: int = 1,  # type: ignore[assignment]
                 limit: int = 400) -> tuple[int, list[Tillfalle]]:
        """``filtrera``: every criterion given must hold (a repeated one: any of its values);
        ``startperiod`` is a term code (the app maps ``startperiodID`` to it), ``status`` Ladok's
        utbildningstillfälle status (3 komplett, 4 avvecklad/inställd)."""
        given = [("antagningsomgang", antagningsomgang), ("startperiod", startperiod)]
        given = [(k, v) for k, v in given if v]
        with self.lock:
            lists = [self._index.get(kv, []) for kv in given]
            lists += [[t for v in tillfalleskod for t in self._index.get(("tillfalleskod", v), [])]] if tillfalleskod else []
            lists += [[t for v in utbildningskod for t in self._index.get(("utbildningskod", v), [])]] if utbildningskod else []
            base = min(lists, key=len) if lists else self._index.get(("alla", ""), [])
            hits = [t for t in {t.uid: t for t in base}.values() if all(
                (k == "antagningsomgang" and v in t.omgangar) or (k == "startperiod" and t.startperiod == v)
                for k, v in given)
                and (not tillfalleskod or t.kod in tillfalleskod)
                and (not utbildningskod or t.utbildning.kod in utbildningskod)
                and (not organisation or t.organisation_uid in organisation)
                and (not status or (4 if t.installt else 3) in status)]
        start = (max(page, 1) - 1) * limit
        return len(hits), hits[start:start + limit]

    def deltagare(self, tillfalle_uids: list[str], *, tillstand: list[str] = (),  # type: ignore[assignment]
                  page: int = 1, limit: int = 400) -> tuple[int, list[Antagning]]:
        """The participants (tillfällesantagningar) of the instances, in their order, in the
        ``tillstand`` asked (sd:DeltagaretillstandEnum values; none: every state)."""
        wanted = set(tillstand)
        with self.lock:
            hits = [a for uid in dict.fromkeys(tillfalle_uids) for a in self.by_tillfalle.get(uid, [])
                    if not wanted or DELTAGARETILLSTAND[a.tillstand] in wanted]
        start = (max(page, 1) - 1) * limit
        return len(hits), hits[start:start + limit]

    def perioder(self) -> list[tuple[int, str, dt.date, dt.date]]:
        """Grunddata period: (ID, Kod, FromDatum, TomDatum) of the terms 2020-2035 (HT: July-January,
        VT: February-June, as the simulator's instances are put in terms)."""
        out = []
        for year in range(2020, 2036):
            out.append((PERIOD_ID_BASE + year * 2, f"VT{year}", dt.date(year, 1, 1), dt.date(year, 6, 30)))
            out.append((PERIOD_ID_BASE + year * 2 + 1, f"HT{year}", dt.date(year, 7, 1), dt.date(year, 12, 31)))
        return out

    def period_kod(self, period_id: int) -> str | None:
        return next((kod for pid, kod, _, _ in self.perioder() if pid == period_id), None)

    def stall_in(self, tillfalle_uid: str) -> Tillfalle:
        with self.lock:
            t = self.tillfalle(tillfalle_uid)
            if not t.installt:
                t.installt = True
                self._emit(ev.utbildningstillfalle_installt(t))
            return t

    def ateraktivera(self, tillfalle_uid: str) -> Tillfalle:
        """A cancelled instance is reactivated (UtbildningstillfalleAteraktiveratEvent)."""
        with self.lock:
            t = self.tillfalle(tillfalle_uid)
            if t.installt:
                t.installt = False
                self._emit(ev.utbildningstillfalle_ateraktiverat(t))
            return t

    def uppdatera_tillfalle(self, tillfalle_uid: str, *, start: dt.date | None = None, slut: dt.date | None = None,
                            takt: int | None = None, studielokalisering_id: int | None = None) -> Tillfalle:
        """A course instance's facts change in the catalogue (KurstillfalleUppdateratEvent)."""
        with self.lock:
            t = self.tillfalle(tillfalle_uid)
            if start is not None and start != t.start:
                self.flytta_tillfalle(tillfalle_uid, start)
            t.slut = slut or t.slut
            t.takt = takt or t.takt
            t.studielokalisering_id = studielokalisering_id or t.studielokalisering_id
            if t.utbildning.typ == "kurs":
                self._emit(ev.kurstillfalle_till_status(t, "ui:KurstillfalleUppdateratEvent"))
            return t

    def utannonsera(self, tillfalle_uid: str, utannonserat: bool) -> Tillfalle:
        """Change the advertised flag; a course instance publishes KurstillfalleTillStatusEvent."""
        with self.lock:
            t = self.tillfalle(tillfalle_uid)
            t.utannonserat = utannonserat
            if t.utbildning.typ == "kurs":
                self._emit(ev.kurstillfalle_till_status(t))
            return t

    # --- study plan -----------------------------------------------------------------------
    def antagning(self, uid: str) -> Antagning:
        a = self.antagningar.get(uid)
        if a is None:
            raise _missing("tillfallesantagning", uid)
        return a

    def antagning_for(self, student_uid: str, tillfalle_uid: str) -> Antagning:
        for a in self.plan.get(student_uid, ()):
            if a.tillfalle.uid == tillfalle_uid and a.aterbud is None:
                return a
        raise _missing("tillfallesantagning", f"{student_uid}/{tillfalle_uid}")

    def placera(self, p: Placering) -> tuple[Antagning, bool]:
        """Place an admission; returns (antagning, created). Idempotent on Anmalningsnummer."""
        if p.avgift not in AVGIFTSVARDEN:
            raise LadokError(400, "studiedeltagande.studieavgiftsbetalning.ogiltig", f"Okänt värde {p.avgift}")
        if not p.anmalningsnummer:
            raise LadokError(400, "studiedeltagande.anmalningsnummer.saknas", "Anmalningsnummer krävs")
        for _kod, typ in p.villkor:
            if typ not in VILLKORSTYPER:
                raise LadokError(400, "studiedeltagande.behorighetsvillkor.typ.ogiltig", f"Okänd villkorstyp {typ}")
        with self.lock:
            existing = self.by_anmalningsnummer.get(p.anmalningsnummer)
            if existing is not None:
                if (existing.student_uid, existing.tillfalle.uid) != (p.student_uid, p.tillfalle_uid):
                    raise _hinder("anmalningsnummer.konflikt",
                                  "Anmälningsnumret är redan använt för en annan student eller ett annat tillfälle")
                self.placements_replayed += 1
                return existing, False
            self.student(p.student_uid)
            t = self.tillfalle(p.tillfalle_uid)
            if t.installt:
                raise _hinder("utbildningstillfalle.installt", "Utbildningstillfället är inställt")
            plan = self.plan.setdefault(p.student_uid, [])
            for a in plan:
                if a.tillfalle.uid == t.uid and a.aterbud is None:
                    raise _hinder("antagning.finns", "Studenten är redan antagen till utbildningstillfället")
                if a.tillfalle.utbildning is t.utbildning and a.tillfalle is not t and a.aktiva_registreringar():
                    raise _hinder("redan.paborjat", "Studenten har redan påbörjat utbildningen "
                                  f"(registrerad på tillfälle {a.tillfalle.kod}); tillfällesbyte krävs")
            paket = self._paket_for(p, t, plan)
            a = Antagning(new_uid(), p.student_uid, t, p.anmalningsnummer, p.avgift, paket,
                          {kod: Villkor(kod, typ) for kod, typ in p.villkor},
                          anmalningsavgift_betald=p.anmalningsavgift_betald)
            if paket:
                paket.barn.append(a)
            plan.append(a)
            self.antagningar[a.uid] = self.by_anmalningsnummer[p.anmalningsnummer] = a
            self.by_tillfalle.setdefault(t.uid, []).append(a)
            self.placements_created += 1
            self._emit(ev.forvantat_deltagande(a))
            return a, True

    def _paket_for(self, p: Placering, t: Tillfalle, plan: list[Antagning]) -> Antagning | None:
        if p.fristaende:
            return None
        admitted = {a.tillfalle.uid: a for a in plan if a.tillfalle.utbildning.typ == "program" and a.aktiv}
        if p.kurspaketeringstillfalle_uid:
            if p.kurspaketeringstillfalle_uid not in t.paketeringar:
                raise _hinder("ej.ingaende.i.kurspaketering",
                              "Utbildningstillfället ingår inte i det angivna kurspaketeringstillfället")
            paket = admitted.get(p.kurspaketeringstillfalle_uid)
            if paket is None:
                raise _hinder("kurspaketering.saknas",
                              "Studenten är inte antagen till kurspaketeringstillfället i studieplanen")
            return paket
        candidates = [admitted[uid] for uid in t.paketeringar if uid in admitted]
        if len(candidates) > 1:
            raise _hinder("flera.kurspaketeringar", "Utbildningstillfället ingår i flera kurspaketeringstillfällen "
                          "som studenten är antagen till; ange kurspaketeringstillfälle eller fristående")
        if not candidates and p.inom_kurspaketering:
            raise _hinder("kurspaketering.saknas",
                          "Studenten är inte antagen till något kurspaketeringstillfälle som innehåller tillfället")
        return candidates[0] if candidates else None

    def ta_bort_forvantat_deltagande(self, antagning_uid: str, *, av_student: bool = False) -> Antagning:
        """An expected participation (an anmälan inom program, a study choice) removed, by staff or
        by the student in the student web: ForvantatDeltagandeBorttagetEvent. Not once registered."""
        with self.lock:
            a = self.antagning(antagning_uid)
            if a.registreringar:
                raise _hinder("registrerad", "Studenten är registrerad; det förväntade deltagandet kan inte tas bort")
            plan = self.plan.get(a.student_uid, [])
            if a in plan:
                plan.remove(a)
            if a in self.by_tillfalle.get(a.tillfalle.uid, []):
                self.by_tillfalle[a.tillfalle.uid].remove(a)
            if a.paket is not None and a in a.paket.barn:
                a.paket.barn.remove(a)
            self.antagningar.pop(a.uid, None)
            if a.anmalningsnummer:
                self.by_anmalningsnummer.pop(a.anmalningsnummer, None)
            actor = ev.student_actor(self.students.get(a.student_uid), a.student_uid) if av_student else None
            self._emit(ev.forvantat_deltagande_borttaget(a, actor))
            return a

    def satt_villkor(self, antagning_uid: str, villkor: list[tuple[str, str]]) -> Antagning:
        for _, typ in villkor:
            if typ not in VILLKORSTYPER:
                raise LadokError(400, "studiedeltagande.behorighetsvillkor.typ.ogiltig", f"Okänd villkorstyp {typ}")
        with self.lock:
            a = self.antagning(antagning_uid)
            a.villkor = {kod: Villkor(kod, typ) for kod, typ in villkor}
            self._emit(ev.nuvarande_villkor(a))
            return a

    def lagg_till_villkor(self, antagning_uid: str, kod: str, typ: str) -> Antagning:
        """One villkor put on the tillfällesantagning (``sd:SkapaBehorighetsvillkor``); one that is
        there already is left as it is."""
        if typ not in VILLKORSTYPER:
            raise LadokError(400, "studiedeltagande.behorighetsvillkor.typ.ogiltig", f"Okänd villkorstyp {typ}")
        with self.lock:
            a = self.antagning(antagning_uid)
            v = a.villkor.get(kod)
            if v is None or v.borttaget:
                a.villkor[kod] = Villkor(kod, typ)
                self._emit(ev.nuvarande_villkor(a))
            return a

    def lyft_villkor(self, antagning_uid: str, kod: str, *, manuellt: bool = False) -> Antagning:
        with self.lock:
            a = self.antagning(antagning_uid)
            v = a.villkor.get(kod)
            if v is None or v.borttaget:
                raise _missing("behorighetsvillkor", kod)
            v.borttaget, v.manuellt = True, manuellt
            self._emit(ev.nuvarande_villkor(a))
            return a

    def aterbud(self, antagning_uid: str, datum: dt.date, orsak: str, externt_system: str | None, *,
                av_student: bool = False) -> Antagning:
        """Record återbud; a programme återbud covers the course admissions inside its package.

        ``av_student``: entered by the student (student web); refused when the university does not
        let students enter återbud themselves (``studenter_far_lamna_aterbud``)."""
        if orsak not in ATERBUDSORSAKER:
            raise LadokError(400, "studiedeltagande.aterbudsorsak.ogiltig", f"Okänd återbudsorsak {orsak}")
        with self.lock:
            if av_student and not self.studenter_far_lamna_aterbud:
                raise LadokError(403, "studiedeltagande.hinder.aterbud.student.ej.tillatet",
                                 "Lärosätet tillåter inte att studenter lämnar återbud i Ladok; kontakta "
                                 "studieadministrationen eller lämna återbud på antagning.se")
            a = self.antagning(antagning_uid)
            if a.aterbud:
                raise _hinder("aterbud.finns", "Återbud är redan registrerat på tillfällesantagningen")
            if a.registrerad:
                raise _hinder("registrerad", "Studenten är registrerad på utbildningstillfället; återbud kan inte ges")
            if a.avbrott:
                raise _hinder("avbrott.finns", "Studenten har avbrott på utbildningstillfället")
            actor = ev.student_actor(self.students.get(a.student_uid), a.student_uid) if av_student else None
            events = []
            for x in [a, *a.barn]:
                if x.aterbud is None:
                    x.aterbud = Aterbud(new_uid(), datum, orsak, externt_system, av_student)
                    events.append(ev.aterbud(x, actor))
            self._emit(*events)
            return a

    def avbrott(self, antagning_uid: str, datum: dt.date, externreferens: str | None = None) -> Antagning:
        """Avbrott; before study start + 21 days it is an early avbrott and the registrations are withdrawn."""
        with self.lock:
            a = self.antagning(antagning_uid)
            if a.avbrott:
                raise _hinder("avbrott.finns", "Avbrott är redan registrerat")
            regs = [(x, r) for x in [a, *a.barn] for r in x.aktiva_registreringar()]
            if not regs:
                raise _hinder("ej.registrerad", "Studenten är inte registrerad; avbrott kräver registrering")
            tidigt = datum < a.tillfalle.start + dt.timedelta(days=TIDIGT_AVBROTT_DAGAR)
            a.avbrott = Avbrott(new_uid(), datum, tidigt, externreferens)
            if not tidigt:
                self._emit(ev.avbrott(a))
                return a
            # early: the registrations are withdrawn and the education counts as never begun; real
            # Ladok shows no avbrott (AterkalladRegistrering + AterkalladPaborjadUtbildning +
            # AterkallatPaborjatUtbildningstillfalle)
            events = []
            for x, r in regs:
                r.aterkallad = datum
                x.avbrott = x.avbrott or a.avbrott
                events.append(ev.aterkallad_registrering(x, r))
            for x in {x.uid: x for x, _ in regs}.values():
                events += [ev.aterkallad_paborjad_utbildning(x), ev.aterkallat_paborjat_tillfalle(x)]
            self._emit(*events)
            return a

    def ta_bort_avbrott(self, antagning_uid: str) -> Antagning:
        """An (ordinary) avbrott removed (entered by mistake): AvbrottBorttagetEvent."""
        with self.lock:
            a = self.antagning(antagning_uid)
            if a.avbrott is None or a.avbrott.tidigt:
                raise _missing("avbrott", antagning_uid)
            a.avbrott = None
            self._emit(ev.avbrott_borttaget(a))
            return a

    def registrera(self, antagning_uid: str, period: int = 1, datum: dt.date | None = None) -> Registrering:
        with self.lock:
            a = self.antagning(antagning_uid)
            if a.tillfalle.utbildning.typ != "kurs":
                raise _hinder("registrering.ej.kurs", "Registrering görs på kurstillfällen")
            if not a.aktiv or a.tillfalle.installt:
                raise _hinder("registrering.ej.mojlig", "Återbud, avbrott eller inställt tillfälle")
            if any(r.period == period for r in a.aktiva_registreringar()):
                raise _hinder("redan.registrerad", "Studenten är redan registrerad för perioden")
            first_here = not a.registreringar
            first_on_education = first_here and not any(
                x.registreringar for x in self.plan.get(a.student_uid, []) if x is not a
                and x.tillfalle.utbildning is a.tillfalle.utbildning)
            r = Registrering(new_uid(), period, datum or a.tillfalle.start)
            a.registreringar.append(r)
            events = [ev.registrering(a, r)]
            if first_here:
                events.append(ev.paborjat_tillfalle(a, r.datum))
            if first_on_education:
                events.append(ev.paborjad_utbildning(a))
            self._emit(*events)
            return r

    def omregistrera(self, antagning_uid: str, nytt_tillfalle_uid: str, datum: dt.date | None = None) -> Antagning:
        """Tillfällesbyte: the student moves to another instance of the same course and registers
        there (OmregistreringEvent + PaborjatUtbildningstillfalleEvent); the old participation ends
        (EJ_PAGAENDE_TILLFALLESBYTE)."""
        with self.lock:
            old = self.antagning(antagning_uid)
            t = self.tillfalle(nytt_tillfalle_uid)
            if t.utbildning is not old.tillfalle.utbildning or t is old.tillfalle:
                raise _hinder("tillfallesbyte.ej.mojligt", "Tillfällesbyte görs till ett annat tillfälle av samma kurs")
            if not old.aktiv:
                raise _hinder("registrering.ej.mojlig", "Återbud, avbrott eller redan bytt tillfälle")
            a = Antagning(new_uid(), old.student_uid, t, None, old.avgift, old.paket)
            r = Registrering(new_uid(), 1, datum or t.start)
            a.registreringar.append(r)
            old.bytt_till = a.uid
            for x in old.aktiva_registreringar():
                x.aterkallad = r.datum
            if old.paket is not None:
                old.paket.barn.append(a)
            self.plan.setdefault(a.student_uid, []).append(a)
            self.antagningar[a.uid] = a
            self.by_tillfalle.setdefault(t.uid, []).append(a)
            self._emit(ev.omregistrering(a, r, old), ev.paborjat_tillfalle(a, r.datum, old))
            return a

    # --- results, breaks, degrees ---------------------------------------------------------
    def rapportera_resultat(self, antagning_uid: str, modulkod: str | None, betyg: str,
                            examinationsdatum: dt.date, skala: int | None = None) -> Resultat:
        """An attested result on a module, or (``modulkod`` None) the grade on the whole course;
        ``skala``: the BetygsskalaID (default: the first scale with that grade)."""
        with self.lock:
            a = self.antagning(antagning_uid)
            modul = None
            if modulkod is not None:
                modul = next((m for m in a.tillfalle.utbildning.moduler if m.kod == modulkod), None)
                if modul is None:
                    raise _missing("modul", modulkod)
            if not a.aktiva_registreringar():
                raise LadokError(409, "resultat.hinder.ej.registrerad", "Studenten är inte registrerad på kursen")
            if skala is None:
                skala = next((s for s, (_, g) in self.betygsskalor.items() if betyg in g), None)
            if skala is None or betyg not in self.betygsskalor.get(skala, ("", {}))[1]:
                raise LadokError(400, "resultat.betyg.ogiltigt", f"Okänt betyg {betyg}")
            grade_id, valid = self.betygsskalor[skala][1][betyg]
            r = Resultat(new_uid(), a, modul, betyg, skala, grade_id, examinationsdatum, valid)
            self.resultat.setdefault(a.student_uid, []).append(r)
            self._emit(ev.resultat(a, r))
            return r

    def lagg_till_betygsskala(self, skala_id: int, kod: str, grader: dict[str, tuple[int, bool]]) -> None:
        """A new (local) grade scale in grunddata, as a Ladok administrator adds one."""
        with self.lock:
            self.betygsskalor[skala_id] = (kod, dict(grader))

    def makulera_resultat(self, resultat_uid: str) -> Resultat:
        """An attested result cancelled (AttesteratResultatMakuleratEvent): no longer valid."""
        with self.lock:
            r = next((x for rows in self.resultat.values() for x in rows if x.uid == resultat_uid), None)
            if r is None or r.makulerat:
                raise _missing("resultat", resultat_uid)
            r.makulerat = True
            self._emit(ev.resultat_makulerat(r.antagning, r))
            return r

    def tillgodoraknande(self, student_uid: str, benamning: str, omfattning: str, beslutsdatum: dt.date,
                         kurspaketeringstillfalle_uid: str | None = None) -> Tillgodoraknande:
        with self.lock:
            self.student(student_uid)
            tg = Tillgodoraknande(new_uid(), student_uid, benamning, omfattning, beslutsdatum,
                                  kurspaketeringstillfalle_uid)
            self.tillgodo.setdefault(student_uid, []).append(tg)
            self._emit(ev.tillgodoraknande(tg))
            return tg

    def ta_bort_tillgodoraknande(self, uid: str) -> Tillgodoraknande:
        with self.lock:
            tg = next((x for rows in self.tillgodo.values() for x in rows if x.uid == uid), None)
            if tg is None:
                raise _missing("tillgodoraknande", uid)
            self.tillgodo[tg.student_uid].remove(tg)
            self._emit(ev.tillgodoraknande_borttaget(tg))
            return tg

    def uppehall(self, antagning_uid: str, start: dt.date, slut: dt.date, anteckning: str | None = None) -> str:
        with self.lock:
            a = self.antagning(antagning_uid)
            if a.tillfalle.utbildning.typ != "program":
                raise _hinder("uppehall.ej.program", "Studieuppehåll registreras på kurspaketeringstillfällen")
            uid = new_uid()
            self.uppehall_by_uid[uid] = Uppehall(uid, a, start, slut)
            self._emit(ev.uppehall(a, uid, start, slut, anteckning))
            return uid

    def ta_bort_uppehall(self, uid: str) -> None:
        with self.lock:
            u = self.uppehall_by_uid.pop(uid, None)
            if u is None:
                raise _missing("uppehall", uid)
            self._emit(ev.uppehall_borttaget(u.antagning, uid, u.start, u.slut))

    def ta_bort_bevis(self, uid: str) -> Bevis:
        with self.lock:
            b = self.bevis.get(uid)
            if b is None or b.borttaget:
                raise _missing("utfardatbevis", uid)
            b.borttaget = True
            paket = next((t for t in self.tillfallen.values() if t.utbildning.instans_uid == b.paket_instans_uid), None)
            self._emit(ev.utfardat_bevis(b.student_uid, uid, b.datum, paket, borttaget=True))
            return b

    def utfarda_bevis(self, student_uid: str, datum: dt.date, kurspaketeringstillfalle_uid: str | None = None,
                      *, emit: bool = True) -> str:
        with self.lock:
            self.student(student_uid)
            paket = self.tillfalle(kurspaketeringstillfalle_uid) if kurspaketeringstillfalle_uid else None
            uid = new_uid()
            u = paket.utbildning if paket else None
            self.bevis[uid] = Bevis(
                uid, student_uid, datum, f"Kandidatexamen ({u.sv})" if u else "Högskoleexamen",
                f"Degree of Bachelor ({u.en})" if u else "Higher Education Diploma",
                f"K{u.kod}" if u else "H1", u.omfattning if u else "120.0", u.instans_uid if u else None,
                datum - dt.timedelta(days=30))
            if emit:
                self._emit(ev.utfardat_bevis(student_uid, uid, datum, paket))
            return uid

    def bevis_utfardade(self, fran: dt.date | None, till: dt.date | None, page: int = 1,
                        limit: int = 400) -> tuple[int, list[Bevis]]:
        """Issued certificates with ``fran <= utfärdandedatum <= till``, oldest first, paged."""
        with self.lock:
            hits = sorted((b for b in self.bevis.values() if (fran is None or b.datum >= fran)
                           and (till is None or b.datum <= till)), key=lambda b: (b.datum, b.uid))
            return len(hits), hits[(page - 1) * limit: page * limit]

    # --- feed -----------------------------------------------------------------------------
    def feed_page(self, n: int | str | None, base_url: str) -> bytes | None:
        with self.lock:
            return self.feed.page(n, base_url)

    def prune(self, keep_pages: int) -> int:
        with self.lock:
            return self.feed.prune(keep_pages)

    def generate(self, n: int, seed: int = 0) -> int:
        """Publish ``n`` synthetic events of mixed types (benchmarks); the study plans stay untouched."""
        rng = random.Random(seed)
        with self.lock:
            kurser = [t for t in self.tillfallen.values() if t.utbildning.typ == "kurs" and t.utbildning.moduler]
            if not kurser:
                raise LadokError(409, "sim.katalog.tom", "Katalogen saknar kurstillfällen; seeda först")
            today = dt.date.today()
            for i in range(n):
                t = rng.choice(kurser)
                a = Antagning(new_uid(), new_uid(), t, f"NYA-{rng.randrange(10**8)}", AVGIFT + "ej_aktuell",
                              villkor={"V1": Villkor("V1", "studiedeltagande.domain.behorighetsvillkor.typ.ov")})
                kind = i % 5
                if kind == 0:
                    e = ev.forvantat_deltagande(a)
                elif kind == 1:
                    e = ev.registrering(a, Registrering(new_uid(), 1, t.start))
                elif kind == 2:
                    m = t.utbildning.moduler[0]
                    e = ev.resultat(a, Resultat(new_uid(), a, m, "G", 101312, 101314, today))
                elif kind == 3:
                    a.aterbud = Aterbud(new_uid(), today, ORSAK + "meddelat.av.studenten", "NyA")
                    e = ev.aterbud(a)
                else:
                    e = ev.nuvarande_villkor(a)
                self._emit(e)
            return n

    # --- seeding --------------------------------------------------------------------------
    def seed_deltagande(self, students: list[Student], tillfallen: list[Tillfalle], per_instance: int,
                        seed: int = 1) -> int:
        """Admit ``per_instance`` of ``students`` to each instance directly (no feed events; for
        benchmarks and the schedule export's tests): about 60 % registered, 5 % återbud, 3 % avbrott
        (a third of them early), the rest admitted but not yet registered."""
        rng = random.Random(seed)
        n = 0
        with self.lock:
            for t in tillfallen:
                for s in rng.sample(students, min(per_instance, len(students))):
                    a = Antagning(new_uid(), s.uid, t, f"SIM-{rng.randrange(10**12)}", AVGIFT + "ej_aktuell")
                    x = rng.random()
                    if x < 0.05:
                        a.aterbud = Aterbud(new_uid(), t.start - dt.timedelta(days=10),
                                            ORSAK + "meddelat.av.studenten", None)
                    elif x < 0.08:
                        a.registreringar.append(Registrering(new_uid(), 1, t.start))
                        a.avbrott = Avbrott(new_uid(), t.start + dt.timedelta(days=7 if x < 0.06 else 40),
                                            x < 0.06, None)
                    elif x < 0.68:
                        a.registreringar.append(Registrering(new_uid(), 1, t.start))
                    self.antagningar[a.uid] = self.by_anmalningsnummer[a.anmalningsnummer] = a
                    self.plan.setdefault(s.uid, []).append(a)
                    self.by_tillfalle.setdefault(t.uid, []).append(a)
                    n += 1
        return n

    def seed_resultat(self, tillfallen: list[Tillfalle], seed: int = 1, share: float = 0.85) -> int:
        """Attested results (no feed events; for the archive export): for ``share`` of the active,
        registered admissions of each course instance a grade on every module, decided in the
        instance's last week."""
        rng = random.Random(seed)
        n = 0
        with self.lock:
            for t in tillfallen:
                for a in self.by_tillfalle.get(t.uid, []):
                    if not a.aktiv or not a.aktiva_registreringar() or rng.random() > share:
                        continue
                    for m in t.utbildning.moduler:
                        skala = 101312 if rng.random() < 0.5 else 131657
                        betyg = rng.choice(list(BETYGSSKALOR[skala][1]))
                        grade_id, valid = BETYGSSKALOR[skala][1][betyg]
                        r = Resultat(new_uid(), a, m, betyg, skala, grade_id,
                                     t.slut - dt.timedelta(days=rng.randrange(7)), valid)
                        self.resultat.setdefault(a.student_uid, []).append(r)
                        n += 1
        return n

    def seed_students(self, n: int, seed: int = 1) -> list[Student]:
        out = []
        for p in datagen.people(n, seed):
            adr = p.address and Adress(p.address.utdelningsadress, p.address.postnummer, p.address.postort)
            out.append(self.etablera_student(p.personnummer, p.fornamn, p.efternamn, skyddad=p.skyddad,
                                             adress=None if p.skyddad else adr, emit=False))
        return out

    def json_plan(self, student_uid: str) -> list[dict]:
        with self.lock:
            self.student(student_uid)
            return [a.json() for a in self.plan.get(student_uid, [])]
