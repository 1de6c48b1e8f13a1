"""schema.timeedit.v2: the schedule export's objects as TimeEdit REST v1 objects, and its answers."""

import json

from brygga.records import FIELDS, content_hash
from mappings import registry
from mappings.schema.base import Refused
from tests.mappings.schedule_changes import changes

M = registry.get("schema", "timeedit", 2)


def _encode(c, orgs=("INST1",)):
    return M.lane(c), json.loads(M.encode(c, organizations=orgs))


def test_an_upsert_names_every_field_of_its_type_as_value_arrays_and_its_organizations():
    for c in changes():
        lane, o = _encode(c)
        assert lane == "upsert" and o["extId"] == c["ext_id"] and o["organizations"] == ["INST1"]
        assert [f["fieldId"] for f in o["fields"]] == [f"{o['typeId']}.{n}" for n in FIELDS[c["kind"]]]
        assert all(isinstance(f["values"], list) and all(isinstance(v, str) for v in f["values"]) for f in o["fields"])
    protected = next(json.loads(M.encode(c)) for c in changes() if c["ext_id"] == "s3")
    assert {f["fieldId"]: f["values"] for f in protected["fields"]} == {
        "student.fornamn": [], "student.efternamn": [], "student.epost": [], "student.skyddad": ["true"]}


def test_a_delete_goes_by_its_own_lane_and_a_deactivation_names_no_field():
    member = next(c for c in changes() if c["kind"] == "membership")
    assert _encode({**member, "op": "delete"}) == ("delete", {"typeId": "medlemskap", "extId": member["ext_id"]})
    instance = next(c for c in changes() if c["kind"] == "instance")
    _, o = _encode({**instance, "op": "deactivate", "fields": {}, "active": False})
    assert o["fields"] == [] and o["active"] is False


def test_the_bodies_put_importmode_in_the_body_and_deletes_apart():
    ups = [M.encode(c) for c in changes()]
    body = json.loads(M.body("upsert", ups, request_id="r1"))
    assert body["importMode"] == "PATCH" and body["idFormat"] == "EXTERNAL"
    assert body["objects"] == [json.loads(u) for u in ups]
    member = next(c for c in changes() if c["kind"] == "membership")
    gone = json.loads(M.body("delete", [M.encode({**member, "ext_id": "x", "op": "delete"})], request_id="r1"))
    assert "importMode" not in gone and gone["objects"] == [{"typeId": "medlemskap", "extId": "x"}]


def test_text_is_escaped_as_json_and_kept_as_written():
    student = next(c for c in changes() if c["kind"] == "student" and c["ext_id"] == "s1")
    tricky = 'Åsa "Q" \\ Ö\u00e9'
    o = json.loads(M.encode({**student, "fields": {**student["fields"], "fornamn": tricky}}))
    assert {f["fieldId"]: f["values"] for f in o["fields"]}["student.fornamn"] == [tricky]


def test_a_value_the_system_would_refuse_is_refused_by_name():
    instance = next(c for c in changes() if c["kind"] == "instance")
    try:
        M.encode({**instance, "fields": {**instance["fields"], "namn_sv": "x" * 300}})
    except Refused as e:
        assert e.field == "namn_sv"
    else:
        raise AssertionError("a 300-character name was not refused")


def test_the_207_answer_per_object():
    body = json.dumps({"results": [
        {"typeId": "student", "extId": "s1", "status": 200}, {"typeId": "medlemskap", "extId": "m1", "status": 409,
                                                              "message": "in use"},
        {"typeId": "studentgrupp", "extId": "g1", "status": 422, "message": "bad"},
        {"typeId": "utbildningstillfalle", "extId": "i1", "status": 503},
        {"typeId": "medlemskap", "extId": "m2", "status": 404}]}).encode()
    assert M.read_results(body) == {"student:s1": ("ok", None), "membership:m1": ("in-use", "in use"),
                                    "group:g1": ("rejected", "bad"), "instance:i1": ("failed", None),
                                    "membership:m2": ("ok", None)}


def test_what_find_returns_hashes_as_what_was_sent():
    for c in changes():
        o = json.loads(M.encode(c))
        page = json.dumps({"results": [{"id": o["extId"], "typeId": o["typeId"], "active": o["active"],
                                        "organizations": ["INST1"], "fields": o["fields"]}],
                           "page": 1, "totalPages": 1}).encode()
        pages, held = M.read_objects(page)
        assert pages == 1 and held == {f"{c['kind']}:{c['ext_id']}": (
            content_hash(c["kind"], c["fields"], c["active"]), c["active"])}
