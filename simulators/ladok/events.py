"""Builders for the Ladok3 events the simulator publishes; each returns ``(name, element)``.

Element content follows the XSD sequence of the event's complex type (base type first); the
tests validate every emitted event against the public Ladok3 XSDs.
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

ATERKALLA_AVBROTT = "studiedeltagande.domain.aterkalla.orsak.avbrott"


def _emit(name: str, items: list, student_uid: str | None = None) -> Event:
    return name, event(name, items, student_uid)


def _villkor_lista(a: Antagning) -> list:
    return [
        ("sd:BehorighetsvillkorEventPart", [("sd:Behorighetsvillkorstyp", v.typ), ("sd:ExternTextUID", v.kod)])
        for v in a.aktuella_villkor()
    ]


def _paketerande(a: Antagning) -> list:
    return [("sd:PaketerandeUtbildningstillfalleUID", a.paket.tillfalle.uid)] if a.paket else []


def student(s: Student) -> Event:
    return _emit("si:StudentEvent", [
        ("si:Efternamn", s.efternamn),
        ("si:Fodelsedata", s.personnummer[:8]),
        ("si:Fornamn", s.fornamn),
        ("si:Kon", 0),
        ("si:Personnummer", s.personnummer),
        ("si:StudentUID", s.uid),
    ], s.uid)


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


def nuvarande_villkor(a: Antagning) -> Event:
    return _emit("sd:NuvarandeBehorighetsvillkorEvent", [
        ("sd:BehorighetsvillkorLista", _villkor_lista(a)),
        ("sd:TillfallesantagningUID", a.uid),
    ], a.student_uid)


#: ``events:Anvandarnamn`` of an återbud the student entered in Ladok's student web: the student's
#: own login in the student realm (staff and systems act as ``brygga-sim@ladok.se``).
STUDENT_REALM = "@student.ladok.se"


def aterbud(a: Antagning) -> Event:
    ab = a.aterbud
    name, el = _emit("sd:AterbudEvent", [
        ("sd:AutomatisktAterbud", False),
        ("sd:ExterntSystem", ab.externt_system),
        ("sd:StudentUID", a.student_uid),
        ("sd:TillfallesantagningUID", a.uid),
        ("sd:UtbildningstillfalleUID", a.tillfalle.uid),
        ("sd:Aterbudsdatum", ab.datum),
        ("sd:Aterbudsorsak", ab.orsak),
    ], a.student_uid)
    if getattr(ab, "av_student", False):
        user = el.find("{http://schemas.ladok.se/events}EventContext/{http://schemas.ladok.se/events}Anvandarnamn")
        if user is not None:
            user.text = a.student_uid + STUDENT_REALM
    return name, el


def _registrering_bas(a: Antagning, r: Registrering) -> list:
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
        ("sd:InomKurspaketeringstillfalle", inom),
        ("sd:KursUID", t.utbildning.uid),
        ("sd:KurstillfalleUID", t.uid),
        ("sd:Period", r.period),
        ("sd:RegistreringUID", r.uid),
        ("sd:StudentUID", a.student_uid),
        ("sd:TillfallesantagningUID", a.uid),
        ("sd:UtbildningsinstansUID", t.utbildning.instans_uid),
    ]


def registrering(a: Antagning, r: Registrering) -> Event:
    t = a.tillfalle
    return _emit("sd:RegistreringEvent", [
        *_registrering_bas(a, r),
        ("sd:Omfattningsvarde", t.utbildning.omfattning),
        ("sd:Studieavgiftsbetalning", a.avgift),
        ("sd:StudieperiodSlut", t.slut),
        ("sd:StudieperiodStart", t.start),
        ("sd:ArAnpassad", False),
    ], a.student_uid)


def aterkallad_registrering(a: Antagning, r: Registrering) -> Event:
    return _emit("sd:AterkalladregistreringEvent", [
        *_registrering_bas(a, r),
        ("sd:ExternReferens", a.avbrott.externreferens),
        ("sd:Orsak", ATERKALLA_AVBROTT),
        ("sd:Aterkallandedatum", r.aterkallad),
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


def _beslut(datum: dt.date) -> list:
    return [("rr:Beslutsdatum", datum), ("rr:Beslutsfattare", "Examinator (simulator)")]


def resultat(a: Antagning, r: Resultat) -> Event:
    t = a.tillfalle
    return _emit("rr:ResultatPaModulAttesteratEvent", [
        ("rr:Beslut", _beslut(r.examinationsdatum)),
        ("rr:KursUID", t.utbildning.uid),
        ("rr:KursinstansUID", t.utbildning.instans_uid),
        ("rr:KurstillfalleUID", t.uid),
        ("rr:Resultat", [
            ("rr:BetygsgradID", r.betygsgrad_id),
            ("rr:BetygsskalaID", r.betygsskala_id),
            ("rr:Examinationsdatum", r.examinationsdatum),
            ("rr:OmfattningsPoang", r.modul.omfattning),
            ("rr:ResultatUID", r.uid),
        ]),
        ("rr:StudentUID", a.student_uid),
        ("rr:UtbildningsinstansUID", r.modul.uid),
    ], a.student_uid)


def tillgodoraknande(tg: Tillgodoraknande) -> Event:
    return _emit("rr:TillgodoraknandeAttesteratEvent", [
        ("rr:Beslut", _beslut(tg.beslutsdatum)),
        ("rr:StudentUID", tg.student_uid),
        ("rr:TillgodoraknandeUID", tg.uid),
        ("rr:KopplatKurspaketeringstillfalleUID", tg.kurspaketeringstillfalle_uid),
    ], tg.student_uid)


def utfardat_bevis(student_uid: str, bevis_uid: str, datum: dt.date, paket: Tillfalle | None) -> Event:
    return _emit("ex:UtfardatBevisEvent", [
        ("ex:DatumForUtfardatBevis", datum),
        ("ex:DigitaltBevis", True),
        ("ex:HuvudsakligKurspaketeringsinstansUID", paket.utbildning.instans_uid if paket else None),
        ("ex:StudentUID", student_uid),
        ("ex:UtfardatBevisUID", bevis_uid),
    ], student_uid)


def utbildningstillfalle_installt(t: Tillfalle) -> Event:
    return _emit("ui:UtbildningstillfalleInstalltEvent", [("ui:UtbildningstillfalleUID", t.uid)])


def kurstillfalle_till_status(t: Tillfalle) -> Event:
    u = t.utbildning
    return _emit("ui:KurstillfalleTillStatusEvent", [
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
