"""schema.lis.v1: the schedule export's objects as IMS LIS records (``schemas/schema/lis-1.xsd``).

One ``records`` document per batch: a courseOfferingRecord per instance, a personRecord per
student, a groupRecord per student group, a membershipRecord per member, each keyed by its
sourcedId. An ended membership or student is sent with status Inactive (LIS has no delete); a
cancelled instance and its group too. Validated against the XSD; a record that breaks it is
left out and reported, the rest of the document goes.
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from mappings.base import Mapping, MappingKey, RecordError, validate_records
from mappings.registry import mapping

NS = "urn:brygga:schema:lis:1"
L = f"{{{NS}}}"
RECORD = {"instance": "courseOfferingRecord", "student": "personRecord", "group": "groupRecord",
          "membership": "membershipRecord"}
TAGS = tuple(L + t for t in ("courseOfferingRecord", "personRecord", "groupRecord", "membershipRecord"))
ORDER = {t: i for i, t in enumerate(TAGS)}
KIND_OF = {v: k for k, v in RECORD.items()}
COUNTS = (("admitted", "antagna"), ("expected", "forvantade"), ("registered", "registrerade"),
          ("withdrawn", "aterbud"), ("discontinued", "avbrott"))


def _sub(parent: etree._Element, name: str, value: Any, **attrs: str) -> None:
    if value is None or value == "":
        return
    el = etree.SubElement(parent, L + name, **attrs)
    el.text = str(value)


def _status(c: dict[str, Any]) -> str:
    return "Active" if c["op"] == "upsert" and c["active"] else "Inactive"


@mapping
class LisV1(Mapping):
    key = MappingKey("schema", "lis", 1)
    schema = "schema/lis-1.xsd"
    description = "schedule objects -> IMS LIS CourseOffering/Person/Group/Membership records (XSD-validated)"
    media_type = "application/xml"

    def write(self, changes: list[dict[str, Any]], *, request_id: str) -> tuple[bytes, list[RecordError]]:
        root = etree.Element(L + "records", nsmap={None: NS}, requestId=request_id)
        ordered = sorted(changes, key=lambda c: ORDER[L + RECORD[c["kind"]]])
        ids = []
        for c in ordered:
            rec = etree.SubElement(root, L + RECORD[c["kind"]])
            guid = etree.SubElement(rec, L + "sourcedGUID")
            _sub(guid, "sourcedId", c["ext_id"])
            getattr(self, "_" + c["kind"])(rec, c)
            ids.append(f"{c['kind']}:{c['ext_id']}")
        errors = validate_records(root, self.xsd(), TAGS, ids) if ids else []
        return etree.tostring(root, encoding="UTF-8", xml_declaration=True), errors

    @staticmethod
    def _instance(rec: etree._Element, c: dict[str, Any]) -> None:
        f = c["fields"]  # empty for a deactivation: sourcedId and status only
        o = etree.SubElement(rec, L + "courseOffering")
        _sub(o, "title", f.get("namn_sv"), language="sv")
        _sub(o, "title", f.get("namn_en"), language="en")
        _sub(o, "courseCode", f.get("kod"))
        _sub(o, "offeringCode", f.get("tillfalleskod"))
        _sub(o, "kind", {"kurs": "course", "program": "programme"}.get(f.get("typ", "")))
        _sub(o, "credits", f.get("omfattning"))
        if f.get("start") or f.get("slut"):
            tf = etree.SubElement(o, L + "timeFrame")
            _sub(tf, "begin", f.get("start"))
            _sub(tf, "end", f.get("slut"))
        _sub(o, "pace", f.get("studietakt"))
        _sub(o, "teachingTime", f.get("undervisningstid"))
        _sub(o, "location", f.get("studieort"))
        _sub(o, "language", f.get("undervisningssprak"))
        _sub(o, "orgUnit", f.get("organisation"))
        _sub(o, "status", _status(c))
        if f:
            n = etree.SubElement(o, L + "counts")
            for tag, name in COUNTS:
                _sub(n, tag, f.get(f"antal_{name}", 0))
        for part in f.get("kurstillfallen") or ():
            _sub(o, "courseOfferingPart", part)

    @staticmethod
    def _student(rec: etree._Element, c: dict[str, Any]) -> None:
        f = c["fields"]
        p = etree.SubElement(rec, L + "person")
        if not f.get("skyddad"):  # a protected person: the sourcedId and status only
            _sub(p, "givenName", f.get("fornamn"))
            _sub(p, "familyName", f.get("efternamn"))
            _sub(p, "email", f.get("epost"))
        _sub(p, "status", _status(c))

    @staticmethod
    def _group(rec: etree._Element, c: dict[str, Any]) -> None:
        f, ext = c["fields"], c["ext_id"]
        g = etree.SubElement(rec, L + "group")
        _sub(g, "description", f.get("namn") or "Studentgrupp")
        _sub(g, "courseOffering", f.get("tillfalle") or ext.removesuffix(":grupp"))
        _sub(g, "status", _status(c))

    @staticmethod
    def _membership(rec: etree._Element, c: dict[str, Any]) -> None:
        f, ext = c["fields"], c["ext_id"]
        instance, _, student = ext.partition(":")
        m = etree.SubElement(rec, L + "membership")
        _sub(m, "collection", f.get("grupp") or f"{instance}:grupp")
        _sub(m, "member", f.get("student") or student)
        _sub(m, "role", "Learner" if f.get("roll") == "registrerad" else "Admitted")
        _sub(m, "status", _status(c))

    def read_results(self, body: bytes) -> dict[str, tuple[str, str | None]]:
        doc = json.loads(body)
        out: dict[str, tuple[str, str | None]] = {}
        for r in doc.get("results") or []:
            status = int(r.get("status") or 0)
            out[f"{KIND_OF.get(r.get('type') + 'Record', r.get('type'))}:{r.get('extId')}"] = (
                "ok" if 200 <= status < 300 else "failed" if status >= 500 or not status else "rejected",
                str(r.get("message") or "")[:500] or None)
        return out
