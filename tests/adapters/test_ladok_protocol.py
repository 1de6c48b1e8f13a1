"""The Ladok adapter against Ladok's real protocol, as the public record shows it: the real feed page
(tests/data/ladok-feed/feed-256259.xml) served at the real path, and the LadokException bodies real
Ladok answers (schemas.ladok.se.xsd; the values seen in go_ladok's mocks, the ati-ladok3 integration
tests and lms2's error handler), each classified as transient, refused or a rule's hinder."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.http import PeerError
from adapters.ladok import LadokAdapter, LadokError, Refused
from brygga.config import PeerConfig
from brygga.records import Student

REAL_PAGE = Path(__file__).resolve().parents[1] / "data/ladok-feed/feed-256259.xml"


def _adapter(url: str, **extra) -> LadokAdapter:
    return LadokAdapter(PeerConfig("ladok", url, extra=extra))


def test_the_real_page_is_read_at_the_real_path_and_its_links_followed(peer):
    url, script = peer
    page_bytes = REAL_PAGE.read_bytes()
    script.then(200, page_bytes, {"Content-Type": "application/atom+xml"})
    ladok = _adapter(url)
    recent = ladok.feed_page()
    assert script.requests[-1][:2] == ("GET", "/uppfoljning/feed/recent")
    assert recent.number == 256259 and recent.next_archive is None
    assert sorted(e.event_type for e in recent.events) == [
        "KurstillfalleTillStatusEvent", "KurstillfalleTillStatusEvent", "UtbildningstillfalleInstalltEvent"]
    assert sum(recent.skipped.values()) + len(recent.events) == 53  # uneven: read as it comes
    # its prev-archive link (an absolute URL on api.mit-integration.ladok.se) is read at this
    # Connection's feed path, on this Connection's host
    ladok.feed_page(url=recent.prev_archive)
    assert script.requests[-1][:2] == ("GET", "/uppfoljning/feed/256258")
    ladok.feed_page(first=True)
    assert script.requests[-1][:2] == ("GET", "/uppfoljning/feed/first")
    ladok.feed_page(12)
    assert script.requests[-1][:2] == ("GET", "/uppfoljning/feed/12")
    # the feed's path is the Connection's setting
    _adapter(url, feed_path="/handelser/feed").feed_page()
    assert script.requests[-1][:2] == ("GET", "/handelser/feed/recent")


def ladok_exception(**fields: str) -> bytes:
    """A ``base:LadokException`` body with the fields in the XSD's order."""
    order = ("Detaljkod", "DetaljkodText", "FelUID", "Felgrupp", "FelgruppText", "Felkategori", "FelkategoriText",
             "FelkallaAttributID", "FelkallaObjektID", "Meddelande")
    inner = "".join(f"<base:{k}>{fields[k]}</base:{k}>" for k in order if k in fields)
    return f'<base:LadokException xmlns:base="http://schemas.ladok.se">{inner}</base:LadokException>'.encode()


APPLIKATIONSFEL = ladok_exception(FelUID="a1b2", Felkategori="commons.fel.kategori.applikationsfel",
                                  FelkategoriText="Generellt fel i applikationen",
                                  Meddelande="java.lang.NullPointerException null")
VALIDERINGSFEL = ladok_exception(Detaljkod="commons.domain.uid", DetaljkodText="Unik identifierare", FelUID="c3d4",
                                 Felgrupp="commons.fel.grupp.felaktigt_format", FelgruppText="Felaktigt format",
                                 Felkategori="commons.fel.kategori.valideringsfel", FelkategoriText="Valideringsfel",
                                 Meddelande="Uid: 6daf0d1e")
SAKERHET = ladok_exception(FelUID="e5f6", Felgrupp="commons.fel.grupp.auktorisering",
                           Felkategori="commons.fel.kategori.sakerhetsovertradelse",
                           FelkategoriText="Säkerhetsöverträdelse", Meddelande="Otillräcklig behörighet")
