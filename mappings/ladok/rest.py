"""Ladok REST resources (``application/vnd.ladok-<service>+xml``) <-> Brygga records.

Responses are read order-tolerantly by element name; requests are built in the Ladok namespaces
(see docs/contracts/ladok.md for the request shapes the XSDs have no type for).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from lxml import etree

from brygga import personnummer as pnr
from brygga import xmlsafe
from brygga.records import Participant, Placement, Student, Utbildningstillfalle
from mappings.base import Mapping, MappingKey, RecordError, stream_elements
from mappings.registry import mapping

BASE = "{http://schemas.ladok.se}"
SI = "{http://schemas.ladok.se/studentinformation}"
SD = "{http://schemas.ladok.se/studiedeltagande}"
UI = "{http://schemas.ladok.se/utbildningsinformation}"
NSMAP = {"base": BASE[1:-1], "si": SI[1:-1], "sd": SD[1:-1], "ui": UI[1:-1]}
ATTR = "utbildningstillfalle.attribut."
FEE_PREFIX = "studiedeltagande.domain.studieavgiftsbetalningsvarde."


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def _sub(parent: etree._Element, tag: str, value: Any) -> None:
    if value is None or value == "":
        return
    etree.SubElement(parent, tag).text = ("true" if value else "false") if isinstance(value, bool) else str(value)


@mapping
class StudentV1(Mapping):
    key = MappingKey("ladok", "student", 1)
    description = "si:Student read; establishment (etablering) request with folkbokföringsadress"

    def read(self, body: bytes) -> Student:
        root = xmlsafe.root(body, SI + "Student")
        return Student(
            personnummer=(root.findtext(SI + "Personnummer") or "").strip(),
            fornamn=(root.findtext(SI + "Fornamn") or "").strip(),
            efternamn=(root.findtext(SI + "Efternamn") or "").strip(),
            uid=(root.findtext(BASE + "Uid") or "").strip() or None,
        )

    def read_protection(self, body: bytes) -> bool:
        """A ``si:SkyddadePersonuppgifter`` reply: whether it marks the student protected (any
        status but an ended one)."""
        root = xmlsafe.fromstring(body)
        if root.tag != SI + "SkyddadePersonuppgifter":
            raise xmlsafe.UnexpectedReply("not a si:SkyddadePersonuppgifter")
        return (root.findtext(SI + "Skyddsstatus") or "").strip().upper() not in ("UPPHORD", "AVSLUTAD")

    def read_search(self, body: bytes | IO[bytes]) -> tuple[int, list[Student]]:
        """``si:SokresultatStudentinformationRepresentation`` page -> (total hits, students on this
        page, personnummer canonical). A hit without a uid or a valid personnummer is left out: the
        caller treats that person as not found, and establishing them meets ``personnummer.finns``."""
        total, students = 0, []
        for el in stream_elements(body, (BASE + "TotaltAntalPoster", SI + "Resultat")):
            if el.tag == BASE + "TotaltAntalPoster":
                total = int(el.text)
                continue
            uid = (el.findtext(BASE + "Uid") or "").strip()
            try:
                number = pnr.canonical((el.findtext(SI + "Personnummer") or "").strip())
            except pnr.InvalidPersonnummer:
                continue
            if uid:
                students.append(Student(personnummer=number, fornamn=(el.findtext(SI + "Fornamn") or "").strip(),
                                        efternamn=(el.findtext(SI + "Efternamn") or "").strip(), uid=uid))
        return total, students

    def write(self, student: Student) -> bytes:
        """Establishment request. A protected person's address is never written."""
        root = etree.Element(SI + "Student", nsmap={"si": SI[1:-1]})
        _sub(root, SI + "Efternamn", student.efternamn)
        _sub(root, SI + "Fornamn", student.fornamn)
        _sub(root, SI + "Personnummer", pnr.parse(student.personnummer).value)
        if student.protected:
            etree.SubElement(root, SI + "SkyddadePersonuppgifter")
        elif student.address is not None:
            a = etree.SubElement(root, SI + "Postadress")
            _sub(a, SI + "Postnummer", student.address.postnummer)
            _sub(a, SI + "Postort", student.address.postort)
            _sub(a, SI + "Utdelningsadress", student.address.utdelningsadress)
        return etree.tostring(root, encoding="UTF-8")


_UIDLIKE = __import__("re").compile(r"[0-9A-Za-z][0-9A-Za-z._:-]{0,63}")


def _ident(value: str | None, name: str) -> str:
    value = (value or "").strip()
    if not _UIDLIKE.fullmatch(value):
        raise ValueError(f"{name}: required, an id of at most 64 letters, digits or ._:-")
    return value


#: The bounded values of an instance, checked where they are read (the schedule export keeps the
#: uid and the organisation unit in columns; the others go out in 255-character text fields).
_BOUNDS = {"organisation": 64, "utbildningskod": 32, "tillfalleskod": 32, "studieort": 255,
           "undervisningssprak": 64, "undervisningstid": 64, "name_sv": 255, "name_en": 255}


