"""Ladok återbud and avbrott (studiedeltagande) <-> plain dicts.

Requests (``sd:Aterbud``, ``sd:Avbrott``) are built in the studiedeltagande namespace with the XSD's
element names (plus the simulator's ``sd:ExterntSystem`` on an återbud, see docs/contracts/ladok.md);
replies are read order-tolerantly by element name.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from lxml import etree

from brygga import xmlsafe
from mappings.base import Mapping, MappingKey
from mappings.registry import mapping

BASE = "{http://schemas.ladok.se}"
SD = "{http://schemas.ladok.se/studiedeltagande}"
ATGARD = "studiedeltagande.domain.atgardstyp."

#: Återbud causes Brygga sends (Grundkalla/Atgardstyp suffix).
CAUSES = {"meddelat_av_studenten": ATGARD + "aterbud_meddelat_av_studenten",
          "uteblev": ATGARD + "aterbud_uteblev"}


def _sub(parent: etree._Element, tag: str, value: Any) -> None:
    if value is None or value == "":
        return
    etree.SubElement(parent, tag).text = value.isoformat() if isinstance(value, dt.date) else str(value)


def _text(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    v = el.findtext(path)
    return v.strip() if v and v.strip() else None


@mapping
class AterbudV1(Mapping):
    key = MappingKey("ladok", "aterbud", 1)
    description = "sd:Aterbud / sd:Avbrott: requests and replies (återbud, avbrott, tidigt avbrott)"

    # ------------------------------------------------------------------ återbud
    def write_aterbud(self, date: dt.date | str, *, cause: str = "meddelat_av_studenten",
                      externt_system: str | None = None) -> bytes:
        if cause not in CAUSES:
            raise ValueError(f"unknown återbud cause {cause!r} (one of {sorted(CAUSES)})")
        root = etree.Element(SD + "Aterbud", nsmap={"sd": SD[1:-1]})
        g = etree.SubElement(root, SD + "Grundkalla")
        _sub(g, SD + "Atgardstyp", CAUSES[cause])
        _sub(root, SD + "Aterbudsdatum", date)
        _sub(root, SD + "ExterntSystem", externt_system)
        return etree.tostring(root, encoding="UTF-8")

    def read_aterbud(self, body: bytes) -> dict[str, str | None]:
        """``sd:Aterbud`` -> {uid, date, externt_system (base:SenastAndradAv), cause, utbildningskod}."""
        root = xmlsafe.fromstring(body)
        atgard = _text(root, f"{SD}Grundkalla/{SD}Atgardstyp") or ""
        return {
            "uid": _text(root, BASE + "Uid"),
            "date": _text(root, SD + "Aterbudsdatum"),
            "externt_system": _text(root, BASE + "SenastAndradAv"),
            "cause": "uteblev" if atgard.endswith("uteblev") else "meddelat_av_studenten",
            "utbildningskod": _text(root, f"{SD}Grundkalla/{SD}Utbildningsinformation/{SD}Utbildningskod"),
        }

    # ------------------------------------------------------------------ avbrott
    def write_avbrott(self, date: dt.date | str, *, externreferens: str | None = None) -> bytes:
        root = etree.Element(SD + "Avbrott", nsmap={"sd": SD[1:-1]})
        _sub(root, SD + "Avbrottsdatum", date)
        _sub(root, SD + "Externreferens", externreferens)
        return etree.tostring(root, encoding="UTF-8")

    def read_avbrott(self, body: bytes) -> dict[str, Any]:
        """``sd:Avbrott`` -> {uid, date, early, note, externreferens}. Ladok marks an early avbrott
        (registration withdrawn) with an ``sd:Anteckning``; an ordinary one has none."""
        root = xmlsafe.fromstring(body)
        note = _text(root, SD + "Anteckning")
        return {
            "uid": _text(root, BASE + "Uid"),
            "date": _text(root, SD + "Avbrottsdatum"),
            "early": bool(note and "tidigt" in note.lower()),
            "note": note,
            "externreferens": _text(root, SD + "Externreferens"),
        }
