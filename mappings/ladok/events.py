"""Ladok Atom feed pages -> ``LadokEvent`` records (real Ladok3 event names).

Events Brygga acts on are "known": their required fields are checked (order-tolerant, because
real Ladok pages do not always follow the XSD's element order, see docs/architecture.md). Every
other event type is skipped and counted per type. With ``strict=True`` each known event is also
validated against the Ladok3 XSDs in ``schemas/ladok/`` (used for the simulator's output).
"""

from __future__ import annotations

from collections import Counter
from typing import IO, Any

from lxml import etree

from brygga import xmlsafe
from brygga.paths import SCHEMAS
from brygga.records import FeedPage, LadokEvent
from mappings.base import Mapping, MappingKey, RecordError, stream_elements
from mappings.registry import mapping

ATOM = "{http://www.w3.org/2005/Atom}"
EVENTS_NS = "{http://schemas.ladok.se/events}"

#: Event types Brygga handles, with the fields each must carry.
KNOWN_EVENTS: dict[str, tuple[str, ...]] = {
    # studiedeltagande: merits, admissions, återbud
    "RegistreringEvent": ("StudentUID", "KurstillfalleUID", "RegistreringUID", "StudieperiodStart"),
    "AterkalladregistreringEvent": ("StudentUID",),
    "AvbrottEvent": ("StudentUID", "UtbildningstillfalleUID"),
    "UppehallEvent": ("StudentUID", "Startdatum", "PlaneratSlutdatum"),
    "AterbudEvent": ("StudentUID", "TillfallesantagningUID", "UtbildningstillfalleUID", "Aterbudsdatum"),
    "ForvantatDeltagandeSkapadEvent": ("StudentUID", "TillfallesantagningUID", "UtbildningstillfalleUID"),
    "NuvarandeBehorighetsvillkorEvent": ("TillfallesantagningUID",),
    # resultat
    "ResultatPaModulAttesteratEvent": ("StudentUID", "Resultat"),
    "ResultatPaHelKursAttesteratEvent": ("StudentUID", "Resultat"),
    "TillgodoraknandeAttesteratEvent": ("StudentUID", "TillgodoraknandeUID"),
    # examen
    "UtfardatBevisEvent": ("StudentUID", "UtfardatBevisUID"),
    # utbildningsinformation: what the offer export follows
    "KurstillfalleTillStatusEvent": ("UtbildningstillfalleUID", "Status"),
    "UtbildningstillfalleInstalltEvent": ("UtbildningstillfalleUID",),
    # studentinformation
    "StudentEvent": ("StudentUID",),
}


def element_to_value(el: etree._Element) -> Any:
    """Children as a dict of local name -> text / nested dict / list when repeated."""
    if len(el) == 0:
        return (el.text or "").strip()
    out: dict[str, Any] = {}
    for child in el:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        value = element_to_value(child)
        if name in out:
            if not isinstance(out[name], list):
                out[name] = [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out


def _ladok_schema() -> etree.XMLSchema:
    return xmlsafe.schema_from_files("ladok", (SCHEMAS / "ladok").glob("*.xsd"))


@mapping
class LadokEventsV1(Mapping):
    key = MappingKey("ladok", "events", 1)
    schema = None  # several Ladok XSDs; see strict mode
    description = "Ladok3 Atom feed page (application/atom+xml) with application/vnd.ladok+xml events"

    def read_page(self, source: bytes | IO[bytes], *, strict: bool = False) -> FeedPage:
        page = FeedPage(None, None, None, None, [], [], Counter())
        schema = _ladok_schema() if strict else None
        events: list[LadokEvent] = []
        for el in stream_elements(source, tag=(ATOM + "link", ATOM + "entry")):
            if el.tag == ATOM + "link":
                parent = el.getparent()
                if parent is not None and parent.tag == ATOM + "feed":
                    rel = el.get("rel", "").replace("-", "_")
                    attr = {"self": "self_url", "via": "via_url", "prev_archive": "prev_archive",
                            "next_archive": "next_archive"}.get(rel)
                    if attr:
                        setattr(page, attr, el.get("href"))
                continue
            result = self._entry(el, schema)
            if isinstance(result, LadokEvent):
                events.append(result)
            elif isinstance(result, RecordError):
                page.errors.append(result)
            else:
                page.skipped[result] += 1
        # Ladok lists a page newest first; Brygga handles events oldest first.
        if len(events) > 1 and events[0].updated > events[-1].updated:
            events.reverse()
        page.events = events
        return page

    def _entry(self, entry: etree._Element, schema: etree.XMLSchema | None) -> LadokEvent | RecordError | str:
        entry_id = (entry.findtext(ATOM + "id") or "").strip()
        content = entry.find(ATOM + "content")
        event = next((c for c in content if isinstance(c.tag, str)), None) if content is not None else None
        if event is None:
            return RecordError(entry_id or "?", "content", "entry has no event element")
        q = etree.QName(event)
        name = q.localname
        if name not in KNOWN_EVENTS:
            return name
        handelse_uid = (event.findtext(EVENTS_NS + "HandelseUID") or "").strip()
        record_id = handelse_uid or entry_id or "?"
        if not handelse_uid:
            return RecordError(record_id, "HandelseUID", "required field missing", name)
        if schema is not None and not schema.validate(event):
            err = schema.error_log.last_error
            return RecordError(record_id, name, f"not valid against the Ladok XSD: {err.message}", name)
        fields = element_to_value(event)
        for f in KNOWN_EVENTS[name]:
            if not fields.get(f):
                return RecordError(record_id, f, "required field missing", name)
        context = fields.get("EventContext") or {}
        return LadokEvent(
            entry_id=entry_id,
            handelse_uid=handelse_uid,
            event_type=name,
            service=q.namespace.rsplit("/", 1)[-1] if q.namespace else "",
            updated=(entry.findtext(ATOM + "updated") or "").strip(),
            student_uid=fields.get("StudentUID") or (context.get("StudentUID") if isinstance(context, dict) else None),
            fields=fields,
        )
