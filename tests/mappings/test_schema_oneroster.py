"""schema.oneroster.v1: the schedule export's objects as a OneRoster CSV package, kept to the rules
``check`` applies."""

import csv
import io
import zipfile

from mappings import registry
from mappings.schema import oneroster
from tests.mappings.schedule_changes import changes

M = registry.get("schema", "oneroster", 1)


def _files(package: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        return {n: list(csv.DictReader(io.StringIO(z.read(n).decode()))) for n in z.namelist()}


def test_a_delta_package_keeps_the_rules_and_a_protected_student_has_no_name():
    package, errors = M.write(changes(), request_id="r1")
    assert errors == [] and oneroster.check(package) == []
    users = {u["sourcedId"]: u for u in _files(package)["users.csv"]}
    assert (users["s3"]["givenName"], users["s3"]["familyName"]) == oneroster.PROTECTED_NAME
    assert users["s3"]["email"] == "" and users["s1"]["email"] == "anna@student.example.se"


def test_a_bulk_package_keeps_the_rules_and_its_references():
    package, _ = M.write(changes(), request_id="r1", mode="bulk")
    assert oneroster.check(package) == []
    assert {r["status"] for rows in _files(package).values() for r in rows if "status" in r} <= {""}


def test_check_finds_a_broken_package():
    package, _ = M.write(changes(), request_id="r1")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(out, "w") as dst:
        for n in src.namelist():
            if n != "users.csv":
                dst.writestr(n, src.read(n))
    assert any("users.csv is missing" in p for p in oneroster.check(out.getvalue()))
