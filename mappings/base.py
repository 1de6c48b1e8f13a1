"""Building blocks of the mapping layer: keys, record errors, XSD validation that names the bad
record, streaming helpers, and XSLT mappings.

A mapping translates between one external format (system, message type, version) and Brygga's
records (plain dataclasses in ``brygga.records``). Writers validate what they produce against the
format's XSD; readers validate what they accept. One bad record never sinks its batch: it comes
back as a ``RecordError`` (record id, field, rule) and the caller quarantines it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from brygga import xmlsafe
from brygga.paths import SCHEMAS


@dataclass(frozen=True, order=True)
class MappingKey:
    system: str  # "ladok", "nya", ...
    message: str  # "offer", "admission", "events", ...
    version: int

    def __str__(self) -> str:
        return f"{self.system}.{self.message}.v{self.version}"


class MappingError(Exception):
    """The mapping itself is broken (e.g. its output does not match its XSD for every record)."""


@dataclass(frozen=True)
class RecordError:
    """One record that could not be mapped: which record, which field, which rule.

    ``has_id``: ``record_id`` is the record's own usable id (an operator can act on it); when False
    it only names the record (what it carried, or its position) and the record is quarantined, never
    queued or stored under it."""

    record_id: str
    field: str
    rule: str
    kind: str | None = None
    has_id: bool = True
    within: str | None = None  # the record it belongs to, when it has one (a participant's instance uid)

    def __str__(self) -> str:
        return f"record {self.record_id}: field {self.field}: {self.rule}"


class Mapping:
    """Base class. Subclasses set ``key`` and ``schema`` (path under ``schemas/``, or None) and
    implement ``write(records) -> (bytes, errors)`` and/or ``read(source) -> iterator``."""

    key: MappingKey
    schema: str | None = None
    description: str = ""

    def xsd(self) -> etree.XMLSchema:
        if not self.schema:
            raise MappingError(f"{self.key} has no schema")
        return xmlsafe.load_schema(SCHEMAS / self.schema)

    def __repr__(self) -> str:
        return f"<mapping {self.key}>"


def validate_records(
    doc: etree._Element,
    schema: etree.XMLSchema,
    record_tag: str | tuple[str, ...],
    ids: list[str],
    *,
    max_rounds: int = 50,
) -> list[RecordError]:
    """Validate ``doc``; records (children named ``record_tag`` under one parent) that make it
    invalid are removed from ``doc`` and reported. Returns the errors; ``doc`` is then valid.

    lxml reports each violation with an XPath; its record index tells which record is bad.
    """
    errors: list[RecordError] = []
    tags = (record_tag,) if isinstance(record_tag, str) else record_tag
    records = [el for el in doc.iter(*tags)]
    if len(records) != len(ids):
        raise MappingError("record ids do not match the records in the document")
    alive = dict(zip(map(id, records), ids, strict=True))
    for _ in range(max_rounds):
        if not alive or schema.validate(doc):
            # With no records left the document may be invalid (empty batch): nothing to send.
            return errors
        bad: dict[int, etree._Element] = {}
        log = list(schema.error_log)
        for entry in log:
            el, field = _locate(doc, entry.path, tags)
            if el is None:
                raise MappingError(f"document invalid outside any record: {entry.message} at {entry.path}")
            if id(el) in alive and id(el) not in bad:
                bad[id(el)] = el
                errors.append(RecordError(alive[id(el)], field, _clean(entry.message), etree.QName(el).localname))
        if not bad:
            raise MappingError(f"document invalid: {log[0].message}")
        for el in bad.values():
            alive.pop(id(el), None)
            el.getparent().remove(el)
    raise MappingError("too many validation rounds")


def _locate(doc: etree._Element, path: str, tags: tuple[str, ...]) -> tuple[etree._Element | None, str]:
    """The record element an error path points into, and the field path inside the record."""
    try:
        found = doc.getroottree().xpath(path)
    except etree.XPathEvalError:
        return None, ""
    el = found[0] if found else None
    names: list[str] = []
    while el is not None and el.tag not in tags:
        names.append(etree.QName(el).localname)
        el = el.getparent()
    return el, "/".join(reversed(names)) or (etree.QName(el).localname if el is not None else "")


def _clean(message: str) -> str:
    return re.sub(r"\{[^}]*\}", "", message)


def stream_elements(source: Any, tag: Any, parent: str | None = None, *,
                    require: str | None = None) -> Iterator[etree._Element]:
    """Yield each ``tag`` element of a large document and free it afterwards: memory stays flat.

    With ``parent``, only elements directly under a ``parent`` element count (a record element
    may share its name with one of its own fields, e.g. NyA's ``Change/Change``). With ``require``
    a reply without that element raises ``xmlsafe.UnexpectedReply`` (not read as empty)."""
    for el, _ in xmlsafe.iterparse_records(source, tag, None if parent is None else (parent,), require=require):
        yield el


# --------------------------------------------------------------------------- XSLT mappings

CANONICAL_NS = "urn:brygga:canonical:1"
_C = f"{{{CANONICAL_NS}}}"


def canonical_xml(records: Iterable[Any], record_name: str, id_of: Callable[[Any], str]) -> etree._Element:
    """Brygga records as a neutral XML document, the input of XSLT writer mappings:
    ``<records><record id=".."><field>value</field>...</record></records>`` (lists repeat)."""
    root = etree.Element(_C + "records", nsmap={None: CANONICAL_NS})
    for rec in records:
        r = etree.SubElement(root, _C + record_name, id=id_of(rec))
        _fill(r, dataclasses.asdict(rec) if dataclasses.is_dataclass(rec) and not isinstance(rec, type) else dict(rec))
    return root


def _fill(parent: etree._Element, values: dict[str, Any]) -> None:
    for k, v in values.items():
        for item in v if isinstance(v, (list, tuple)) else [v]:
            if item is None:
                continue
            child = etree.SubElement(parent, _C + k)
            if isinstance(item, dict):
                _fill(child, item)
            elif isinstance(item, bool):
                child.text = "true" if item else "false"
            else:
                child.text = str(item)


class XsltMapping(Mapping):
    """A writer mapping given as an XSLT 1.0 stylesheet over the canonical XML.

    Found by file name ``<system>.<message>.v<N>.xsl`` under ``mappings/`` (or a plug-in
    package). Attributes on the stylesheet root (``xmlns:brygga="urn:brygga:mapping"``) declare
    the output schema (``brygga:schema="nya/nya-1.xsd"``), the output record element
    (``brygga:record="{urn:brygga:nya:1}Offer"``), the canonical record name
    (``brygga:canonical="offer"``) and the field that identifies a record (``brygga:id="offer_id"``).
    ``write(records, **params)`` passes keyword params to the stylesheet as ``xsl:param``s.
    Stylesheets get no file or network access.
    """

    def __init__(self, path: Path):
        self.path = path
        system, message, v = path.name[: -len(".xsl")].split(".")
        self.key = MappingKey(system, message, int(v.lstrip("v")))
        doc = etree.parse(str(path), etree.XMLParser(no_network=True, resolve_entities=False))
        root = doc.getroot()
        self.schema = root.get("{urn:brygga:mapping}schema")
        self.record_tag = root.get("{urn:brygga:mapping}record")
        self.canonical_name = root.get("{urn:brygga:mapping}canonical", "record")
        self.id_field = root.get("{urn:brygga:mapping}id", "id")
        self.description = (root.get("{urn:brygga:mapping}description") or "").strip()
        self._xslt = etree.XSLT(doc, access_control=etree.XSLTAccessControl.DENY_ALL)

    def write(self, records: Iterable[Any], **params: str) -> tuple[bytes, list[RecordError]]:
        records = list(records)
        def id_of(r: Any) -> str:
            return str(getattr(r, self.id_field))

        ids = [id_of(r) for r in records]
        result = self._xslt(canonical_xml(records, self.canonical_name, id_of),
                            **{k: etree.XSLT.strparam(v) for k, v in params.items()})
        doc = result.getroot()
        errors: list[RecordError] = []
        if self.schema and self.record_tag:
            errors = validate_records(doc, self.xsd(), self.record_tag, ids)
        return etree.tostring(doc, encoding="UTF-8"), errors
