import pytest
import requests

from adapters.http import PeerError
from adapters.ladok import FeedGone, LadokAdapter, Refused
from adapters.nya import NyaAdapter, NyaFault
from brygga.connections import PeerConfig
from brygga.records import Student


@pytest.fixture
def ladok(ladok_sim):
    return LadokAdapter(PeerConfig("ladok", ladok_sim.url))


@pytest.fixture
def nya(nya_sim):
    return NyaAdapter(PeerConfig("nya", nya_sim.url))


def test_search_walks_all_pages(ladok, ladok_sim):
    everything = list(ladok.search_tillfallen(limit=5))
    assert len(everything) == len(ladok_sim.state.tillfallen) > 5
    assert len(set(everything)) == len(everything)


def test_feed_walk_and_gone_after_prune(ladok, ladok_sim):
    requests.post(ladok_sim.url + "/sim/feed/generate?n=160", timeout=30).raise_for_status()
    recent = ladok.feed_page()
    assert recent.number is not None and recent.prev_archive
    first = ladok.feed_page(1)
    assert first.prev_archive is None and first.next_archive
    requests.post(ladok_sim.url + "/sim/feed/prune?keep_pages=1", timeout=30).raise_for_status()
    with pytest.raises(FeedGone):
        ladok.feed_page(1)


def test_refusal_carries_the_hinder(ladok):
    from simulators.datagen import people

    (p,) = list(people(1, seed=4242))
    s = ladok.establish(Student(p.personnummer, p.fornamn, p.efternamn))
    assert ladok.student_by_personnummer(p.personnummer).uid == s.uid
    with pytest.raises(Refused) as e:
        ladok.establish(Student(p.personnummer, p.fornamn, p.efternamn))
    assert e.value.hinder.key == "studentinformation.hinder.personnummer.finns" and not e.value.transient
    assert p.personnummer not in str(e.value)  # masked


def test_unknown_student_is_none(ladok):
    assert ladok.student_by_personnummer("198112189876") is None


def test_unreachable_peer_is_transient():
    with pytest.raises(PeerError) as e:
        LadokAdapter(PeerConfig("ladok", "http://127.0.0.1:9", extra={"timeout": 2})).student("x")
    assert e.value.transient


def test_nya_fault_is_permanent_and_named(nya):
    with pytest.raises(NyaFault) as e:
        with nya.call("GetOffers", nya.body("GetOffers", Round="HT1999")):
            pass
    assert e.value.code == "unknown-round" and not e.value.transient


def test_nya_call_streams_reply_to_a_mapping(nya):
    m = nya.mapping("admission")
    with nya.call("GetAdmissions", nya.body("GetAdmissions", Round="HT2027", OnlyAccepted=True)) as stream:
        records = list(m.read(stream))
    assert records and all(r.accepted for r in records)
