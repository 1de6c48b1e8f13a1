"""REST representations (response bodies) in the Ladok3 XSD types; all validate against the XSDs."""

from __future__ import annotations

import uuid

from lxml import etree

from simulators.ladok.state import Antagning, LadokError, Resultat, Student, Tillfalle
from simulators.ladok.xml import LAROSATE_ID, benamningar, element, fill, link, q

MALL_UID = {typ: str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://ladok.se/sim/utbildningsmall/{typ}"))
            for typ in ("kurs", "program")}
ATGARD = "studiedeltagande.domain.atgardstyp."
TILLSTAND = "studiedeltagande.domain.tillstandsdefinition."
PROCESSSTATUS_ATTESTERAD = 3


#: What kind of error a key is, as Ladok's LadokException says it (Felkategori, Felgrupp): the
#: codes seen in public clients (go_ladok's mocks, ati-ladok3-rest-client's integration tests,
#: KTH/lms-export-to-ladok-2's error handler); which key gets which is the simulator's reading.
KATEGORI = {
    "valideringsfel": ("commons.fel.kategori.valideringsfel", "Valideringsfel"),
    "applikationsfel": ("commons.fel.kategori.applikationsfel", "Generellt fel i applikationen"),
    "sakerhet": ("commons.fel.kategori.sakerhetsovertradelse", "Säkerhetsöverträdelse"),
}
GRUPP = {
    "domanregel": ("commons.fel.grupp.domanregel", "Domänregel"),
    "felaktigt_format": ("commons.fel.grupp.felaktigt_format", "Felaktigt format"),
    "saknas": ("commons.fel.grupp.obligatoriskt_varde_saknas", "Obligatoriskt värde saknas"),
    "auktorisering": ("commons.fel.grupp.auktorisering", "Auktorisering"),
}


def kind_of(e: LadokError) -> tuple[str, str]:
    """(kategori, grupp) of an error: a business rule (a ``.hinder.`` key or a 409), a missing
    object (404), a permission (403), a server failure (5xx), else a validation error."""
    if e.status >= 500:
        return "applikationsfel", "felaktigt_format"
    if e.status == 403:
        return "sakerhet", "auktorisering"
    if e.status == 404:
        return "valideringsfel", "saknas"
    if ".hinder." in e.key or e.status == 409:
        return "valideringsfel", "domanregel"
    return "valideringsfel", "felaktigt_format"


def ladok_exception(e: LadokError, *, attribut: str | None = None) -> etree._Element:
    """``base:LadokException`` (schemas.ladok.se.xsd): the key as Detaljkod, its text, a FelUID."""
    kategori, grupp = kind_of(e)
    return element("base:LadokException", [
        ("base:Detaljkod", e.key), ("base:DetaljkodText", e.text), ("base:FelUID", str(uuid.uuid4())),
        ("base:Felgrupp", GRUPP[grupp][0]), ("base:FelgruppText", GRUPP[grupp][1]),
        ("base:Felkategori", KATEGORI[kategori][0]), ("base:FelkategoriText", KATEGORI[kategori][1]),
        ("base:FelkallaAttributID", attribut), ("base:Meddelande", e.text),
    ])


