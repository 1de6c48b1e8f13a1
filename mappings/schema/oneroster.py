"""schema.oneroster.v1: the schedule export's objects as a OneRoster 1.2 CSV package (a zip).

Files: ``manifest.csv``, ``orgs.csv`` (the university and its organisation units),
``academicSessions.csv`` (the terms), ``courses.csv`` (one per utbildningskod), ``classes.csv``
(one per instance), ``users.csv`` (students), ``enrollments.csv`` (memberships). A batch is a
**delta** package: changed rows ``active``, ended ones ``tobedeleted`` (sourcedId, status and
dateLastModified only). ``write(..., mode="bulk")`` writes a bulk package (every row current,
status and dateLastModified empty); the export sends deltas only (a package per 10,000 rows), a
bulk package from the store's current state is left for later. A protected student's row carries the sourcedId and
placeholder names only (OneRoster requires givenName/familyName), never a name or an e-mail.
``check(zip)`` applies the OneRoster CSV rules Brygga relies on.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from typing import Any

from mappings.base import Mapping, MappingKey, RecordError
from mappings.registry import mapping

SCHOOL = "brygga-larosate"
PROTECTED_NAME = ("Skyddad", "identitet")  # placeholders, not the person's name
HEADERS = {
    "orgs.csv": ["sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"],
    "academicSessions.csv": ["sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate",
                             "parentSourcedId", "schoolYear"],
    "courses.csv": ["sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode", "grades",
                    "orgSourcedId", "subjects", "subjectCodes"],
    "classes.csv": ["sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId", "classCode",
                    "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes", "periods"],
    "users.csv": ["sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds", "givenName",
                  "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds", "grades",
                  "password", "userMasterIdentifier", "resourceSourcedIds", "preferredGivenName",
                  "preferredMiddleName", "preferredFamilyName", "primaryOrgSourcedId", "pronouns"],
    "enrollments.csv": ["sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
                        "userSourcedId", "role", "primary", "beginDate", "endDate"],
}
FILES = ("academicSessions", "categories", "classes", "classResources", "courses", "courseResources",
         "demographics", "enrollments", "lineItems", "orgs", "resources", "results", "users")
REQUIRED = {"orgs.csv": ("name", "type"), "academicSessions.csv": ("title", "type", "startDate", "endDate", "schoolYear"),
            "courses.csv": ("title", "orgSourcedId"), "classes.csv": ("title", "courseSourcedId", "classType",
                                                                      "schoolSourcedId", "termSourcedIds"),
            "users.csv": ("enabledUser", "givenName", "familyName"),
            "enrollments.csv": ("classSourcedId", "schoolSourcedId", "userSourcedId", "role")}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z")


def _term(period: str | None) -> tuple[str, str, str, str] | None:
    """``HT2027`` -> (sourcedId, title, start, end) of the academicSession (type term)."""
    if not period or not re.fullmatch(r"(HT|VT)\d{4}", period):
        return None
    y = int(period[2:])
    start, end = (f"{y}-07-01", f"{y + 1}-01-31") if period.startswith("HT") else (f"{y}-02-01", f"{y}-06-30")
    return f"term:{period}", period, start, end


@mapping
class OneRosterV1(Mapping):
    key = MappingKey("schema", "oneroster", 1)
    description = "schedule objects -> OneRoster 1.2 CSV zip (manifest, orgs, academicSessions, courses, classes, users, enrollments)"
    media_type = "application/zip"

    def write(self, changes: list[dict[str, Any]], *, request_id: str, mode: str = "delta",
              now: dt.datetime | None = None) -> tuple[bytes, list[RecordError]]:
        if mode not in ("delta", "bulk"):
            raise ValueError("mode is delta or bulk")
        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        rows: dict[str, dict[str, dict[str, str]]] = {name: {} for name in HEADERS}
        errors: list[RecordError] = []

        def put(file: str, sid: str, status: str, **values: Any) -> None:
            row = {h: "" for h in HEADERS[file]}
            row.update({k: "" if v is None else str(v) for k, v in values.items()})
            row["sourcedId"] = sid
            row["status"], row["dateLastModified"] = ("", "") if mode == "bulk" else (status, stamp)
            rows[file][sid] = row

        for c in changes:
            f, ext, gone = c["fields"], c["ext_id"], c["op"] != "upsert" or not c["active"]
            status = "tobedeleted" if gone else "active"
            if mode == "bulk" and gone:
                continue  # a bulk package holds what is current
            kind = c["kind"]
            if kind == "instance":
                if gone and not f:
                    put("classes.csv", ext, status)
                    continue
                term = _term(f.get("period"))
                if term is None or not f.get("kod"):
                    errors.append(RecordError(f"instance:{ext}", "period" if term is None else "kod",
                                              "a term (HT/VT + year) and a course code are required", "class"))
                    continue
                org = f"org:{f['organisation']}" if f.get("organisation") else SCHOOL
                put("orgs.csv", SCHOOL, "active", name="Lärosätet", type="school", identifier=SCHOOL)
                if org != SCHOOL:
                    put("orgs.csv", org, "active", name=f["organisation"], type="department",
                        identifier=f["organisation"], parentSourcedId=SCHOOL)
                put("academicSessions.csv", term[0], "active", title=term[1], type="term", startDate=term[2],
                    endDate=term[3], schoolYear=term[3][:4])
                put("courses.csv", f"course:{f['kod']}", "active", title=f.get("namn_sv") or f["kod"],
                    courseCode=f["kod"], orgSourcedId=org)
                put("classes.csv", ext, status, title=f.get("namn_sv") or f["kod"], courseSourcedId=f"course:{f['kod']}",
                    classCode=f.get("tillfalleskod"), classType="scheduled", location=f.get("studieort"),
                    schoolSourcedId=SCHOOL, termSourcedIds=term[0])
            elif kind == "student":
                if gone:
                    put("users.csv", ext, status)
                    continue
                protected = bool(f.get("skyddad"))
                given, family = PROTECTED_NAME if protected else (f.get("fornamn"), f.get("efternamn"))
                put("users.csv", ext, status, enabledUser="true", givenName=given, familyName=family,
                    email=None if protected else f.get("epost"), primaryOrgSourcedId=SCHOOL,
                    userMasterIdentifier=ext)
            elif kind == "membership":
                if gone:
                    put("enrollments.csv", ext, status)
                    continue
                put("enrollments.csv", ext, status, classSourcedId=ext.partition(":")[0], schoolSourcedId=SCHOOL,
                    userSourcedId=f.get("student"), role="student", primary="false")
            # groups: OneRoster's class is the instance's group; nothing of its own
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            present = {n for n, r in rows.items() if r}
            manifest = [("manifest.version", "1.0"), ("oneroster.version", "1.2")]
            manifest += [(f"file.{n}", mode if f"{n}.csv" in present else "absent") for n in FILES]
            manifest += [("source.systemName", "Brygga"), ("source.systemCode", request_id)]
            z.writestr("manifest.csv", _csv(["propertyName", "value"], [dict(zip(["propertyName", "value"], m, strict=True))
                                                                       for m in manifest]))
            for name in sorted(present):
                z.writestr(name, _csv(HEADERS[name], list(rows[name].values())))
        return buf.getvalue(), errors

    def read_results(self, body: bytes) -> dict[str, tuple[str, str | None]]:
        return {}  # a file delivery has no per-object answer: what was written is delivered


def _csv(header: list[str], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, header, lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def check(package: bytes) -> list[str]:
    """The OneRoster 1.2 CSV rules a package must keep (empty list: it keeps them): the manifest
    names every file present as bulk/delta and the others absent; each file has exactly its
    header; sourcedIds are present and unique; status is empty in bulk, active/tobedeleted in delta
    with an ISO 8601 UTC dateLastModified; required columns of active rows are filled; dates are
    YYYY-MM-DD; in a bulk package every reference points to a row in the package."""
    problems: list[str] = []
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        names = set(z.namelist())
        if "manifest.csv" not in names:
            return ["manifest.csv missing"]
        manifest = {r["propertyName"]: r["value"] for r in csv.DictReader(io.StringIO(z.read("manifest.csv").decode()))}
        if manifest.get("oneroster.version") != "1.2" or manifest.get("manifest.version") != "1.0":
            problems.append("manifest: manifest.version 1.0 and oneroster.version 1.2 required")
        ids: dict[str, set[str]] = {}
        data: dict[str, list[dict[str, str]]] = {}
        for n in FILES:
            mode = manifest.get(f"file.{n}")
            file = f"{n}.csv"
            if mode not in ("bulk", "delta", "absent"):
                problems.append(f"manifest: file.{n} is {mode!r}")
            if (mode == "absent") == (file in names):
                problems.append(f"manifest: file.{n} is {mode} but {file} is {'present' if file in names else 'missing'}")
            if file not in names:
                continue
            text = z.read(file).decode("utf-8")
            reader = csv.DictReader(io.StringIO(text))
            if file in HEADERS and reader.fieldnames != HEADERS[file]:
                problems.append(f"{file}: header is not the OneRoster 1.2 header")
                continue
            rows = data[file] = list(reader)
            seen = ids[file] = set()
            for i, r in enumerate(rows, 2):
                where = f"{file} line {i}"
                if not r["sourcedId"] or r["sourcedId"] in seen:
                    problems.append(f"{where}: sourcedId empty or repeated")
                seen.add(r["sourcedId"])
                if mode == "bulk" and (r["status"] or r["dateLastModified"]):
                    problems.append(f"{where}: status and dateLastModified are empty in a bulk file")
                if mode == "delta" and (r["status"] not in ("active", "tobedeleted") or not _STAMP.fullmatch(r["dateLastModified"])):
                    problems.append(f"{where}: a delta row has status active/tobedeleted and a UTC dateLastModified")
                if r["status"] != "tobedeleted":
                    for col in REQUIRED.get(file, ()):
                        if not r[col]:
                            problems.append(f"{where}: {col} is required")
                for col in ("startDate", "endDate", "beginDate"):
                    if r.get(col) and not _DATE.fullmatch(r[col]):
                        problems.append(f"{where}: {col} is not YYYY-MM-DD")
        if all(manifest.get(f"file.{n}") in ("bulk", "absent") for n in FILES):
            refs = [("classes.csv", "courseSourcedId", "courses.csv"), ("classes.csv", "termSourcedIds", "academicSessions.csv"),
                    ("classes.csv", "schoolSourcedId", "orgs.csv"), ("courses.csv", "orgSourcedId", "orgs.csv"),
                    ("enrollments.csv", "classSourcedId", "classes.csv"), ("enrollments.csv", "userSourcedId", "users.csv")]
            for file, col, target in refs:
                for r in data.get(file, []):
                    if r[col] and r[col] not in ids.get(target, set()):
                        problems.append(f"{file}: {col} {r[col]} is not in {target}")
    return problems
