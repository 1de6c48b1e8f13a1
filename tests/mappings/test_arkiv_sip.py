"""arkiv.sip.v1: the E-ARK SIP / FGS metadata around Ladok's own XML — Ladok documents checked
before they go in, DC with the access restriction of a protected student, METS naming every file
with its checksum (upper-case hex, as METS writes it), the same bytes for the same package."""

import datetime as dt

import pytest
from lxml import etree

from brygga import xmlsafe
from mappings import registry
from mappings.arkiv.sip import PackageFile, PackageInfo

M = registry.get("arkiv", "sip", 1)
METS = "{http://www.loc.gov/METS/}"
RR = "{http://schemas.ladok.se/resultat}"
INFO = PackageInfo(objid="urn:uuid:0a0b0c0d-0000-4000-8000-000000000001", label="Kurstillfälle TDA100 11001 (HT2027)",
                   created=dt.datetime(2028, 4, 1, 12, 0, tzinfo=dt.UTC), subject_kind="kurstillfalle",
                   subject_uid="11111111-1111-4111-8111-111111111111", archival_creator=("Lärosätet", "2021000000"),
                   submitter=("Lärosätet, Brygga", "2021000000"), period=("2027-08-30", "2028-01-16"), protected=1)
DATA = [PackageFile("representations/rep1/data/resultat-1.xml", 1234, "ab" * 32)]


def test_a_ladok_document_of_another_kind_or_not_valid_is_refused():
    with pytest.raises(ValueError, match="expected ResultatLista"):
        M.check_ladok(b'<rr:Resultat xmlns:rr="http://schemas.ladok.se/resultat"/>', RR + "ResultatLista")
    with pytest.raises(ValueError, match="not valid against the Ladok XSDs"):
        M.check_ladok(b'<rr:ResultatLista xmlns:rr="http://schemas.ladok.se/resultat"><rr:X/></rr:ResultatLista>',
                      RR + "ResultatLista")
    with pytest.raises(xmlsafe.UnreadableXML):
        M.check_ladok(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", RR + "ResultatLista")


def test_dc_says_access_is_restricted_for_a_protected_student_and_has_no_address():
    dc = xmlsafe.fromstring(M.dc(INFO))
    rights = [el.text for el in dc if etree.QName(el).localname == "rights"]
    assert rights and "skyddade personuppgifter" in rights[0] and "Ingen adress" in rights[0]


def test_mets_names_every_data_file_with_its_checksum_and_is_the_same_for_the_same_package():
    premis = PackageFile("representations/rep1/metadata/preservation/premis.xml", 99, "cd" * 32)
    mets = M.representation_mets(INFO, DATA, premis)
    root = xmlsafe.fromstring(mets)
    files = root.findall(f".//{METS}file")
    assert [(f.get("CHECKSUM"), f.get("CHECKSUMTYPE"), f.get("SIZE")) for f in files] == [("AB" * 32, "SHA-256", "1234")]
    assert root.get("OBJID") == "rep1"
    assert M.representation_mets(INFO, DATA, premis) == mets  # deterministic: a rebuild is byte for byte
