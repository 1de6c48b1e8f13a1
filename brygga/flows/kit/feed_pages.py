"""Reading Ladok's Atom feed as pages: a page or None when pruned, the oldest page still served,
the pages along ``next-archive`` (optionally read ahead in a thread) and a page's entries after a
position. The feed follower (:mod:`brygga.flows.kit.feed`) is built on these."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator
from typing import Any

from adapters.ladok import FeedGone, UnreadablePage
from brygga.flows.ports import Ladok
from brygga.records import FeedPage

Entry = tuple[str, Any]  # (Atom entry id, LadokEvent | RecordError | name of a skipped event type)


def page_or_none(ladok: Ladok, number: int) -> FeedPage | None:
    """Archive page ``number``, or None when the feed has pruned it."""
    try:
        return ladok.feed_page(number)
    except FeedGone:
        return None


def oldest_available(ladok: Ladok) -> FeedPage:
    """The oldest archive page the feed still serves.

    Walks back from ``recent`` along ``prev-archive``, in doubling steps (pages are numbered, so
    page n-k is ``feed/{n-k}``), until a page is gone or page 1 is reached, then bisects between
    the last page found and the first gone: O(log n) page reads instead of one per page."""
    recent = ladok.feed_page()
    newest = recent.number or 1
    found, found_page, gone = newest, None, 0
    step = 1
    while found > 1:
        probe = max(1, found - step)
        p = page_or_none(ladok, probe)
        if p is None:
            gone = probe
            break
        found, found_page = probe, p
        step *= 2
    while gone and found - gone > 1:  # invariant: `gone` is pruned, `found` is available
        mid = (gone + found) // 2
        p = page_or_none(ladok, mid)
        if p is None:
            gone = mid
        else:
            found, found_page = mid, p
    if found_page is None:
        found_page = page_or_none(ladok, found) or recent
    return found_page


_END = object()


def pages(ladok: Ladok, first: FeedPage, *, max_pages: int, ahead: int = 0) -> Generator[FeedPage, None, None]:
    """``first``, then the pages along ``next-archive`` (at most ``max_pages`` in all).

    With ``ahead`` > 0 a thread fetches and parses up to ``ahead`` pages in advance while the
    caller processes the current one (the network round trip and lxml's parse overlap the flow's
    work). Errors (``FeedGone``, ``PeerError``) reach the caller when it asks for that page. Close
    the generator (or exhaust it) to stop the thread; the pages it read ahead are dropped, which
    is safe: nothing is committed for a page before the caller has processed it."""
    yield first
    if ahead <= 0:
        page, n = first, 1
        while page.next_archive and n < max_pages:
            page = ladok.feed_page(url=page.next_archive)
            n += 1
            yield page
        return
    q: queue.Queue[Any] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def work(url: str | None) -> None:
        n = 1
        try:
            while url and n < max_pages and not stop.is_set():
                page = ladok.feed_page(url=url)
                n += 1
                put(page)
                url = page.next_archive
            put(_END)
        except BaseException as e:  # handed to the caller, raised where it reads that page
            put(e)

    worker = threading.Thread(target=work, args=(first.next_archive,), daemon=True, name="feed-read-ahead")
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=2)


def archived(ladok: Ladok, number: int) -> bool:
    """Whether page ``number`` is an archive page (a later one exists): it will never change."""
    try:
        return page_or_none(ladok, number + 1) is not None
    except UnreadablePage:
        return True


def page_entries(page: FeedPage, resume_after: str | None) -> tuple[list[Entry], str | None]:
    """The page's entries (oldest first) after ``resume_after`` and the id of its last entry.

    ``ladok.events.v1`` lists every entry with what it became (event, RecordError, or the name of
    a skipped type), so the checkpoint can stand on the page's last entry whatever its type. A
    mapping that gives only events falls back to them. When nothing is cut the page's own list is
    returned (``Batch.add`` relies on that)."""
    entries = getattr(page, "entries", None)
    if entries is None:
        entries = [(e.entry_id, e) for e in page.events]
        if resume_after is None:
            entries = entries + [("", err) for err in page.errors] + [
                ("", t) for t, n in page.skipped.items() for _ in range(n)]
    last = next((eid for eid, _ in reversed(entries) if eid), None)
    if resume_after:
        for i in range(len(entries) - 1, -1, -1):
            if entries[i][0] == resume_after:
                return entries[i + 1:], last
    return entries, last
