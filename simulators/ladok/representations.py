"""REST representations (response bodies) in the Ladok3 XSD types; all validate against the XSDs."""

from __future__ import annotations

import uuid

from lxml import etree

from simulators.ladok.state import Antagning, LadokError, Resultat, Student, Tillfalle, Tillgodoraknande
from simulators.ladok.xml import LAROSATE_ID, benamningar, element, fill, link, q

MALL_UID = {typ: str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://ladok.se/sim/utbildningsmall/{typ}"))
            for typ in ("kurs", "program")}
ATGARD = "studiedeltagande.domain.atgardstyp."
TILLSTAND = "studiedeltagande.domain.tillstandsdefinition."
PROCESSSTATUS_ATTESTERAD = 3


def hinder(e: LadokError) -> etree._Element:
    return element("base:Hinder", [
        ("base:I18nNyckel", e.key), ("base:Stoppande", True), ("base:Text", benamningar(e.text)),
    ])


def student(s: Student) -> etree._Element:
    return element("si:Student", [
        ("base:Uid", s.uid), ("si:Avliden", False), ("si:Efternamn", s.efternamn),
        ("si:FelVidEtableringExternt", False), ("si:Fodelsedata", s.personnummer[:8]),
        ("si:Fornamn", s.fornamn), ("si:Personnummer", s.personnummer),
    ])


def skyddade_personuppgifter(s: Student) -> etree._Element:
    return element("si:SkyddadePersonuppgifter", [("si:Skyddsstatus", "SKYDDAD"), ("si:StudentUID", s.uid)])


def studenter_sokresultat(total: int, hits: list[Student], base_url: str) -> etree._Element:
    """``si:SokresultatStudentinformationRepresentation``: the light ``si:StudentISokresultat`` per
    hit, with the link to the full student (as the XSD documents it)."""
    root = element("si:SokresultatStudentinformationRepresentation", [("base:TotaltAntalPoster", total)])
    for s in hits:
        r = etree.SubElement(root, q("si:Resultat"))
        link(r, "studentinformation/student", f"{base_url}/studentinformation/student/{s.uid}")
        fill(r, [
            ("base:Uid", s.uid), ("si:Avliden", False), ("si:Efternamn", s.efternamn),
            ("si:Fornamn", s.fornamn), ("si:Personnummer", s.personnummer),
        ])
    return root


def kontaktuppgifter(s: Student) -> etree._Element:
    adr = None if s.skyddad or s.adress is None else [
        ("si:Postnummer", s.adress.postnummer), ("si:Postort", s.adress.postort),
        ("si:Utdelningsadress", s.adress.utdelningsadress),
    ]
    return element("si:Kontaktuppgifter", [("si:Epostadress", s.epost), ("si:Postadresser", adr),
                                           ("si:StudentUID", s.uid)])


def deltagare_sokresultat(total: int, hits: list[Antagning], students: dict[str, Student]) -> etree._Element:
    """``sd:SokresultatDeltagare``: one ``Resultat`` (sd:Deltagare) per tillfällesantagning. A
    student with skyddade personuppgifter is shown by UID only: integrations do not get the
    name or personnummer of a protected person."""
    root = element("sd:SokresultatDeltagare", [("base:TotaltAntalPoster", total)])
    for a in hits:
        s = students[a.student_uid]
        person = [("base:Uid", s.uid)] if s.skyddad else [
            ("base:Uid", s.uid), ("base:Efternamn", s.efternamn), ("base:Fornamn", s.fornamn),
            ("base:Personnummer", s.personnummer)]
        fill(etree.SubElement(root, q("sd:Resultat")), [
            ("base:Uid", a.uid),
            ("sd:Avklarad", False),
            ("sd:FleraDeltagandenPaSammaUtbildning", False),
            ("sd:Paborjad", a.registrerad),
            ("sd:Student", person),
            ("sd:TillfallesantagningUID", a.uid),
            ("sd:TillstandKurs", [("sd:Tillfallesdeltagande", TILLSTAND + "kurstillfallesdeltagande." + a.tillstand)]),
            ("sd:UtbildningstillfalleUID", a.tillfalle.uid),
        ])
    return root


