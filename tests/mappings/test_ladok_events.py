import re
from pathlib import Path

import pytest
import requests

from brygga import xmlsafe
from mappings import registry

# A real Ladok feed page, vendored with its licence (tests/data/ladok-feed/README.md)
REAL_PAGE = Path(__file__).resolve().parents[1] / "data/ladok-feed/feed-256259.xml"


@pytest.fixture
def events():
    return registry.select("ladok", "events")


def test_real_ladok_page_known_events_read_unknown_skipped_and_counted(events):
    page = events.read_page(REAL_PAGE.read_bytes())
    assert page.number == 256259
    assert page.prev_archive.endswith("/feed/256258") and page.next_archive is None
    assert sorted(e.event_type for e in page.events) == [
        "KurstillfalleTillStatusEvent", "KurstillfalleTillStatusEvent", "UtbildningstillfalleInstalltEvent"]
    assert page.errors == []
    assert sum(page.skipped.values()) + len(page.events) == 53
    assert page.skipped["KursTillStatusEvent"] == 36 and page.skipped["KursUppdateradEvent"] == 6
    installt = next(e for e in page.events if e.event_type == "UtbildningstillfalleInstalltEvent")
    assert installt.handelse_uid == "d61ad154-9929-11e7-881d-dc9de7404be3"
    assert installt.fields["UtbildningstillfalleUID"] == "8b944bb6-9929-11e7-881d-dc9de7404be3"
    assert installt.service == "utbildningsinformation"
    # oldest first, although Ladok lists the page newest first
    assert [e.updated for e in page.events] == sorted(e.updated for e in page.events)


def test_one_bad_event_is_reported_and_the_rest_read(events):
    data = REAL_PAGE.read_bytes().replace(
        b"<ui:UtbildningstillfalleUID>8b944bb6-9929-11e7-881d-dc9de7404be3</ui:UtbildningstillfalleUID>\n      </ui:Utb",
        b"\n      </ui:Utb", 1)
    page = events.read_page(data)
    assert len(page.events) == 2
    (err,) = page.errors
    assert (err.record_id, err.field, err.rule) == (
        "d61ad154-9929-11e7-881d-dc9de7404be3", "UtbildningstillfalleUID", "required field missing")


def test_simulator_feed_is_xsd_valid_and_read_in_strict_mode(events, ladok_sim):
    requests.post(ladok_sim.url + "/sim/feed/generate?n=120", timeout=30).raise_for_status()
    r = requests.get(ladok_sim.url + "/uppfoljning/feed/recent", timeout=30)
    page = events.read_page(r.content, strict=True)
    assert page.errors == []
    assert page.events, "generated events are known types"
    walked = 0
    url = page.prev_archive
    while url:  # walk back to page 1; every page validates
        older = events.read_page(requests.get(url, timeout=30).content, strict=True)
        assert older.errors == []
        walked += len(older.events) + sum(older.skipped.values())
        url = older.prev_archive
    assert walked + len(page.events) + sum(page.skipped.values()) >= 120


@pytest.mark.parametrize("payload", [
    b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]><feed>&x;</feed>',
    b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><feed>&b;</feed>',
])
def test_hostile_feed_page_is_refused(events, payload):
    """(The feed follower quarantines a refused page whole: tests/flows/test_merits.py.)"""
    with pytest.raises(xmlsafe.UnsafeXML, match="DOCTYPE"):
        events.read_page(payload)


def _entry_ids(data: bytes) -> list[str]:
    """Atom entry ids in document order (newest first, as Ladok lists them)."""
    feed = xmlsafe.fromstring(data)
    return [e.findtext("{http://www.w3.org/2005/Atom}id") for e in feed.iter("{http://www.w3.org/2005/Atom}entry")]


def test_page_is_oldest_first_by_entry_position_even_when_all_entries_share_one_timestamp(events):
    """Ladok lists a page newest first. When the entries of a page carry the same ``updated`` (one
    millisecond, common when Ladok writes a batch) the order must still be reversed: by position."""
    data = re.sub(rb"(<entry>.*?<updated>)[^<]*(</updated>)", rb"\g<1>2017-09-15T10:00:00.000Z\g<2>",
                  REAL_PAGE.read_bytes(), flags=re.S)
    page = events.read_page(data)
    assert len({e.updated for e in page.events}) == 1
    doc_order = _entry_ids(data)
    assert [eid for eid, _ in page.entries] == doc_order[::-1]
    assert [e.entry_id for e in page.events] == [i for i in doc_order[::-1] if i in {e.entry_id for e in page.events}]
    # the three known events: the UtbildningstillfalleInstalltEvent is the newest (first in the document)
    assert page.events[-1].event_type == "UtbildningstillfalleInstalltEvent"
    assert [e.entry_id for e in events.read_page(REAL_PAGE.read_bytes()).events] == [e.entry_id for e in page.events]


def test_order_is_by_position_not_by_timestamp(events):
    """Timestamps that disagree with the position (clock skew) do not reorder the page."""
    stamps = iter(f"2017-09-15T10:00:{i:02d}.000Z".encode() for i in range(60))  # increasing in document order
    data = re.sub(rb"(<entry>.*?<updated>)[^<]*(</updated>)", lambda m: m.group(1) + next(stamps) + m.group(2),
                  REAL_PAGE.read_bytes(), flags=re.S)
    page = events.read_page(data)
    assert [eid for eid, _ in page.entries] == _entry_ids(data)[::-1]
    assert [e.updated for e in page.events] == sorted((e.updated for e in page.events), reverse=True)


def test_entries_list_every_entry_with_what_it_became(events):
    from mappings.base import RecordError

    data = REAL_PAGE.read_bytes().replace(
        b"<ui:UtbildningstillfalleUID>8b944bb6-9929-11e7-881d-dc9de7404be3</ui:UtbildningstillfalleUID>\n      </ui:Utb",
        b"\n      </ui:Utb", 1)
    page = events.read_page(data)
    kinds = [type(r).__name__ if not isinstance(r, str) else "skipped" for _, r in page.entries]
    assert len(page.entries) == 53 and kinds.count("LadokEvent") == 2 and kinds.count("RecordError") == 1
    assert kinds.count("skipped") == sum(page.skipped.values()) == 50
    (err,) = [r for _, r in page.entries if isinstance(r, RecordError)]
    assert err is page.errors[0]
    assert all(eid for eid, _ in page.entries)


def test_simulator_page_with_equal_timestamps_reads_oldest_first(events):
    """The simulator writes a page within one millisecond: events come back in the order written."""
    from simulators.ladok.feed import Feed
    from simulators.ladok.xml import event

    feed = Feed(page_size=10)
    names = []
    for i in range(7):
        name = "sd:AvbrottEvent"
        el = event(name, [("sd:StudentUID", f"00000000-0000-0000-0000-{i:012d}"),
                          ("sd:UtbildningstillfalleUID", "8b944bb6-9929-11e7-881d-dc9de7404be3")])
        names.append(el.findtext("{http://schemas.ladok.se/events}HandelseUID"))
        feed.append(name, el)
    data = feed.page(None, "http://x")
    data = re.sub(rb"(<entry>.*?<updated>)[^<]*(</updated>)", rb"\g<1>2027-01-01T00:00:00.000Z\g<2>", data, flags=re.S)
    page = events.read_page(data)
    assert {e.updated for e in page.events} == {"2027-01-01T00:00:00.000Z"}
    assert [e.handelse_uid for e in page.events] == names
