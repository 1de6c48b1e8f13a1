"""schema.timeedit-file.v1: the schedule export's objects as TimeEdit's XML file import
(``schemas/schema/timeedit-import-1.xsd``), one file per batch, for the installations that read
files dropped in a directory (by SFTP) rather than take the REST API.

Each object: ``<object><extid/><fields><field><extid>{type}.{name}</extid><value/>…</field>…</fields>
<organizations><organization/></organizations><types><type>{type}</type></types></object>``, the
types and field ids those of the REST mapping. A file has no per-object answer and no delete:
every object carries ``{type}.status`` — ``aktiv``, ``inaktiv`` (deactivated: the instance or
group is cancelled or out of scope) or ``borttagen`` (an ended membership, a student in no group);
the installation's import definition acts on it (Brygga's own, to confirm with the installation).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from brygga import xmlsafe
from mappings.base import MappingError, MappingKey
from mappings.registry import mapping
from mappings.schema.base import ScheduleFormat, check
from mappings.schema.timeedit import FIELD_IDS, TYPE_OF, _values


def _field(fid: str, values: list[str]) -> str:
    return f"<field><extid>{fid}</extid>{''.join(f'<value>{escape(v)}</value>' for v in values)}</field>"


@mapping
class TimeEditFileV1(ScheduleFormat):
    key = MappingKey("schema", "timeedit-file", 1)
    schema = "schema/timeedit-import-1.xsd"
    description = "schedule objects -> TimeEdit XML import files (<timeedit><object>…), one per batch, to a directory"
    media_type = "application/xml"

    def encode(self, change: dict[str, Any], *, organizations: tuple[str, ...] = (), stamp: str = "") -> Any:
        check(change)
        kind, t = change["kind"], TYPE_OF[change["kind"]]
        fields = change["fields"]
        status = ("borttagen" if change["op"] == "delete" else "aktiv" if change["active"] else "inaktiv")
        parts = [_field(fid, _values(fields.get(n))) for n, fid in FIELD_IDS[kind]] if change["op"] == "upsert" else []
        parts.append(_field(f"{t}.status", [status]))
        orgs = "".join(f"<organization>{escape(o)}</organization>" for o in organizations)
        return (f"<object><extid>{escape(change['ext_id'])}</extid><fields>{''.join(parts)}</fields>"
                f"<organizations>{orgs}</organizations><types><type>{t}</type></types></object>")

    def body(self, lane: str, items: list[Any], *, request_id: str) -> bytes:
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<timeedit>' + "".join(items) + "</timeedit>\n").encode()
        schema = self.xsd()
        if not schema.validate(xmlsafe.fromstring(body)):
            raise MappingError(f"{self.key}: the file does not follow its XSD: {schema.error_log.last_error}")
        return body
