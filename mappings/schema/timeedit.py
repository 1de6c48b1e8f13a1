"""schema.timeedit.v2: the schedule export's objects through TimeEdit's REST API (api.timeedit.net/v1).

* ``POST /v1/objects/upsert`` ``{"importMode": "PATCH", "idFormat": "EXTERNAL", "objects": [...]}``:
  each object ``{"extId", "typeId", "active", "organizations": [...], "fields": [{"fieldId",
  "values": [...]}]}``. Field ids are ``<typeId>.<name>``; every value is a string (a list field
  has several, a cleared one none). PATCH keeps the fields not named, but an array given replaces
  all its values, so an upsert names every field of its type and always the whole
  ``organizations`` list. A deactivation names no field (the facts stay): ``active`` false.
* ``DELETE /v1/objects`` ``{"idFormat": "EXTERNAL", "objects": [{"typeId", "extId"}]}``: the bulk
  delete (lane ``delete``).
* Both answer 207 Multi-Status, ``{"results": [{"typeId", "extId", "status", "message"}]}``;
  ``POST /v1/objects/validate`` takes the upsert body as a dry run.
* ``POST /v1/objects/find`` pages what the system holds (``read_objects``).

An object is encoded to its JSON text once, when the change is planned (the outbox keeps the
text); ``body`` joins a batch's texts.

Types: ``utbildningstillfalle``, ``studentgrupp``, ``student``, ``medlemskap`` (the installation's
own object types; docs/contracts/schema.md).
"""

from __future__ import annotations

import json
from typing import Any

from brygga.records import FIELDS, content_hash
from mappings.base import MappingKey
from mappings.registry import mapping
from mappings.schema.base import EXT_ID_MAX, TEXT_MAX, Refused, ScheduleFormat

TYPE_OF = {"instance": "utbildningstillfalle", "group": "studentgrupp", "student": "student", "membership": "medlemskap"}
KIND_OF = {v: k for k, v in TYPE_OF.items()}
LISTS = {"kurstillfallen"}  # fields of several values
INTS = {"studietakt", "antal_antagna", "antal_forvantade", "antal_registrerade", "antal_aterbud", "antal_avbrott"}
BOOLS = {"skyddad"}
#: "<typeId>.<name>" of every field, built once, and the JSON text that opens its entry
FIELD_IDS = {kind: tuple((n, f"{TYPE_OF[kind]}.{n}") for n in names) for kind, names in FIELDS.items()}
FIELD_HEADS = {kind: tuple((n, f'{{"fieldId":"{fid}","values":[') for n, fid in ids) for kind, ids in FIELD_IDS.items()}
#: A string as JSON text (quoted and escaped; non-ASCII as itself): json's own C encoder
_str = json.encoder.encode_basestring


def _values(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    if isinstance(v, bool):
        return ["true" if v else "false"]
    return [str(v)]


def _value(name: str, values: list[str]) -> Any:
    """A field's value as Brygga's model holds it (what its content hash is taken over)."""
    if name in LISTS:
        return list(values) or None
    if not values:
        return None
    v = values[0]
    if name in INTS:
        return int(v)
    if name in BOOLS:
        return v == "true"
    return v


@mapping
class TimeEditV2(ScheduleFormat):
    key = MappingKey("schema", "timeedit", 2)
    description = "schedule objects -> TimeEdit REST v1 objects/upsert (importMode PATCH) and bulk delete, 207 per object"

    def lane(self, change: dict[str, Any]) -> str:
        return "delete" if change["op"] == "delete" else "upsert"

    def encode(self, change: dict[str, Any], *, organizations: tuple[str, ...] = (), stamp: str = "") -> Any:
        """The object as its JSON text (what ``body`` joins: nothing is encoded again)."""
        ext, kind = change["ext_id"], change["kind"]
        if not 1 <= len(ext) <= EXT_ID_MAX:
            raise Refused("extId", f"1..{EXT_ID_MAX} characters")
        t = TYPE_OF[kind]
        if change["op"] == "delete":
            return f'{{"typeId":"{t}","extId":{_str(ext)}}}'
        parts: list[str] = []
        if change["op"] == "upsert":  # every field of the type (a deactivation names none: the facts stay)
            fields = change["fields"]
            for name, head in FIELD_HEADS[kind]:
                v = fields.get(name)
                if v is None:
                    parts.append(head + "]}")
                elif type(v) is str:
                    if len(v) > TEXT_MAX or not v.isprintable():
                        raise Refused(name, f"at most {TEXT_MAX} printable characters")
                    parts.append(head + _str(v) + "]}")
                else:
                    parts.append(head + ",".join(map(_str, _values(v))) + "]}")
        orgs = f',"organizations":[{",".join(map(_str, organizations))}]' if organizations else ""
        return (f'{{"extId":{_str(ext)},"typeId":"{t}","active":{"true" if change["active"] else "false"}{orgs},'
                f'"fields":[{",".join(parts)}]}}')

    def body(self, lane: str, items: list[Any], *, request_id: str) -> bytes:
        head = '{"importMode":"PATCH","idFormat":"EXTERNAL","objects":[' if lane == "upsert" else \
            '{"idFormat":"EXTERNAL","objects":['
        return (head + ",".join(items) + "]}").encode()

    def read_results(self, body: bytes) -> dict[str, tuple[str, str | None]]:
        """The 207 body -> {"<kind>:<ext_id>": (outcome, the system's message)}; outcome ``ok``
        (2xx, and 404 for a delete: already gone), ``in-use`` (409: deactivate instead),
        ``rejected`` (4xx) or ``failed`` (5xx)."""
        doc = json.loads(body)
        out: dict[str, tuple[str, str | None]] = {}
        for r in doc.get("results") or []:
            kind = KIND_OF.get(r.get("typeId"), r.get("typeId"))
            status = int(r.get("status") or 0)
            outcome = ("ok" if 200 <= status < 300 or status == 404 else "in-use" if status == 409
                       else "failed" if status >= 500 or status == 0 else "rejected")
            out[f"{kind}:{r.get('extId')}"] = (outcome, str(r.get("message") or "")[:500] or None)
        return out

    def find_body(self, type_id: str, page: int, limit: int) -> bytes:
        return json.dumps({"idFormat": "EXTERNAL", "typeId": type_id, "page": page, "limit": limit}).encode()

    def read_objects(self, body: bytes) -> tuple[int, dict[str, tuple[str, bool]]]:
        """A ``find`` page -> (total pages, {"<kind>:<ext_id>": (content hash, active)} of what
        the system holds, hashed as Brygga hashes what it sends)."""
        doc = json.loads(body)
        held = {}
        for o in doc.get("results") or []:
            kind = KIND_OF.get(o.get("typeId"))
            if kind is None:
                continue
            prefix = TYPE_OF[kind] + "."
            fields = {f["fieldId"].removeprefix(prefix): _value(f["fieldId"].removeprefix(prefix), f.get("values") or [])
                      for f in o.get("fields") or [] if str(f.get("fieldId", "")).startswith(prefix)}
            active = bool(o.get("active"))
            held[f"{kind}:{o.get('id')}"] = (content_hash(kind, fields, active), active)
        return int(doc.get("totalPages") or 0), held
