"""schema.oneroster.v2: the schedule export's objects as OneRoster 1.2 CSV packages (zips).

Files: ``manifest.csv`` (every ``file.*`` of the 1.2 binding, ``absent`` where not sent),
``orgs.csv`` (the university and its organisation units), ``academicSessions.csv`` (the terms),
``courses.csv`` (one per utbildningskod), ``classes.csv`` (one per instance), ``users.csv``
(students: ``username`` is the Ladok UID, required in 1.2), ``roles.csv`` (each user's role at the
university: in 1.2 the role left ``users.csv``), ``enrollments.csv`` (memberships). The export
sends **delta** packages: changed rows ``active``, ended ones ``tobedeleted`` with what Brygga can
say of them (an enrollment's class, user and role; a user's username); ``write(mode="bulk")``
writes a bulk package. A protected student's row carries the placeholder names OneRoster requires
(``Skyddad`` / ``identitet``), never a name or an e-mail. ``check(zip)`` applies the 1.2 tables'
rules Brygga relies on (docs/contracts/schema.md names each rule's source).

A change is encoded once, when it is planned, into its rows (``[file, row]`` pairs, stamped with
the plan's time); a batch's rows make one package (a repeated sourcedId once, the latest row).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from typing import Any

from mappings.base import MappingKey, RecordError
from mappings.registry import mapping
from mappings.schema.base import Refused, ScheduleFormat
from mappings.schema.base import check as check_values

SCHOOL = "brygga-larosate"
SYSTEM_CODE = "brygga-ladok"  # the same on every package (consumers key a source on it)
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
    "roles.csv": ["sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role", "beginDate",
                  "endDate", "orgSourcedId", "userProfileSourcedId"],
    "enrollments.csv": ["sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
                        "userSourcedId", "role", "primary", "beginDate", "endDate"],
}
#: Every file of the 1.2 CSV binding's manifest (file.<name>), in its alphabetical order.
FILES = ("academicSessions", "categories", "classes", "classResources", "courses", "courseResources",
         "demographics", "enrollments", "lineItemLearningObjectiveIds", "lineItems", "lineItemScoreScales", "orgs",
         "resources", "resultLearningObjectiveIds", "results", "resultScoreScales", "roles", "scoreScales",
         "userProfiles", "userResources", "users")
REQUIRED = {"orgs.csv": ("name", "type"), "academicSessions.csv": ("title", "type", "startDate", "endDate", "schoolYear"),
            "courses.csv": ("title", "orgSourcedId"), "classes.csv": ("title", "courseSourcedId", "classType",
                                                                      "schoolSourcedId", "termSourcedIds"),
            "users.csv": ("enabledUser", "username", "givenName", "familyName"),
            "roles.csv": ("userSourcedId", "roleType", "role", "orgSourcedId"),
            "enrollments.csv": ("classSourcedId", "schoolSourcedId", "userSourcedId", "role")}
VOCABULARY = {("orgs.csv", "type"): ("department", "school", "district", "local", "state", "national"),
              ("academicSessions.csv", "type"): ("gradingPeriod", "semester", "schoolYear", "term"),
              ("classes.csv", "classType"): ("homeroom", "scheduled"),
              ("roles.csv", "roleType"): ("primary", "secondary"),
              ("enrollments.csv", "role"): ("administrator", "proctor", "student", "teacher", "guardian", "parent",
                                            "aide", "relative"),
              ("enrollments.csv", "primary"): ("true", "false"), ("users.csv", "enabledUser"): ("true", "false")}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z")


def stamp(now: dt.datetime | None = None) -> str:
    """A dateLastModified: ISO 8601 in UTC with milliseconds."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _term(period: str | None) -> tuple[str, str, str, str] | None:
    """``HT2027`` -> (sourcedId, title, start, end) of the academicSession (type term)."""
    if not period or not re.fullmatch(r"(HT|VT)\d{4}", period):
        return None
    y = int(period[2:])
    start, end = (f"{y}-07-01", f"{y + 1}-01-31") if period.startswith("HT") else (f"{y}-02-01", f"{y}-06-30")
    return f"term:{period}", period, start, end


def _row(file: str, sid: str, status: str, when: str, **values: Any) -> list[Any]:
    row = {k: "" if v is None else str(v) for k, v in values.items()}
    row.update(sourcedId=sid, status=status, dateLastModified=when)
    return [file, row]


