"""arkiv.kvittens.v1: the archive's receipt read and validated; anything else refused."""

import datetime as dt

import pytest

from brygga import xmlsafe
from mappings import registry
from simulators.arkiv.app import receipt

M = registry.get("arkiv", "kvittens", 1)


def test_a_receipt_is_read_with_its_reasons():
    r = M.read(receipt("pkg-1", "avvisat", received=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
                       reasons=[("checksumma", "fel summa för data/a.xml")]))
    assert (r.package_id, r.status, r.accepted) == ("pkg-1", "avvisat", False)
    assert r.reasons == (("checksumma", "fel summa för data/a.xml"),)
    assert M.read(receipt("pkg-2", "redan-mottaget", archive_id="A-9")).accepted


@pytest.mark.parametrize("body", [b"<Kvittens xmlns='urn:brygga:arkiv:1'><Status>mottaget</Status></Kvittens>",
                                  b"<!DOCTYPE k [<!ENTITY x 'y'>]><Kvittens>&x;</Kvittens>", b"<html>"])
def test_what_is_not_a_receipt_is_refused(body):
    with pytest.raises(xmlsafe.UnreadableXML):
        M.read(body)