@mapping
class UtbildningstillfalleV1(Mapping):
    key = MappingKey("ladok", "utbildningstillfalle", 1)
    description = "ui:Utbildningstillfalle (single GET, with Attributvarden) -> Utbildningstillfalle"

    def read(self, body: bytes | IO[bytes]) -> Iterator[Utbildningstillfalle | RecordError]:
        """One ``ui:Utbildningstillfalle`` or a ``ui:Utbildningstillfallen`` list, streamed."""
        for el in stream_elements(body, UI + "Utbildningstillfalle"):
            uid = (el.findtext(BASE + "Uid") or "").strip()
            try:
                yield self._one(el, uid)
            except ValueError as e:
                field, _, rule = str(e).partition(": ")
                yield RecordError(uid[:64] or "?", field if rule else "Utbildningstillfalle", rule or str(e),
                                  "Utbildningstillfalle", has_id=bool(_UIDLIKE.fullmatch(uid)))

    def _one(self, el: etree._Element, uid: str) -> Utbildningstillfalle:
        if not uid:
            raise ValueError("Uid: required field missing")
        t = self._build(el, _ident(uid, "Uid"))
        for name, most in _BOUNDS.items():
            value = getattr(t, name)
            if value is not None and (len(value) > most or not value.isprintable()):
                raise ValueError(f"{name}: at most {most} printable characters")
        return t

    def _build(self, el: etree._Element, uid: str) -> Utbildningstillfalle:
        attrs: dict[str, list[str]] = {}
        for a in el.iterfind(UI + "Attributvarden"):
            attrs.setdefault((a.findtext(UI + "Namn") or "").removeprefix(ATTR), []).append((a.findtext(UI + "Varde") or "").strip())
        names = {b.findtext(BASE + "Sprakkod"): b.findtext(BASE + "Text")
                 for b in el.iterfind(f"{UI}AlternativaBenamningar/{BASE}Benamning")}
        period = el.find(UI + "Tillfallesperioder")
        takt = (attrs.get("studietakt") or [el.findtext(UI + "StudietaktID")])[0]
        return Utbildningstillfalle(
            uid=uid,
            utbildningskod=_first(attrs.get("utbildningskod")),
            tillfalleskod=el.findtext(UI + "Tillfalleskod"),
            name_sv=names.get("sv"), name_en=names.get("en"),
            credits=el.findtext(UI + "SpecificeradOmfattning")
            or (period.findtext(UI + "Omfattningsvarde") if period is not None else None),
            start=period.findtext(UI + "ForstaUndervisningsdatum") if period is not None else None,
            end=period.findtext(UI + "SistaUndervisningsdatum") if period is not None else None,
            studietakt=int(takt) if takt and takt.isdigit() else None,
            studieort=_first(attrs.get("studieort")),
            installt=(el.findtext(UI + "Installt") or "false").strip() == "true",
            utannonserat=(el.findtext(UI + "Utannonserat") or "false").strip() == "true",
            is_programme=(el.findtext(UI + "UtbildningstypID") or "").strip() == "42",
            rounds=tuple(attrs.get("antagningsomgang", ())),
            course_uids=tuple(attrs.get("ingaende.utbildningstillfalle", ())),
            undervisningssprak=_first(attrs.get("undervisningssprak")),
            undervisningstid=_first(attrs.get("undervisningstid")),
            organisation=_first(attrs.get("organisation")),
        )

    def read_search(self, body: bytes | IO[bytes]) -> tuple[int, list[str]]:
        """``filtrera`` page -> (total hits, instance uids on this page)."""
        total, uids = 0, []
        for el in stream_elements(body, (BASE + "TotaltAntalPoster", UI + "Resultat")):
            if el.tag == BASE + "TotaltAntalPoster":
                total = int(el.text)
            else:
                uids.append((el.findtext(UI + "Uid") or "").strip())
        return total, uids


@mapping
class PlacementV1(Mapping):
    key = MappingKey("ladok", "placement", 1)
    description = "sd:Tillfallesantagning: place an admission in the study plan; Hinder on refusal"

    def write(self, p: Placement) -> bytes:
        root = etree.Element(SD + "Tillfallesantagning", nsmap={"sd": SD[1:-1]})
        _sub(root, SD + "StudentUID", p.student_uid)
        _sub(root, SD + "UtbildningstillfalleUID", p.utbildningstillfalle_uid)
        _sub(root, SD + "Anmalningsnummer", p.anmalningsnummer)
        _sub(root, SD + "Studieavgiftsbetalning", FEE_PREFIX + p.fee)
        _sub(root, SD + "KurspaketeringstillfalleUID", p.package_uid)
        if p.fristaende:
            _sub(root, SD + "Fristaende", True)
        if p.inom_kurspaketering:
            _sub(root, SD + "InomKurspaketering", True)
        if p.application_fee_paid is not None:
            _sub(root, SD + "AnmalningsavgiftBetald", p.application_fee_paid)
        if p.villkor:
            lst = etree.SubElement(root, SD + "BehorighetsvillkorLista")
            for code in p.villkor:
                v = etree.SubElement(lst, SD + "Behorighetsvillkor")
                _sub(v, SD + "Behorighetsvillkorstyp", "studiedeltagande.domain.behorighetsvillkor.typ.ov")
                _sub(v, SD + "ExternTextUID", code)
        return etree.tostring(root, encoding="UTF-8")

    def read(self, body: bytes) -> dict[str, str | None]:
        """The placed Tillfallesantagning: its uid and the package it sits in, if any."""
        root = xmlsafe.fromstring(body)
        package = None
        for link in root.iter("{http://schemas.ladok.se/dap}link"):
            if link.get("rel", "").endswith("/kurspaketeringstillfalle"):
                package = link.get("uri", "").rstrip("/").rsplit("/", 1)[-1]
        return {"uid": (root.findtext(SD + "TillfallesantagningUID") or "").strip(),
                "student_uid": (root.findtext(SD + "StudentUID") or "").strip(), "package_uid": package}



