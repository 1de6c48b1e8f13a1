"""In-memory Ladok domain: students, catalogue, study plans, and the rules of the REST API.

Everything is indexed (personnummer, uid, Anmalningsnummer) so each operation is O(1) apart
from the per-student plan. All public methods take ``self.lock``; rule violations raise
``LadokError`` (status, Ladok-style I18nNyckel, Swedish text), which the app renders as
``base:Hinder``.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from dataclasses import dataclass, field

from brygga import personnummer as pnr_mod
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
BETYGSSKALOR = {  # BetygsskalaID -> {betyg: BetygsgradID}
    2302: {"U": 2303, "G": 2304, "VG": 2305},
    131657: {"F": 131658, "Fx": 131659, "E": 131660, "D": 131661, "C": 131662, "B": 131663, "A": 131664},
}
STUDIEORTER = {1: "Göteborg", 2: "Stockholm", 3: "Lund", 9: "Distans"}  # StudielokaliseringID
ORGANISATIONER = ["DATA", "MATE", "FYSI", "EKON", "HUMA"]  # organisationsenhet codes, by utbildningskod


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
        return self.aterbud is None and self.avbrott is None

    @property
    def tillstand(self) -> str:
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
    modul: Modul
    betyg: str
    betygsskala_id: int
    betygsgrad_id: int
    examinationsdatum: dt.date


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
            self.plan: dict[str, list[Antagning]] = {}  # student uid -> antagningar
            self.resultat: dict[str, list[Resultat]] = {}
            self.tillgodo: dict[str, list[Tillgodoraknande]] = {}
            self.bevis: dict[str, Bevis] = {}  # utfärdade bevis by uid
            self.placements_created = self.placements_replayed = 0  # POST tillfallesantagning: new / the same again
            self._index: dict[tuple[str, str], list[Tillfalle]] = {}  # (field, value) -> instances

    def _emit(self, e: ev.Event) -> None:
        self.feed.append(*e)

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
                self._emit(ev.student(s))
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

    def filtrera(self, *, antagningsomgang: str | None = None, tillfalleskod: str | None = None,
                 utbildningskod: str | None = None, startperiod: str | None = None, page: int = 1,
                 limit: int = 400) -> tuple[int, list[Tillfalle]]:
        criteria = {"antagningsomgang": antagningsomgang, "tillfalleskod": tillfalleskod,
                    "utbildningskod": utbildningskod, "startperiod": startperiod}
        given = [(k, v) for k, v in criteria.items() if v]
        with self.lock:
            lists = [self._index.get(kv, []) for kv in given] or [self._index.get(("alla", ""), [])]
            base = min(lists, key=len)
            hits = [t for t in base if all(
                (k == "antagningsomgang" and v in t.omgangar) or (k == "tillfalleskod" and t.kod == v)
                or (k == "utbildningskod" and t.utbildning.kod == v)
                or (k == "startperiod" and t.startperiod == v) for k, v in given)]
        start = (max(page, 1) - 1) * limit
        return len(hits), hits[start:start + limit]

    def deltagare(self, tillfalle_uids: list[str], *, page: int = 1,
                  limit: int = 400) -> tuple[int, list[Antagning]]:
        """The participants (tillfällesantagningar, any state) of the instances, in their order."""
        with self.lock:
            hits = [a for uid in dict.fromkeys(tillfalle_uids) for a in self.by_tillfalle.get(uid, [])]
        start = (max(page, 1) - 1) * limit
        return len(hits), hits[start:start + limit]

    def stall_in(self, tillfalle_uid: str) -> Tillfalle:
        with self.lock:
            t = self.tillfalle(tillfalle_uid)
            if not t.installt:
                t.installt = True
                self._emit(ev.utbildningstillfalle_installt(t))
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

    def satt_villkor(self, antagning_uid: str, villkor: list[tuple[str, str]]) -> Antagning:
        for _, typ in villkor:
            if typ not in VILLKORSTYPER:
                raise LadokError(400, "studiedeltagande.behorighetsvillkor.typ.ogiltig", f"Okänd villkorstyp {typ}")
        with self.lock:
            a = self.antagning(antagning_uid)
            a.villkor = {kod: Villkor(kod, typ) for kod, typ in villkor}
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
            for x in [a, *a.barn]:
                if x.aterbud is None:
                    x.aterbud = Aterbud(new_uid(), datum, orsak, externt_system, av_student)
                    self._emit(ev.aterbud(x))
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
            if tidigt:
                for x, r in regs:
                    r.aterkallad = datum
                    x.avbrott = x.avbrott or a.avbrott
                    self._emit(ev.aterkallad_registrering(x, r))
            self._emit(ev.avbrott(a))
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
            r = Registrering(new_uid(), period, datum or a.tillfalle.start)
            a.registreringar.append(r)
            self._emit(ev.registrering(a, r))
            return r

    # --- results, breaks, degrees ---------------------------------------------------------
    def rapportera_resultat(self, antagning_uid: str, modulkod: str, betyg: str,
                            examinationsdatum: dt.date) -> Resultat:
        with self.lock:
            a = self.antagning(antagning_uid)
            modul = next((m for m in a.tillfalle.utbildning.moduler if m.kod == modulkod), None)
            if modul is None:
                raise _missing("modul", modulkod)
            if not a.aktiva_registreringar():
                raise LadokError(409, "resultat.hinder.ej.registrerad", "Studenten är inte registrerad på kursen")
            skala = next((s for s, g in BETYGSSKALOR.items() if betyg in g), None)
            if skala is None:
                raise LadokError(400, "resultat.betyg.ogiltigt", f"Okänt betyg {betyg}")
            r = Resultat(new_uid(), a, modul, betyg, skala, BETYGSSKALOR[skala][betyg], examinationsdatum)
            self.resultat.setdefault(a.student_uid, []).append(r)
            self._emit(ev.resultat(a, r))
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

    def uppehall(self, antagning_uid: str, start: dt.date, slut: dt.date, anteckning: str | None = None) -> str:
        with self.lock:
            a = self.antagning(antagning_uid)
            if a.tillfalle.utbildning.typ != "program":
                raise _hinder("uppehall.ej.program", "Studieuppehåll registreras på kurspaketeringstillfällen")
            uid = new_uid()
            self._emit(ev.uppehall(a, uid, start, slut, anteckning))
            return uid

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
    def feed_page(self, n: int | None, base_url: str) -> bytes | None:
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
                    e = ev.resultat(a, Resultat(new_uid(), a, m, "G", 2302, 2304, today))
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
                        skala = 2302 if rng.random() < 0.5 else 131657
                        betyg = rng.choice(list(BETYGSSKALOR[skala]))
                        r = Resultat(new_uid(), a, m, betyg, skala, BETYGSSKALOR[skala][betyg],
                                     t.slut - dt.timedelta(days=rng.randrange(7)))
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
