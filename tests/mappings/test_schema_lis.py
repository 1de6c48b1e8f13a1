"""schema.lis.v1: the schedule export's objects as IMS LIS records, valid against lis-1.xsd."""

from lxml import etree

from brygga import xmlsafe
from mappings import registry
from tests.mappings.schedule_changes import changes

M = registry.get("schema", "lis", 1)
L = "{urn:brygga:schema:lis:1}"


def test_records_are_valid_and_an_ended_object_is_inactive():
    ups = changes()
    ended = {**next(c for c in ups if c["kind"] == "membership"), "op": "delete"}
    body, errors = M.write(ups + [ended], request_id="r1")
    assert errors == []
    root = xmlsafe.fromstring(body)
    M.xsd().assertValid(root)
    tags = [etree.QName(el).localname for el in root]
    assert tags[0] == "courseOfferingRecord" and tags.count("personRecord") == 3
    statuses = [el.findtext(f".//{L}status") for el in root.iter(L + "membershipRecord")]
    assert statuses[-1] == "Inactive" and set(statuses[:-1]) == {"Active"}


def test_a_record_breaking_the_xsd_is_left_out_and_the_rest_go():
    ups = changes()
    bad = next(c for c in ups if c["kind"] == "student" and c["ext_id"] == "s1")
    bad["fields"] = {**bad["fields"], "efternamn": "x" * 300}  # lis:Text is at most 255 characters
    body, errors = M.write(ups, request_id="r1")
    assert [e.record_id for e in errors] == ["student:s1"]
    root = xmlsafe.fromstring(body)
    assert len(list(root.iter(L + "personRecord"))) == 2