DOMANREGEL = ladok_exception(Detaljkod="studentinformation.hinder.personnummer.finns",
                             DetaljkodText="Det finns redan en student med detta personnummer", FelUID="g7h8",
                             Felgrupp="commons.fel.grupp.domanregel", FelgruppText="Domänregel",
                             Felkategori="commons.fel.kategori.valideringsfel")
FELAKTIGT_VARDE = ladok_exception(Detaljkod="resultat.examinationsdatum.fore.studiestart", FelUID="i9j0",
                                  DetaljkodText="Examinationsdatum före studiestart",
                                  Felgrupp="commons.fel.grupp.felaktigt_varde",
                                  Felkategori="commons.fel.kategori.valideringsfel")
SAKNAS = ladok_exception(Detaljkod="resultat.fel.detaljkod.utbildningstillfalle", FelUID="k1l2",
                         Felgrupp="commons.fel.grupp.obligatoriskt_varde_saknas",
                         Felkategori="commons.fel.kategori.valideringsfel", Meddelande="Utbildningstillfälle saknas")
REGELRESULTAT = (b'<sd:Regelresultat xmlns:sd="http://schemas.ladok.se/studiedeltagande" '
                 b'xmlns:base="http://schemas.ladok.se"><sd:HinderLista><sd:Hinder>'
                 b'<base:I18nNyckel>studiedeltagande.hinder.redan.paborjat</base:I18nNyckel>'
                 b'<base:Stoppande>true</base:Stoppande><base:Text><base:Benamning><base:Sprakkod>sv</base:Sprakkod>'
                 b'<base:Text>Studenten har redan p\xc3\xa5b\xc3\xb6rjat kursen</base:Text></base:Benamning></base:Text>'
                 b'</sd:Hinder></sd:HinderLista></sd:Regelresultat>')


@pytest.mark.parametrize(("status", "body", "kind", "fel_uid", "words"), [
    (500, APPLIKATIONSFEL, "transient", "a1b2", "Generellt fel i applikationen"),
    (400, VALIDERINGSFEL, "refused", "c3d4", "Unik identifierare"),
    (403, SAKERHET, "refused", "e5f6", "Otillräcklig behörighet"),
    (409, DOMANREGEL, "hinder", "g7h8", "Det finns redan en student"),
    (400, FELAKTIGT_VARDE, "hinder", "i9j0", "Examinationsdatum före studiestart"),
    (404, SAKNAS, "hinder", "k1l2", "Utbildningstillfälle saknas"),
    (409, REGELRESULTAT, "hinder", None, "redan påbörjat"),
    (503, b"<html><body>Service Unavailable</body></html>", "transient", None, "503"),
    (400, b"<html><body>Bad Request</body></html>", "refused", None, "400"),
])
def test_a_ladok_refusal_is_classified_by_its_category_and_group(peer, status, body, kind, fel_uid, words):
    url, script = peer
    script.then(status, body)
    ladok = _adapter(url)
    with pytest.raises(PeerError) as caught:
        ladok.establish(Student("199001011239", "Anna", "Berg"))
    e = caught.value
    if kind == "hinder":
        assert isinstance(e, Refused) and not e.transient and words in e.hinder.text
        assert e.hinder.fel_uid == fel_uid
        assert (fel_uid or e.hinder.key) in e.hinder.describe()
    else:
        assert not isinstance(e, Refused) and e.transient is (kind == "transient")
        assert words in str(e)
        if fel_uid:
            assert isinstance(e, LadokError) and e.fel.fel_uid == fel_uid and f"FelUID {fel_uid}" in str(e)
    assert e.status == status


def test_an_unknown_rule_key_reaches_the_queue_as_ovrigt_with_ladoks_own_words():
    from brygga.flows.admissions import hinder as hinders
    from brygga.records import Hinder as LadokHinder
    from brygga.states import Hinder

    h = LadokHinder("studiedeltagande.hinder.ny.regel.2030", "En regel Brygga inte känner", fel_uid="m3n4")
    code = hinders.of_ladok(h.key)
    assert code == Hinder.OVRIGT
    reason = hinders.reason(code, h.describe())
    assert "En regel Brygga inte känner" in reason and "studiedeltagande.hinder.ny.regel.2030" in reason
    assert "FelUID m3n4" in reason