def _utbildningstillfalle_items(t: Tillfalle) -> list:
    u = t.utbildning
    attribut = t.attribut()
    attribut += [(i, f"utbildning.attribut.modul.{f}", v) for i, m in enumerate(u.moduler)
                 for f, v in (("kod", m.kod), ("uid", m.uid), ("omfattning", m.omfattning))]
    return [
        ("base:Uid", t.uid),
        *[("ui:Attributvarden", [("ui:Grupp", g), ("ui:Namn", n), ("ui:Varde", v)]) for g, n, v in attribut],
        ("ui:UtbildningsmallUID", MALL_UID[u.typ]),
        ("ui:UtbildningstypID", u.utbildningstyp_id),
        ("ui:AlternativaBenamningar", benamningar(u.sv, u.en)),
        ("ui:Installt", t.installt),
        ("ui:SpecificeradOmfattning", u.omfattning),
        ("ui:StudielokaliseringID", t.studielokalisering_id),
        ("ui:StudietaktID", t.takt),
        ("ui:Tillfallesperioder", [
            ("base:Uid", t.uid),
            ("ui:ForstaRegistreringsdatum", t.reg_start),
            ("ui:ForstaUndervisningsdatum", t.start),
            ("ui:Omfattningsvarde", u.omfattning),
            ("ui:SistaRegistreringsdatum", t.reg_slut),
            ("ui:SistaUndervisningsdatum", t.slut),
        ]),
        ("ui:Utannonserat", t.utannonserat),
        ("ui:UtbildningsinstansUID", u.instans_uid),
        ("ui:Tillfalleskod", t.kod),
    ]


def utbildningstillfalle(t: Tillfalle) -> etree._Element:
    return element("ui:Utbildningstillfalle", _utbildningstillfalle_items(t))


def kurspaketeringstillfalle(t: Tillfalle, kurser: list[Tillfalle]) -> etree._Element:
    """The programme instance followed by the course instances of its package."""
    return element("ui:Utbildningstillfallen", [
        ("ui:Utbildningstillfalle", _utbildningstillfalle_items(x)) for x in [t, *kurser]
    ])


def sokresultat(total: int, hits: list[Tillfalle], base_url: str) -> etree._Element:
    root = element("ui:SokresultatUtbildningstillfalleProjektion", [("base:TotaltAntalPoster", total)])
    for t in hits:
        u = t.utbildning
        r = etree.SubElement(root, q("ui:Resultat"))
        for c in t.ingaende:
            link(r, "utbildningsinformation/ingaende.utbildningstillfalle",
                 f"{base_url}/utbildningsinformation/utbildningstillfalle/{c}")
        fill(r, [
            ("ui:HarInnehall", True),
            ("ui:Uid", t.uid),
            ("ui:UtbildningsmallUID", MALL_UID[u.typ]),
            ("ui:Benamning", u.sv),
            ("ui:Benamningar", benamningar(u.sv, u.en)),
            ("ui:Installt", t.installt),
            ("ui:Omfattningsvarde", u.omfattning),
            ("ui:SammanslagenTillfallesperiod", [("base:Startdatum", t.start), ("base:Slutdatum", t.slut)]),
            ("ui:StudielokaliseringID", t.studielokalisering_id),
            ("ui:StudietaktID", t.takt),
            ("ui:Utannonserat", t.utannonserat),
            ("ui:UtbildningsinstansSenasteVersion", True),
            ("ui:UtbildningsinstansUID", u.instans_uid),
            ("ui:UtbildningsinstansVersionsnummer", 1),
            ("ui:Utbildningskod", u.kod),
            ("ui:Utbildningstillfalleskod", t.kod),
            ("ui:UtbildningstypID", u.utbildningstyp_id),
        ])
    return root


def _utbildningsinformation(t: Tillfalle) -> list:
    u = t.utbildning
    return [
        ("sd:Benamningar", benamningar(u.sv, u.en)),
        ("sd:Installt", t.installt),
        ("sd:Omfattningsvarde", u.omfattning),
        ("sd:Studieperiod", [("base:Startdatum", t.start), ("base:Slutdatum", t.slut)]),
        ("sd:UtbildningUID", u.uid),
        ("sd:UtbildningsinstansUID", u.instans_uid),
        ("sd:Utbildningskod", u.kod),
        ("sd:UtbildningstillfalleUID", t.uid),
        ("sd:Utbildningstillfalleskod", t.kod),
    ]


