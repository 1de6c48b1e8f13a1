"""Population register simulator over real HTTP: lookups, protection, errors, batch, XSD validity."""

from __future__ import annotations

import itertools
import time

import pytest

from brygga import personnummer as pnr_mod
from brygga import xmlsafe
from simulators import datagen
from simulators.folkbokforing import FolkbokforingState, create_app
from simulators.folkbokforing.app import NS, SCHEMA_PATH

pytestmark = pytest.mark.integration

SEED = 7
PEOPLE = 400
Q = {"f": NS}


@pytest.fixture(scope="module")
def state():
    return FolkbokforingState(seed=SEED, people=PEOPLE)


@pytest.fixture(autouse=True)
def _fresh(state):
    state.reset(seed=SEED, people=PEOPLE)
    yield


def _seeded():
    return list(datagen.people(PEOPLE, SEED))


def _parse_valid(resp, schema):
    assert resp.headers["content-type"].startswith("application/xml")
    root = xmlsafe.fromstring(resp.content)
    assert schema.validate(root), schema.error_log
    return root


def _unused_valid_pnr(state) -> str:
    for serial in itertools.count(100):
        pnr = pnr_mod.with_check_digit(f"19700101{serial:03d}")
        if pnr not in state:
            return pnr
    raise AssertionError("unreachable")


def test_seed_matches_datagen(state):
    assert len(state) == PEOPLE
    assert {p.personnummer for p in _seeded()} == {r.personnummer for r in state.all()}


def test_lookup_person_with_address(server, http, schema):
    p = next(p for p in _seeded() if not p.skyddad)
    r = http.get(f"{server.url}/folkbokforing/person/{p.personnummer}", timeout=5)
    assert r.status_code == 200
    root = _parse_valid(r, schema)
    assert root.tag == f"{{{NS}}}Person"
    assert root.findtext("f:Personnummer", namespaces=Q) == p.personnummer
    assert root.findtext("f:Fornamn", namespaces=Q) == p.fornamn
    assert root.findtext("f:Efternamn", namespaces=Q) == p.efternamn
    assert root.findtext("f:Sekretessmarkering", namespaces=Q) == "false"
    assert root.findtext("f:SkyddadFolkbokforing", namespaces=Q) == "false"
    adr = root.find("f:Folkbokforingsadress", Q)
    assert adr is not None
    assert adr.findtext("f:Utdelningsadress", namespaces=Q) == p.address.utdelningsadress
    assert adr.findtext("f:Postnummer", namespaces=Q) == p.address.postnummer
    assert adr.findtext("f:Postort", namespaces=Q) == p.address.postort


def test_lookup_accepts_other_forms(server, http, schema):
    p = _seeded()[0]
    dashed = f"{p.personnummer[:8]}-{p.personnummer[8:]}"
    r = http.get(f"{server.url}/folkbokforing/person/{dashed}", timeout=5)
    assert r.status_code == 200
    assert _parse_valid(r, schema).findtext("f:Personnummer", namespaces=Q) == p.personnummer


def test_samordningsnummer_lookup(server, http, state, schema):
    pnr = pnr_mod.with_check_digit("19900175123")  # day 15 + 60
    assert pnr_mod.parse(pnr).is_samordningsnummer
    r = http.post(
        f"{server.url}/sim/personer",
        json={"personnummer": pnr, "fornamn": "Ali", "efternamn": "Hassan",
              "adress": {"utdelningsadress": "Storgatan 1", "postnummer": "111 22", "postort": "STOCKHOLM"}},
        timeout=5,
    )
    assert r.status_code == 201, r.text
    r = http.get(f"{server.url}/folkbokforing/person/{pnr}", timeout=5)
    assert r.status_code == 200
    root = _parse_valid(r, schema)
    assert root.findtext("f:Samordningsnummer", namespaces=Q) == "true"
    assert root.findtext("f:Folkbokforingsadress/f:Postnummer", namespaces=Q) == "11122"


def test_seeded_protected_person_has_no_address(server, http, schema):
    # datagen(seed) marks ~1 %; take a protected one if the seed has it, else make one via /sim/.
    protected = [p for p in _seeded() if p.skyddad]
    assert protected, "seed 7 / 400 people is expected to contain a protected person"
    p = protected[0]
    r = http.get(f"{server.url}/folkbokforing/person/{p.personnummer}", timeout=5)
    assert r.status_code == 200
    root = _parse_valid(r, schema)
    assert root.findtext("f:Sekretessmarkering", namespaces=Q) == "true"
    assert root.find("f:Folkbokforingsadress", Q) is None
    assert b"Folkbokforingsadress" not in r.content and b"Utdelningsadress" not in r.content


