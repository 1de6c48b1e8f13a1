"""Population register lookup v1 (``schemas/folkbokforing/folkbokforing-1.xsd``).

The batch reply answers one entry per asked number, in request order: ``Person`` (found),
``EjFunnen`` (valid, not in the register) or ``Ogiltig`` (invalid; the number is masked in it).
A protected person (Sekretessmarkering or SkyddadFolkbokforing) comes without an address, and the
reader never attaches one to a protected person even if a reply carried it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

from lxml import etree

from brygga.records import Address, Student
from mappings.base import Mapping, MappingKey, RecordError, stream_elements
from mappings.registry import mapping

NS = "urn:brygga:folkbokforing:1"
N = f"{{{NS}}}"


def _text(el: etree._Element, name: str) -> str | None:
    v = el.findtext(N + name)
    return v.strip() if v is not None else None


def person(el: etree._Element) -> Student:
    protected = _text(el, "Sekretessmarkering") == "true" or _text(el, "SkyddadFolkbokforing") == "true"
    address = None
    adr = el.find(N + "Folkbokforingsadress")
    if adr is not None and not protected:
        address = Address(_text(adr, "Utdelningsadress") or "", _text(adr, "Postnummer") or "",
                          _text(adr, "Postort") or "")
    return Student(personnummer=_text(el, "Personnummer") or "", fornamn=_text(el, "Fornamn") or "",
                   efternamn=_text(el, "Efternamn") or "", protected=protected, address=address)


@mapping
class PersonV1(Mapping):
    key = MappingKey("folkbokforing", "person", 1)
    description = "PersonerFraga / Personer batch lookup and single Person -> Student with folkbokföringsadress"
    schema = "folkbokforing/folkbokforing-1.xsd"

    def write_batch(self, personnummer: Iterable[str]) -> bytes:
        root = etree.Element(N + "PersonerFraga", nsmap={None: NS})
        for p in personnummer:
            etree.SubElement(root, N + "Personnummer").text = p
        return etree.tostring(root, encoding="UTF-8")

    def read_batch(self, source: bytes | IO[bytes], asked: list[str]) -> Iterator[tuple[str, Student | None | RecordError]]:
        """(asked number, Student | None when not in the register | RecordError when invalid), in request order."""
        tags = (N + "Person", N + "EjFunnen", N + "Ogiltig")
        i = 0
        for el in stream_elements(source, tags, parent=N + "Personer"):
            if i >= len(asked):
                raise ValueError("Personer: more entries than numbers asked")
            pnr = asked[i]
            i += 1
            answered = _text(el, "Personnummer")
            if el.tag != N + "Ogiltig" and answered != pnr:  # never take another person's name/address
                raise ValueError(f"Personer: entry {i} answers another number than was asked")
            if el.tag == N + "Person":
                yield pnr, person(el)
            elif el.tag == N + "EjFunnen":
                yield pnr, None
            else:
                yield pnr, RecordError(pnr, "Personnummer", _text(el, "Orsak") or "invalid", "Person")
        if i != len(asked):
            raise ValueError(f"Personer: {i} entries for {len(asked)} numbers asked")

    def read(self, body: bytes) -> Student:
        (el,) = list(stream_elements(body, N + "Person"))
        return person(el)
