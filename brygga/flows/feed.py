"""Positions in Ladok's Atom feed, shared by the flows that follow it (merits, återbud)."""

from __future__ import annotations

from adapters.ladok import FeedGone, LadokAdapter
from brygga.records import FeedPage


def page_or_none(ladok: LadokAdapter, number: int) -> FeedPage | None:
    """Archive page ``number``, or None when the feed has pruned it."""
    try:
        return ladok.feed_page(number)
    except FeedGone:
        return None


def oldest_available(ladok: LadokAdapter) -> FeedPage:
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