def _utbildningsinformation_el(parent: etree._Element, a: Antagning, base_url: str) -> None:
    ui = etree.SubElement(parent, q("sd:Utbildningsinformation"))
    if a.paket:
        link(ui, "studiedeltagande/kurspaketeringstillfallesantagning",
             f"{base_url}/studiedeltagande/tillfallesantagning/{a.paket.uid}")
        link(ui, "utbildningsinformation/kurspaketeringstillfalle",
             f"{base_url}/utbildningsinformation/kurspaketeringstillfalle/{a.paket.tillfalle.uid}")
    fill(ui, _utbildningsinformation(a.tillfalle))


def tillfallesantagning(a: Antagning, base_url: str) -> etree._Element:
    root = element("sd:Tillfallesantagning", [("sd:StudentUID", a.student_uid), ("sd:TillfallesantagningUID", a.uid)])
    _utbildningsinformation_el(root, a, base_url)
    return root


def villkor(a: Antagning) -> etree._Element:
    return element("sd:TillfallesantagningMedBehorighetsvillkorUtdata", [
        ("base:Uid", a.uid),
        ("sd:BehorighetsvillkorLista", [
            ("sd:Behorighetsvillkor", [("sd:Behorighetsvillkorstyp", v.typ), ("sd:ExternTextUID", v.kod)])
            for v in a.aktuella_villkor()
        ]),
        ("sd:Paborjad", a.registrerad),
        ("sd:StudentUID", a.student_uid),
        ("sd:TillfallesantagningUID", a.uid),
        ("sd:UtbildningstillfalleUID", a.tillfalle.uid),
    ])


def aterbud(a: Antagning) -> etree._Element:
    ab = a.aterbud
    atgard = "aterbud_uteblev" if ab.orsak.endswith("uteblev") else "aterbud_meddelat_av_studenten"
    return element("sd:Aterbud", [
        ("base:Uid", ab.uid),
        ("base:SenastAndradAv", ab.externt_system),
        ("sd:Grundkalla", [("sd:Utbildningsinformation", _utbildningsinformation(a.tillfalle)),
                           ("sd:Atgardstyp", ATGARD + atgard)]),
        ("sd:Aterbudsdatum", ab.datum),
    ])


def avbrott(a: Antagning) -> etree._Element:
    av = a.avbrott
    return element("sd:Avbrott", [
        ("base:Uid", av.uid),
        ("sd:Anteckning", "Tidigt avbrott: registreringen återkallad" if av.tidigt else None),
        ("sd:Avbrottsdatum", av.datum),
        ("sd:Externreferens", av.externreferens),
        ("sd:Grundkalla", [("sd:Utbildningsinformation", _utbildningsinformation(a.tillfalle)),
                           ("sd:Atgardstyp", ATGARD + "avbrott")]),
    ])


def _tillfallesdeltagande(a: Antagning, base_url: str) -> etree._Element:
    t = a.tillfalle
    perioder = [("sd:Perioddeltagande", [
        ("sd:Anpassat", False),
        ("sd:Omfattningsvarde", t.utbildning.omfattning),
        ("sd:PerioddeltagandeUID", r.uid),
        ("sd:Periodindex", r.period),
        ("sd:Registreringsperiod", [("base:Startdatum", t.reg_start), ("base:Slutdatum", t.reg_slut)]),
        ("sd:Tillstand", "ATERKALLAD" if r.aterkallad else "REGISTRERAD"),
        ("sd:UtbildningsPeriodFran", t.start),
        ("sd:UtbildningsPeriodTill", t.slut),
        ("sd:AterkalladDatum", r.aterkallad),
    ]) for r in a.registreringar]
    tillstand = TILLSTAND + a.tillstand
    kurs = t.utbildning.typ == "kurs"
    td = element("sd:Tillfallesdeltagande", [
        ("base:Uid", a.uid),
        ("sd:Perioddeltaganden", perioder or None),
        ("sd:Paborjad", a.registrerad),
        ("sd:Sparrad", False),
        ("sd:TillstandKurs", [("sd:Sammanfattattillstand", tillstand)] if kurs else None),
        ("sd:TillstandKurspaketering", None if kurs else [("sd:Sammanfattat", tillstand)]),
    ])
    _utbildningsinformation_el(td, a, base_url)
    fill(td, [("sd:YtterstaPaketeringen", not kurs and a.paket is None), ("sd:Aterbud", a.aterbud is not None)])
    return td


