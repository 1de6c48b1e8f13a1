"""Ladok's kataloginformation: grunddata (grade scales, periods) and who the client certificate is
(``anvandare/autentiserad``), the permission profiles it has (``anvandarbehorighet/egna``) and the
rights a profile grants (``behorighetsprofil/{uid}``: system activities with a level).

Public sources: the kataloginformation XSD (``ki:Betygsskalor``, ``ki:Perioder``,
``ki:Anvandare``, ``ki:AnvandarbehorighetLista``, ``ki:Behorighetsprofil``); the paths as
uppsala-university/ati-ladok3-rest-client and masv3971/go_ladok call them (docs/contracts/ladok.md)."""

from __future__ import annotations

from lxml import etree

from brygga import xmlsafe
from brygga.records import Grade, GradeScale, LadokUser
from mappings.base import Mapping, MappingKey
from mappings.registry import mapping

KI = "{http://schemas.ladok.se/kataloginformation}"
BASE = "{http://schemas.ladok.se}"


def _t(el: etree._Element, tag: str) -> str:
    return (el.findtext(tag) or "").strip()


def _name(el: etree._Element, lang: str = "sv") -> str:
    """A ``Benamningar``/``Benamning`` text in ``lang``, else the first one."""
    texts = []
    for b in el.iter(BASE + "Benamning"):
        text = _t(b, BASE + "Text")
        if text:
            if _t(b, BASE + "Sprakkod") == lang:
                return text
            texts.append(text)
    return texts[0] if texts else ""


@mapping
class KataloginformationV1(Mapping):
    key = MappingKey("ladok", "kataloginformation", 1)
    description = "ki:Betygsskalor, ki:Perioder, ki:Anvandare, ki:AnvandarbehorighetLista, ki:Behorighetsprofil"

    def read_grade_scales(self, body: bytes) -> list[GradeScale]:
        """``GET /kataloginformation/grunddata/betygsskala`` -> every scale with its grades."""
        root = xmlsafe.root(body, KI + "Betygsskalor")
        scales = []
        for s in root.iterfind(KI + "Betygsskala"):
            grades = tuple(
                Grade(grade_id=_t(g, KI + "ID") or _t(g, BASE + "ID"), code=_t(g, KI + "Kod") or _t(g, BASE + "Kod"),
                      valid_final=(_t(g, KI + "GiltigSomSlutbetyg") == "true"),
                      ordinal=int(_t(g, KI + "Ordningsnummer") or 0))
                for g in s.iterfind(KI + "Betygsgrader"))
            scales.append(GradeScale(scale_id=_t(s, KI + "ID") or _t(s, BASE + "ID"),
                                     code=_t(s, KI + "Kod") or _t(s, BASE + "Kod"), grades=grades))
        return scales

    def read_periods(self, body: bytes) -> dict[str, str]:
        """``GET /kataloginformation/grunddata/period`` -> {Kod: ID} (HT2027 -> its ID)."""
        root = xmlsafe.root(body, KI + "Perioder")
        out = {}
        for p in root.iterfind(KI + "Period"):
            code, pid = _t(p, KI + "Kod") or _t(p, BASE + "Kod"), _t(p, KI + "ID") or _t(p, BASE + "ID")
            if code and pid:
                out[code] = pid
        return out

    def read_user(self, body: bytes) -> LadokUser:
        """``GET /kataloginformation/anvandare/autentiserad`` -> who the certificate is."""
        root = xmlsafe.root(body, KI + "Anvandare")
        return LadokUser(uid=_t(root, BASE + "Uid") or None, username=_t(root, KI + "Anvandarnamn") or None,
                         larosate_id=_t(root, "{http://schemas.ladok.se/dap}LarosateID") or None)

    def read_own_profiles(self, body: bytes) -> list[tuple[str, str, str]]:
        """``GET /kataloginformation/anvandarbehorighet/egna`` -> [(profile uid, name, status)]."""
        root = xmlsafe.root(body, KI + "AnvandarbehorighetLista")
        out = []
        for b in root.iterfind(KI + "Anvandarbehorighet"):
            ref = b.find(KI + "BehorighetsprofilRef")
            if ref is not None and _t(ref, BASE + "Uid"):
                out.append((_t(ref, BASE + "Uid"), _name(ref), _t(b, KI + "Status")))
        return out

    def read_profile(self, body: bytes) -> dict[int, str]:
        """``GET /kataloginformation/behorighetsprofil/{uid}`` -> {system activity id: level}."""
        root = xmlsafe.root(body, KI + "Behorighetsprofil")
        level = _t(root, KI + "Rattighetsniva")
        out = {}
        for a in root.iterfind(KI + "Systemaktiviteter"):
            aid = _t(a, KI + "Id")
            if aid.isdigit():
                out[int(aid)] = _t(a, KI + "Rattighetsniva") or level
        return out
