from pathlib import Path

import pytest
import requests

from brygga import xmlsafe
from brygga.intake import read_or_quarantine
from brygga.store.models import Quarantine
from mappings import registry

# shared/ lies beside the checkout (in development and in CI)
REAL_PAGE = Path(__file__).resolve().parents[3] / "shared/reference/ladok-feed/feed-256259.xml"


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
    r = requests.get(ladok_sim.url + "/handelser/feed/recent", timeout=30)
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
def test_hostile_feed_page_is_refused_and_quarantined(events, store, payload):
    with pytest.raises(xmlsafe.UnsafeXML):
        events.read_page(payload)
    with store.transaction() as s:
        assert read_or_quarantine(s, source="ladok", message_id="feed/9", kind="feed-page",
                                  payload=payload, read=events.read_page) is None
    with store.transaction() as s:
        q = s.query(Quarantine).one()
        assert q.message_id == "feed/9" and "DOCTYPE" in q.reason and q.payload.startswith("<?xml")