def rows(change: dict[str, Any], when: str) -> list[list[Any]]:
    """The rows of one change, as a delta package carries them."""
    f, ext, kind = change["fields"], change["ext_id"], change["kind"]
    gone = change["op"] != "upsert" or not change["active"]
    status = "tobedeleted" if gone else "active"
    if kind == "instance":
        if gone and not f:
            return [_row("classes.csv", ext, status, when, schoolSourcedId=SCHOOL)]
        term = _term(f.get("period"))
        if term is None or not f.get("kod"):
            raise Refused("period" if term is None else "kod", "a term (HT/VT + year) and a course code are required")
        org = f"org:{f['organisation']}" if f.get("organisation") else SCHOOL
        out = [_row("orgs.csv", SCHOOL, "active", when, name="Lärosätet", type="school", identifier=SCHOOL)]
        if org != SCHOOL:
            out.append(_row("orgs.csv", org, "active", when, name=f["organisation"], type="department",
                            identifier=f["organisation"], parentSourcedId=SCHOOL))
        out += [_row("academicSessions.csv", term[0], "active", when, title=term[1], type="term", startDate=term[2],
                     endDate=term[3], schoolYear=term[3][:4]),
                _row("courses.csv", f"course:{f['kod']}", "active", when, title=f.get("namn_sv") or f["kod"],
                     courseCode=f["kod"], orgSourcedId=org),
                _row("classes.csv", ext, status, when, title=f.get("namn_sv") or f["kod"],
                     courseSourcedId=f"course:{f['kod']}", classCode=f.get("tillfalleskod"), classType="scheduled",
                     location=f.get("studieort"), schoolSourcedId=SCHOOL, termSourcedIds=term[0])]
        return out
    if kind == "student":
        role = _row("roles.csv", f"role:{ext}", status, when, userSourcedId=ext, roleType="primary", role="student",
                    orgSourcedId=SCHOOL)
        if gone:
            return [_row("users.csv", ext, status, when, enabledUser="false", username=ext, userMasterIdentifier=ext,
                         primaryOrgSourcedId=SCHOOL), role]
        protected = bool(f.get("skyddad"))
        given, family = PROTECTED_NAME if protected else (f.get("fornamn"), f.get("efternamn"))
        return [_row("users.csv", ext, status, when, enabledUser="true", username=ext, givenName=given,
                     familyName=family, email=None if protected else f.get("epost"), primaryOrgSourcedId=SCHOOL,
                     userMasterIdentifier=ext), role]
    if kind == "membership":
        instance, _, student = ext.partition(":")
        return [_row("enrollments.csv", ext, status, when, classSourcedId=instance, schoolSourcedId=SCHOOL,
                     userSourcedId=f.get("student") or student, role="student", primary="false")]
    return []  # a group: OneRoster's class is the instance's group; nothing of its own


def package(items: list[list[Any]], *, mode: str = "delta") -> bytes:
    """A zip of the rows (a sourcedId once per file, its latest row) with the 1.2 manifest; in a
    bulk package status and dateLastModified are empty and ended rows are left out."""
    files: dict[str, dict[str, dict[str, str]]] = {}
    for file, row in items:
        if mode == "bulk":
            if row["status"] == "tobedeleted":
                continue
            row = {**row, "status": "", "dateLastModified": ""}
        files.setdefault(file, {})[row["sourcedId"]] = row
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        manifest = [("manifest.version", "1.0"), ("oneroster.version", "1.2")]
        manifest += [(f"file.{n}", mode if f"{n}.csv" in files else "absent") for n in FILES]
        manifest += [("source.systemName", "Brygga"), ("source.systemCode", SYSTEM_CODE)]
        z.writestr("manifest.csv", _csv(["propertyName", "value"], [{"propertyName": k, "value": v} for k, v in manifest]))
        for name in sorted(files):
            header = HEADERS[name]
            z.writestr(name, _csv(header, [{h: r.get(h, "") for h in header} for r in files[name].values()]))
    return buf.getvalue()


