import io

import pytest
import requests
from lxml import etree

from brygga import xmlsafe
from brygga.records import AterbudReport, Merit, Offer
from mappings import registry
from mappings.nya.v1 import NS

N = "{%s}" % NS
UID = "11111111-2222-3333-4444-{:012d}"


def _offer(i, **kw):
    base = dict(offer_id=UID.format(i), utbildningskod=f"TDA{i:03d}", tillfalleskod=f"{27000 + i}",
                name_sv=f"Kurs {i}", credits="7.5", start="2027-08-30", end="2028-01-15", studietakt=100,
                places=40, name_en=f"Course {i}", studieort="Göteborg")
    base.update(kw)
    return Offer(**base)


def _soap(body: bytes) -> bytes:
    return (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            + body + b"</soap:Body></soap:Envelope>")


def _call(sim, op: str, body: bytes) -> requests.Response:
    return requests.post(sim.url + "/nya/soap", data=_soap(body), timeout=60,
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"urn:brygga:nya:1#{op}"'})


def test_offer_writer_is_xsd_valid_and_names_the_bad_record():
    m = registry.get("nya", "offer", 1)
    body, errors = m.write([_offer(1), _offer(2, studietakt=150), _offer(3, credits="x"), _offer(4, start="")],
                           round_code="HT2027", request_id="pub-1")
    m.xsd().assertValid(xmlsafe.fromstring(body))
    assert [o.text for o in xmlsafe.fromstring(body).iter(N + "OfferId")] == [UID.format(1)]
    by_id = {e.record_id: e for e in errors}
    assert by_id[UID.format(2)].field == "Studietakt" and "maximum" in by_id[UID.format(2)].rule
    assert by_id[UID.format(3)].field == "Credits"
    assert by_id[UID.format(4)].field == "start" and by_id[UID.format(4)].rule == "required field missing"


def test_xslt_offer_v2_writes_the_same_document_as_v1():
    offers = [_offer(i) for i in range(1, 30)] + [_offer(30, name_en=None, studieort=None, programme_code="TKDAT")]
    b1, e1 = registry.get("nya", "offer", 1).write(offers, round_code="HT2027", request_id="r")
    b2, e2 = registry.get("nya", "offer", 2).write(offers, round_code="HT2027", request_id="r")
    assert e1 == e2 == []
    assert etree.tostring(xmlsafe.fromstring(b1), method="c14n") == etree.tostring(xmlsafe.fromstring(b2), method="c14n")


def test_programme_offer_needs_programme_code():
    m = registry.select("nya", "programme-offer")
    body, errors = m.write([_offer(1, programme_code="TKDAT"), _offer(2)], round_code="HT2027", request_id="p")
    assert [e.field for e in errors] == ["programme_code"]
    assert xmlsafe.fromstring(body).findtext(N + "Kind") == "programme-internal"


def test_offer_round_trip_through_nya(nya_sim):
    m = registry.select("nya", "offer")
    body, errors = m.write([_offer(i) for i in range(100, 105)], round_code="HT2027", request_id="rt-1")
    r = _call(nya_sim, "PublishOffer", body)
    assert r.status_code == 200, r.text
    results = m.read_results(r.content)
    assert set(results) == {UID.format(i) for i in range(100, 105)}
    assert {o for o, _ in results.values()} == {"created"}
    w = registry.select("nya", "offer-withdraw")
    body, _ = w.write([UID.format(100)], round_code="HT2027", reason="Inställt i Ladok", request_id="rt-2")
    r = _call(nya_sim, "WithdrawOffer", body)
    assert w.read_results(r.content) == {UID.format(100): ("withdrawn", None)}


def test_merits_round_trip_and_invalid_personnummer(nya_sim):
    applicant = next(iter(nya_sim.state.applicants_in("HT2027"))) if hasattr(nya_sim.state, "applicants_in") else None
    if applicant is None:
        r = _call(nya_sim, "ListApplicants", b'<ListApplicants xmlns="urn:brygga:nya:1"><Round>HT2027</Round></ListApplicants>')
        applicant = xmlsafe.fromstring(r.content).find(".//" + N + "Personnummer").text
    m = registry.select("nya", "merit")
    merits = [Merit("m-1", applicant, "resultat", "TDA357", "2027-10-20", modul="TEN1", credits="7.5", grade="5"),
              Merit("m-2", "198112189877", "registrering", "TDA357", "2027-08-30")]
    body, errors = m.write(merits, request_id="merit-1")
    assert [(e.record_id, e.field) for e in errors] == [("m-2", "Personnummer")]
    r = _call(nya_sim, "SubmitMerits", body)
    assert m.read_results(r.content) == {"m-1": ("accepted", None)}
    got = _call(nya_sim, "GetApplicantMerits",
                f'<GetApplicantMerits xmlns="urn:brygga:nya:1"><Personnummer>{applicant}</Personnummer></GetApplicantMerits>'.encode())
    ids = [e.text for e in xmlsafe.fromstring(got.content).iter(N + "MeritId")]
    assert ids.count("m-1") == 1


def test_admission_reader_streams_the_whole_reply(nya_sim):
    r = _call(nya_sim, "GetAdmissions", b'<GetAdmissions xmlns="urn:brygga:nya:1"><Round>HT2027</Round></GetAdmissions>')
    assert r.status_code == 200
    count = int(xmlsafe.fromstring(r.content).find(".//" + N + "Count").text)
    m = registry.select("nya", "admission")
    records = list(m.read(io.BytesIO(r.content)))
    assert len(records) == count > 0
    assert all(type(a).__name__ == "Admission" for a in records)
    assert m.next_sequence and m.next_sequence > max(a.sequence for a in records)
    assert any(a.fee_liable for a in records) and any(a.conditions for a in records)
    assert all(a.application_fee_paid is None for a in records if not a.fee_liable)


def test_one_bad_admission_does_not_sink_the_batch(nya_sim):
    r = _call(nya_sim, "GetAdmissions", b'<GetAdmissions xmlns="urn:brygga:nya:1"><Round>HT2027</Round></GetAdmissions>')
    root = xmlsafe.fromstring(r.content)
    admissions = list(root.iter(N + "Admission"))
    bad = admissions[1]
    bad_id = bad.findtext(N + "AdmissionId")
    pn = bad.find(N + "Personnummer")
    pn.text = pn.text[:-1] + str((int(pn.text[-1]) + 1) % 10)  # break the Luhn digit
    admissions[2].remove(admissions[2].find(N + "GivenName"))
    out = list(registry.select("nya", "admission").read(etree.tostring(root)))
    errors = [o for o in out if type(o).__name__ == "RecordError"]
    assert len(out) == len(admissions) and len(errors) == 2
    assert (errors[0].record_id, errors[0].field) == (bad_id, "Personnummer") and "Luhn" in errors[0].rule
    assert (errors[1].field, errors[1].rule) == ("GivenName", "required field missing")


def test_aterbud_and_conditions_readers_and_aterbud_writer(nya_sim):
    adm = next(a for a in registry.select("nya", "admission").read(
        _call(nya_sim, "GetAdmissions", b'<GetAdmissions xmlns="urn:brygga:nya:1"><Round>HT2027</Round></GetAdmissions>').content)
        if a.admitted)
    m = registry.select("nya", "aterbud")
    body, errors = m.write([AterbudReport(adm.admission_id, "2027-08-01", "ladok-handelse-1")],
                           round_code="HT2027", request_id="ab-1")
    assert errors == []
    r = _call(nya_sim, "ReportAterbud", body)
    assert r.status_code == 200, r.text
    assert m.read_results(r.content) == {adm.admission_id: ("registered", None)}
    again = _call(nya_sim, "ReportAterbud", m.write([AterbudReport(adm.admission_id, "2027-08-01")],
                                                    round_code="HT2027", request_id="ab-2")[0])
    outcome, reason = m.read_results(again.content)[adm.admission_id]
    assert outcome == "duplicate" and "already" in reason
    got = list(m.read(_call(nya_sim, "GetAterbud", b'<GetAterbud xmlns="urn:brygga:nya:1"><Round>HT2027</Round></GetAterbud>').content))
    mine = [a for a in got if a.admission_id == adm.admission_id]
    assert len(mine) == 1 and mine[0].origin == "ladok" and mine[0].date == "2027-08-01"
    changes = list(registry.select("nya", "villkor").read(
        _call(nya_sim, "GetConditionChanges", b'<GetConditionChanges xmlns="urn:brygga:nya:1"><Round>HT2027</Round></GetConditionChanges>').content))
    assert all(c.change in ("added", "lifted") for c in changes)


def test_hostile_soap_reply_is_refused():
    with pytest.raises(xmlsafe.UnsafeXML):
        list(registry.select("nya", "admission").read(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'))
