"""schema.timeedit.v1: the schedule export's objects as a TimeEdit-style REST import.

One ``objects/upsert`` request (PATCH mode) per batch: ``{"objects": [...]}``, each object
``{"type", "extId", "fields", "active"}`` or ``{"type", "extId", "operation": "delete"}``. Types:
``utbildningstillfalle``, ``studentgrupp``, ``student``, ``medlemskap``. The reply is a 207
Multi-Status with one result per object. The same body to ``objects/validate`` is the dry run.
"""

from __future__ import annotations

import json
from typing import Any

from brygga.records import FIELDS, content_hash
from mappings.base import Mapping, MappingKey, RecordError
from mappings.registry import mapping

TYPE_OF = {"instance": "utbildningstillfalle", "group": "studentgrupp", "student": "student", "membership": "medlemskap"}
KIND_OF = {v: k for k, v in TYPE_OF.items()}
TEXT_MAX = 255  # the scheduling system's text fields
EXT_ID_MAX = 128


def check(change: dict[str, Any]) -> str | None:
    """Why an object cannot go out (a value the system's columns would refuse), or None."""
    if not 1 <= len(change["ext_id"]) <= EXT_ID_MAX:
        return f"extId: 1..{EXT_ID_MAX} characters"
    for name, value in (change.get("fields") or {}).items():
        if isinstance(value, str) and (len(value) > TEXT_MAX or not value.isprintable()):
            return f"{name}: at most {TEXT_MAX} printable characters"
    return None


@mapping
class TimeEditV1(Mapping):
    key = MappingKey("schema", "timeedit", 1)
    description = "schedule objects -> TimeEdit-style objects/upsert JSON (PATCH, 207 per object)"
    media_type = "application/json"

    def write(self, changes: list[dict[str, Any]], *, request_id: str) -> tuple[bytes, list[RecordError]]:
        objects, errors = [], []
        for c in changes:
            why = check(c)
            if why is not None:
                field, _, rule = why.partition(": ")
                errors.append(RecordError(f"{c['kind']}:{c['ext_id']}", field, rule, "schedule-object"))
                continue
            o: dict[str, Any] = {"type": TYPE_OF[c["kind"]], "extId": c["ext_id"]}
            if c["op"] == "delete":
                o["operation"] = "delete"
            else:
                fields = c["fields"]
                o["fields"] = {n: fields.get(n) for n in FIELDS[c["kind"]]} if c["op"] == "upsert" else fields
                o["active"] = c["active"]
            objects.append(o)
        return json.dumps({"objects": objects}, ensure_ascii=False, separators=(",", ":")).encode(), errors

    def read_results(self, body: bytes) -> dict[str, tuple[str, str | None]]:
        """The 207 body -> {"<kind>:<ext_id>": (outcome, the system's message)}; outcome ``ok``,
        ``in-use`` (409: deactivate instead), ``rejected`` (4xx) or ``failed`` (5xx)."""
        doc = json.loads(body)
        out: dict[str, tuple[str, str | None]] = {}
        for r in doc.get("results") or []:
            kind = KIND_OF.get(r.get("type"), r.get("type"))
            status = int(r.get("status") or 0)
            outcome = ("ok" if 200 <= status < 300 or status == 404 else "in-use" if status == 409
                       else "failed" if status >= 500 or status == 0 else "rejected")
            out[f"{kind}:{r.get('extId')}"] = (outcome, str(r.get("message") or "")[:500] or None)
        return out

    def read_objects(self, body: bytes) -> tuple[int, dict[str, tuple[str, bool]]]:
        """A ``GET objects`` page -> (total, {"<kind>:<ext_id>": (content hash, active)} of what
        the system holds)."""
        doc = json.loads(body)
        held = {}
        for o in doc.get("objects") or []:
            kind = KIND_OF.get(o.get("type"))
            if kind is not None:
                active = bool(o.get("active"))
                held[f"{kind}:{o.get('extId')}"] = (content_hash(kind, o.get("fields") or {}, active), active)
        return int(doc.get("total") or 0), held
