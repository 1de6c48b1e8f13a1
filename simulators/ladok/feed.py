"""The Ladok Atom event feed at ``/uppfoljning/feed/{recent|first|N}``: pages immutable once
closed, prunable, of uneven size as Ladok's (the real recent page has 53 entries).

A page is closed once it holds ``page_size`` entries or more, at the end of an action: the events
one action emits together (a registration and its PaborjatUtbildningstillfalleEvent, an early
avbrott's three Aterkallad* …) are never split across pages, so a page may hold a few more. The
last page is the ``recent`` one and still grows. As in Ladok, entries inside a page are newest
first. Closed pages are joined to bytes once and cached; a pruned page answers ``None`` (the app
turns it into 404). Not thread-safe on its own: ``LadokState`` calls it under its lock.
"""

from __future__ import annotations

import datetime as dt
import uuid
from xml.sax.saxutils import quoteattr

from lxml import etree

from simulators.ladok.xml import ATOM, service_of, text


def entry_bytes(name: str, event: etree._Element, updated: dt.datetime) -> bytes:
    """One ``<entry>`` (default namespace Atom, declared on the feed element)."""
    term = f"http://schemas.ladok.se/{service_of(name)}/{name.split(':')[1]}"
    head = (f'<entry><category term="{term}" label="Event-typ"/><id>{uuid.uuid4()}</id>'
            f'<updated>{text(updated)}</updated><content type="application/vnd.ladok+xml">')
    return head.encode() + etree.tostring(event, encoding="UTF-8") + b"</content></entry>"


FEED_PATH = "/uppfoljning/feed"


class Feed:
    def __init__(self, page_size: int = 50):
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.page_size = page_size
        self.count = 0
        self._pages: list[list[bytes] | None] = [[]]
        self._updated: list[str] = [text(dt.datetime.now(dt.UTC))]
        self._joined: dict[int, bytes] = {}
        self._closed: set[int] = set()  # pages closed (immutable): every one but the recent

    @property
    def last(self) -> int:
        return len(self._pages)

    @property
    def first_available(self) -> int:
        return next(i for i, p in enumerate(self._pages, 1) if p is not None)

    def append(self, name: str, event: etree._Element) -> None:
        self.append_action([(name, event)])

    def append_action(self, events: list[tuple[str, etree._Element]]) -> None:
        """The events of one action, on one page."""
        now = dt.datetime.now(dt.UTC)
        self.append_bytes(*(entry_bytes(name, e, now) for name, e in events))

    def append_bytes(self, *entries: bytes) -> None:
        """``<entry>`` elements as bytes, as sent, on one page: ``append_action`` for events, and
        the fault surface's way to put what a broken Ladok might send (an odd entry, or bytes that
        break the page) on the feed."""
        if not entries:
            return
        updated = dt.datetime.now(dt.UTC)
        if len(self._pages[-1]) >= self.page_size:  # the recent page is full: closed, a new one opens
            self._closed.add(len(self._pages))
            self._pages.append([])
            self._updated.append("")
        self._pages[-1].extend(entries)
        self._updated[-1] = text(updated)
        self.count += len(entries)

    def prune(self, keep_pages: int) -> int:
        """Drop all but the newest ``keep_pages`` pages (at least the recent one stays)."""
        cut = self.last - max(keep_pages, 1)
        pruned = 0
        for i in range(cut):
            if self._pages[i] is not None:
                self._pages[i] = None
                self._joined.pop(i + 1, None)
                pruned += 1
        return pruned

    def _entries(self, n: int) -> bytes:
        joined = self._joined.get(n)
        if joined is None:
            page = self._pages[n - 1]
            assert page is not None
            joined = b"".join(reversed(page))
            if n in self._closed:
                self._joined[n] = joined
        return joined

    def page(self, n: int | str | None, base_url: str) -> bytes | None:
        """Page ``n`` as an Atom document (``None`` or ``recent``: the recent page; ``first``: the
        oldest page still served); ``None`` if absent/pruned."""
        name = "recent" if n is None else str(n)
        if name == "recent":
            n = self.last
        elif name == "first":
            n = self.first_available
        elif isinstance(n, str):
            return None
        assert isinstance(n, int)
        if not 1 <= n <= self.last or self._pages[n - 1] is None:
            return None
        feed = f"{base_url}{FEED_PATH}"
        links = [("self", f"{feed}/{name}" if name in ("recent", "first") else f"{feed}/{n}")]
        if name in ("recent", "first"):
            links.append(("via", f"{feed}/{n}"))
        if n > 1:
            links.append(("prev-archive", f"{feed}/{n - 1}"))
        if n < self.last:
            links.append(("next-archive", f"{feed}/{n + 1}"))
        head = "".join(
            f"<link rel={quoteattr(rel)} type=\"application/atom+xml\" href={quoteattr(href)}/>" for rel, href in links
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="{ATOM}">'
            f'<title type="text">Events for Ladok3.Uppfoljning</title>{head}'
            f"<id>urn:id:{n}</id>"
            f'<generator uri="http://ladok.se/uppfoljning">Uppfoljning</generator>'
            f"<updated>{self._updated[n - 1]}</updated>"
        ).encode() + self._entries(n) + b"</feed>"
