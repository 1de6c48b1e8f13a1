"""Ladok studiedeltagande resources beyond placement: the study structure tree
(``/studiedeltagande/studiestruktur/student/{uid}``: ``sd:IngaendeKurspaketeringstillfalleLista``,
as uppsala-university/ati-ladok3-rest-client and KTH/camel-ladok3 read it) and behörighetsvillkor
(read at ``/studiedeltagande/behorighetsvillkor/tillfallesantagning/{uid}``:
``sd:BehorighetsvillkorLista``, ati-ladok3-rest-client; written as ``sd:SkapaBehorighetsvillkor``)."""

from __future__ import annotations

from typing import IO

from lxml import etree

from brygga.records import PlanNode
from mappings.base import Mapping, MappingKey, stream_elements
from mappings.registry import mapping

BASE = "{http://schemas.ladok.se}"
SD = "{http://schemas.ladok.se/studiedeltagande}"
VILLKORSTYP_OV = "studiedeltagande.domain.behorighetsvillkor.typ.ov"  # övrigt villkor (NyA's)
TILLSTAND = "studiedeltagande.domain.tillstandsdefinition."


def _t(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    v = el.findtext(path)
    return v.strip() if v and v.strip() else None


@mapping
class StudieplanV1(Mapping):
    key = MappingKey("ladok", "studieplan", 1)
    description = "sd:IngaendeKurspaketeringstillfalleLista (study plan tree) -> PlanNode list"

    def read(self, source: bytes | IO[bytes]) -> list[PlanNode]:
        out: list[PlanNode] = []
        for root in stream_elements(source, SD + "Studiestruktur"):
            self._walk(root, None, out)
        return out

    def _walk(self, node: etree._Element, parent: str | None, out: list[PlanNode]) -> None:
        uid = _t(node, BASE + "Uid") or ""
        info = node.find(SD + "Utbildningsinformation")
        td = node.find(SD + "Tillfallesdeltagande")
        state = _t(td, f"{SD}TillstandKurs/{SD}Sammanfattattillstand") or _t(
            td, f"{SD}TillstandKurspaketering/{SD}Sammanfattat")
        out.append(PlanNode(
            antagning_uid=uid, tillfalle_uid=_t(info, SD + "UtbildningstillfalleUID"),
            utbildningskod=_t(info, SD + "Utbildningskod"), tillfalleskod=_t(info, SD + "Utbildningstillfalleskod"),
            parent_uid=_t(node, SD + "ReferensTillForalder") or parent,
            aterbud=_t(td, SD + "Aterbud") == "true",
            tillstand=state.removeprefix(TILLSTAND) if state else None))
        for child in node.iterfind(SD + "Barn"):
            self._walk(child, uid, out)

    def read_educations(self, source: bytes | IO[bytes]) -> list[dict[str, str | None]]:
        """The educations of every node (``sd:Utbildningsinformation``): tillfälle uid,
        utbildningsinstans uid, Utbildningskod and Tillfälleskod."""
        return [{k: _t(el, SD + tag) for k, tag in (
            ("tillfalle_uid", "UtbildningstillfalleUID"), ("instans_uid", "UtbildningsinstansUID"),
            ("utbildningskod", "Utbildningskod"), ("tillfalleskod", "Utbildningstillfalleskod"))}
            for el in stream_elements(source, SD + "Utbildningsinformation")]


@mapping
class VillkorV1(Mapping):
    key = MappingKey("ladok", "villkor", 1)
    description = ("sd:BehorighetsvillkorLista (read; the code in sd:Typ) and sd:SkapaBehorighetsvillkor (write; "
                   "the code as ExternTextUID): behörighetsvillkor on a tillfällesantagning")

    def write_one(self, code: str) -> bytes:
        """One villkor to put on a tillfällesantagning: NyA's code as ``ExternTextUID``, type övrigt."""
        root = etree.Element(SD + "SkapaBehorighetsvillkor", nsmap={"sd": SD[1:-1]})
        etree.SubElement(root, SD + "ExternTextUID").text = code
        etree.SubElement(root, SD + "Behorighetsvillkorstyp").text = VILLKORSTYP_OV
        return etree.tostring(root, encoding="UTF-8")

    def read(self, source: bytes | IO[bytes]) -> list[str]:
        """The villkor codes now on the tillfällesantagning. Ladok's read type has no ExternTextUID:
        the code is read from ``sd:Typ`` (Brygga's reading: to confirm against Ladok)."""
        return [c for el in stream_elements(source, SD + "Behorighetsvillkor") if (c := _t(el, SD + "Typ"))]
