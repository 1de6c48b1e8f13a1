"""schema.lis.v2: the schedule export's objects as IMS LIS 2.0 records, one per message, each valid
against its XSD in schemas/schema/lis2/."""

import pytest
from lxml import etree

from brygga import xmlsafe
from brygga.paths import SCHEMAS
from mappings import registry
from mappings.schema.base import Refused
from tests.mappings.schedule_changes import COURSE, changes

M = registry.get("schema", "lis", 2)
XSD = {"courseOfferingRecord": "imscms_v1p0", "personRecord": "imspms_v2p0", "membershipRecord": "imsmms_v2p0"}


def _record(item):
    rec = xmlsafe.fromstring(item["xml"])
    xmlsafe.load_schema(SCHEMAS / "schema" / "lis2" / f"{XSD[item['type']]}.xsd").assertValid(rec)
    return rec


def _ext(rec):
    return {f.findtext("{*}fieldName"): f.findtext("{*}fieldValue") for f in rec.iter("{*}extensionField")}


def test_records_are_valid_and_a_group_has_none_of_its_own():
    items = {(c["kind"], c["ext_id"]): M.encode(c) for c in changes()}
    assert items[("group", f"{COURSE.uid}:grupp")] is None
    recs = {k: _record(i) for k, i in items.items() if i is not None}
    course = recs[("instance", COURSE.uid)]
    assert course.findtext(".//{*}title") == "TDA100" and course.findtext(".//{*}academicSession") == "HT2027"
    assert _ext(course)["Status"] == "Active" and _ext(course)["CountAdmitted"] == "3"
    member = recs[("membership", f"{COURSE.uid}:s1")]
    assert member.findtext("{*}sourcedGUID/{*}sourcedId") == "s1" + COURSE.uid  # student UID, then the instance's
    assert _ext(member) == {"Admitted": "true", "Registered": "true", "OriginEvent": "LADOK.AddRegistration"}
    assert items[("membership", f"{COURSE.uid}:s2")]["origin"] == "LADOK.AddAdmission"


def test_a_protected_person_is_the_sourced_id_and_the_mark_only():
    item = next(M.encode(c) for c in changes() if c["ext_id"] == "s3")
    rec = _record(item)
    assert rec.find(".//{*}name") is None and rec.find(".//{*}contactinfo") is None
    assert _ext(rec)["ProtectedIdentity"] == "true"


def test_an_ended_membership_is_inactive():
    member = next(c for c in changes() if c["kind"] == "membership")
    item = M.encode({**member, "op": "delete", "fields": {}})
    rec = _record(item)
    assert rec.findtext(".//{*}role/{*}status") == "Inactive" and item["origin"] == "BRYGGA.EndMembership"


def test_a_record_breaking_its_xsd_is_refused_by_field():
    instance = next(c for c in changes() if c["kind"] == "instance")
    with pytest.raises(Refused) as e:
        M.encode({**instance, "fields": {**instance["fields"], "omfattning": "7,5 hp"}})
    assert "defaultCredits" in e.value.field or "defaultCredits" in e.value.rule


def test_the_http_form_wraps_the_records():
    items = [i for i in (M.encode(c) for c in changes()) if i is not None]
    doc = xmlsafe.fromstring(M.body("upsert", items, request_id="r1"))
    xmlsafe.load_schema(SCHEMAS / "schema" / "lis2" / "records.xsd").assertValid(doc)
    assert doc.get("requestId") == "r1" and [etree.QName(r).localname for r in doc].count("personRecord") == 3
