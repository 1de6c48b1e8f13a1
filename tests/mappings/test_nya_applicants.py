"""mappings/nya/applicants.py: ListAdmissionRounds, ListApplicants and GetApplicantMerits against
the XSD and the NyA simulator (round trips), and bad records in replies."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.nya import ENVELOPE_HEAD, ENVELOPE_TAIL, NyaAdapter
from brygga import xmlsafe
from brygga.connections import PeerConfig
from brygga.records import Merit
from mappings import registry
from mappings.base import RecordError
from mappings.nya.applicants import AdmissionRound, ReceivedMerit
from simulators import datagen

NS = "urn:brygga:nya:1"


@pytest.fixture
def rounds():
    return registry.select("nya", "rounds")


@pytest.fixture
def applicants():
    return registry.select("nya", "applicants")


@pytest.fixture
def merits():
    return registry.select("nya", "applicant-merits")


def _xsd():
    return registry.select("nya", "rounds").xsd()


def _reply(response: str, inner: str) -> bytes:
    return ENVELOPE_HEAD + f'<{response} xmlns="{NS}">{inner}</{response}>'.encode() + ENVELOPE_TAIL


def test_the_three_mappings_are_discovered_by_the_registry():
    keys = {str(m.key) for m in registry.all_mappings()}
    assert {"nya.rounds.v1", "nya.applicants.v1", "nya.applicant-merits.v1"} <= keys
    assert registry.select("nya", "applicant-merits").schema == "nya/nya-1.xsd"


def test_requests_are_xsd_valid_and_bad_values_are_refused_naming_the_field(rounds, applicants, merits):
    pnr = next(datagen.people(1, 3)).personnummer
    for body in (rounds.write(), rounds.write(status="open"), applicants.write(round_code="HT2027"),
                 merits.write(personnummer=pnr), merits.write(personnummer=f"{pnr[:8]}-{pnr[8:]}")):
        assert _xsd().validate(xmlsafe.fromstring(body)), body
    assert xmlsafe.fromstring(rounds.write(status="open")).findtext(f"{{{NS}}}Status") == "open"
    with pytest.raises(ValueError, match="^Round: .*HT27"):
        applicants.write(round_code="HT27")
    with pytest.raises(ValueError, match="^Status: "):
        rounds.write(status="half-open")
    with pytest.raises(ValueError, match="^Personnummer: .*pattern"):
        merits.write(personnummer="19900101x1234")


def test_round_trip_through_the_nya_simulator(nya_sim, rounds, applicants, merits):
    """Requests written by the mappings, answered by the simulator (XSD-valid, strict mode), read back
    into what the simulator holds."""
    nya = NyaAdapter(PeerConfig("nya", nya_sim.url))
    state = nya_sim.state

    with nya.call("ListAdmissionRounds", rounds.write()) as reply:
        got = list(rounds.read(reply.read(), strict=True))
    assert all(isinstance(r, AdmissionRound) for r in got)
    assert {(r.code, r.status, r.term_start) for r in got} == {
        (rs.round.code, rs.round.status, rs.round.term_start.isoformat()) for rs in state.rounds.values()}
    assert nya.open_rounds() == [rs.round.code for rs in state.rounds.values() if rs.round.status == "open"]

    with nya.call("ListApplicants", applicants.write(round_code="HT2027")) as reply:
        listed = applicants.read(reply.read(), strict=True)
    assert listed.round_code == "HT2027" and listed.errors == []
    assert listed.count == len(listed.personnummer) == len(state.list_applicants("HT2027")) > 100
    assert set(listed.personnummer) == set(state.list_applicants("HT2027")) == nya.applicants("HT2027")

    # a merit written with nya.merit.v1 comes back field for field
    pnr = sorted(state.list_applicants("HT2027"))[0]
    sent = Merit(merit_id="8a3e4f2c-0000-4000-8000-000000000001", personnummer=pnr, type="resultat",
                 utbildningskod="MA1001", date="2027-01-15", tillfalleskod="12345", modul="0010", credits="7.5",
                 grade="VG", source_reference="ladok:resultat:r1")
    body, errors = registry.select("nya", "merit").write([sent], request_id="applicants-test-1")
    assert errors == []
    with nya.call("SubmitMerits", body) as reply:
        assert registry.select("nya", "merit").read_results(reply)[sent.merit_id][0] == "accepted"
    with nya.call("GetApplicantMerits", merits.write(personnummer=pnr)) as reply:
        (back,) = [m for m in merits.read(reply.read(), strict=True) if m.merit_id == sent.merit_id]
    assert isinstance(back, ReceivedMerit) and isinstance(back, Merit)
    assert Merit(**{f: getattr(back, f) for f in Merit.__dataclass_fields__}) == sent
    assert back.request_id == "applicants-test-1"
    assert dt.datetime.fromisoformat(back.received.replace("Z", "+00:00")).year >= 2026
    assert [m.merit_id for m in nya.applicant_merits(pnr)].count(sent.merit_id) == 1


def test_bad_records_come_back_as_record_errors_in_their_place(rounds, applicants, merits):
    good, other = (p.personnummer for p in datagen.people(2, 11))
    broken = good[:-1] + str((int(good[-1]) + 1) % 10)  # wrong check digit
    date = "<ApplicationOpens>2027-03-01</ApplicationOpens>"
    got = list(rounds.read(_reply("ListAdmissionRoundsResponse",
        "<Round><Code>HT2027</Code><Name>Hösten 2027</Name><Status>open</Status>" + date + "</Round>"
        "<Round><Code>HT27</Code><Name>x</Name><Status>open</Status></Round>"
        "<Round><Code>VT2028</Code><Name>y</Name><Status>paused</Status></Round>"
        "<Round><Code>VT2029</Code><Name>z</Name><Status>closed</Status><TermStart>2029-13-01</TermStart></Round>")))
    assert got[0] == AdmissionRound("HT2027", "Hösten 2027", "open", application_opens="2027-03-01")
    assert [(e.record_id, e.field) for e in got[1:]] == [("HT27", "Code"), ("VT2028", "Status"), ("VT2029", "TermStart")]
    assert all(isinstance(e, RecordError) for e in got[1:])

    listed = applicants.read(_reply("ListApplicantsResponse",
        f"<Round>HT2027</Round><Count>3</Count><Personnummer>{good}</Personnummer>"
        f"<Personnummer>{broken}</Personnummer><Personnummer> {other} </Personnummer>"))
    assert listed.personnummer == [good, other] and listed.count == 3
    (err,) = listed.errors
    assert err.field == "Personnummer" and broken not in err.record_id  # masked
    short = applicants.read(_reply("ListApplicantsResponse", f"<Round>HT2027</Round><Count>5</Count>"
                                                            f"<Personnummer>{good}</Personnummer>"))
    assert [e.field for e in short.errors] == ["Count"] and "5" in short.errors[0].rule

    merit = ("<Merit><MeritId>{id}</MeritId><Personnummer>{p}</Personnummer><Type>{t}</Type>"
             "<Utbildningskod>MA1001</Utbildningskod><Date>2027-01-15</Date>"
             "<Received>2027-01-16T10:00:00.123456+00:00</Received><RequestId>r-1</RequestId></Merit>")
    got = list(merits.read(_reply("GetApplicantMeritsResponse", f"<Personnummer>{good}</Personnummer>" + "".join(
        merit.format(id=i, p=p, t=t) for i, p, t in
        (("m-1", good, "resultat"), ("m-2", good, "diplom"), ("m-3", broken, "examen"))))))
    assert isinstance(got[0], ReceivedMerit) and got[0].received == "2027-01-16T10:00:00.123456+00:00"
    assert got[0].grade is None and got[0].request_id == "r-1"
    assert [(e.record_id, e.field) for e in got[1:]] == [("m-2", "Type"), ("m-3", "Personnummer")]


def test_strict_mode_refuses_a_reply_that_breaks_the_contract(applicants):
    bad = _reply("ListApplicantsResponse", "<Count>1</Count><Round>HT2027</Round>")  # wrong order
    assert applicants.read(bad).round_code == "HT2027"  # tolerant by default
    with pytest.raises(ValueError, match="not valid against nya-1.xsd"):
        applicants.read(bad, strict=True)


def test_hostile_reply_is_refused(rounds):
    hostile = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
               b'<ListAdmissionRoundsResponse xmlns="urn:brygga:nya:1">&x;</ListAdmissionRoundsResponse>')
    with pytest.raises(xmlsafe.UnsafeXML):
        list(rounds.read(hostile))
    with pytest.raises(xmlsafe.UnsafeXML):
        list(rounds.read(hostile, strict=True))
