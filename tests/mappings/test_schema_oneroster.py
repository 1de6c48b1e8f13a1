"""schema.oneroster.v2: the schedule export's objects as OneRoster 1.2 CSV packages, kept to the
1.2 binding's rules ``check`` applies (docs/contracts/schema.md names each rule's source)."""

import csv
import io
import zipfile

from mappings import registry
from mappings.schema import oneroster
from tests.mappings.schedule_changes import changes

M = registry.get("schema", "oneroster", 2)


def _files(package: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        return {n: list(csv.DictReader(io.StringIO(z.read(n).decode()))) for n in z.namelist()}


def test_a_delta_package_keeps_the_rules_and_a_protected_student_has_no_name():
    package, errors = M.write(changes(), request_id="r1")
    assert errors == [] and oneroster.check(package) == []
    files = _files(package)
    users = {u["sourcedId"]: u for u in files["users.csv"]}
    assert (users["s3"]["givenName"], users["s3"]["familyName"]) == oneroster.PROTECTED_NAME
    assert users["s3"]["email"] == "" and users["s1"]["email"] == "anna@student.example.se"
    assert all(u["username"] == uid for uid, u in users.items())  # required in 1.2: the Ladok UID
    roles = {r["userSourcedId"]: r for r in files["roles.csv"]}
    assert set(roles) == set(users) and {(r["roleType"], r["role"], r["orgSourcedId"]) for r in roles.values()} == {
        ("primary", "student", oneroster.SCHOOL)}


def test_the_manifest_lists_every_file_of_the_1_2_binding():
    package, _ = M.write(changes(), request_id="r1")
    manifest = {r["propertyName"]: r["value"] for r in _files(package)["manifest.csv"]}
    files = {k.removeprefix("file."): v for k, v in manifest.items() if k.startswith("file.")}
    assert len(files) == 21 and set(files) == set(oneroster.FILES)  # 21 files: 13 of 1.1 and 8 new in 1.2
    assert {k for k, v in files.items() if v == "delta"} == {"orgs", "academicSessions", "courses", "classes",
                                                              "users", "roles", "enrollments"}
    assert files["userProfiles"] == files["scoreScales"] == files["lineItemScoreScales"] == "absent"
    assert manifest["source.systemCode"] == oneroster.SYSTEM_CODE  # the same on every package


def test_a_bulk_package_keeps_the_rules_and_its_references():
    package, _ = M.write(changes(), request_id="r1", mode="bulk")
    assert oneroster.check(package) == []
    assert {r["status"] for rows in _files(package).values() for r in rows if "status" in r} <= {""}


def test_a_deleted_enrollment_and_user_say_what_brygga_can_say_of_them():
    ended = [{**c, "op": "delete", "fields": {}} for c in changes() if c["kind"] in ("membership", "student")]
    package, _ = M.write(ended, request_id="r1")
    assert oneroster.check(package) == []
    files = _files(package)
    e = files["enrollments.csv"][0]
    assert e["status"] == "tobedeleted" and e["classSourcedId"] and e["userSourcedId"] and e["role"] == "student"
    assert {u["username"] for u in files["users.csv"]} == {"s1", "s2", "s3"}


def test_check_finds_a_broken_package():
    package, _ = M.write(changes(), request_id="r1")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(out, "w") as dst:
        for n in src.namelist():
            if n != "roles.csv":
                dst.writestr(n, src.read(n))
    problems = oneroster.check(out.getvalue())
    assert any("roles.csv is missing" in p for p in problems) and any("has no row in roles.csv" in p for p in problems)