@mapping
class OneRosterV2(ScheduleFormat):
    key = MappingKey("schema", "oneroster", 2)
    description = "schedule objects -> OneRoster 1.2 CSV zip (the 1.2 manifest; users, roles, enrollments, classes …)"
    media_type = "application/zip"
    batch = 10_000  # rows per package: a backlog goes out as several, memory stays flat

    def encode(self, change: dict[str, Any], *, organizations: tuple[str, ...] = (), stamp: str = "") -> Any:
        check_values(change)
        return rows(change, stamp) or None

    def body(self, lane: str, items: list[Any], *, request_id: str) -> bytes:
        return package([r for item in items for r in item])

    def write(self, changes: list[dict[str, Any]], *, request_id: str, mode: str = "delta",
              now: dt.datetime | None = None) -> tuple[bytes, list[RecordError]]:
        """A whole package of ``changes`` at once (tests, a bulk package): (zip, refused objects)."""
        if mode not in ("delta", "bulk"):
            raise ValueError("mode is delta or bulk")
        when, items, errors = stamp(now), [], []
        for c in changes:
            try:
                items += rows(c, when)
            except Refused as e:
                errors.append(RecordError(f"{c['kind']}:{c['ext_id']}", e.field, e.rule, "schedule-object"))
        return package(items, mode=mode), errors


def _csv(header: list[str], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, header, lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def check(package: bytes) -> list[str]:
    """The OneRoster 1.2 CSV rules a package must keep (empty list: it keeps them): the manifest
    names every file of the 1.2 binding (bulk/delta where present, absent where not), with
    manifest.version 1.0, oneroster.version 1.2 and a source; each file has exactly its 1.2
    header; sourcedIds are present and unique; status is empty in bulk, active/tobedeleted in delta
    with an ISO 8601 UTC dateLastModified; required columns of live rows are filled and
    enumerated ones hold their vocabulary; dates are YYYY-MM-DD; every user has a role; in a bulk
    package every reference points to a row in the package."""
    problems: list[str] = []
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        names = set(z.namelist())
        if "manifest.csv" not in names:
            return ["manifest.csv missing"]
        manifest = {r["propertyName"]: r["value"] for r in csv.DictReader(io.StringIO(z.read("manifest.csv").decode()))}
        if manifest.get("oneroster.version") != "1.2" or manifest.get("manifest.version") != "1.0":
            problems.append("manifest: manifest.version 1.0 and oneroster.version 1.2 required")
        if not manifest.get("source.systemName") or not manifest.get("source.systemCode"):
            problems.append("manifest: source.systemName and source.systemCode required")
        for extra in sorted(n for n in names - {"manifest.csv"} if n.removesuffix(".csv") not in FILES):
            problems.append(f"{extra} is not a file of the 1.2 binding")
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
            reader = csv.DictReader(io.StringIO(z.read(file).decode("utf-8")))
            if file in HEADERS and reader.fieldnames != HEADERS[file]:
                problems.append(f"{file}: header is not the OneRoster 1.2 header")
                continue
            rows_ = data[file] = list(reader)
            seen = ids[file] = set()
            for i, r in enumerate(rows_, 2):
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
                for (vf, col), allowed in VOCABULARY.items():
                    if vf == file and r.get(col) and r[col] not in allowed:
                        problems.append(f"{where}: {col} {r[col]!r} is not one of the 1.2 vocabulary")
                for col in ("startDate", "endDate", "beginDate"):
                    if r.get(col) and not _DATE.fullmatch(r[col]):
                        problems.append(f"{where}: {col} is not YYYY-MM-DD")
        roles = {r["userSourcedId"] for r in data.get("roles.csv", [])}
        for r in data.get("users.csv", []):
            if r["status"] != "tobedeleted" and r["sourcedId"] not in roles:
                problems.append(f"users.csv: {r['sourcedId']} has no row in roles.csv (1.2 keeps a user's role there)")
        if all(manifest.get(f"file.{n}") in ("bulk", "absent") for n in FILES):
            refs = [("classes.csv", "courseSourcedId", "courses.csv"), ("classes.csv", "termSourcedIds", "academicSessions.csv"),
                    ("classes.csv", "schoolSourcedId", "orgs.csv"), ("courses.csv", "orgSourcedId", "orgs.csv"),
                    ("enrollments.csv", "classSourcedId", "classes.csv"), ("enrollments.csv", "userSourcedId", "users.csv"),
                    ("roles.csv", "userSourcedId", "users.csv"), ("roles.csv", "orgSourcedId", "orgs.csv")]
            for file, col, target in refs:
                for r in data.get(file, []):
                    if r[col] and r[col] not in ids.get(target, set()):
                        problems.append(f"{file}: {col} {r[col]} is not in {target}")
    return problems
