"""One contract suite over every adapter (as the Singer SDK runs one standard suite against every
tap): each peer's adapter, pointed at a peer that answers what the case scripts, must classify it
the same way — a timeout and a 5xx are transient, a 429 is honoured (its Retry-After), another 4xx
is permanent, a 404 means "not there", and a reply that cannot be read, or is another operation's,
is refused naming the peer and the operation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.arkiv import ArchiveAdapter
from adapters.folkbokforing import FolkbokforingAdapter
from adapters.http import PeerError, UnreadableReply, if_found
from adapters.ladok import LadokAdapter
from adapters.nya import NyaAdapter
from adapters.schema import ScheduleAdapter
from brygga.config import PeerConfig
from tests.adapters.conftest import Script


@dataclass
class Case:
    """One adapter and one representative read of it; ``good`` is a reply it accepts, ``other`` a
    well-formed reply of another operation; ``idempotent``: the request may be retried by the client."""

    name: str
    make: Callable[[PeerConfig], Any]
    call: Callable[[Any], Any]
    good: bytes
    other: bytes
    operation: str
    idempotent: bool


LADOK_STUDENT = (b'<si:Student xmlns:si="http://schemas.ladok.se/studentinformation" '
                 b'xmlns:base="http://schemas.ladok.se/base"><base:Uid>u1</base:Uid>'
                 b'<si:Fornamn>A</si:Fornamn><si:Efternamn>B</si:Efternamn>'
                 b'<si:Personnummer>199001011236</si:Personnummer></si:Student>')
NYA_ROUNDS = (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
              b'<ListAdmissionRoundsResponse xmlns="urn:brygga:nya:1"/></soap:Body></soap:Envelope>')
NYA_OTHER = NYA_ROUNDS.replace(b"ListAdmissionRoundsResponse", b"GetOffersResponse")
FOLK = (b'<Personer xmlns="urn:brygga:folkbokforing:1"><EjFunnen><Personnummer>199001011236</Personnummer>'
        b'</EjFunnen></Personer>')

CASES = [
    Case("ladok", lambda p: LadokAdapter(p), lambda a: a.student("u1"), LADOK_STUDENT,
         b'<ui:Utbildningstillfalle xmlns:ui="http://schemas.ladok.se/utbildningsinformation"/>', "student", True),
    Case("nya", lambda p: NyaAdapter(p), lambda a: a.open_rounds(), NYA_ROUNDS, NYA_OTHER, "ListAdmissionRounds",
         False),
    Case("folkbokforing", lambda p: FolkbokforingAdapter(p), lambda a: a.lookup(["199001011236"]), FOLK,
         b'<Personer xmlns="urn:other"/>', "POST /folkbokforing/personer", False),
    Case("schema", lambda p: _timeedit(p), lambda a: next(a.pages()),
         b'{"results": [{"id": "x", "typeId": "utbildningstillfalle", "active": true, "fields": []}], '
         b'"page": 1, "limit": 1000, "totalPages": 1, "totalResults": 1}',
         b'["not", "objects"]', "POST /v1/objects/find", False),
    Case("arkiv", lambda p: ArchiveAdapter(p), lambda a: a.held("pkg-1"), None, b'<Kvittens xmlns="urn:other"/>',
         "GET /arkiv/v1/paket", True),
]


def _timeedit(p: PeerConfig) -> ScheduleAdapter:
    """TimeEdit's adapter with a token already (the script answers the find, not the authentication)."""
    a = ScheduleAdapter(p)
    a._token = "token-from-api-key"
    return a


def _adapter(case: Case, url: str, timeout: float = 5.0) -> Any:
    extra: dict[str, Any] = {"timeout": timeout}
    if case.name == "schema":
        extra.update(format="timeedit", organization_id="org", default_organization="brygga")
    return case.make(PeerConfig(case.name, url, password="key" if case.name == "schema" else None, extra=extra))


def _good(case: Case) -> bytes:
    if case.good is not None:
        return case.good
    import datetime as dt

    from simulators.arkiv.app import receipt  # a real receipt, as the archive writes it

    return receipt("pkg-1", "mottaget", archive_id="A-1", received=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_good_reply_is_read(case, peer):
    url, script = peer
    script.then(200, _good(case), {"Content-Type": "application/json"} if case.name == "schema" else None)
    assert case.call(_adapter(case, url)) is not None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_timeout_is_transient(case, peer):
    url, script = peer
    script.then(200, _good(case), delay=0.8)
    with pytest.raises(PeerError) as e:
        case.call(_adapter(case, url, timeout=0.3))
    assert e.value.transient and e.value.peer == case.name


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_server_error_is_transient(case, status, peer):
    url, script = peer
    script.then(status, b"<html>busy</html>", {"Content-Type": "text/html"})
    with pytest.raises(PeerError) as e:
        case.call(_adapter(case, url, timeout=1))
    assert e.value.transient and e.value.status == status and e.value.peer == case.name


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_429_is_honoured(case, peer):
    """A request the client may repeat waits what Retry-After asks, then succeeds; one it may not
    (a POST) fails transient carrying the wait, which the outbox's backoff honours."""
    url, script = peer
    script.then(429, b"", {"Retry-After": "1"}).then(200, _good(case),
                                                      {"Content-Type": "application/json"} if case.name == "schema" else None)
    adapter = _adapter(case, url)
    if case.idempotent:
        assert case.call(adapter) is not None
        (_, _, first), (_, _, second) = script.requests[:2]
        assert second - first >= 0.95
    else:
        with pytest.raises(PeerError) as e:
            case.call(adapter)
        assert e.value.transient and e.value.status == 429 and e.value.retry_after == 1.0
        assert len(script.requests) == 1


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_another_4xx_is_permanent(case, peer):
    url, script = peer
    script.then(400, b"bad request", {"Content-Type": "text/plain"})
    with pytest.raises(PeerError) as e:
        case.call(_adapter(case, url))
    assert not e.value.transient and e.value.status == 400


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_404_is_not_there(case, peer):
    url, script = peer
    script.then(404, b"", {"Content-Type": "text/plain"})
    assert if_found(case.call, _adapter(case, url)) is None


@pytest.mark.parametrize("body", [b"<not-closed", b"<!DOCTYPE x [<!ENTITY e 'x'>]><x>&e;</x>",
                                  b"<html><body>Logga in</body>"], ids=["cut-short", "dtd", "html-page"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_an_unreadable_reply_is_refused_naming_peer_and_operation(case, body, peer):
    url, script = peer
    script.then(200, body)
    with pytest.raises(UnreadableReply) as e:
        case.call(_adapter(case, url))
    assert e.value.peer == case.name and case.operation in e.value.operation


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_reply_of_another_operation_is_refused(case, peer):
    url, script = peer
    script.then(200, case.other, {"Content-Type": "application/json"} if case.name == "schema" else None)
    with pytest.raises(UnreadableReply) as e:
        case.call(_adapter(case, url))
    assert e.value.peer == case.name and case.operation in e.value.operation
