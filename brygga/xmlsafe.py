"""The only way Brygga parses XML: no DTDs, no entity expansion, no network, bounded trees.

Every parser here refuses a document type declaration outright (XXE, billion laughs and external
DTDs all need one), never fetches anything over the network and keeps libxml2's huge-tree limits.
Schemas are loaded from ``schemas/`` only, with network access off.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from lxml import etree


class UnsafeXML(ValueError):
    """The document uses a feature Brygga refuses (DOCTYPE, entities)."""


class MalformedXML(ValueError):
    """The document is not well-formed XML."""


_PARSER_KW = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)

_local = threading.local()


def parser() -> etree.XMLParser:
    """A per-thread safe parser (lxml parsers are not thread-safe)."""
    p = getattr(_local, "parser", None)
    if p is None:
        p = _local.parser = etree.XMLParser(**_PARSER_KW)
    return p


def _check_prolog(head: bytes) -> None:
    # A DOCTYPE can only stand before the root element, so the prolog is where to look.
    upper = head.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise UnsafeXML("XML with a DOCTYPE/ENTITY declaration is refused (possible XXE or entity expansion)")


def _prolog(data: bytes) -> bytes:
    # Everything up to the first element start tag that is not <? or <!
    i = 0
    while True:
        j = data.find(b"<", i)
        if j < 0 or j + 1 >= len(data):
            return data
        if data[j + 1 : j + 2] not in (b"?", b"!"):
            return data[:j]
        i = j + 1


def fromstring(data: bytes | str) -> etree._Element:
    """Parse a whole (small) document safely."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    _check_prolog(_prolog(data))
    try:
        root = etree.fromstring(data, parser())
    except etree.XMLSyntaxError as e:
        raise MalformedXML(f"not well-formed XML: {e}") from None
    if root is None:
        raise MalformedXML("empty XML document")
    if root.getroottree().docinfo.doctype:
        raise UnsafeXML("XML with a DOCTYPE declaration is refused")
    return root


class _PrologCheckingStream:
    """Wraps a binary stream; inspects the prolog before handing bytes on to the parser."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self._checked = False
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        if not self._checked:
            head = self._raw.read(65536)
            pro = _prolog(head)
            _check_prolog(pro)
            self._checked = True
            self._buf = head
        if self._buf:
            if n is None or n < 0:
                out, self._buf = self._buf + self._raw.read(), b""
                return out
            out, self._buf = self._buf[:n], self._buf[n:]
            return out
        return self._raw.read(n if n is not None else -1)


def iterparse(
    source: bytes | str | Path | IO[bytes],
    *,
    tag: str | Iterable[str] | None = None,
    events: tuple[str, ...] = ("end",),
) -> Iterator[tuple[str, etree._Element]]:
    """Stream a large document safely. ``source`` is bytes, a path or a binary file object.

    Callers clear elements they are done with (``elem.clear(keep_tail=True)`` and delete
    preceding siblings) to keep memory flat; see ``mappings.base.stream_records``.
    """
    opened = None
    if isinstance(source, (bytes, bytearray)):
        stream: IO[bytes] = io.BytesIO(source)
    elif isinstance(source, (str, Path)):
        stream = opened = open(source, "rb")
    else:
        stream = source
    it = etree.iterparse(_PrologCheckingStream(stream), events=events, tag=tag, **_PARSER_KW)
    try:
        yield from it
    except etree.XMLSyntaxError as e:
        raise MalformedXML(f"not well-formed XML: {e}") from None
    finally:
        if opened is not None:
            opened.close()


_schema_cache: dict[Path, etree.XMLSchema] = {}
_schema_lock = threading.Lock()


def load_schema(path: str | Path) -> etree.XMLSchema:
    """Compile (and cache) an XSD from the project's ``schemas/`` tree; imports resolve locally."""
    p = Path(path).resolve()
    with _schema_lock:
        s = _schema_cache.get(p)
        if s is None:
            doc = etree.parse(str(p), etree.XMLParser(no_network=True, resolve_entities=False))
            s = _schema_cache[p] = etree.XMLSchema(doc)
        return s


def schema_from_files(key: str, files: Iterable[Path]) -> etree.XMLSchema:
    """One schema covering several target namespaces (e.g. all Ladok XSDs) via a wrapper."""
    files = sorted(Path(f).resolve() for f in files)
    cache_key = Path("/__combined__") / key
    with _schema_lock:
        s = _schema_cache.get(cache_key)
        if s is None:
            imports = []
            for f in files:
                tns = etree.parse(str(f), etree.XMLParser(no_network=True)).getroot().get("targetNamespace")
                imports.append(f'<xs:import namespace="{tns}" schemaLocation="{f.as_uri()}"/>')
            wrapper = (
                '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
                f'targetNamespace="urn:brygga:combined:{key}">' + "".join(imports) + "</xs:schema>"
            )
            s = _schema_cache[cache_key] = etree.XMLSchema(etree.fromstring(wrapper.encode()))
        return s
