"""schema.timeedit.v1: the schedule export's objects as TimeEdit-style upserts, and the 207 answer."""

import json

from brygga.records import FIELDS
from mappings import registry
from tests.mappings.schedule_changes import changes

M = registry.get("schema", "timeedit", 1)


def test_an_upsert_names_every_field_of_its_kind_and_a_delete_only_what_it_deletes():
    ups = changes()
    body, errors = M.write(ups + [{**ups[-1], "op": "delete"}], request_id="r1")
    assert errors == []
    objects = json.loads(body)["objects"]
    for c, o in zip(ups, objects, strict=False):
        assert set(o["fields"]) == set(FIELDS[c["kind"]]) and o["extId"] == c["ext_id"] and "operation" not in o
    assert objects[-1] == {"type": "medlemskap", "extId": ups[-1]["ext_id"], "operation": "delete"}
    protected = next(o for o in objects if o["type"] == "student" and o["extId"] == "s3")
    assert protected["fields"]["fornamn"] is None and protected["fields"]["epost"] is None


def test_a_value_the_system_would_refuse_is_left_out_and_named():
    ups = changes()
    instance = next(c for c in ups if c["kind"] == "instance")
    instance["fields"] = {**instance["fields"], "namn_sv": "x" * 300}
    body, errors = M.write(ups, request_id="r1")
    assert [(e.record_id, e.field) for e in errors] == [(f"instance:{instance['ext_id']}", "namn_sv")]
    assert all(o["extId"] != instance["ext_id"] or o["type"] != "utbildningstillfalle"
               for o in json.loads(body)["objects"])


def test_the_207_answer_per_object():
    body = json.dumps({"results": [
        {"type": "student", "extId": "s1", "status": 200}, {"type": "medlemskap", "extId": "m1", "status": 409,
                                                             "message": "in use"},
        {"type": "studentgrupp", "extId": "g1", "status": 422, "message": "bad"},
        {"type": "utbildningstillfalle", "extId": "i1", "status": 503}]}).encode()
    assert M.read_results(body) == {"student:s1": ("ok", None), "membership:m1": ("in-use", "in use"),
                                    "group:g1": ("rejected", "bad"), "instance:i1": ("failed", None)}
