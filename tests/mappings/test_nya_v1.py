import io
import pickle
import random

import pytest
import requests
from lxml import etree

from brygga import personnummer as pn
from brygga import xmlsafe
from brygga.records import Admission, AterbudReport, Condition, Merit, Offer
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
    reply = m.read(io.BytesIO(r.content))  # the reply, not the shared mapping, holds its NextSequence
    records = list(reply)
    assert len(records) == count > 0
    assert all(type(a).__name__ == "Admission" for a in records)
    assert reply.next_sequence and reply.next_sequence > max(a.sequence for a in records)
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


# -- the admission reader: fast path and checked path agree; bad records are named ---------------

_GOOD = {
    "AdmissionId": "HT2027-A0000001", "Sequence": "7", "Round": "HT2027", "Personnummer": "198112189876",
    "GivenName": "Ali", "FamilyName": "Lundgren", "OfferId": "8324272d-7f79-4282-9168-690505c61bed",
    "Utbildningskod": "SV296", "Tillfalleskod": "10196", "ProgrammeInternal": "true", "ProgrammeCode": "PROG1",
    "PackageId": "52752407-a30c-4335-bcaa-f2dc4031768c", "ChoiceRank": "1", "Admitted": "true",
    "Accepted": "false", "FeeLiable": "true", "ApplicationFeePaid": "false",
}