@pytest.mark.parametrize("flag", ["sekretessmarkering", "skyddad_folkbokforing", "skyddad"])
def test_marking_protected_hides_address(server, http, schema, flag):
    p = next(p for p in _seeded() if not p.skyddad)
    r = http.post(f"{server.url}/sim/personer", json={"personnummer": p.personnummer, flag: True}, timeout=5)
    assert r.status_code == 200, r.text
    assert r.json()["adress"]["postort"] == p.address.postort  # still held by the register
    r = http.get(f"{server.url}/folkbokforing/person/{p.personnummer}", timeout=5)
    root = _parse_valid(r, schema)
    assert root.find("f:Folkbokforingsadress", Q) is None
    assert p.address.utdelningsadress.encode() not in r.content
    expected_tag = "SkyddadFolkbokforing" if flag == "skyddad_folkbokforing" else "Sekretessmarkering"
    assert root.findtext(f"f:{expected_tag}", namespaces=Q) == "true"
    # lifting the marking discloses the address again
    http.put(f"{server.url}/sim/personer/{p.personnummer}",
             json={"sekretessmarkering": False, "skyddad_folkbokforing": False}, timeout=5).raise_for_status()
    root = _parse_valid(http.get(f"{server.url}/folkbokforing/person/{p.personnummer}", timeout=5), schema)
    assert root.findtext("f:Folkbokforingsadress/f:Postort", namespaces=Q) == p.address.postort


def test_unknown_person_404(server, http, state, schema):
    pnr = _unused_valid_pnr(state)
    r = http.get(f"{server.url}/folkbokforing/person/{pnr}", timeout=5)
    assert r.status_code == 404
    root = _parse_valid(r, schema)
    assert root.tag == f"{{{NS}}}Fel"
    assert root.findtext("f:Kod", namespaces=Q) == "person-saknas"


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("199001011235", "Luhn"),  # 19900101-1234 has check digit ... not 5
        ("19901301" + "1234", "birth date"),  # month 13
        ("19900230" + "1234", "birth date"),  # 30 February
        ("19900195" + "1234", "birth date"),  # samordningsnummer day 35
        ("abc", "format"),
        ("19900101123", "format"),  # 11 digits
        ("199001011234567", "format"),
    ],
)
def test_invalid_personnummer_400(server, http, schema, raw, reason):
    if reason == "Luhn":
        good = pnr_mod.with_check_digit(raw[:11])
        raw = raw[:11] + str((int(good[11]) + 1) % 10)
    r = http.get(f"{server.url}/folkbokforing/person/{raw}", timeout=5)
    assert r.status_code == 400
    root = _parse_valid(r, schema)
    assert root.findtext("f:Kod", namespaces=Q) == "ogiltigt-personnummer"
    assert reason in root.findtext("f:Meddelande", namespaces=Q)


def test_batch_json(server, http, state, schema):
    seeded = _seeded()
    unknown = _unused_valid_pnr(state)
    asked = [seeded[0].personnummer, unknown, "19900101-0000", seeded[1].personnummer]
    r = http.post(f"{server.url}/folkbokforing/personer", json=asked, timeout=5)
    assert r.status_code == 200
    root = _parse_valid(r, schema)
    assert root.tag == f"{{{NS}}}Personer"
    assert root.findtext("f:Antal", namespaces=Q) == "4"
    entries = [el for el in root if el.tag != f"{{{NS}}}Antal"]
    assert [etree_local(el) for el in entries] == ["Person", "EjFunnen", "Ogiltig", "Person"]
    assert entries[0].findtext("f:Personnummer", namespaces=Q) == seeded[0].personnummer
    assert entries[1].findtext("f:Personnummer", namespaces=Q) == unknown
    assert "Luhn" in entries[2].findtext("f:Orsak", namespaces=Q)
    assert entries[2].findtext("f:Indata", namespaces=Q) == "19900101-****"  # never echoed in full
    assert entries[3].findtext("f:Personnummer", namespaces=Q) == seeded[1].personnummer


def test_batch_xml_and_object_body(server, http, schema):
    seeded = _seeded()
    body = (
        f'<?xml version="1.0"?><PersonerFraga xmlns="{NS}">'
        + "".join(f"<Personnummer>{p.personnummer}</Personnummer>" for p in seeded[:3])
        + "</PersonerFraga>"
    ).encode()
    fraga = xmlsafe.fromstring(body)
    assert xmlsafe.load_schema(SCHEMA_PATH).validate(fraga)
    r = http.post(f"{server.url}/folkbokforing/personer", data=body,
                  headers={"Content-Type": "application/xml"}, timeout=5)
    assert r.status_code == 200, r.text
    root = _parse_valid(r, schema)
    assert [el.findtext("f:Personnummer", namespaces=Q) for el in root.findall("f:Person", Q)] == [
        p.personnummer for p in seeded[:3]
    ]
    r = http.post(f"{server.url}/folkbokforing/personer",
                  json={"personnummer": [seeded[5].personnummer]}, timeout=5)
    assert len(_parse_valid(r, schema).findall("f:Person", Q)) == 1


