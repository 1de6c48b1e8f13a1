"""What Ladok answers instead of doing what was asked, read: a ``base:LadokException`` (its codes,
texts and FelUID), a rule result ``sd:Regelresultat`` whose ``HinderLista`` lists the rules that
stop it (``base:Hinder``: I18nNyckel, Stoppande, Text), or a bare ``base:Hinder``.

Public sources: the LadokException type in ``schemas.ladok.se.xsd`` and masv3971/go_ladok
``ladoktypes/errors.go``; Regelresultat/Hinderlista in ``schemas.ladok.se-studiedeltagande.xsd``
and ``schemas.ladok.se.xsd`` (docs/contracts/ladok.md, "Errors")."""

from __future__ import annotations

from lxml import etree

from brygga import xmlsafe
from brygga.records import Hinder, LadokFel
from mappings.base import Mapping, MappingKey
from mappings.registry import mapping

BASE = "{http://schemas.ladok.se}"
SD = "{http://schemas.ladok.se/studiedeltagande}"
SI = "{http://schemas.ladok.se/studentinformation}"
_FEL = {"Felkategori": "felkategori", "FelkategoriText": "felkategori_text", "Felgrupp": "felgrupp",
        "FelgruppText": "felgrupp_text", "Detaljkod": "detaljkod", "DetaljkodText": "detaljkod_text",
        "FelUID": "fel_uid", "FelkallaAttributID": "felkalla_attribut", "FelkallaObjektID": "felkalla_objekt",
        "Meddelande": "meddelande"}
TEXT_MAX = 2000  # a text kept from an error body (a reason, a log line)


def _hinder(el: etree._Element) -> Hinder:
    texts = [t.text.strip() for t in el.iter(BASE + "Text") if t.text and t.text.strip() and len(t) == 0]
    return Hinder(key=(el.findtext(BASE + "I18nNyckel") or "").strip()[:200], text=(texts[0] if texts else "")[:TEXT_MAX],
                  stoppande=(el.findtext(BASE + "Stoppande") or "true").strip() == "true")


@mapping
class LadokErrorV1(Mapping):
    key = MappingKey("ladok", "error", 1)
    description = "base:LadokException / sd:Regelresultat (HinderLista) / base:Hinder -> LadokFel | Hinder"

    def read(self, body: bytes) -> LadokFel | Hinder | None:
        """The error body; None when it is none of these (an HTML page, empty, another document).
        A rule result gives its first stopping Hinder (else its first)."""
        try:
            root = xmlsafe.fromstring(body)
        except xmlsafe.UnreadableXML:
            return None
        if root.tag == BASE + "LadokException":
            values = {}
            for child in root:
                name = etree.QName(child).localname if isinstance(child.tag, str) else ""
                if name in _FEL and child.text and child.text.strip():
                    values[_FEL[name]] = child.text.strip()[:TEXT_MAX]
            return LadokFel(**values)
        if root.tag in (SD + "Regelresultat", SI + "Regelresultat"):
            hinders = [_hinder(h) for h in root.iter(SD + "Hinder", SI + "Hinder", BASE + "Hinder")]
            stopping = [h for h in hinders if h.stoppande] or hinders
            return stopping[0] if stopping else None
        if root.tag == BASE + "Hinder":
            return _hinder(root)
        return None
