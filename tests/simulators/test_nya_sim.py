"""NyA SOAP simulator over real HTTP: zeep round-trips of every operation, idempotency, faults,
selection rules, XSD validity of what the server sends, and a 20k-admission GetAdmissions."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from decimal import Decimal

import pytest
import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault

from brygga import personnummer as pnr_mod
from brygga import xmlsafe
from simulators import datagen
from simulators.nya import NyaState, create_app, seed
from simulators.nya.service import SCHEMA_PATH, WSDL_PATH
from simulators.nya.soap import NS, SOAP_ENV

pytestmark = pytest.mark.integration

Q = {"n": NS, "soap": SOAP_ENV}
ADM = f"{{{NS}}}Admission"


class RecordingTransport(zeep.Transport):
    """Keeps the raw bytes of the last response so tests can validate exactly what the server sent."""

    last: requests.Response | None = None

    def post(self, address, message, headers):
        self.last = super().post(address, message, headers)
        return self.last


@pytest.fixture(scope="module")
def state():
    return NyaState()


@pytest.fixture(scope="module")
def transport():
    return RecordingTransport()


@pytest.fixture(scope="module")
def client(server, transport):
    return zeep.Client(server.url + "/nya/soap?wsdl", transport=transport)


@pytest.fixture(autouse=True)
def _fresh(state):
    state.reset()
    seed(state, 1)


@pytest.fixture
def sent(transport, schema):
    """Returns the validated body element of the last response."""

    def check() -> etree._Element:
        root = xmlsafe.fromstring(transport.last.content)
        body = root.find("soap:Body", Q)[0]
        if body.tag == f"{{{SOAP_ENV}}}Fault":
            body = body.find("detail/n:FaultDetail", Q)
        schema.assertValid(body)
        return body

    return check


def offer(i: int, places: int = 10, **kw) -> dict:
    d = dict(OfferId=str(uuid.UUID(int=i, version=4)), Utbildningskod=f"KURS{i:02d}", Tillfalleskod=f"{10000 + i}",
             NameSv=f"Kurs {i}", NameEn=f"Course {i}", Credits=Decimal("7.5"),
             StudyPeriodStart=dt.date(2027, 8, 30), StudyPeriodEnd=dt.date(2027, 11, 1), Studieort="Umeå",
             Studietakt=100, Places=places)
    d.update(kw)
    return d


def people(n: int, seed_: int = 3) -> list[datagen.Person]:
    return list(datagen.people(n, seed_))


def add_applicants(http, server, applicants: list[dict], round_="HT2027") -> None:
    r = http.post(f"{server.url}/sim/rounds/{round_}/applicants", json={"applicants": applicants})
    assert r.status_code == 200, r.text


def applicant(p: datagen.Person, choices: list[str], score: float = 10, **kw) -> dict:
    return dict(personnummer=p.personnummer, given_name=p.fornamn, family_name=p.efternamn, choices=choices,
                score=score, **kw)


def raw_call(http, server, body_xml: str, action: str | None = None) -> requests.Response:
    env = f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{body_xml}</soap:Body></soap:Envelope>'
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if action is not None:
        headers["SOAPAction"] = action
    return http.post(server.url + "/nya/soap", data=env.encode(), headers=headers)


def zeep_fault(client, resp: requests.Response) -> Fault:
    """Decode a raw HTTP reply the way zeep does for a real call; returns the Fault it raises."""
    binding = client.service._binding
    with pytest.raises(Fault) as exc:
        binding.process_reply(client, binding.get("ListAdmissionRounds"), resp)
    return exc.value


def fault_code(f: Fault) -> str:
    return f.detail.find("n:FaultDetail/n:Code", Q).text


# -- WSDL / XSD -------------------------------------------------------------------------------


def test_wsdl_is_served_with_own_address_and_importable_xsd(server, http, client):
    r = http.get(server.url + "/nya/soap?wsdl")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    doc = xmlsafe.fromstring(r.content)
    loc = doc.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
    assert loc == server.url + "/nya/soap"
    assert http.get(server.url + "/nya/nya-1.xsd").content == SCHEMA_PATH.read_bytes()
    assert http.get(server.url + "/nya/soap").status_code == 400
    assert client.service._binding_options["address"] == loc
    # the static WSDL also loads from disk (relative schemaLocation)
    ops = set(zeep.Client(str(WSDL_PATH)).service._binding._operations)
    assert ops == {"ListAdmissionRounds", "PublishOffer", "WithdrawOffer", "GetOffers", "SubmitMerits",
                   "GetApplicantMerits", "ListApplicants", "GetAdmissions", "GetConditionChanges",
                   "ReportAterbud", "GetAterbud", "GetApplicants", "WithdrawMerits"}


# -- rounds and offers ------------------------------------------------------------------------


def test_list_admission_rounds(client, sent):
    rounds = {r.Code: r for r in client.service.ListAdmissionRounds()}
    sent()
    assert rounds["HT2027"].Status == "open" and rounds["VT2027"].Status == "closed"
    assert rounds["HT2027"].ApplicationOpens == dt.date(2027, 3, 15)
    assert rounds["HT2027"].Name == "Höstterminen 2027"
    assert [r.Code for r in client.service.ListAdmissionRounds(Status="closed")] == ["VT2027"]


def test_publish_get_and_withdraw_offers(client, sent):
    a, b = offer(1), offer(2, Studieort=None, NameEn=None)
    res = client.service.PublishOffer(RequestId="pub-1", Round="HT2027", Kind="ordinary", Offer=[a, b])
    sent()
    assert res.RequestId == "pub-1" and res.Round == "HT2027"
    assert [(r.OfferId, r.Outcome) for r in res.Result] == [(a["OfferId"], "created"), (b["OfferId"], "created")]

    res = client.service.PublishOffer(RequestId="pub-2", Round="HT2027", Kind="ordinary",
                                      Offer=[a, offer(2, places=25, Studieort=None, NameEn=None),
                                             offer(3, StudyPeriodEnd=dt.date(2027, 1, 1))])
    sent()
    assert [r.Outcome for r in res.Result] == ["unchanged", "updated", "rejected"]
    assert "before" in res.Result[2].Reason
    res = client.service.PublishOffer(RequestId="pub-2b", Round="HT2027", Kind="ordinary",
                                      Offer=[offer(4, Utbildningskod="KURS01", Tillfalleskod="10001")])
    assert res.Result[0].Outcome == "rejected" and a["OfferId"] in res.Result[0].Reason

    pi = offer(5, ProgrammeCode="TKDAT", PackageId=str(uuid.uuid4()))
    res = client.service.PublishOffer(RequestId="pub-3", Round="HT2027", Kind="programme-internal",
                                      Offer=[pi, offer(6), offer(1)])
    assert [r.Outcome for r in res.Result] == ["created", "rejected", "rejected"]
    assert "ProgrammeCode" in res.Result[1].Reason and "ordinary" in res.Result[2].Reason

    res = client.service.WithdrawOffer(RequestId="wd-1", Round="HT2027", OfferId=[a["OfferId"], offer(9)["OfferId"]],
                                       Reason="Inställd kurs")
    sent()
    assert [r.Outcome for r in res.Result] == ["withdrawn", "rejected"]
    res = client.service.WithdrawOffer(RequestId="wd-2", Round="HT2027", OfferId=[a["OfferId"]], Reason="igen")
    assert res.Result[0].Outcome == "unchanged"

    got = client.service.GetOffers(Round="HT2027")
    sent()
    by_id = {o.OfferId: o for o in got.Offer}
    assert by_id[a["OfferId"]].Status == "withdrawn" and by_id[a["OfferId"]].WithdrawalReason == "Inställd kurs"
    assert by_id[b["OfferId"]].Places == 25 and by_id[b["OfferId"]].Credits == Decimal("7.5")
    assert by_id[b["OfferId"]].StudyPeriodStart == dt.date(2027, 8, 30) and by_id[b["OfferId"]].Studieort is None
    internal = client.service.GetOffers(Round="HT2027", Kind="programme-internal").Offer
    assert [(o.OfferId, o.Kind, o.ProgrammeCode) for o in internal] == [(pi["OfferId"], "programme-internal", "TKDAT")]
    assert client.service.GetOffers(Round="VT2027").Offer == []


def test_same_request_id_replays_stored_reply_without_applying_again(client, transport, http, server):
    a = offer(1)
    first = client.service.PublishOffer(RequestId="idem-1", Round="HT2027", Kind="ordinary", Offer=[a])
    first_bytes = transport.last.content
    client.service.WithdrawOffer(RequestId="idem-2", Round="HT2027", OfferId=[a["OfferId"]], Reason="x")
    again = client.service.PublishOffer(RequestId="idem-1", Round="HT2027", Kind="ordinary", Offer=[a])
    assert transport.last.content == first_bytes
    assert transport.last.headers.get("X-Nya-Replayed") == "true"
    assert again.Result[0].Outcome == first.Result[0].Outcome == "created"
    # not re-applied: the offer stays withdrawn
    assert client.service.GetOffers(Round="HT2027").Offer[0].Status == "withdrawn"
    # the same key for a different request is refused
    with pytest.raises(Fault) as e:
        client.service.PublishOffer(RequestId="idem-1", Round="HT2027", Kind="ordinary", Offer=[offer(2)])
    assert e.value.code == "soap:Client" and fault_code(e.value) == "request-id-conflict"
    assert "idem-1" in e.value.message


# -- applicants and merits --------------------------------------------------------------------


def test_list_applicants_and_merits_arrive_exactly_once(client, http, server, sent):
    o = offer(1)
    client.service.PublishOffer(RequestId="p", Round="HT2027", Kind="ordinary", Offer=[o])
    ps = people(4)
    add_applicants(http, server, [applicant(p, [o["OfferId"]]) for p in ps[:3]])
    listed = client.service.ListApplicants(Round="HT2027")
    sent()
    assert listed.Count == 3 and sorted(listed.Personnummer) == sorted(p.personnummer for p in ps[:3])

    pnr = ps[0].personnummer
    dashed = f"{pnr[:8]}-{pnr[8:]}"
    merits = [
        dict(MeritId="m-1", Personnummer=dashed, Type="resultat", Utbildningskod="MA1001", Tillfalleskod="12345",
             Modul="0010", Credits=Decimal("7.5"), Grade="VG", Date=dt.date(2027, 1, 15), SourceReference="ladok:r1"),
        dict(MeritId="m-2", Personnummer=pnr, Type="registrering", Utbildningskod="MA1001", Date=dt.date(2026, 9, 1)),
        dict(MeritId="m-3", Personnummer=ps[3].personnummer, Type="examen", Utbildningskod="TKDAT",
             Date=dt.date(2027, 6, 1)),
        dict(MeritId="m-4", Personnummer=pnr, Type="resultat", Utbildningskod="MA1002", Date=dt.date(2027, 1, 1)),
    ]
    res = client.service.SubmitMerits(RequestId="mer-1", Merit=merits)
    sent()
    assert [(r.MeritId, r.Outcome) for r in res.Result] == [
        ("m-1", "accepted"), ("m-2", "accepted"), ("m-3", "rejected"), ("m-4", "rejected")]
    assert "unknown applicant" in res.Result[2].Reason and "Grade" in res.Result[3].Reason

    # replay: same reply, nothing stored twice
    assert client.service.SubmitMerits(RequestId="mer-1", Merit=merits) == res
    # per-merit idempotency under a new RequestId: duplicate; changed content: updated
    changed = dict(merits[0], Grade="G")
    res2 = client.service.SubmitMerits(RequestId="mer-2", Merit=[merits[1], changed])
    assert [r.Outcome for r in res2.Result] == ["duplicate", "updated"]

    got = client.service.GetApplicantMerits(Personnummer=pnr)
    sent()
    assert got.Personnummer == pnr
    assert [(m.MeritId, m.Personnummer) for m in got.Merit] == [("m-1", pnr), ("m-2", pnr)]
    m1 = got.Merit[0]
    assert (m1.Grade, m1.Credits, m1.Modul, m1.RequestId, m1.Date) == ("G", Decimal("7.5"), "0010", "mer-2",
                                                                       dt.date(2027, 1, 15))
    assert http.get(f"{server.url}/sim/merits/{pnr}").json()[1]["merit_id"] == "m-2"
    assert client.service.GetApplicantMerits(Personnummer=ps[3].personnummer).Merit == []


def test_applicants_stream_in_as_they_apply_and_merits_are_withdrawn_once(client, http, server, sent):
    """GetApplicants: each applicant once, at the sequence they first applied, from a position;
    WithdrawMerits: a held merit withdrawn, an unknown one not-held, a replay answered as before."""
    o = offer(1)
    client.service.PublishOffer(RequestId="p", Round="HT2027", Kind="ordinary", Offer=[o])
    ps = people(5)
    add_applicants(http, server, [applicant(p, [o["OfferId"]]) for p in ps[:3]])
    first = client.service.GetApplicants(Round="HT2027")
    assert [a.Personnummer for a in first.Applicant] == [p.personnummer for p in ps[:3]]
    seqs = [a.Sequence for a in first.Applicant]
    assert seqs == sorted(seqs) and first.NextSequence == seqs[-1] + 1
    add_applicants(http, server, [applicant(p, [o["OfferId"]]) for p in ps[1:5]])  # two of them again
    later = client.service.GetApplicants(Round="HT2027", FromSequence=first.NextSequence)
    assert [a.Personnummer for a in later.Applicant] == [p.personnummer for p in ps[3:5]]
    nothing = client.service.GetApplicants(Round="HT2027", FromSequence=later.NextSequence)
    assert (nothing.Applicant, nothing.NextSequence) == ([], later.NextSequence)
    sent()

    pnr = ps[0].personnummer
    client.service.SubmitMerits(RequestId="w-0", Merit=[
        dict(MeritId="ladok:resultat:r1", Personnummer=pnr, Type="resultat", Utbildningskod="MA1001", Grade="VG",
             Date=dt.date(2027, 1, 15))])
    res = client.service.WithdrawMerits(RequestId="w-1", MeritId=["ladok:resultat:r1", "ladok:resultat:none"],
                                        Reason="taken back in Ladok")
    sent()
    assert [(r.MeritId, r.Outcome) for r in res.Result] == [("ladok:resultat:r1", "withdrawn"),
                                                            ("ladok:resultat:none", "not-held")]
    assert client.service.WithdrawMerits(RequestId="w-1", MeritId=["ladok:resultat:r1", "ladok:resultat:none"],
                                         Reason="taken back in Ladok") == res  # replayed, not applied again
    assert client.service.GetApplicantMerits(Personnummer=pnr).Merit == []
    assert http.get(f"{server.url}/sim/stats").json()["merits_withdrawn"] == 1


def test_concurrent_retries_with_one_request_id_apply_once(client, http, server):
    o = offer(1)
    client.service.PublishOffer(RequestId="p", Round="HT2027", Kind="ordinary", Offer=[o])
    p = people(1)[0]
    add_applicants(http, server, [applicant(p, [o["OfferId"]])])
    body = (f'<SubmitMerits xmlns="{NS}"><RequestId>same</RequestId><Merit><MeritId>c-1</MeritId>'
            f"<Personnummer>{p.personnummer}</Personnummer><Type>registrering</Type>"
            "<Utbildningskod>MA1</Utbildningskod><Date>2027-01-01</Date></Merit></SubmitMerits>")
    replies: list[bytes] = []

    def go():
        with requests.Session() as s:
            replies.append(raw_call(s, server, body).content)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(replies)) == 1 and b"<Outcome>accepted</Outcome>" in replies[0]
    assert len(client.service.GetApplicantMerits(Personnummer=p.personnummer).Merit) == 1


# -- selection, admissions, villkor, återbud ---------------------------------------------------


def _selection_setup(client, http, server, places=10, n=30):
    o = offer(1, places=places)
    client.service.PublishOffer(RequestId="sel-pub", Round="HT2027", Kind="ordinary", Offer=[o])
    ps = people(n)
    apps = [applicant(p, [o["OfferId"]], score=round(20 - i * 0.5, 2), fee_liable=i % 4 == 0,
                      application_fee_paid=i % 8 != 0, auto_accept=i % 3 == 0,
                      conditions=[{"code": "VILLKOR-ENG6", "text": "Villkorat antagen: Engelska 6 ska vara uppfylld"}]
                      if i % 5 == 0 else [])
            for i, p in enumerate(ps)]
    add_applicants(http, server, list(reversed(apps)))
    r = http.post(f"{server.url}/sim/rounds/HT2027/selection")
    assert r.status_code == 200
    assert r.json() == {"admitted": places, "reserves": n - places, "created": n, "promoted": 0}
    return o, ps


def test_selection_places_reserves_fee_and_villkor(client, http, server, sent):
    o, ps = _selection_setup(client, http, server)
    res = client.service.GetAdmissions(Round="HT2027")
    sent()
    adm = {a.Personnummer: a for a in res.Admission}
    assert res.Count == 30 and len(adm) == 30 and res.Round == "HT2027"
    assert res.NextSequence == max(a.Sequence for a in res.Admission) + 1
    for i, p in enumerate(ps):
        a = adm[p.personnummer]
        assert (a.GivenName, a.FamilyName, a.OfferId, a.Utbildningskod, a.Tillfalleskod, a.ChoiceRank) == (
            p.fornamn, p.efternamn, o["OfferId"], "KURS01", "10001", 1)
        assert a.Admitted is (i < 10)
        assert a.ReservePosition == (None if i < 10 else i - 9)
        assert a.Accepted is (i < 10 and i % 3 == 0)
        assert a.FeeLiable is (i % 4 == 0)
        assert a.ApplicationFeePaid == ((i % 8 != 0) if i % 4 == 0 else None)
        assert [(c.Code, c.Lifted) for c in a.Condition] == ([("VILLKOR-ENG6", False)] if i % 5 == 0 else [])
        assert a.ProgrammeInternal is False and a.Aterbud is None
    assert len({a.AdmissionId for a in res.Admission}) == 30
    accepted = client.service.GetAdmissions(Round="HT2027", OnlyAccepted=True)
    assert {a.Personnummer for a in accepted.Admission} == {p.personnummer for i, p in enumerate(ps[:10]) if i % 3 == 0}
    changes = client.service.GetConditionChanges(Round="HT2027")
    sent()
    assert [(c.Personnummer, c.Change, c.Code) for c in changes.Change] == [
        (p.personnummer, "added", "VILLKOR-ENG6") for i, p in enumerate(ps) if i % 5 == 0]
    # a closed round still answers reads, an unknown one faults
    assert client.service.GetAdmissions(Round="VT2027").Count == 0


def test_incremental_reads_accept_lift_aterbud_both_ways(client, http, server, sent):
    o, ps = _selection_setup(client, http, server)
    base = client.service.GetAdmissions(Round="HT2027")
    by_pnr = {a.Personnummer: a for a in base.Admission}
    nxt, cnext, anext = base.NextSequence, client.service.GetConditionChanges(Round="HT2027").NextSequence, 1
    assert client.service.GetAdmissions(Round="HT2027", FromSequence=nxt).Admission == []

    url = f"{server.url}/sim/rounds/HT2027"
    assert http.post(f"{url}/accept", json={"personnummer": ps[1].personnummer}).json()[0]["accepted"] is True
    lifted = http.post(f"{url}/conditions/lift", json={"admission_id": by_pnr[ps[0].personnummer].AdmissionId,
                                                         "code": "VILLKOR-ENG6", "date": "2027-08-01"})
    assert lifted.status_code == 200
    r = http.post(f"{url}/aterbud", json={"admission_id": by_pnr[ps[2].personnummer].AdmissionId,
                                           "origin": "applicant"})
    assert r.json()["outcome"] == "registered"

    rep = client.service.ReportAterbud(RequestId="ab-1", Round="HT2027", Aterbud=[
        dict(AdmissionId=by_pnr[ps[3].personnummer].AdmissionId, Date=dt.date(2027, 8, 2), Source="ladok",
             SourceReference="ladok-studiedeltagande-1"),
        dict(Personnummer=ps[4].personnummer, OfferId=o["OfferId"], Date=dt.date(2027, 8, 2), Source="ladok"),
        dict(AdmissionId=by_pnr[ps[2].personnummer].AdmissionId, Date=dt.date(2027, 8, 2), Source="ladok"),
        dict(AdmissionId="HT2027-A9999999", Date=dt.date(2027, 8, 2), Source="ladok"),
    ])
    sent()
    assert [r.Outcome for r in rep.Result] == ["registered", "registered", "duplicate", "rejected"]
    assert rep.Result[1].AdmissionId == by_pnr[ps[4].personnummer].AdmissionId and rep.Result[1].AterbudId
    assert client.service.ReportAterbud(RequestId="ab-1", Round="HT2027", Aterbud=[
        dict(AdmissionId=by_pnr[ps[3].personnummer].AdmissionId, Date=dt.date(2027, 8, 2), Source="ladok",
             SourceReference="ladok-studiedeltagande-1"),
        dict(Personnummer=ps[4].personnummer, OfferId=o["OfferId"], Date=dt.date(2027, 8, 2), Source="ladok"),
        dict(AdmissionId=by_pnr[ps[2].personnummer].AdmissionId, Date=dt.date(2027, 8, 2), Source="ladok"),
        dict(AdmissionId="HT2027-A9999999", Date=dt.date(2027, 8, 2), Source="ladok"),
    ]) == rep

    changed = client.service.GetAdmissions(Round="HT2027", FromSequence=nxt)
    sent()
    seqs = [a.Sequence for a in changed.Admission]
    assert seqs == sorted(seqs) and min(seqs) >= nxt
    got = {a.Personnummer: a for a in changed.Admission}
    assert set(got) == {p.personnummer for p in ps[:5]}
    assert got[ps[1].personnummer].Accepted is True
    assert got[ps[0].personnummer].Condition[0].Lifted is True
    assert got[ps[0].personnummer].Condition[0].LiftedDate == dt.date(2027, 8, 1)
    assert got[ps[2].personnummer].Aterbud.Origin == "applicant"
    assert got[ps[3].personnummer].Aterbud.Origin == "ladok"

    cc = client.service.GetConditionChanges(Round="HT2027", FromSequence=cnext)
    assert [(c.Personnummer, c.Change, c.Date) for c in cc.Change] == [
        (ps[0].personnummer, "lifted", dt.date(2027, 8, 1))]
    ab = client.service.GetAterbud(Round="HT2027", FromSequence=anext)
    sent()
    assert [(a.Personnummer, a.Origin, a.Source) for a in ab.Aterbud] == [
        (ps[2].personnummer, "applicant", None), (ps[3].personnummer, "ladok", "ladok"),
        (ps[4].personnummer, "ladok", "ladok")]
    assert ab.Aterbud[1].SourceReference == "ladok-studiedeltagande-1" and ab.Aterbud[1].Date == dt.date(2027, 8, 2)
    assert client.service.GetAterbud(Round="HT2027", FromSequence=ab.NextSequence).Aterbud == []

    # re-running the selection promotes the first reserves into the three freed places
    r = http.post(f"{url}/selection").json()
    assert r["promoted"] == 3 and r["admitted"] == 10
    moved = client.service.GetAdmissions(Round="HT2027", FromSequence=changed.NextSequence).Admission
    promoted = {a.Personnummer for a in moved if a.Admitted}
    assert promoted == {p.personnummer for p in ps[10:13]}
    assert sorted(a.ReservePosition for a in moved if not a.Admitted) == list(range(1, 18))


# -- faults -----------------------------------------------------------------------------------


def test_faults_from_the_service(client, http, server, sent):
    def fault(call) -> Fault:
        with pytest.raises(Fault) as e:
            call()
        sent()  # the detail validates against the XSD
        assert e.value.code == "soap:Client"
        assert client.transport.last.status_code == 500
        return e.value

    f = fault(lambda: client.service.PublishOffer(RequestId="f1", Round="HT2031", Kind="ordinary", Offer=[offer(1)]))
    assert fault_code(f) == "unknown-round" and "HT2031" in f.message
    f = fault(lambda: client.service.PublishOffer(RequestId="f2", Round="VT2027", Kind="ordinary", Offer=[offer(1)]))
    assert fault_code(f) == "round-closed" and "VT2027" in f.message
    f = fault(lambda: client.service.ListApplicants(Round="VT2027"))
    assert fault_code(f) == "round-closed"
    f = fault(lambda: client.service.PublishOffer(RequestId="f3", Round="HT2027", Kind="ordinary",
                                                  Offer=[offer(1), offer(1, NameSv="igen")]))
    assert fault_code(f) == "duplicate-id" and "Duplicate key-sequence" in f.message
    f = fault(lambda: client.service.WithdrawOffer(RequestId="f4", Round="HT2027",
                                                   OfferId=[offer(1)["OfferId"]] * 2, Reason="x"))
    assert fault_code(f) == "duplicate-id"
    f = fault(lambda: client.service.PublishOffer(RequestId="f5", Round="HT2027", Kind="ordinary",
                                                  Offer=[offer(1, Studietakt=0)]))
    assert fault_code(f) == "schema-invalid" and "Studietakt" in f.message

    # invalid personnummer (Luhn): the whole batch is refused, nothing stored, number not echoed
    o = offer(1)
    client.service.PublishOffer(RequestId="ok", Round="HT2027", Kind="ordinary", Offer=[o])
    good = people(1)[0].personnummer
    add_applicants(http, server, [{"personnummer": good, "given_name": "A", "family_name": "B",
                                   "choices": [o["OfferId"]]}])
    bad = good[:11] + str((int(good[11]) + 1) % 10)
    merit = dict(Type="registrering", Utbildningskod="MA1", Date=dt.date(2027, 1, 1))
    f = fault(lambda: client.service.SubmitMerits(RequestId="f6", Merit=[
        dict(merit, MeritId="a", Personnummer=good), dict(merit, MeritId="b", Personnummer=bad)]))
    assert fault_code(f) == "invalid-personnummer" and "Luhn" in f.message and "Merit[2]" in f.message
    assert bad not in f.message and pnr_mod.mask(bad) in f.message
    assert client.service.GetApplicantMerits(Personnummer=good).Merit == []
    f = fault(lambda: client.service.SubmitMerits(RequestId="f7", Merit=[
        dict(merit, MeritId="a", Personnummer=good), dict(merit, MeritId="a", Personnummer=good)]))
    assert fault_code(f) == "duplicate-id"
    f = fault(lambda: client.service.ReportAterbud(RequestId="f8", Round="HT2027", Aterbud=[
        dict(Personnummer=good, OfferId=o["OfferId"], Date=dt.date(2027, 1, 1), Source="ladok"),
        dict(Personnummer=f"{good[:8]}-{good[8:]}", OfferId=o["OfferId"], Date=dt.date(2027, 1, 1), Source="ladok")]))
    assert fault_code(f) == "duplicate-id"
    # a faulted request stores nothing: the same RequestId can be used once the request is fixed
    res = client.service.SubmitMerits(RequestId="f6", Merit=[dict(merit, MeritId="a", Personnummer=good)])
    assert res.Result[0].Outcome == "accepted"


@pytest.mark.parametrize(
    "body, action, faultcode, code, words",
    [
        (f'<Frobnicate xmlns="{NS}"/>', None, "soap:Client", "unknown-operation", "Frobnicate"),
        ('<ListAdmissionRounds xmlns="urn:brygga:nya:2"/>', None, "soap:Client", "unknown-operation", "nya:2"),
        (f'<ListAdmissionRounds xmlns="{NS}"/>', "urn:brygga:nya:1#GetOffers", "soap:Client",
         "soapaction-mismatch", "GetOffers"),
        (f'<GetOffers xmlns="{NS}"><Kind>ordinary</Kind></GetOffers>', None, "soap:Client", "schema-invalid", "Round"),
        (f'<GetAdmissions xmlns="{NS}"><Round>HT27</Round></GetAdmissions>', None, "soap:Client",
         "schema-invalid", "HT27"),
        (f'<GetApplicantMerits xmlns="{NS}"><Personnummer>199001011238</Personnummer></GetApplicantMerits>', None,
         "soap:Client", "invalid-personnummer", "Luhn"),
        (f'<GetAterbud xmlns="{NS}"><Round>HT2099</Round></GetAterbud>', None, "soap:Client", "unknown-round",
         "HT2099"),
        ("<unclosed>", None, "soap:Client", "malformed-xml", "well-formed"),
    ],
)
def test_bad_requests_fault_as_zeep_sees_them(client, http, server, schema, body, action, faultcode, code, words):
    resp = raw_call(http, server, body, action)
    assert resp.status_code == 500 and resp.headers["content-type"].startswith("text/xml")
    f = zeep_fault(client, resp)
    assert (f.code, fault_code(f)) == (faultcode, code) and words in f.message
    schema.assertValid(f.detail.find("n:FaultDetail", Q))


def test_envelope_level_faults(http, server):
    doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>'
    r = http.post(server.url + "/nya/soap", data=doctype, headers={"Content-Type": "text/xml"})
    assert r.status_code == 500 and b"DOCTYPE" in r.content and b"soap:Client" in r.content
    r = http.post(server.url + "/nya/soap", data=b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope">'
                  b"<e:Body/></e:Envelope>", headers={"Content-Type": "text/xml"})
    assert r.status_code == 500 and b"soap:VersionMismatch" in r.content
    r = raw_call(http, server, f'<ListAdmissionRounds xmlns="{NS}"/><ListAdmissionRounds xmlns="{NS}"/>')
    assert r.status_code == 500 and b"exactly one element" in r.content


# -- control API ------------------------------------------------------------------------------


def test_control_api(http, server, state):
    url = server.url + "/sim"
    assert http.get(url + "/health").json() == {"status": "ok"}
    assert http.post(url + "/rounds", json={"code": "HT2028", "status": "open"}).json()["code"] == "HT2028"
    assert http.post(url + "/rounds", json={"code": "bad"}).status_code == 400
    assert {r["code"] for r in http.get(url + "/rounds").json()} == {"HT2027", "VT2027", "HT2028"}
    assert http.post(url + "/rounds/HT2030/selection").status_code == 404
    assert http.post(url + "/rounds/HT2028/applicants/generate?n=5").status_code == 400  # no offers yet
    sample = http.post(url + "/rounds/HT2028/offers/sample?n=2&places=3").json()
    assert [o["outcome"] for o in sample] == ["created"] * 2
    assert http.post(url + "/rounds/HT2028/applicants/generate?n=20&seed=5").json() == {"added": 20}
    apps = http.get(url + "/rounds/HT2028/applicants").json()
    assert len(apps) == 20 and all(pnr_mod.is_valid(a["personnummer"]) for a in apps)
    sel = http.post(url + "/rounds/HT2028/selection").json()
    assert sel["admitted"] <= 6 and sel["created"] == sum(len(a["choices"]) for a in apps)
    adm = http.get(url + "/rounds/HT2028/admissions").json()
    assert len(adm) == sel["created"] and "xml" not in adm[0]
    one = http.get(url + "/rounds/HT2028/admissions", params={"personnummer": apps[0]["personnummer"]}).json()
    assert {a["personnummer"] for a in one} == {apps[0]["personnummer"]}
    assert http.post(url + "/rounds/HT2028/aterbud", json={"admission_id": "nope"}).status_code == 404
    assert http.post(url + "/rounds/HT2028/aterbud", json={"admission_id": adm[0]["admission_id"],
                                                           "origin": "ladok"}).status_code == 400
    assert http.post(url + "/rounds/HT2028/aterbud", json={"admission_id": adm[0]["admission_id"],
                                                           "origin": "staff"}).json()["aterbud"]["origin"] == "staff"
    assert http.get(url + "/rounds/HT2028/aterbud").json()[0]["admission_id"] == adm[0]["admission_id"]
    assert http.post(url + "/rounds/HT2028/accept", json={"personnummer": "123"}).status_code == 400
    assert http.get(url + "/stats").json()["rounds"]["HT2028"]["applicants"] == 20
    r = http.post(url + "/reset", json={"seed": 2, "offers": 3, "applicants": 50, "select": True}).json()
    assert r["rounds"]["HT2027"]["offers"] == 3 and r["rounds"]["HT2027"]["admissions"] > 0
    assert http.post(url + "/reset", json={"empty": True}).json()["rounds"] == {}


# -- volume -----------------------------------------------------------------------------------


def test_get_admissions_20k_streamed_with_iterparse(client, http, server, state, schema):
    t0 = time.perf_counter()
    client.service.PublishOffer(RequestId="big", Round="HT2027", Kind="ordinary",
                                Offer=[offer(1, places=9000), offer(2, places=9000)])
    http.post(server.url + "/sim/rounds/HT2027/applicants/generate?n=20000&choices=1&seed=11").raise_for_status()
    http.post(server.url + "/sim/rounds/HT2027/selection").raise_for_status()
    t1 = time.perf_counter()
    with client.settings(raw_response=True):
        resp = client.service.GetAdmissions(Round="HT2027")
    t2 = time.perf_counter()
    assert resp.status_code == 200
    ids, admitted, next_seq = set(), 0, None
    for _, el in xmlsafe.iterparse(resp.content, tag=(ADM, f"{{{NS}}}NextSequence")):
        if el.tag == ADM:
            ids.add(el.findtext("n:AdmissionId", namespaces=Q))
            admitted += el.findtext("n:Admitted", namespaces=Q) == "true"
            el.clear(keep_tail=True)
            while el.getprevious() is not None:
                del el.getparent()[0]
        else:
            next_seq = int(el.text)
    t3 = time.perf_counter()
    assert len(ids) == 20000 and admitted == 18000 and next_seq > 20000
    with client.settings(raw_response=True):
        again = client.service.GetAdmissions(Round="HT2027")
    t4 = time.perf_counter()
    body = xmlsafe.fromstring(again.content).find("soap:Body", Q)[0]
    schema.assertValid(body)
    print(f"\n20k admissions: setup {t1 - t0:.2f}s, first GetAdmissions {t2 - t1:.2f}s "
          f"({len(resp.content) / 1e6:.1f} MB), iterparse {t3 - t2:.2f}s, cached GetAdmissions {t4 - t3:.2f}s")