def test_batch_protected_has_no_address(server, http, schema):
    p = next(p for p in _seeded() if p.skyddad)
    r = http.post(f"{server.url}/folkbokforing/personer", json=[p.personnummer], timeout=5)
    root = _parse_valid(r, schema)
    assert root.find("f:Person/f:Folkbokforingsadress", Q) is None


def test_batch_full_1000_and_limit(server, http, state, schema):
    everyone = [r.personnummer for r in state.all()]
    asked = (everyone * 3)[:1000]
    t0 = time.monotonic()
    r = http.post(f"{server.url}/folkbokforing/personer", json=asked, timeout=30)
    assert r.status_code == 200
    root = _parse_valid(r, schema)
    assert len(root.findall("f:Person", Q)) == 1000
    assert time.monotonic() - t0 < 10
    r = http.post(f"{server.url}/folkbokforing/personer", json=asked + [asked[0]], timeout=30)
    assert r.status_code == 400
    assert _parse_valid(r, schema).findtext("f:Kod", namespaces=Q) == "for-manga"


def test_batch_rejects_doctype_and_bad_bodies(server, http, schema):
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<PersonerFraga xmlns="urn:brygga:folkbokforing:1"><Personnummer>&e;</Personnummer></PersonerFraga>'
    )
    r = http.post(f"{server.url}/folkbokforing/personer", data=evil,
                  headers={"Content-Type": "application/xml"}, timeout=5)
    assert r.status_code == 400
    assert _parse_valid(r, schema).findtext("f:Kod", namespaces=Q) == "osaker-xml"
    for body, ct in [(b"<oops", "application/xml"), (b"{not json", "application/json"),
                     (b'{"personnummer": 5}', "application/json"), (b"<Other/>", "application/xml")]:
        r = http.post(f"{server.url}/folkbokforing/personer", data=body, headers={"Content-Type": ct}, timeout=5)
        assert r.status_code == 400, body
        _parse_valid(r, schema)


def test_control_add_update_delete_reset(server, http, state):
    pnr = _unused_valid_pnr(state)
    base = f"{server.url}/sim/personer"
    assert http.post(base, json={"personnummer": pnr}, timeout=5).status_code == 400  # names missing
    r = http.put(f"{base}/{pnr}", json={"fornamn": "Eva", "efternamn": "Berg", "skyddad_folkbokforing": True}, timeout=5)
    assert r.status_code == 201 and r.json()["skyddad_folkbokforing"] is True
    r = http.put(f"{base}/{pnr}", json={"efternamn": "Lind"}, timeout=5)
    assert r.status_code == 200 and r.json()["efternamn"] == "Lind" and r.json()["fornamn"] == "Eva"
    assert http.get(f"{base}/{pnr}", timeout=5).json()["efternamn"] == "Lind"
    bad = http.put(f"{base}/{pnr}", json={"adress": {"utdelningsadress": "X 1", "postnummer": "abc", "postort": "Y"}}, timeout=5)
    assert bad.status_code == 400 and "postnummer" in bad.json()["error"]
    assert http.put(f"{base}/{pnr}", json={"skyddad": "yes"}, timeout=5).status_code == 400
    assert http.get(f"{server.url}/sim/stats", timeout=5).json()["people"] == PEOPLE + 1
    r = http.post(f"{server.url}/sim/reset", timeout=5)
    assert r.json() == {"seed": SEED, "people": PEOPLE}
    assert http.get(f"{server.url}/folkbokforing/person/{pnr}", timeout=5).status_code == 404
    # delete a seeded person
    first = _seeded()[0].personnummer
    assert http.delete(f"{base}/{first}", timeout=5).status_code == 204
    assert http.get(f"{server.url}/folkbokforing/person/{first}", timeout=5).status_code == 404
    assert http.delete(f"{base}/{first}", timeout=5).status_code == 404
    # reset to another seed/size
    r = http.post(f"{server.url}/sim/reset", json={"seed": 3, "people": 10}, timeout=5)
    assert r.json() == {"seed": 3, "people": 10}
    assert http.get(f"{server.url}/sim/health", timeout=5).json() == {"status": "ok", "people": 10}


def test_every_seeded_person_is_schema_valid(state, schema):
    from simulators.folkbokforing.app import batch_element, person_element

    for rec in state.all():
        el = person_element(rec)
        assert schema.validate(el), schema.error_log
        if rec.skyddad:
            assert el.find("f:Folkbokforingsadress", Q) is None
    assert schema.validate(batch_element(state, [r.personnummer for r in state.all()][:1000]))


def etree_local(el) -> str:
    return el.tag.rsplit("}", 1)[-1]
