"""Ladok Atom feed pages -> ``LadokEvent`` records (real Ladok3 event names).

Events Brygga acts on are "known": their required fields are checked (order-tolerant, because
real Ladok pages do not always follow the XSD's element order, see docs/architecture.md). Every
other event type is skipped and counted per type. With ``strict=True`` each known event is also
validated against the Ladok3 XSDs in ``schemas/ladok/`` (used for the simulator's output).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

from lxml import etree

from brygga import xmlsafe
from brygga.limits import bounded
from brygga.paths import SCHEMAS
from brygga.records import FeedPage, LadokEvent
from mappings.base import Mapping, MappingKey, RecordError
from mappings.registry import mapping

ATOM = "{http://www.w3.org/2005/Atom}"
EVENTS_NS = "{http://schemas.ladok.se/events}"
ENTRY, LINK, ENTRY_ID, UPDATED, CONTENT = (ATOM + n for n in ("entry", "link", "id", "updated", "content"))
HANDELSE_UID = EVENTS_NS + "HandelseUID"
_LINKS = {"self": "self_url", "via": "via_url", "prev-archive": "prev_archive", "next-archive": "next_archive"}

#: Event types Brygga handles, with the fields each must carry (required in the XSDs, or what Brygga
#: cannot act without). Every other type is skipped and counted (PaborjatUtbildningstillfalleEvent,
#: PaborjadUtbildningEvent and the Aterkallad* that follow a registration or an early avbrott,
#: catalogue events …).
KNOWN_EVENTS: dict[str, tuple[str, ...]] = {
    # studiedeltagande: merits, admissions, återbud, the schedule's groups
    "RegistreringEvent": ("StudentUID", "KurstillfalleUID", "RegistreringUID", "StudieperiodStart"),
    "OmregistreringEvent": ("StudentUID", "KurstillfalleUID", "RegistreringUID"),
    "AterkalladregistreringEvent": ("StudentUID", "RegistreringUID"),
    "PaborjatUtbildningstillfalleEvent": ("StudentUID", "UtbildningstillfalleUID"),
    "PaborjadUtbildningEvent": ("StudentUID", "UtbildningUID"),
    "AterkallatPaborjatUtbildningstillfalleEvent": ("StudentUID", "UtbildningstillfalleUID"),
    "AterkalladPaborjadUtbildningEvent": ("StudentUID", "UtbildningUID"),
    "AvbrottEvent": ("StudentUID", "UtbildningstillfalleUID"),
    "AvbrottBorttagetEvent": ("StudentUID", "UtbildningstillfalleUID"),
    "UppehallEvent": ("StudentUID", "Startdatum", "PlaneratSlutdatum"),
    "UppehallBorttagetEvent": ("StudentUID", "UppehallUID"),
    "AterbudEvent": ("StudentUID", "TillfallesantagningUID", "UtbildningstillfalleUID", "Aterbudsdatum"),
    "ForvantatDeltagandeSkapadEvent": ("StudentUID", "TillfallesantagningUID", "UtbildningstillfalleUID"),
    "ForvantatDeltagandeBorttagetEvent": ("StudentUID", "TillfallesantagningUID", "UtbildningstillfalleUID"),
    "NuvarandeBehorighetsvillkorEvent": ("TillfallesantagningUID",),
    # resultat
    "ResultatPaModulAttesteratEvent": ("StudentUID", "Resultat"),
    "ResultatPaHelKursAttesteratEvent": ("StudentUID", "Resultat"),
    "AttesteratResultatMakuleratEvent": ("StudentUID", "ResultatUID"),
    "TillgodoraknandeAttesteratEvent": ("StudentUID", "TillgodoraknandeUID"),
    "TillgodoraknandeBorttagetEvent": ("StudentUID", "TillgodoraknandeUID"),
    # examen
    "UtfardatBevisEvent": ("StudentUID", "UtfardatBevisUID"),
    "UtfardatBevisBorttagetEvent": ("StudentUID", "UtfardatBevisUID"),
    # utbildningsinformation: what the offer and schedule exports follow
    "KurstillfalleTillStatusEvent": ("UtbildningstillfalleUID", "Status"),
    "KurstillfalleUppdateratEvent": ("UtbildningstillfalleUID",),
    "UtbildningstillfalleInstalltEvent": ("UtbildningstillfalleUID",),
    "UtbildningstillfalleAteraktiveratEvent": ("UtbildningstillfalleUID",),
    # studentinformation: a new student, a new personnummer, protection, contact details
    "LokalStudentEvent": ("StudentUID",),
    "StudentTillLarosateEvent": ("StudentUID",),
    "StudentEvent": ("StudentUID",),
    "SkyddadePersonuppgifterEvent": ("StudentUID",),
    "KontaktuppgifterEvent": ("StudentUID",),
}


_LOCALNAMES: dict[str, str] = {}


def _localname(tag: str) -> str:
    """``{ns}Name`` -> ``Name``, cached (a feed uses a few dozen tag names; the cache is bounded so
    a hostile page cannot grow it)."""
    name = _LOCALNAMES.get(tag)
    if name is None:
        name = tag.rpartition("}")[2]
        if len(_LOCALNAMES) < 4096:
            _LOCALNAMES[tag] = name
    return name


def element_to_value(el: etree._Element) -> Any:
    """Children as a dict of local name -> text / nested dict / list when repeated; a leaf
    element's value is its stripped text.

    This runs for every element of every known event, so it avoids per-element objects (no
    ``etree.QName``), ``len()`` for leaves with text (most elements) and recursion for leaves."""
    if len(el) == 0:
        return (el.text or "").strip()
    out: dict[str, Any] = {}
    for child in el:
        tag = child.tag
        name = _LOCALNAMES.get(tag) if tag.__class__ is str else None
        if name is None:
            if tag.__class__ is not str:  # comment / processing instruction
                continue
            name = _localname(tag)
        text = child.text
        if text is not None and not text.isspace():
            value: Any = text.strip()
        elif len(child):
            value = element_to_value(child)
        else:
            value = ""
        if name in out:
            prev = out[name]
            if prev.__class__ is list:
                prev.append(value)
            else:
                out[name] = [prev, value]
        else:
            out[name] = value
    return out


def _ladok_schema() -> etree.XMLSchema:
    return xmlsafe.schema_from_files("ladok", (SCHEMAS / "ladok").glob("*.xsd"))


@dataclass
class AtomFeedPage(FeedPage):
    """A ``FeedPage`` that also lists every entry of the page oldest first, whatever it became:
    ``(Atom entry id, LadokEvent | RecordError | skipped event type name)``.

    A reader that resumes inside a page (the ``recent`` page keeps growing and is read again on
    every poll) uses ``entries`` to take only what follows its checkpoint entry, so skipped types
    and bad entries are counted (and quarantined) once per entry, not once per read."""

    entries: list[tuple[str, Any]] = field(default_factory=list)


HANDELSE_UID_MAX = 64  # a Ladok UID is 36; the inbox keys events by it
ENTRY_ID_MAX = 128  # the checkpoint's entry_id column
_HANDELSE_UID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.:\-]{{0,{HANDELSE_UID_MAX - 1}}}")

#: A feed page is at most a page size of entries; a reply larger than this is not a feed page.
MAX_PAGE_BYTES = 64 * 1024 * 1024


def _read_all(source: bytes | IO[bytes]) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = source.read(1 << 20)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_PAGE_BYTES:
            raise xmlsafe.MalformedXML(f"feed page larger than {MAX_PAGE_BYTES} bytes")
        chunks.append(chunk)


def xsd_order(event: etree._Element) -> etree._Element:
    """The event with ``HandelseUID`` before ``EventContext`` as the XSDs' ``events:BaseEvent``
    sequence has them; real pages (the 2017 reference page) put ``EventContext`` first."""
    first = event[0] if len(event) else None
    if first is None or first.tag != EVENTS_NS + "EventContext":
        return event
    reordered = copy.deepcopy(event)
    uid = reordered.find(HANDELSE_UID)
    if uid is not None:
        reordered.remove(uid)
        reordered.insert(0, uid)
    return reordered


@mapping
class LadokEventsV1(Mapping):
    key = MappingKey("ladok", "events", 1)
    schema = None  # several Ladok XSDs; see strict mode
    description = "Ladok3 Atom feed page (application/atom+xml) with application/vnd.ladok+xml events"

    def read_page(self, source: bytes | IO[bytes], *, strict: bool = False) -> AtomFeedPage:
        """One Atom page -> ``AtomFeedPage`` with events oldest first.

        Ladok lists a page's entries newest first, so the order is the reverse of the document
        order (entry position, never ``updated``: many entries share one millisecond). A page is
        bounded (the feed's page size), so it is parsed whole with the safe parser: faster than
        streaming it, which matters at 10k+ events/s."""
        root = xmlsafe.fromstring(_read_all(source))
        page = AtomFeedPage(None, None, None, None, [], [], Counter())
        schema = _ladok_schema() if strict else None
        entries: list[tuple[str, Any]] = []
        for el in root:
            tag = el.tag
            if tag == ENTRY:
                entries.append(self._entry(el, schema))
            elif tag == LINK:
                attr = _LINKS.get(el.get("rel", ""))
                if attr:
                    setattr(page, attr, el.get("href"))
            elif tag == ENTRY_ID:
                page.feed_id = (el.text or "").strip()[:100]
        entries.reverse()  # newest first in the document -> oldest first
        events = page.events
        for _, result in entries:
            if result.__class__ is LadokEvent:
                events.append(result)
            elif isinstance(result, RecordError):
                page.errors.append(result)
            else:
                page.skipped[result] += 1
        page.entries = entries
        return page

    def _entry(self, entry: etree._Element, schema: etree.XMLSchema | None) -> tuple[str, Any]:
        entry_id = updated = ""
        content = None
        for child in entry:
            tag = child.tag
            if tag == ENTRY_ID:  # a position marker (checkpoint.entry_id): bounded, an over-long one by digest
                entry_id = bounded((child.text or "").strip(), ENTRY_ID_MAX)
            elif tag == UPDATED:
                updated = (child.text or "").strip()
            elif tag == CONTENT:
                content = child
        event = None
        if content is not None:
            for c in content:
                if c.tag.__class__ is str:
                    event = c
                    break
        if event is None:
            return entry_id, RecordError(entry_id or "?", "content", "entry has no event element")
        ns, _, name = event.tag[1:].rpartition("}") if event.tag[:1] == "{" else ("", "", event.tag)
        required = KNOWN_EVENTS.get(name)
        if required is None:
            return entry_id, name
        handelse_uid = ""
        for c in event:
            if c.tag == HANDELSE_UID:
                handelse_uid = (c.text or "").strip()
                break
        if not handelse_uid:
            return entry_id, RecordError(entry_id or "?", "HandelseUID", "required field missing", name, has_id=False)
        if not _HANDELSE_UID.fullmatch(handelse_uid):
            return entry_id, RecordError(bounded(handelse_uid, 128), "HandelseUID",
                                         f"not an event id of 1 to {HANDELSE_UID_MAX} letters, digits or '-'",
                                         name, has_id=False)
        record_id = handelse_uid
        if schema is not None and not schema.validate(xsd_order(event)):
            err = schema.error_log.last_error
            return entry_id, RecordError(record_id, name, f"not valid against the Ladok XSD: {err.message}", name)
        fields = element_to_value(event)
        for f in required:
            if not fields.get(f):
                return entry_id, RecordError(record_id, f, "required field missing", name)
        context = fields.get("EventContext")
        student_uid = fields.get("StudentUID") or (context.get("StudentUID") if isinstance(context, dict) else None)
        return entry_id, LadokEvent(
            entry_id=entry_id,
            handelse_uid=handelse_uid,
            event_type=name,
            service=ns.rsplit("/", 1)[-1] if ns else "",
            updated=updated,
            student_uid=student_uid if isinstance(student_uid, str) else None,
            fields=fields,
        )
