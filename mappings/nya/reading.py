"""Reading NyA's list replies (``GetAdmissions``, ``GetAterbud``, ``GetConditionChanges``): the
stream of records, the reply's ``NextSequence`` kept on the reply (never on the shared mapping),
a check that the reply is the one asked for, and the field rules of the contract (``nya-1.xsd``)
that every value reaching Brygga's store must meet: ids, codes, texts and dates bounded and typed.

A value that breaks a rule makes its record a ``RecordError`` naming the field and the rule; the
value itself is never in the message (it may be a personnummer, or 10 MB long)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

from lxml import etree

from brygga import personnummer as pnr
from brygga import xmlsafe
from brygga.limits import bounded
from brygga.xmlsafe import UnexpectedReply
from mappings.base import RecordError

NS = "urn:brygga:nya:1"
N = f"{{{NS}}}"
NEXT_SEQUENCE = N + "NextSequence"

CODE_MAX = 20  # n:Code
TEXT_MAX = 300  # n:Text
ID = re.compile(r"[A-Za-z0-9_.\-]{1,20}")  # n:Code as an identifier (AdmissionId, AterbudId)
UID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")  # n:Uid
ROUND = re.compile(r"(?:HT|VT)[0-9]{4}")  # n:RoundCode
_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?")  # xs:date, with a zone or not
_MAX_LONG = 2**63 - 1


def required(fields: dict[str, str | None], name: str) -> str:
    v = fields.get(name)
    if not v or not v.strip():
        raise ValueError(f"{name}: required field missing")
    return v.strip()


def identifier(fields: dict[str, str | None], name: str) -> str:
    v = required(fields, name)
    if not ID.fullmatch(v):
        raise ValueError(f"{name}: not an id of 1 to {CODE_MAX} letters, digits, '.', '_' or '-'")
    return v


def code(fields: dict[str, str | None], name: str, *, optional: bool = False) -> str | None:
    """An n:Code: 1 to 20 of letters, digits, '_', '.' and '-'."""
    if optional and not (fields.get(name) or "").strip():
        return None
    v = required(fields, name)
    if len(v) > CODE_MAX:
        raise ValueError(f"{name}: longer than {CODE_MAX} characters")
    if not ID.fullmatch(v):
        raise ValueError(f"{name}: not a code of letters, digits, '_', '.' or '-'")
    return v


def text(fields: dict[str, str | None], name: str) -> str:
    v = required(fields, name)
    if len(v) > TEXT_MAX:
        raise ValueError(f"{name}: longer than {TEXT_MAX} characters")
    return v


def uid(fields: dict[str, str | None], name: str, *, optional: bool = False) -> str | None:
    if optional and fields.get(name) is None:
        return None
    v = required(fields, name)
    if not UID.fullmatch(v):
        raise ValueError(f"{name}: not a Ladok UID")
    return v


def round_code(fields: dict[str, str | None], name: str = "Round") -> str:
    v = required(fields, name)
    if not ROUND.fullmatch(v):
        raise ValueError(f"{name}: not an admission round (HT or VT and a year)")
    return v


def date(value: str | None, name: str, *, optional: bool = False) -> str | None:
    """An xs:date as ``YYYY-MM-DD`` (a time zone, which xs:date allows, is dropped: a calendar day)."""
    if value is None or not value.strip():
        if optional:
            return None
        raise ValueError(f"{name}: required field missing")
    m = _DATE.fullmatch(value.strip())
    try:
        if m is None:
            raise ValueError
        dt.date.fromisoformat(m.group(1))
    except ValueError:
        raise ValueError(f"{name}: not a date (YYYY-MM-DD): {value.strip()[:40]!r}") from None
    return m.group(1)


def timestamp(value: str | None, name: str, *, optional: bool = False) -> str | None:
    """An xs:dateTime, as sent (checked, not converted)."""
    if value is None or not value.strip():
        if optional:
            return None
        raise ValueError(f"{name}: required field missing")
    try:
        dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name}: not a date and time: {value.strip()[:40]!r}") from None
    return value.strip()


def sequence(fields: dict[str, str | None], name: str = "Sequence") -> int:
    v = required(fields, name)
    digits = v.removeprefix("+").lstrip("0")  # "" for 0
    if not (digits.isascii() and digits.isdecimal() and len(digits) <= 19 and int(digits) <= _MAX_LONG):
        raise ValueError(f"{name}: not a positive integer (xs:long): {v[:40]!r}")
    return int(digits)


def personnummer(fields: dict[str, str | None], name: str = "Personnummer") -> str:
    try:
        return pnr.canonical(required(fields, name))
    except pnr.InvalidPersonnummer as e:
        raise ValueError(f"{name}: {e}") from None


def children(el: etree._Element) -> dict[str, str | None]:
    """Local name -> text of the children in NyA's namespace."""
    return {child.tag[len(N):]: child.text for child in el
            if isinstance(child.tag, str) and child.tag.startswith(N)}


class Reply:
    """A streamed NyA list reply: iterate it for its records (or ``RecordError``s in their place);
    ``next_sequence`` is the reply's NextSequence, known once the reply's head is read.

    ``id_of(element) -> (name, usable)`` names a bad record: its own id when it has a usable one;
    else what it carries, or its Sequence, with ``has_id`` False (quarantined, never queued)."""

    def __init__(self, source: bytes | IO[bytes], response: str, tag: str,
                 convert: Callable[[etree._Element], object], kind: str,
                 id_of: Callable[[etree._Element], tuple[str, bool]]):
        self.next_sequence: int | None = None
        self._records = self._read(source, N + response, N + tag, convert, kind, id_of)

    def __iter__(self) -> Iterator[Any]:
        return self._records

    def __next__(self) -> Any:
        return next(self._records)

    def _read(self, source: bytes | IO[bytes], response: str, tag: str, convert: Callable[[etree._Element], object],
              kind: str, id_of: Callable[[etree._Element], tuple[str, bool]]) -> Iterator[Any]:
        head: etree._Element | None = None  # the response element, found by its NextSequence
        for el, parent in xmlsafe.iterparse_records(source, (NEXT_SEQUENCE, tag), (response,)):
            if el.tag == NEXT_SEQUENCE:
                head = parent
                try:
                    self.next_sequence = sequence({"NextSequence": el.text}, "NextSequence")
                except ValueError as e:  # the reply's own position: the reply cannot be used
                    raise UnexpectedReply(f"the reply's {e}") from None
                continue
            try:
                yield convert(el)
            except (ValueError, TypeError) as e:  # InvalidPersonnummer is a ValueError
                name, usable = id_of(el)
                field, _, rule = str(e).partition(": ")
                yield RecordError(name, field if rule else kind, rule or str(e), kind, has_id=usable)
        if head is None:
            raise UnexpectedReply(f"the reply is not a {etree.QName(response).localname} (it has none with a "
                                  "NextSequence)")


def id_or_sequence(id_field: str) -> Callable[[etree._Element], tuple[str, bool]]:
    """A bad record's name: its id when that is a usable one; else ``id:<what it carries>``
    (bounded) or ``sequence:<n>``, with ``has_id`` False. Neither can be an id (``:`` is not allowed
    in one), so a bad record never takes the name of a good one."""

    def id_of(el: etree._Element) -> tuple[str, bool]:
        own = el.findtext(N + id_field) or ""
        if ID.fullmatch(own.strip()):
            return own.strip(), True
        if own.strip():
            return bounded(f"id:{own.strip()}", 100), False
        seq = (el.findtext(N + "Sequence") or "").strip()
        return (bounded(f"sequence:{seq}", 100) if seq else "?"), False

    return id_of
