"""Ladok3 XML: namespaces, a compact element builder, the event envelope and the schema.

Content is described as nested ``(prefixed_name, value)`` pairs in XSD order: ``None`` values are
left out, a list value becomes child elements, anything else becomes text (booleans as
``true``/``false``, dates in ISO form). Repeated elements are repeated pairs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from pathlib import Path

from lxml import etree

from brygga import xmlsafe
from brygga.paths import SCHEMAS

NS = {
    "base": "http://schemas.ladok.se",
    "si": "http://schemas.ladok.se/studentinformation",
    "sd": "http://schemas.ladok.se/studiedeltagande",
    "ui": "http://schemas.ladok.se/utbildningsinformation",
    "rr": "http://schemas.ladok.se/resultat",
    "ex": "http://schemas.ladok.se/examen",
    "ki": "http://schemas.ladok.se/kataloginformation",
    "events": "http://schemas.ladok.se/events",
    "dap": "http://schemas.ladok.se/dap",
}
ATOM = "http://www.w3.org/2005/Atom"
SCHEMA_DIR = SCHEMAS / "ladok"
LAROSATE_ID = 27
#: Who acts in Ladok: staff (the simulator's own administrator; an eppn, as in KTH's fixtures) and
#: the systems; a student acting in the student web acts as themself (``Actor.student``).
STAFF_ANVANDARNAMN = "handlaggare@larosatet.example.se"
STAFF_ANVANDARE_UID = "5a1d0000-5a1d-4000-8000-000000000001"

Items = Iterable[tuple[str, object]]


_QNAMES: dict[str, str] = {}


def q(name: str) -> str:
    """``sd:Aterbud`` -> ``{http://schemas.ladok.se/studiedeltagande}Aterbud`` (memoised)."""
    qname = _QNAMES.get(name)
    if qname is None:
        prefix, local = name.split(":")
        qname = _QNAMES[name] = f"{{{NS[prefix]}}}{local}"
    return qname


def text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def fill(parent: etree._Element, items: Items) -> etree._Element:
    # Every response and event is built here: kept tight (the common str case first, one dict
    # lookup per name) since it is most of the simulator's CPU per request.
    sub, qnames = etree.SubElement, _QNAMES
    for name, value in items:
        if value is None:
            continue
        child = sub(parent, qnames.get(name) or q(name))
        if type(value) is str:
            child.text = value
        elif isinstance(value, list):
            fill(child, value)
        else:
            child.text = text(value)
    return parent


def element(name: str, items: Items = (), nsmap: dict[str, str] = NS) -> etree._Element:
    return fill(etree.Element(q(name), nsmap=nsmap), items)


def benamningar(sv: str, en: str | None = None) -> list:
    out = [("base:Benamning", [("base:Sprakkod", "sv"), ("base:Text", sv)])]
    if en:
        out.append(("base:Benamning", [("base:Sprakkod", "en"), ("base:Text", en)]))
    return out


def link(parent: etree._Element, rel: str, uri: str) -> None:
    """A ``dap:link`` (Ladok's hypermedia relation); must be the first children of a dap:Base type."""
    etree.SubElement(parent, q("dap:link"), rel=f"http://relations.ladok.se/{rel}", uri=uri)


def event(name: str, items: Items, student_uid: str | None = None, *,
          actor: tuple[str, str] | None = None) -> etree._Element:
    """An event element as the real feed page has it: ``events:EventContext`` (who acted:
    ``AnvandareUID``, ``Anvandarnamn``; the institution; the student) then ``events:HandelseUID``
    (the XSDs' BaseEvent lists them the other way round), then the event's own fields.
    ``actor``: (AnvandareUID, Anvandarnamn), staff by default."""
    uid, username = actor or (STAFF_ANVANDARE_UID, STAFF_ANVANDARNAMN)
    context = [
        ("events:AnvandareUID", uid),
        ("events:Anvandarnamn", username),
        ("events:LarosateID", LAROSATE_ID),
        ("events:StudentUID", student_uid),
    ]
    head = [("events:EventContext", context), ("events:HandelseUID", str(uuid.uuid4()))]
    prefix = name.split(":")[0]
    return element(name, [*head, *items], {prefix: NS[prefix], "base": NS["base"], "dap": NS["dap"],
                                           "events": NS["events"]})


def service_of(name: str) -> str:
    """``sd:AterbudEvent`` -> ``studiedeltagande`` (the path segment in the Atom category term)."""
    return NS[name.split(":")[0]].rsplit("/", 1)[-1]


def tostring(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def schema() -> etree.XMLSchema:
    """All public Ladok3 XSDs in one validator (cached by brygga.xmlsafe)."""
    return xmlsafe.schema_from_files("ladok", sorted(Path(SCHEMA_DIR).glob("*.xsd")))
