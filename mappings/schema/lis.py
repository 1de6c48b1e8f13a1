"""schema.lis.v2: the schedule export's objects as IMS LIS 2.0 records, one per message, as the
Ladok-LIS adapter delivers them (``schemas/schema/lis2/``: the record outlines of KTH's public
consumer fixtures; docs/contracts/schema.md).

* an instance → ``courseOfferingRecord`` (sourcedId: the instance's Ladok UID);
* a student → ``personRecord`` (sourcedId: the student's Ladok UID; a protected student is the
  sourcedId and the extension only — no name, no e-mail);
* a membership → ``membershipRecord`` in the course offering (``membershipIdType``
  courseOffering, sourcedId: the student's UID followed by the instance's, as the Ladok-LIS adapter
  forms it), role ``Learner`` with ``status`` Active / Inactive and the extension fields
  ``Admitted`` and ``Registered``;
* a student group has no record of its own (the membership's collection is the course offering).

LIS has no delete: an ended membership, a cancelled instance and a student in no group go out
``Inactive``. Every record carries the extension field ``OriginEvent`` (``LADOK.AddAdmission`` /
``LADOK.AddRegistration`` where the record is what those events make; ``BRYGGA.*`` where Brygga
sends a state that no one Ladok event names) — also the message's application property, beside
``RecordType``. Consumers must be idempotent: a record may come twice (as from the real adapter).
Each record is validated against its XSD when it is planned; one that breaks it is refused.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from brygga import xmlsafe
from brygga.paths import SCHEMAS
from mappings.base import MappingKey
from mappings.registry import mapping
from mappings.schema.base import Refused, ScheduleFormat, check

CMS = "http://www.imsglobal.org/services/lis/cmsv1p0/wsdl11/sync/imscms_v1p0"
PMS = "http://www.imsglobal.org/services/lis/pms2p0/wsdl11/sync/imspms_v2p0"
MMS = "http://www.imsglobal.org/services/lis/mms2p0/wsdl11/sync/imsmms_v2p0"
WRAPPER = "urn:brygga:schema:lis:2"
RECORD = {"instance": ("courseOfferingRecord", CMS, "imscms_v1p0.xsd"),
          "student": ("personRecord", PMS, "imspms_v2p0.xsd"),
          "membership": ("membershipRecord", MMS, "imsmms_v2p0.xsd")}
COUNTS = (("Admitted", "antagna"), ("Expected", "forvantade"), ("Registered", "registrerade"),
          ("Withdrawn", "aterbud"), ("Discontinued", "avbrott"))


def _sub(parent: etree._Element, ns: str, name: str, value: Any = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{name}")
    if value is not None:
        el.text = str(value)
    return el


def _extension(parent: etree._Element, ns: str, fields: list[tuple[str, str, Any]]) -> None:
    ext = _sub(parent, ns, "extension")
    for name, typ, value in fields:
        if value is None or value == "":
            continue
        f = _sub(ext, ns, "extensionField")
        _sub(f, ns, "fieldName", name)
        _sub(f, ns, "fieldType", typ)
        _sub(f, ns, "fieldValue", ("true" if value else "false") if typ == "Boolean" else value)


def sourced_id(change: dict[str, Any]) -> str:
    if change["kind"] == "membership":
        instance, _, student = change["ext_id"].partition(":")
        return student + instance
    return str(change["ext_id"])


def origin(change: dict[str, Any]) -> str:
    live = change["op"] == "upsert" and change["active"]
    if change["kind"] == "membership" and live:
        return "LADOK.AddRegistration" if change["fields"].get("roll") == "registrerad" else "LADOK.AddAdmission"
    return {"membership": "BRYGGA.EndMembership", "instance": "BRYGGA.SyncCourseOffering",
            "student": "BRYGGA.SyncPerson"}[change["kind"]]


@mapping
class LisV2(ScheduleFormat):
    key = MappingKey("schema", "lis", 2)
    description = "schedule objects -> IMS LIS 2.0 courseOffering/person/membership records, one per message (XSD-validated)"
    media_type = "application/xml"

    def encode(self, change: dict[str, Any], *, organizations: tuple[str, ...] = (), stamp: str = "") -> Any:
        if change["kind"] not in RECORD:
            return None  # a student group: the course offering is the collection
        check(change)
        tag, ns, xsd = RECORD[change["kind"]]
        rec = etree.Element(f"{{{ns}}}{tag}", nsmap={None: ns})
        guid = _sub(rec, ns, "sourcedGUID")
        _sub(guid, ns, "sourcedId", sourced_id(change))
        status = "Active" if change["op"] == "upsert" and change["active"] else "Inactive"
        why = origin(change)
        getattr(self, "_" + change["kind"])(rec, ns, change, status, why)
        schema = xmlsafe.load_schema(SCHEMAS / "schema" / "lis2" / xsd)
        if not schema.validate(rec):
            e = schema.error_log.last_error
            raise Refused(e.path.rsplit("/", 1)[-1] if e and e.path else tag, e.message if e else "invalid")
        return {"type": tag, "id": sourced_id(change), "origin": why,
                "xml": etree.tostring(rec, encoding="unicode")}

    @staticmethod
    def _instance(rec: etree._Element, ns: str, c: dict[str, Any], status: str, why: str) -> None:
        f = c["fields"]  # empty for a deactivation: the sourcedId and the status only
        o = _sub(rec, ns, "courseOffering")
        if f.get("tillfalleskod"):
            _sub(o, ns, "label", f["tillfalleskod"])
        if f.get("kod"):
            _sub(o, ns, "title", f["kod"])
        if f.get("namn_sv") or f.get("namn_en"):
            d = _sub(o, ns, "catalogDescription")
            if f.get("namn_sv"):
                _sub(d, ns, "shortDescription", f["namn_sv"])
            if f.get("namn_en"):
                _sub(d, ns, "longDescription", f["namn_en"])
        if f.get("omfattning"):
            _sub(o, ns, "defaultCredits", f["omfattning"])
        if f.get("period"):
            _sub(o, ns, "academicSession", f["period"])
        if f.get("organisation"):
            _sub(_sub(o, ns, "org"), ns, "orgUnit", f["organisation"])
        if f.get("start") or f.get("slut"):
            tf = _sub(o, ns, "timeFrame")
            if f.get("start"):
                _sub(tf, ns, "begin", f["start"][:10])
            if f.get("slut"):
                _sub(tf, ns, "end", f["slut"][:10])
        fields: list[tuple[str, str, Any]] = [
            ("OriginEvent", "String", why), ("Status", "String", status),
            ("CourseTitle", "String", f.get("namn_sv")), ("CourseTitleEnglish", "String", f.get("namn_en")),
            ("TempoCode", "String", f.get("studietakt")), ("TeachingTimeCode", "String", f.get("undervisningstid")),
            ("Location", "String", f.get("studieort")), ("TeachingLanguage", "String", f.get("undervisningssprak")),
            ("education.type", "String", f.get("typ"))]
        if f:
            fields += [(f"Count{tag}", "Integer", f.get(f"antal_{name}", 0)) for tag, name in COUNTS]
        fields += [("CoursePackagePart", "String", part) for part in f.get("kurstillfallen") or ()]
        _extension(o, ns, fields)

    @staticmethod
    def _student(rec: etree._Element, ns: str, c: dict[str, Any], status: str, why: str) -> None:
        f = c["fields"]
        p = _sub(rec, ns, "person")
        protected = bool(f.get("skyddad"))
        if not protected and (f.get("fornamn") or f.get("efternamn")):
            name = _sub(p, ns, "name")
            _sub(name, ns, "nameType", "FullName")
            for part, value in (("First", f.get("fornamn")), ("Last", f.get("efternamn"))):
                if value:
                    pn = _sub(name, ns, "partName")
                    _sub(pn, ns, "namePartType", part)
                    _sub(pn, ns, "namePartValue", value)
        if not protected and f.get("epost"):
            ci = _sub(p, ns, "contactinfo")
            _sub(ci, ns, "contactinfoType", "EmailPrimary")
            _sub(ci, ns, "contactinfoValue", f["epost"])
        _extension(p, ns, [("OriginEvent", "String", why), ("Status", "String", status),
                           ("ProtectedIdentity", "Boolean", True if protected else None)])

    @staticmethod
    def _membership(rec: etree._Element, ns: str, c: dict[str, Any], status: str, why: str) -> None:
        f, ext = c["fields"], c["ext_id"]
        instance, _, student = ext.partition(":")
        m = _sub(rec, ns, "membership")
        _sub(m, ns, "collectionSourcedId", instance)
        _sub(m, ns, "membershipIdType", "courseOffering")
        member = _sub(m, ns, "member")
        _sub(member, ns, "personSourcedId", f.get("student") or student)
        role = _sub(member, ns, "role")
        _sub(role, ns, "roleType", "Learner")
        _sub(role, ns, "status", status)
        live = status == "Active"
        _extension(role, ns, [("Admitted", "Boolean", live), ("Registered", "Boolean", live and f.get("roll") == "registrerad"),
                              ("OriginEvent", "String", why)])

    def body(self, lane: str, items: list[Any], *, request_id: str) -> bytes:
        """The HTTP form: one ``records`` document of the batch's records."""
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<records xmlns="{WRAPPER}" requestId="{request_id}">'
                + "".join(i["xml"] for i in items) + "</records>").encode()

    def read_results(self, body: bytes) -> dict[str, tuple[str, str | None]]:
        """The HTTP form's 207 answer, per record: {"<type>:<sourcedId>": (outcome, message)}
        (the adapter turns the record ids back into Brygga's keys)."""
        import json

        out: dict[str, tuple[str, str | None]] = {}
        for r in json.loads(body).get("results") or []:
            status = int(r.get("status") or 0)
            out[f"{r.get('type')}:{r.get('sourcedId')}"] = (
                "ok" if 200 <= status < 300 else "failed" if status >= 500 or not status else "rejected",
                str(r.get("message") or "")[:500] or None)
        return out
