"""Ladok studiedeltagande resources beyond placement: the study plan tree and behörighetsvillkor."""

from __future__ import annotations

from collections.abc import Iterable
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


@mapping
class VillkorV1(Mapping):
    key = MappingKey("ladok", "villkor", 1)
    description = "sd:BehorighetsvillkorLista: behörighetsvillkor on a tillfällesantagning (ExternTextUID = NyA code)"

    def write(self, codes: Iterable[str]) -> bytes:
        root = etree.Element(SD + "BehorighetsvillkorLista", nsmap={"sd": SD[1:-1]})
        for code in codes:
            v = etree.SubElement(root, SD + "Behorighetsvillkor")
            etree.SubElement(v, SD + "Behorighetsvillkorstyp").text = VILLKORSTYP_OV
            etree.SubElement(v, SD + "ExternTextUID").text = code
        return etree.tostring(root, encoding="UTF-8")

    def read(self, source: bytes | IO[bytes]) -> list[str]:
        """The current (not removed) villkor codes."""
        return [c for el in stream_elements(source, SD + "Behorighetsvillkor")
                if (c := _t(el, SD + "ExternTextUID"))]