TILLSTAND = "studiedeltagande.domain.tillstandsdefinition.kurstillfallesdeltagande."
_UID, _FORNAMN, _EFTERNAMN = BASE + "Uid", BASE + "Fornamn", BASE + "Efternamn"
_STUDENT, _INSTANCE, _TILLSTAND = SD + "Student", SD + "UtbildningstillfalleUID", SD + "TillstandKurs"
_DELTAGANDE = SD + "Tillfallesdeltagande"
STATES = ("ej_paborjad", "registrerad", "aterbud", "avbrott", "tidigtavbrott", "tillfallesbyte")
NAME_MAX = 100  # the schedule export's name columns


@mapping
class DeltagareV1(Mapping):
    key = MappingKey("ladok", "deltagare", 1)
    description = "sd:SokresultatDeltagare (participants of instances) -> Participant; si:Kontaktuppgifter e-mail"

    def read_search(self, body: bytes | IO[bytes]) -> tuple[int, list[Participant | RecordError]]:
        """A page of participants -> (total hits, participants on it). A participant whose ids,
        state or names break the rules comes back as a RecordError naming it and the field."""
        total, out = 0, list[Participant | RecordError]()
        for el in stream_elements(body, (BASE + "TotaltAntalPoster", SD + "Resultat")):
            if el.tag == BASE + "TotaltAntalPoster":
                total = int(el.text)
                continue
            try:
                out.append(self._one(el))
            except ValueError as e:
                uid = (el.findtext(BASE + "Uid") or "").strip()
                field, _, rule = str(e).partition(": ")
                within = (el.findtext(SD + "UtbildningstillfalleUID") or "").strip()
                out.append(RecordError(uid[:64] or "?", field, rule, "Deltagare", has_id=bool(_UIDLIKE.fullmatch(uid)),
                                       within=within if _UIDLIKE.fullmatch(within) else None))
        return total, out

    @staticmethod
    def _one(el: etree._Element) -> Participant:
        # one pass over the children (a term's full export reads some 300,000 of these)
        uid = instance = state = suid = fornamn = efternamn = None
        student = False
        for c in el:
            tag = c.tag
            if tag == _UID:
                uid = c.text
            elif tag == _STUDENT:
                student = True
                for f in c:
                    if f.tag == _UID:
                        suid = f.text
                    elif f.tag == _FORNAMN:
                        fornamn = f.text
                    elif f.tag == _EFTERNAMN:
                        efternamn = f.text
            elif tag == _INSTANCE:
                instance = c.text
            elif tag == _TILLSTAND:
                state = c.findtext(_DELTAGANDE)
        uid = _ident(uid, "Uid")
        if not student:
            raise ValueError("Student: required element missing")
        suid = _ident(suid, "Student/Uid")
        state = (state or "").strip().removeprefix(TILLSTAND)
        if state not in STATES:
            raise ValueError(f"TillstandKurs: unknown state {state[:60]!r}")
        fornamn = (fornamn or "").strip() or None
        efternamn = (efternamn or "").strip() or None
        for name, value in (("Student/Fornamn", fornamn), ("Student/Efternamn", efternamn)):
            if value is not None and (len(value) > NAME_MAX or not value.isprintable()):
                raise ValueError(f"{name}: at most {NAME_MAX} printable characters")
        return Participant(uid=uid, student_uid=suid, instance_uid=_ident(instance, "UtbildningstillfalleUID"),
                           state=state, fornamn=fornamn, efternamn=efternamn,
                           protected=fornamn is None and efternamn is None)

    @staticmethod
    def read_email(body: bytes) -> str | None:
        """si:Kontaktuppgifter -> the e-mail address, None when Ladok has none. One that is not an
        e-mail address raises ValueError (saying what is wrong, not the address)."""
        value = (xmlsafe.fromstring(body).findtext(SI + "Epostadress") or "").strip()
        if not value:
            return None
        local, _, domain = value.partition("@")
        if 3 <= len(value) <= 254 and value.count("@") == 1 and value.isprintable() and " " not in value \
                and local and "." in domain.strip("."):
            return value
        raise ValueError(f"Epostadress is not a usable e-mail address ({len(value)} characters, "
                         f"{value.count('@')} '@', {'a' if ' ' in value else 'no'} space)")
