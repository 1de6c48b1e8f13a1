"""The only way Brygga parses XML: no DTDs, no entity expansion, no network, bounded trees.

Every parser here refuses a document with a document type declaration (XXE, billion laughs and
external DTDs all need one) — as libxml2 itself saw the document, so in any encoding and however
its prolog is padded —, never resolves entities, never fetches anything over the network and keeps
libxml2's huge-tree limits (a text node over 10 MB is an error, not a memory bill).
Schemas are loaded from ``schemas/`` only, with network access off.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from lxml import etree


class UnreadableXML(ValueError):
    """A document Brygga cannot read: refused, not well-formed, or not the one expected."""


class UnsafeXML(UnreadableXML):
    """The document uses a feature Brygga refuses (DOCTYPE, entities)."""


class MalformedXML(UnreadableXML):
    """The document is not well-formed XML (a control character, a text node over 10 MB, a cut)."""


class UnexpectedReply(UnreadableXML):
    """Well-formed, but not the reply asked for (another operation's response, or none at all)."""


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


def _refuse_dtd(tree: etree._ElementTree) -> None:
    """Refuse a document that has a document type declaration, as the parser saw it (so for every
    encoding, however the prolog is padded or commented)."""
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise UnsafeXML("XML with a DOCTYPE declaration is refused (possible XXE or entity expansion)")


def fromstring(data: bytes | str) -> etree._Element:
    """Parse a whole (small) document safely."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        root = etree.fromstring(data, parser())
    except etree.XMLSyntaxError as e:
        raise MalformedXML(f"not well-formed XML: {e}") from None
    if root is None:
        raise MalformedXML("empty XML document")
    _refuse_dtd(root.getroottree())
    return root


def root(data: bytes | str, tag: str) -> etree._Element:
    """Parse a whole (small) reply and require its root element to be ``tag`` ({ns}name): another
    operation's reply is refused (``UnexpectedReply``), never read as empty."""
    el = fromstring(data)
    if el.tag != tag:
        raise UnexpectedReply(f"the reply is a {etree.QName(el).localname}, not a {etree.QName(tag).localname}")
    return el


def _open(source: bytes | str | Path | IO[bytes]) -> tuple[IO[bytes], IO[bytes] | None]:
    """(a binary stream of ``source``, the file opened for it or None)."""
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(source), None
    if isinstance(source, (str, Path)):
        f = open(source, "rb")
        return f, f
    return source, None


def iterparse(
    source: bytes | str | Path | IO[bytes],
    *,
    tag: str | Iterable[str] | None = None,
    events: tuple[str, ...] = ("end",),
) -> Iterator[tuple[str, etree._Element]]:
    """Stream a large document safely. ``source`` is bytes, a path or a binary file object.

    A document type declaration can only stand before the root element, so the parser has seen it
    by its first event: that event is checked before anything is handed on (and, for a document
    none of whose elements are asked for, the tree once it is read). Callers clear elements they
    are done with (``elem.clear(keep_tail=True)`` and delete preceding siblings) to keep memory
    flat; see ``mappings.base.stream_elements``."""
    stream, opened = _open(source)
    it = etree.iterparse(stream, events=events, tag=tag, **_PARSER_KW)
    try:
        checked = False
        for event, el in it:
            if not checked:
                _refuse_dtd(el.getroottree())
                checked = True
            yield event, el
        if not checked and it.root is not None:
            _refuse_dtd(it.root.getroottree())
    except etree.XMLSyntaxError as e:
        raise MalformedXML(f"not well-formed XML: {e}") from None
    finally:
        if opened is not None:
            opened.close()


def iterparse_records(
    source: bytes | str | Path | IO[bytes], tag: str | Iterable[str], parents: Iterable[str] | None = None,
    *, require: str | None = None,
) -> Iterator[tuple[etree._Element, etree._Element | None]]:
    """Stream the ``tag`` elements of a large document as (element, its parent), each cleared (and
    its earlier siblings dropped) once the caller is done with it: memory stays flat. With
    ``parents``, only elements directly under one of those count: one of the same name inside a
    record (NyA's ``Change/Change``) is left to its record, others elsewhere are dropped unread.
    With ``require``, a document without that element (another operation's reply) raises
    ``UnexpectedReply`` once read: never taken for an empty one.
    The readers' hot loop: one generator, the DOCTYPE refused at the first element."""
    stream, opened = _open(source)
    tags = {tag} if isinstance(tag, str) else set(tag)
    wanted = None if parents is None else set(parents)
    it = etree.iterparse(stream, events=("end",), tag=tag, **_PARSER_KW)
    try:
        first = True
        for _, el in it:
            if first:
                _refuse_dtd(el.getroottree())
                first = False
            parent = el.getparent()
            if wanted is None or (parent is not None and parent.tag in wanted):
                yield el, parent
            elif parent is not None and parent.tag in tags:
                continue  # a field named like a record, inside its record
            el.clear(keep_tail=False)
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
        root = it.root
        if first and root is not None:
            _refuse_dtd(root.getroottree())
    except etree.XMLSyntaxError as e:
        raise MalformedXML(f"not well-formed XML: {e}") from None
    finally:
        if opened is not None:
            opened.close()
    if require is not None and (root is None or root.tag != require and root.find(".//" + require) is None):
        raise UnexpectedReply(f"the reply has no {etree.QName(require).localname}"
                              + (f" (it is a {etree.QName(root).localname})" if root is not None else ""))


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