def _studiestruktur(tag: str, parent: etree._Element, a: Antagning, base_url: str) -> None:
    node = etree.SubElement(parent, q(tag))
    link(node, "studiedeltagande/behorighetsvillkor",
         f"{base_url}/studiedeltagande/tillfallesantagning/{a.uid}/behorighetsvillkor")
    fill(node, [("base:Uid", a.uid)])
    for b in a.barn:
        _studiestruktur("sd:Barn", node, b, base_url)
    fill(node, [("sd:Referens", a.uid), ("sd:ReferensTillForalder", a.paket.uid if a.paket else None)])
    node.append(_tillfallesdeltagande(a, base_url))
    fill(node, [("sd:Utbildningsinformation", _utbildningsinformation(a.tillfalle))])


def studieplan(antagningar: list[Antagning], base_url: str) -> etree._Element:
    """Study plan as a tree: outermost packages with their course admissions as ``sd:Barn``."""
    root = element("sd:IngaendeKurspaketeringstillfalleLista")
    strukturer = etree.SubElement(root, q("sd:Studiestrukturer"))
    for a in antagningar:
        if a.paket is None:
            _studiestruktur("sd:Studiestruktur", strukturer, a, base_url)
    return root


def resultat(rows: list[Resultat]) -> etree._Element:
    return element("rr:ResultatLista", [("rr:Resultat", [
        ("base:Uid", r.uid),
        ("rr:Beslutsdatum", r.examinationsdatum),
        ("rr:Beslutsfattare", "Examinator (simulator)"),
        ("rr:Betygsgrad", r.betygsgrad_id),
        ("rr:Betygsgradsobjekt", [("base:ID", r.betygsgrad_id), ("base:Kod", r.betyg),
                                  ("rr:GiltigSomSlutbetyg", True)]),
        ("rr:BetygsskalaID", r.betygsskala_id),
        ("rr:Examinationsdatum", r.examinationsdatum),
        ("rr:ExamineradOmfattning", r.modul.omfattning),
        ("rr:KursinstansUID", r.antagning.tillfalle.utbildning.instans_uid),
        ("rr:KurstillfalleUID", r.antagning.tillfalle.uid),
        ("rr:ProcessStatus", PROCESSSTATUS_ATTESTERAD),
        ("rr:ResultatUID", r.uid),
        ("rr:StudentUID", r.antagning.student_uid),
        ("rr:UtbildningsinstansUID", r.modul.uid),
    ]) for r in rows])


def tillgodoraknanden(rows: list[Tillgodoraknande]) -> etree._Element:
    return element("rr:Tillgodoraknanden", [("rr:Tillgodoraknande", [
        ("base:Uid", tg.uid),
        ("rr:Anteckning", f"{tg.benamning}, {tg.omfattning} hp"),
        ("rr:AnvandsIUtfardatBevis", False),
        ("rr:Beslutsdatum", tg.beslutsdatum),
        ("rr:Beslutsfattare", "Handläggare (simulator)"),
        ("rr:KopplatKurspaketeringstillfalleUID", tg.kurspaketeringstillfalle_uid),
    ]) for tg in rows])


def utfardade_bevis(rows: list) -> etree._Element:
    """``ex:UtfardatBevisLista``: issued certificates, by student UID only (no name)."""
    return element("ex:UtfardatBevisLista", [("ex:UtfardatBevis", [
        ("base:Uid", b.uid),
        ("ex:Benamningar", benamningar(b.benamning_sv, b.benamning_en)),
        ("ex:BeslutsfattareVisningsnamn", "Examenshandläggare (simulator)"),
        ("ex:Bevisbenamningskod", b.kod),
        ("ex:Borttaget", b.borttaget),
        ("ex:DatumForAvslutadeStudier", b.avslutade_studier),
        ("ex:HuvudsakligKurspaketeringsinstansUID", b.paket_instans_uid),
        ("ex:Omfattning", b.omfattning),
        ("ex:StudentUID", b.student_uid),
        ("ex:UtfardandeLarosateID", LAROSATE_ID),
        ("ex:Utfardandedatum", b.datum),
    ]) for b in rows])
