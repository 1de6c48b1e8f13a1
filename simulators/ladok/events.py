"""Builders for the Ladok3 events the simulator publishes; each returns ``(name, element)``. An
action emits the events real Ladok emits for it, in that order (docs/contracts/ladok.md, "Events";
the sequences are from the Umeå/Omegapoint material cited in shared/reference/public-evidence.md):

* a new student: ``LokalStudentEvent`` (SKAPAD) + ``StudentTillLarosateEvent``;
* a registration: ``RegistreringEvent`` (+ ``PaborjatUtbildningstillfalleEvent`` the first time on
  the instance, + ``PaborjadUtbildningEvent`` the first time on the education);
* an early avbrott: ``AterkalladregistreringEvent`` per registration + ``AterkalladPaborjadUtbildningEvent``
  + ``AterkallatPaborjatUtbildningstillfalleEvent`` (no AvbrottEvent: an early avbrott is not shown);
* an instance switch: ``OmregistreringEvent`` + ``PaborjatUtbildningstillfalleEvent``.

Element content follows the XSD sequence of the event's type (base type first); the envelope puts
``EventContext`` before ``HandelseUID`` as the real page does (``simulators.ladok.xml.event``). The
tests validate every emitted event against the public Ladok3 XSDs (with that one pair swapped back).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

from lxml import etree

from simulators.ladok.xml import event

if TYPE_CHECKING:
    from simulators.ladok.state import Antagning, Registrering, Resultat, Student, Tillfalle, Tillgodoraknande

Event = tuple[str, etree._Element]
Actor = tuple[str, str] | None  # (AnvandareUID, Anvandarnamn); None: staff

ATERKALLA_AVBROTT = "studiedeltagande.domain.aterkalla.orsak.avbrott"
ATERKALLA_BORTTAGEN = "studiedeltagande.domain.aterkalla.orsak.borttagen_registrering"


def student_actor(s: Student | None, student_uid: str) -> tuple[str, str]:
    """A student acting in the student web: as themself (their uid is the acting user's)."""
    return student_uid, (s.epost if s is not None and s.epost else f"{student_uid}@studentwebb")


def _emit(name: str, items: list, student_uid: str | None = None, actor: Actor = None) -> Event:
    return name, event(name, items, student_uid, actor=actor)


def _villkor_lista(a: Antagning) -> list:
    return [
        ("sd:BehorighetsvillkorEventPart", [("sd:Behorighetsvillkorstyp", v.typ), ("sd:ExternTextUID", v.kod)])
        for v in a.aktuella_villkor()
    ]


def _paketerande(a: Antagning) -> list:
    return [("sd:PaketerandeUtbildningstillfalleUID", a.paket.tillfalle.uid)] if a.paket else []


# --- studentinformation -----------------------------------------------------------------------
def lokal_student(s: Student, handelsetyp: str = "SKAPAD", tidigare_personnummer: str | None = None) -> Event:
    return _emit("si:LokalStudentEvent", [
        ("events:Handelsetyp", handelsetyp),
        ("si:Efternamn", s.efternamn),
        ("si:Fodelsedata", s.personnummer[:8]),
        ("si:Fornamn", s.fornamn),
        ("si:Kon", 0),
        ("si:Personnummer", s.personnummer),
        ("si:StudentUID", s.uid),
        ("si:TidigarePersonnummer", tidigare_personnummer),
    ], s.uid)


def student_till_larosate(s: Student) -> Event:
    return _emit("sd:StudentTillLarosateEvent", [
        ("sd:Efternamn", s.efternamn),
        ("sd:Personnummer", s.personnummer),
        ("sd:StudentUID", s.uid),
        ("sd:Tilltalsnamn", s.fornamn),
    ], s.uid)


def skyddade_personuppgifter(s: Student) -> Event:
    """The student became protected: the event marks it (the protected data itself is not put on
    an integration's feed here)."""
    return _emit("si:SkyddadePersonuppgifterEvent", [
        ("events:Handelsetyp", "SKAPAD"),
        ("si:SkyddadePersonuppgifterUID", new_uid()),
        ("si:StudentUID", s.uid),
    ], s.uid)


def kontaktuppgifter(s: Student) -> Event:
    return _emit("si:KontaktuppgifterEvent", [
        ("events:Handelsetyp", "UPPDATERAD"),
        ("si:Epostadress", s.epost),
        ("si:StudentUID", s.uid),
    ], s.uid)


# --- studiedeltagande -------------------------------------------------------------------------
def forvantat_deltagande(a: Antagning) -> Event:
    villkor = _villkor_lista(a)
    return _emit("sd:ForvantatDeltagandeSkapadEvent", [
        ("sd:Anmalningsnummer", a.anmalningsnummer),
        ("sd:BehorighetsvillkorLista", villkor or None),
        *_paketerande(a),
        ("sd:Senaredelmarkering", False),
        ("sd:StudentUID", a.student_uid),
        ("sd:Studieavgiftsbetalning", a.avgift),
        ("sd:TillfallesantagningUID", a.uid),
        ("sd:UtbildningstillfalleUID", a.tillfalle.uid),
    ], a.student_uid)


def forvantat_deltagande_borttaget(a: Antagning, actor: Actor = None) -> Event:
    return _emit("sd:ForvantatDeltagandeBorttagetEvent", [
        ("sd:StudentUID", a.student_uid),
        ("sd:TillfallesantagningUID", a.uid),
        ("sd:UtbildningstillfalleUID", a.tillfalle.uid),
    ], a.student_uid, actor)


def nuvarande_villkor(a: Antagning) -> Event:
    return _emit("sd:NuvarandeBehorighetsvillkorEvent", [
        ("sd:BehorighetsvillkorLista", _villkor_lista(a)),
        ("sd:TillfallesantagningUID", a.uid),
    ], a.student_uid)


def aterbud(a: Antagning, actor: Actor = None) -> Event:
    """``ExterntSystem`` when a system entered it (NyA), the student as actor when they did."""
    ab = a.aterbud
    return _emit("sd:AterbudEvent", [
        ("sd:AutomatisktAterbud", False),
        ("sd:ExterntSystem", ab.externt_system),
        ("sd:StudentUID", a.student_uid),
        ("sd:TillfallesantagningUID", a.uid),
        ("sd:UtbildningstillfalleUID", a.tillfalle.uid),
        ("sd:Aterbudsdatum", ab.datum),
        ("sd:Aterbudsorsak", ab.orsak),
    ], a.student_uid, actor)


def _registrering_bas(a: Antagning, r: Registrering, foregaende: Antagning | None = None) -> list:
    t = a.tillfalle
    inom = None
    if a.paket:
        p = a.paket
        inom = [
            ("sd:KurspaketeringUID", p.tillfalle.utbildning.uid),
            ("sd:KurspaketeringstillfalleUID", p.tillfalle.uid),
            ("sd:TillfallesantagningUID", p.uid),
            ("sd:UtbildningstypID", p.tillfalle.utbildning.utbildningstyp_id),
        ]
    return [
        ("sd:ForegaendeKurstillfalleUID", foregaende.tillfalle.uid if foregaende else None),
        ("sd:ForegaendeTillfallesantagningUID", foregaende.uid if foregaende else None),
        ("sd:InomKurspaketeringstillfalle", inom),
        ("sd:KursUID", t.utbildning.uid),
        ("sd:KurstillfalleUID", t.uid),
        ("sd:Period", r.period),
        ("sd:RegistreringUID", r.uid),
        ("sd:StudentUID", a.student_uid),
        ("sd:TillfallesantagningUID", a.uid),
        ("sd:UtbildningsinstansUID", t.utbildning.instans_uid),
    ]


def registrering(a: Antagning, r: Registrering, actor: Actor = None) -> Event:
    t = a.tillfalle
    return _emit("sd:RegistreringEvent", [
        *_registrering_bas(a, r),
        ("sd:Omfattningsvarde", t.utbildning.omfattning),
        ("sd:Studieavgiftsbetalning", a.avgift),
        ("sd:StudieperiodSlut", t.slut),
        ("sd:StudieperiodStart", t.start),
        ("sd:ArAnpassad", False),
    ], a.student_uid, actor)


def omregistrering(a: Antagning, r: Registrering, foregaende: Antagning, actor: Actor = None) -> Event:
    t = a.tillfalle
    return _emit("sd:OmregistreringEvent", [
        *_registrering_bas(a, r, foregaende),
        ("sd:Omfattningsvarde", t.utbildning.omfattning),
        ("sd:StudieperiodSlut", t.slut),
        ("sd:StudieperiodStart", t.start),
        ("sd:ArAnpassad", False),
    ], a.student_uid, actor)


def paborjat_tillfalle(a: Antagning, datum: dt.date, foregaende: Antagning | None = None) -> Event:
    t = a.tillfalle
    return _emit("sd:PaborjatUtbildningstillfalleEvent", [
        ("sd:PaborjandeDatum", datum),
        ("sd:StudentUID", a.student_uid),
        ("sd:TidigareTillfallesantagningUID", foregaende.uid if foregaende else None),
        ("sd:TillfallesantagningUID", a.uid),
        ("sd:UtbildningUID", t.utbildning.uid),
        ("sd:UtbildningsinstansUID", t.utbildning.instans_uid),
        ("sd:UtbildningstillfalleUID", t.uid),
        ("sd:UtbildningstillfallestypID", t.utbildning.utbildningstyp_id),
    ], a.student_uid)


def paborjad_utbildning(a: Antagning) -> Event:
    u = a.tillfalle.utbildning
    return _emit("sd:PaborjadUtbildningEvent", [
        ("sd:StudentUID", a.student_uid),
        ("sd:UtbildningUID", u.uid),
        ("sd:UtbildningsinstansUID", u.instans_uid),
        ("sd:UtbildningstillfalleUID", a.tillfalle.uid),
        ("sd:UtbildningstypID", u.utbildningstyp_id),
    ], a.student_uid)


def aterkallad_registrering(a: Antagning, r: Registrering, orsak: str = ATERKALLA_AVBROTT) -> Event:
    return _emit("sd:AterkalladregistreringEvent", [
        *_registrering_bas(a, r),
        ("sd:ExternReferens", a.avbrott.externreferens if a.avbrott else None),
        ("sd:Orsak", orsak),
        ("sd:Aterkallandedatum", r.aterkallad),
    ], a.student_uid)


def aterkallad_paborjad_utbildning(a: Antagning, orsak: str = ATERKALLA_AVBROTT) -> Event:
    u = a.tillfalle.utbildning
    return _emit("sd:AterkalladPaborjadUtbildningEvent", [
        ("sd:Orsak", orsak),
        ("sd:StudentUID", a.student_uid),
        ("sd:UtbildningUID", u.uid),
        ("sd:UtbildningstypID", u.utbildningstyp_id),
    ], a.student_uid)


def aterkallat_paborjat_tillfalle(a: Antagning, orsak: str = ATERKALLA_AVBROTT) -> Event:
    t = a.tillfalle
    return _emit("sd:AterkallatPaborjatUtbildningstillfalleEvent", [
        ("sd:Orsak", orsak),
        ("sd:StudentUID", a.student_uid),
        ("sd:UtbildningUID", t.utbildning.uid),
        ("sd:UtbildningsinstansUID", t.utbildning.instans_uid),
        ("sd:UtbildningstillfalleUID", t.uid),
        ("sd:UtbildningstillfallestypID", t.utbildning.utbildningstyp_id),
    ], a.student_uid)


def avbrott(a: Antagning) -> Event:
    u = a.tillfalle.utbildning
    return _emit("sd:AvbrottEvent", [
        ("sd:Avbrottsdatum", a.avbrott.datum),
        ("sd:ExternReferens", a.avbrott.externreferens),
        ("sd:StudentUID", a.student_uid),
        ("sd:UtbildningUID", u.uid),
        ("sd:UtbildningstillfalleUID", a.tillfalle.uid),
        ("sd:UtbildningstypID", u.utbildningstyp_id),
    ], a.student_uid)


def avbrott_borttaget(a: Antagning) -> Event:
    u = a.tillfalle.utbildning
    return _emit("sd:AvbrottBorttagetEvent", [
        ("sd:StudentUID", a.student_uid),
        ("sd:UtbildningUID", u.uid),
        ("sd:UtbildningstillfalleUID", a.tillfalle.uid),
        ("sd:UtbildningstypID", u.utbildningstyp_id),
    ], a.student_uid)


def uppehall(a: Antagning, uid: str, start: dt.date, slut: dt.date, anteckning: str | None) -> Event:
    return _emit("sd:UppehallEvent", [
        ("sd:Anteckning", anteckning),
        ("sd:KurspaketeringUID", a.tillfalle.utbildning.uid),
        ("sd:KurspaketeringstillfalleUID", a.tillfalle.uid),
        ("sd:PlaneratSlutdatum", slut),
        ("sd:RattAttAterupptaStudier", True),
        ("sd:Startdatum", start),
        ("sd:StudentUID", a.student_uid),
        ("sd:UppehallUID", uid),
    ], a.student_uid)


def uppehall_borttaget(a: Antagning, uid: str, start: dt.date, slut: dt.date) -> Event:
    return _emit("sd:UppehallBorttagetEvent", [
        ("sd:KurspaketeringUID", a.tillfalle.utbildning.uid),
        ("sd:PlaneratSlutdatum", slut),
        ("sd:Startdatum", start),
        ("sd:StudentUID", a.student_uid),
        ("sd:UppehallUID", uid),
        ("sd:UtbildningstillfalleUID", a.tillfalle.uid),
    ], a.student_uid)


# --- resultat ---------------------------------------------------------------------------------
def _beslut(datum: dt.date) -> list:
    return [("rr:Beslutsdatum", datum), ("rr:Beslutsfattare", "Examinator (simulator)")]


def resultat(a: Antagning, r: Resultat) -> Event:
    """A module result (``ResultatPaModulAttesteratEvent``) or, with no module, the course's
    grade (``ResultatPaHelKursAttesteratEvent``, ``GiltigSomSlutbetyg`` when a pass)."""
    t = a.tillfalle
    hel_kurs = r.modul is None
    return _emit("rr:ResultatPaHelKursAttesteratEvent" if hel_kurs else "rr:ResultatPaModulAttesteratEvent", [
        ("rr:Beslut", _beslut(r.examinationsdatum)),
        ("rr:KursUID", t.utbildning.uid),
        ("rr:KursinstansUID", t.utbildning.instans_uid),
        ("rr:KurstillfalleUID", t.uid),
        ("rr:Resultat", [
            ("rr:BetygsgradID", r.betygsgrad_id),
            ("rr:BetygsskalaID", r.betygsskala_id),
            ("rr:Examinationsdatum", r.examinationsdatum),
            ("rr:GiltigSomSlutbetyg", r.giltig_som_slutbetyg if hel_kurs else None),
            ("rr:OmfattningsPoang", t.utbildning.omfattning if hel_kurs else r.modul.omfattning),
            ("rr:ResultatUID", r.uid),
        ]),
        ("rr:StudentUID", a.student_uid),
        ("rr:UtbildningsinstansUID", t.utbildning.instans_uid if hel_kurs else r.modul.uid),
    ], a.student_uid)


def resultat_makulerat(a: Antagning, r: Resultat) -> Event:
    """An attested result cancelled: ``ResultatUID`` names the attestation it voids."""
    t = a.tillfalle
    return _emit("rr:AttesteratResultatMakuleratEvent", [
        ("rr:Beslut", _beslut(dt.date.today())),
        ("rr:GiltigSomSlutbetyg", r.giltig_som_slutbetyg),
        ("rr:KursUID", t.utbildning.uid),
        ("rr:ResultatFinns", False),
        ("rr:ResultatUID", r.uid),
        ("rr:StudentUID", a.student_uid),
        ("rr:UtbildningsgrundtypID", 1 if r.modul is None else 2),
        ("rr:UtbildningsinstansUID", t.utbildning.instans_uid if r.modul is None else r.modul.uid),
    ], a.student_uid)


def tillgodoraknande(tg: Tillgodoraknande) -> Event:
    return _emit("rr:TillgodoraknandeAttesteratEvent", [
        ("rr:Beslut", _beslut(tg.beslutsdatum)),
        ("rr:StudentUID", tg.student_uid),
        ("rr:TillgodoraknandeUID", tg.uid),
        ("rr:KopplatKurspaketeringstillfalleUID", tg.kurspaketeringstillfalle_uid),
    ], tg.student_uid)


def tillgodoraknande_borttaget(tg: Tillgodoraknande) -> Event:
    return _emit("rr:TillgodoraknandeBorttagetEvent", [
        ("rr:Beslut", _beslut(dt.date.today())),
        ("rr:StudentUID", tg.student_uid),
        ("rr:TillgodoraknandeUID", tg.uid),
        ("rr:KopplatKurspaketeringstillfalleUID", tg.kurspaketeringstillfalle_uid),
    ], tg.student_uid)


# --- examen -----------------------------------------------------------------------------------
def utfardat_bevis(student_uid: str, bevis_uid: str, datum: dt.date, paket: Tillfalle | None,
                   borttaget: bool = False) -> Event:
    return _emit("ex:UtfardatBevisBorttagetEvent" if borttaget else "ex:UtfardatBevisEvent", [
        ("ex:DatumForUtfardatBevis", datum),
        ("ex:DigitaltBevis", True),
        ("ex:HuvudsakligKurspaketeringsinstansUID", paket.utbildning.instans_uid if paket else None),
        ("ex:StudentUID", student_uid),
        ("ex:UtfardatBevisUID", bevis_uid),
    ], student_uid)


# --- utbildningsinformation -------------------------------------------------------------------
def utbildningstillfalle_installt(t: Tillfalle) -> Event:
    return _emit("ui:UtbildningstillfalleInstalltEvent", [("ui:UtbildningstillfalleUID", t.uid)])


def utbildningstillfalle_ateraktiverat(t: Tillfalle, status: int = 4) -> Event:
    """``Status``: the instance's status before it was reactivated (4: avvecklad/inställd)."""
    return _emit("ui:UtbildningstillfalleAteraktiveratEvent", [("ui:Status", status),
                                                               ("ui:UtbildningstillfalleUID", t.uid)])


def kurstillfalle_till_status(t: Tillfalle, name: str = "ui:KurstillfalleTillStatusEvent") -> Event:
    """A course instance's status (utannonserat) or, with ``ui:KurstillfalleUppdateratEvent``, its
    facts changed (dates, pace, place)."""
    u = t.utbildning
    return _emit(name, [
        ("ui:Status", 3),
        ("ui:UtbildningUID", u.uid),
        *[("ui:Attributvarde", [("ui:Grupp", g), ("ui:Namn", n), ("ui:Varde", v)]) for g, n, v in t.attribut()],
        ("ui:UtbildningsinstansUID", u.instans_uid),
        ("ui:UtbildningstypID", u.utbildningstyp_id),
        ("ui:UtbildningstillfalleUID", t.uid),
        ("ui:Utbildningstillfalleskod", t.kod),
        ("ui:Kurstillfallesattribut", []),
    ])


def new_uid() -> str:
    return str(uuid.uuid4())
