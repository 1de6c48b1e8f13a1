"""folkbokforing.person.v1 against the population-register simulator over HTTP."""

import pytest
from lxml import etree

from adapters.folkbokforing import FolkbokforingAdapter
from adapters.http import PeerError
from brygga import personnummer as pnr_mod
from brygga.connections import PeerConfig
from mappings import registry
from mappings.base import RecordError
from simulators._server import serve_in_thread


@pytest.fixture(scope="module")
def register():
    from simulators.folkbokforing.app import create_app
    from simulators.folkbokforing.state import FolkbokforingState

    state = FolkbokforingState(seed=5, people=300)
    with serve_in_thread(create_app(state)) as srv:
        yield state, FolkbokforingAdapter(PeerConfig("folkbokforing", srv.url))


def test_batch_lookup_found_protected_unknown_invalid_in_order(register):
    state, folk = register
    people = state.all()
    plain = next(p for p in people if not p.skyddad)
    protected = next(p for p in people if p.skyddad)
    unknown = next(pnr_mod.with_check_digit(f"19800101{n:03d}") for n in range(100, 999)
                   if pnr_mod.with_check_digit(f"19800101{n:03d}") not in state)
    invalid = plain.personnummer[:-1] + str((int(plain.personnummer[-1]) + 1) % 10)
    got = folk.lookup([plain.personnummer, protected.personnummer, unknown, invalid])
    assert got[plain.personnummer].address.postnummer == plain.adress.postnummer
    assert got[protected.personnummer].protected and got[protected.personnummer].address is None
    assert got[unknown] is None
    assert isinstance(got[invalid], RecordError) and "Luhn" in got[invalid].rule


def test_a_reply_answering_another_number_is_refused():
    m = registry.select("folkbokforing", "person")
    n = "{urn:brygga:folkbokforing:1}"
    root = etree.Element(n + "Personer")
    etree.SubElement(root, n + "Antal").text = "1"
    e = etree.SubElement(root, n + "EjFunnen")
    etree.SubElement(e, n + "Personnummer").text = "199001011239"
    with pytest.raises(ValueError, match="another number"):
        list(m.read_batch(etree.tostring(root), ["198001011230"]))
    assert list(m.read_batch(etree.tostring(root), ["199001011239"])) == [("199001011239", None)]


def test_request_is_valid_against_the_xsd():
    m = registry.select("folkbokforing", "person")
    assert m.xsd().validate(etree.fromstring(m.write_batch(["199001011239", "198001011230"])))


def test_unreachable_register_is_a_transient_peer_error():
    from adapters.http import session

    folk = FolkbokforingAdapter(PeerConfig("folkbokforing", "http://127.0.0.1:9"))
    folk.http = session(folk.peer, retries=False)
    with pytest.raises(PeerError) as e:
        folk.lookup(["199001011239"])
    assert e.value.transient