def regelresultat(e: LadokError) -> etree._Element:
    """``sd:Regelresultat``: the rule that stops an åtgärd, as a stopping ``base:Hinder``."""
    return element("sd:Regelresultat", [
        ("sd:HinderLista", [("sd:Hinder", [("base:I18nNyckel", e.key), ("base:Stoppande", True),
                                           ("base:Text", benamningar(e.text))])]),
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
    """``sd:BehorighetsvillkorLista``: the villkor now on the tillfällesantagning, each
    ``sd:Behorighetsvillkor`` with its type, NyA's code in ``Typ`` (the read type has no
    ExternTextUID: the simulator's reading) and the type's name."""
    return element("sd:BehorighetsvillkorLista", [
        ("sd:Behorighetsvillkor", [
            ("sd:Behorighetsvillkorstyp", v.typ), ("sd:Typ", v.kod),
            ("sd:TypBenamning", benamningar({"sb": "Särskild behörighet", "gba": "Grundläggande behörighet"}
                                            .get(v.typ.rsplit(".", 1)[-1], "Övrigt villkor"))),
        ]) for v in a.aktuella_villkor()
    ])


def betygsskalor(skalor: dict[int, tuple[str, dict[str, tuple[int, bool]]]]) -> etree._Element:
    """``ki:Betygsskalor`` (grunddata betygsskala): every scale with its grades in order."""
    return element("ki:Betygsskalor", [
        ("ki:Betygsskala", [
            ("base:Benamningar", benamningar(kod)), ("base:Dolt", False), ("base:ID", str(sid)), ("base:Kod", kod),
            *[("ki:Betygsgrader", [("base:Benamningar", benamningar(betyg)), ("base:Dolt", False),
                                   ("base:ID", str(gid)), ("base:Kod", betyg), ("ki:GiltigSomSlutbetyg", valid),
                                   ("ki:Ordningsnummer", i)])
              for i, (betyg, (gid, valid)) in enumerate(grader.items(), 1)],
        ]) for sid, (kod, grader) in skalor.items()
    ])


def perioder(rows: list) -> etree._Element:
    """``ki:Perioder`` (grunddata period): the terms with their IDs."""
    return element("ki:Perioder", [
        ("ki:Period", [("base:Benamningar", benamningar(kod)), ("base:Dolt", False), ("base:ID", str(pid)),
                       ("base:Kod", kod), ("ki:FromDatum", fran), ("ki:PeriodtypID", 1), ("ki:TomDatum", till)])
        for pid, kod, fran, till in rows
    ])


def anvandare(uid: str, anvandarnamn: str) -> etree._Element:
    return element("ki:Anvandare", [("dap:LarosateID", LAROSATE_ID), ("base:Uid", uid),
                                    ("ki:Anvandarnamn", anvandarnamn), ("ki:Fornamn", "Brygga")])


def anvandarbehorigheter(profiles: list[tuple[str, str, str]], anvandare_uid: str) -> etree._Element:
    """``ki:AnvandarbehorighetLista``: the certificate's profiles (egna) with their status."""
    return element("ki:AnvandarbehorighetLista", [
        ("ki:Anvandarbehorighet", [
            ("base:Uid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"sim:behorighet:{puid}"))),
            ("ki:AnvandareRef", [("ki:Uid", anvandare_uid)]),
            ("ki:BehorighetsprofilRef", [("base:Benamning", [("base:Sprakkod", "sv"), ("base:Text", namn)]),
                                         ("base:Uid", puid)]),
            ("ki:Status", status),
        ]) for puid, namn, status in profiles
    ])


def behorighetsprofil(namn: str, aktiviteter: dict[int, str]) -> etree._Element:
    """``ki:Behorighetsprofil``: the system activities (rights) a profile grants, with their level."""
    return element("ki:Behorighetsprofil", [
        ("ki:Benamningar", benamningar(namn)), ("ki:Rattighetsniva", "rattighetsniva.las"),
        *[("ki:Systemaktiviteter", [("ki:Id", aid), ("ki:Betafunktion", False), ("ki:I18nNyckel", nyckel),
                                    ("ki:KlarForProduktion", True), ("ki:Rattighetsniva", niva)])
          for aid, (nyckel, niva) in _aktiviteter(aktiviteter).items()],
    ])


def _aktiviteter(aktiviteter: dict[int, str]) -> dict[int, tuple[str, str]]:
    from brygga.rights import SYSTEMAKTIVITETER

    return {aid: (SYSTEMAKTIVITETER.get(aid, f"systemaktivitet.{aid}"), niva) for aid, niva in aktiviteter.items()}


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
         f"{base_url}/studiedeltagande/behorighetsvillkor/tillfallesantagning/{a.uid}")
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
    """``rr:ResultatLista``: the attested results not cancelled, on modules and (``UtbildningsinstansUID``
    the course's own instance) whole courses."""
    rows = [r for r in rows if not r.makulerat]
    return element("rr:ResultatLista", [("rr:Resultat", [
        ("base:Uid", r.uid),
        ("rr:Beslutsdatum", r.examinationsdatum),
        ("rr:Beslutsfattare", "Examinator (simulator)"),
        ("rr:Betygsgrad", r.betygsgrad_id),
        ("rr:Betygsgradsobjekt", [("base:ID", r.betygsgrad_id), ("base:Kod", r.betyg),
                                  ("rr:GiltigSomSlutbetyg", True)]),
        ("rr:BetygsskalaID", r.betygsskala_id),
        ("rr:Examinationsdatum", r.examinationsdatum),
        ("rr:ExamineradOmfattning", r.modul.omfattning if r.modul else r.antagning.tillfalle.utbildning.omfattning),
        ("rr:KursinstansUID", r.antagning.tillfalle.utbildning.instans_uid),
        ("rr:KurstillfalleUID", r.antagning.tillfalle.uid),
        ("rr:ProcessStatus", PROCESSSTATUS_ATTESTERAD),
        ("rr:ResultatUID", r.uid),
        ("rr:StudentUID", r.antagning.student_uid),
        ("rr:UtbildningsinstansUID", r.modul.uid if r.modul else r.antagning.tillfalle.utbildning.instans_uid),
    ]) for r in rows])


def tillgodoraknanden(rows: list) -> etree._Element:
    """``rr:Tillgodoraknanden``: the student's attested credit transfers."""
    return element("rr:Tillgodoraknanden", [("rr:Tillgodoraknande", [
        ("base:Uid", tg.uid),
        ("rr:Anteckning", f"{tg.benamning}, {tg.omfattning} hp"),
        ("rr:AnvandsIUtfardatBevis", False),
        ("rr:Beslutsdatum", tg.beslutsdatum),
        ("rr:Beslutsfattare", "Handläggare (simulator)"),
        ("rr:KopplatKurspaketeringstillfalleUID", tg.kurspaketeringstillfalle_uid),
    ]) for tg in rows])


def uppehallslista(rows: list) -> etree._Element:
    """``sd:Uppehallslista``: the study breaks on a tillfällesantagning (a programme's)."""
    return element("sd:Uppehallslista", [("sd:UppehallLista", [
        ("sd:Uppehall", [("base:Uid", u.uid), ("sd:FranOchMed", u.start), ("sd:RattAttAterupptaStudier", True),
                         ("sd:TillOchMed", u.slut)]) for u in rows] or None)])


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