def _admission_xml(fields: dict, extra: str = "") -> str:
    body = "".join(f"<{k}/>" if v is None else f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f"<Admission>{body}{extra}</Admission>"


def _reply(*admissions: str) -> bytes:
    return _soap(f'<GetAdmissionsResponse xmlns="{NS}"><Round>HT2027</Round><NextSequence>99</NextSequence>'
                 f"<Count>{len(admissions)}</Count>{''.join(admissions)}</GetAdmissionsResponse>".encode())


def _read_one(fields: dict, extra: str = ""):
    out = list(registry.get("nya", "admission", 1).read(_reply(_admission_xml(fields, extra))))
    assert len(out) == 1
    return out[0]


def _outcome(fn, el):
    try:
        return fn(el)
    except ValueError as e:  # InvalidPersonnummer is a ValueError too
        return (type(e).__name__, str(e))


def _paths_agree(el):
    m = registry.get("nya", "admission", 1)
    fast, checked = _outcome(m._admission, el), _outcome(m._admission_checked, el)
    assert fast == checked, etree.tostring(el)
    return fast


def test_admission_fast_path_reads_what_the_checked_path_reads(nya_sim):
    r = _call(nya_sim, "GetAdmissions", b'<GetAdmissions xmlns="urn:brygga:nya:1"><Round>HT2027</Round></GetAdmissions>')
    admissions = list(xmlsafe.fromstring(r.content).iter(N + "Admission"))
    got = [_paths_agree(el) for el in admissions]
    assert all(type(a).__name__ == "Admission" for a in got)
    assert any(a.conditions for a in got) and any(a.fee_liable for a in got)
    streamed = list(registry.get("nya", "admission", 1).read(r.content))
    assert streamed == got
    assert all(type(a) is type(got[0]) and vars(a) == vars(b) for a, b in zip(streamed, got))


def test_a_good_admission_in_full():
    a = _read_one(_GOOD, "<Condition><Code>V1</Code><Text>Gymnasiebetyg</Text><Lifted> true </Lifted>"
                         "<LiftedDate>2027-08-01</LiftedDate></Condition>"
                         "<Condition><Code>V2</Code><Text>Engelska 6</Text><Lifted>false</Lifted></Condition>"
                         "<Aterbud><AterbudId>AB-1</AterbudId><Date>2027-08-15</Date><Origin>applicant</Origin></Aterbud>")
    assert a == Admission(
        admission_id="HT2027-A0000001", sequence=7, round="HT2027", personnummer="198112189876", given_name="Ali",
        family_name="Lundgren", offer_id="8324272d-7f79-4282-9168-690505c61bed", utbildningskod="SV296",
        tillfalleskod="10196", programme_internal=True, admitted=True, accepted=False, fee_liable=True,
        application_fee_paid=False, programme_code="PROG1", package_id="52752407-a30c-4335-bcaa-f2dc4031768c",
        conditions=(Condition("V1", "Gymnasiebetyg", True, "2027-08-01"), Condition("V2", "Engelska 6", False, None)),
        aterbud_date="2027-08-15")
    assert hash(a) == hash(Admission(**vars(a)))
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(AttributeError):
        a.sequence = 8  # still frozen


def _without(name):
    return {k: v for k, v in _GOOD.items() if k != name}


_REQUIRED_FIELDS = ["AdmissionId", "Sequence", "Round", "Personnummer", "GivenName", "FamilyName", "OfferId",
                    "Utbildningskod", "Tillfalleskod", "FeeLiable"]


@pytest.mark.parametrize("fields, field, rule", [
    *[(_without(f), f, "required field missing") for f in _REQUIRED_FIELDS],
    *[({**_GOOD, f: None}, f, "required field missing") for f in _REQUIRED_FIELDS],  # <GivenName/>
    *[({**_GOOD, f: "  "}, f, "required field missing") for f in _REQUIRED_FIELDS if f != "FeeLiable"],
    ({**_GOOD, "Personnummer": "198112189877"}, "Personnummer", "Luhn"),
    ({**_GOOD, "Personnummer": "199002300008"}, "Personnummer", "impossible birth date"),
    ({**_GOOD, "Personnummer": "19900230-0008"}, "Personnummer", "impossible birth date"),
    ({**_GOOD, "Personnummer": "811218+9877"}, "Personnummer", "Luhn"),
    ({**_GOOD, "Personnummer": "19811218987"}, "Personnummer", "wrong format"),
    ({**_GOOD, "Personnummer": "19811218+9876"}, "Personnummer", "'+' separator"),
    ({**_GOOD, "Admitted": "yes"}, "Admitted", "not a boolean"),
    ({**_GOOD, "FeeLiable": "True"}, "FeeLiable", "not a boolean"),
    ({**_GOOD, "ApplicationFeePaid": "nej"}, "ApplicationFeePaid", "not a boolean"),
    ({**_GOOD, "ProgrammeInternal": "2"}, "ProgrammeInternal", "not a boolean"),
    ({**_GOOD, "Sequence": "12a"}, "Sequence", "not a positive integer"),
    ({**_GOOD, "Sequence": "0"}, "Sequence", "not a positive integer"),
    ({**_GOOD, "Sequence": "-3"}, "Sequence", "not a positive integer"),
    ({**_GOOD, "Sequence": "9" * 5000}, "Sequence", "not a positive integer"),
    # bounds and types of every value that reaches a bounded column
    ({**_GOOD, "Round": "HT2027" + "X" * 40}, "Round", "not an admission round"),
    ({**_GOOD, "Round": "2027"}, "Round", "not an admission round"),
    ({**_GOOD, "GivenName": "A" * 301}, "GivenName", "longer than 300"),
    ({**_GOOD, "FamilyName": "L" * 10_000_000}, "FamilyName", "longer than 300"),
    ({**_GOOD, "Utbildningskod": "SV" * 11}, "Utbildningskod", "longer than 20"),
    ({**_GOOD, "Tillfalleskod": "1" * 21}, "Tillfalleskod", "longer than 20"),
    ({**_GOOD, "ProgrammeCode": "P" * 21}, "ProgrammeCode", "longer than 20"),
    ({**_GOOD, "OfferId": "8324272d-7f79-4282-9168-690505c61bed" + "0" * 30}, "OfferId", "not a Ladok UID"),
    ({**_GOOD, "PackageId": "not-a-uid"}, "PackageId", "not a Ladok UID"),
])
def test_a_bad_admission_is_named_by_record_field_and_rule(fields, field, rule):
    e = _read_one(fields)
    assert type(e).__name__ == "RecordError", e
    if (fields.get("AdmissionId") or "").strip():
        assert (e.record_id, e.has_id) == (fields["AdmissionId"], True)
    else:  # no id: quarantined only, named by its sequence in a form no id can take
        assert (e.record_id, e.has_id) == (f"sequence:{fields['Sequence']}" if fields.get("Sequence") else "?", False)
    assert (e.field, e.kind) == (field, "Admission") and rule in e.rule, e
    assert "9876" not in e.rule and "0008" not in e.rule  # no personnummer in the error


@pytest.mark.parametrize("admission_id", ["HT2027-A" + "0" * 13, "HT2027-A 1", "HT2027/../A1", "A" * 65])
def test_an_admission_without_a_usable_id_is_never_named_by_a_cut_down_id(admission_id):
    e = _read_one({**_GOOD, "AdmissionId": admission_id})
    assert type(e).__name__ == "RecordError" and e.field == "AdmissionId" and not e.has_id
    assert e.record_id.startswith("id:") and len(e.record_id) <= 100
    assert e.record_id != admission_id[:20]  # never truncated into a (maybe real) different id


@pytest.mark.parametrize("date, read", [
    ("2027-08-01", "2027-08-01"), ("2027-08-01+02:00", "2027-08-01"), ("2027-08-01Z", "2027-08-01"),
    (" 2027-08-01 ", "2027-08-01"), ("2027-02-30", None), ("not-a-date", None), ("2027-8-1", None),
    ("2027-08-01T10:00:00", None), ("2027-08-01" + "+02:00" * 1000, None),
])
def test_aterbud_and_lifted_dates_are_calendar_days(date, read):
    a = _read_one(_GOOD, f"<Aterbud><AterbudId>AB-1</AterbudId><Date>{date}</Date><Origin>applicant</Origin></Aterbud>")
    c = _read_one(_GOOD, f"<Condition><Code>V1</Code><Text>t</Text><Lifted>true</Lifted><LiftedDate>{date}</LiftedDate></Condition>")
    if read is None:
        assert (a.field, c.field) == ("Aterbud/Date", "LiftedDate") and "not a date" in a.rule, (a, c)
        assert len(a.rule) < 100
    else:
        assert (a.aterbud_date, c.conditions[0].lifted_date) == (read, read)


def test_condition_codes_and_texts_are_bounded():
    e = _read_one(_GOOD, f"<Condition><Code>{'V' * 21}</Code><Text>t</Text><Lifted>false</Lifted></Condition>")
    assert (e.field, e.rule) == ("Code", "longer than 20 characters")
    e = _read_one(_GOOD, f"<Condition><Code>V1</Code><Text>{'t' * 301}</Text><Lifted>false</Lifted></Condition>")
    assert (e.field, e.rule) == ("Text", "longer than 300 characters")


def test_a_bad_condition_is_named():
    e = _read_one(_GOOD, "<Condition><Text>Gymnasiebetyg</Text><Lifted>false</Lifted></Condition>")
    assert (e.record_id, e.field, e.rule) == (_GOOD["AdmissionId"], "Code", "required field missing")
    e = _read_one(_GOOD, "<Condition><Code>V1</Code><Text>x</Text><Lifted>ja</Lifted></Condition>")
    assert (e.field, e.rule) == ("Lifted", "not a boolean: 'ja'")


@pytest.mark.parametrize("fields, check", [
    ({**_GOOD, "Personnummer": " 19811218-9876 "}, lambda a: a.personnummer == "198112189876"),
    ({**_GOOD, "Personnummer": "811218-9876"}, lambda a: a.personnummer == "198112189876"),
    ({**_GOOD, "Personnummer": pn.with_check_digit("19810278123")},
     lambda a: a.personnummer == pn.with_check_digit("19810278123")),  # samordningsnummer
    ({**_GOOD, "Personnummer": pn.with_check_digit("20000229123")}, lambda a: a.personnummer[:8] == "20000229"),
    ({**_GOOD, "Admitted": " 1 ", "Accepted": "0", "ProgrammeInternal": "\nfalse\n"},
     lambda a: (a.admitted, a.accepted, a.programme_internal) == (True, False, False)),
    ({**_GOOD, "Sequence": " +007 "}, lambda a: a.sequence == 7),
    ({**_GOOD, "GivenName": "  Ali  "}, lambda a: a.given_name == "Ali"),
    (_without("ApplicationFeePaid"), lambda a: a.application_fee_paid is None),
    ({**_without("ProgrammeCode"), "Admitted": None}, lambda a: a.programme_code is None and a.admitted is False),
])
def test_admissions_off_the_fast_path_are_still_read(fields, check):
    a = _read_one(fields)
    assert type(a).__name__ == "Admission", a
    assert check(a)


def test_fields_from_another_namespace_do_not_count():
    e = _read_one(_without("GivenName"), '<x:GivenName xmlns:x="urn:brygga:nya:X">Ali</x:GivenName>')
    assert (e.field, e.rule) == ("GivenName", "required field missing")
    a = _read_one(_GOOD, '<x:Condition xmlns:x="urn:brygga:nya:X"><x:Text>t</x:Text></x:Condition>')
    assert type(a).__name__ == "Admission" and a.conditions == ()


def test_mutated_admissions_read_the_same_on_both_paths():
    rnd = random.Random(11)
    values = ["", " ", None, "true", "false", "1", "0", " true", "TRUE", "yes", "7", "+7", "0", "x", "198112189876",
              "198112189877", "811218-9876", "199002300008", pn.with_check_digit("19810278123")]
    base = etree.fromstring(_admission_xml(_GOOD, "<Condition><Code>V</Code><Text>t</Text><Lifted>true</Lifted>"
                                                  "</Condition>").replace("<Admission>", f'<Admission xmlns="{NS}">'))
    outcomes = set()
    for _ in range(3000):
        el = etree.fromstring(etree.tostring(base))
        for _ in range(rnd.randint(1, 3)):
            child = rnd.choice(list(el))
            if rnd.random() < 0.2:
                el.remove(child)
            else:
                child.text = rnd.choice(values)
        got = _paths_agree(el)
        outcomes.add(type(got).__name__ if not isinstance(got, tuple) else got[1].partition(":")[0])
    assert "Admission" in outcomes and "Personnummer" in outcomes and "FeeLiable" in outcomes


def test_one_bad_admission_among_many_good_ones():
    good = [_admission_xml({**_GOOD, "AdmissionId": f"A{i}", "Sequence": str(i + 1)}) for i in range(200)]
    good[57] = _admission_xml({**_GOOD, "AdmissionId": "A57", "Sequence": "58", "Personnummer": "199002300008"})
    good[120] = _admission_xml({**_GOOD, "AdmissionId": "A120", "Sequence": "121", "Accepted": "kanske"})
    m = registry.get("nya", "admission", 1)
    reply = m.read(io.BytesIO(_reply(*good)))
    out = list(reply)
    assert len(out) == 200 and reply.next_sequence == 99
    errors = [(o.record_id, o.field) for o in out if type(o).__name__ == "RecordError"]
    assert errors == [("A57", "Personnummer"), ("A120", "Accepted")]
    assert [o.sequence for o in out if type(o).__name__ == "Admission"] == [i + 1 for i in range(200) if i not in (57, 120)]
