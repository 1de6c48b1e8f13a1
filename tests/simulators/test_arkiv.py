"""The archive simulator judges packages itself: checksums, completeness, METS references, the
data against the package's XSDs, and eark-validator's verdict; a resend is recognised."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest

from adapters.arkiv import ArchiveAdapter
from brygga.connections import PeerConfig
from brygga.flows.archive.packaging import Staging, build, package_id
from mappings import registry
from mappings.arkiv.sip import PackageInfo
from simulators._server import serve_in_thread
from simulators.arkiv.app import create_app
from simulators.arkiv.state import ArchiveState
from simulators.ladok import representations as rep
from simulators.ladok.catalogue import seed_catalogue
from simulators.ladok.state import LadokState
from simulators.ladok.xml import tostring
from tests.conftest import needs_eark_validator

pytestmark = needs_eark_validator()
UI = "{http://schemas.ladok.se/utbildningsinformation}Utbildningstillfalle"
SIP = registry.get("arkiv", "sip", 1)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    state = LadokState()
    seed_catalogue(state, 5, 3, 0, "VT2026")
    out = tmp_path_factory.mktemp("sip")
    with Staging() as st:
        for i, t in enumerate(state.tillfallen.values()):
            data = tostring(rep.utbildningstillfalle(t))
            SIP.check_ladok(data, UI)
            st.add(f"utbildningstillfalle-{i}.xml", data)
        info = PackageInfo(objid=package_id("kurstillfalle", "test", st.content_sha256()), label="Test",
                           created=dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC), subject_kind="kurstillfalle",
                           subject_uid="test", archival_creator=("Testuniversitetet", "2021001234"),
                           submitter=("Testuniversitetet, Brygga", "2021001234"))
        (built,) = build(SIP, info, st, out, max_part_bytes=10**9)
    return built.path


@pytest.fixture
def archive():
    state = ArchiveState()
    with serve_in_thread(create_app(state)) as srv:
        yield ArchiveAdapter(PeerConfig("arkiv", srv.url)), state


def rewrite(src: Path, dst: Path, change) -> Path:
    """A copy of the zip with ``change(name, data) -> data | None`` applied (None: left out)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)
    return dst


def rules(receipt) -> set[str]:
    return {rule for rule, _ in receipt.reasons}


def test_a_good_package_is_accepted_and_a_resend_recognised(archive, package):
    adapter, state = archive
    first = adapter.submit(package)
    assert first.status == "mottaget" and first.archive_id and first.package_id == package.stem
    assert adapter.submit(package).status == "redan-mottaget"
    assert adapter.held(package.stem).archive_id == first.archive_id
    assert adapter.held("brygga-kurstillfalle-okand") is None
    assert len(state.accepted) == 1 and [d["status"] for d in state.deliveries] == ["mottaget", "redan-mottaget"]


def test_a_tampered_data_file_is_rejected_by_its_checksum(archive, package, tmp_path):
    adapter, state = archive
    bad = rewrite(package, tmp_path / package.name,
                  lambda n, d: d.replace(b"</ui:Installt>", b"</ui:Installt><!-- -->", 1) if n.endswith("-1.xml") else d)
    r = adapter.submit(bad)
    assert r.status == "avvisat" and "fil.kontrollsumma" in rules(r)
    assert any("utbildningstillfalle-1.xml" in text and "ändrad" in text for _, text in r.reasons)
    assert state.accepted == {}


def test_a_missing_file_is_rejected(archive, package, tmp_path):
    adapter, _ = archive
    bad = rewrite(package, tmp_path / package.name, lambda n, d: None if n.endswith("-0.xml") else d)
    r = adapter.submit(bad)
    assert r.status == "avvisat" and "fil.saknas" in rules(r)


def test_a_wrong_mets_reference_is_rejected(archive, package, tmp_path):
    adapter, _ = archive
    bad = rewrite(package, tmp_path / package.name,
                  lambda n, d: d.replace(b'xlink:href="data/utbildningstillfalle-2.xml"',
                                         b'xlink:href="data/finns-inte.xml"')
                  if n.endswith("representations/rep1/METS.xml") else d)
    r = adapter.submit(bad)
    assert r.status == "avvisat"
    assert {"fil.saknas", "paket.oforteckad"} <= rules(r)  # the reference leads nowhere, the file is unlisted


def test_data_not_valid_against_the_packages_xsds_is_rejected(archive, package, tmp_path):
    """Even with its checksums made right again: the archive validates the data itself."""
    import hashlib

    adapter, _ = archive
    name = "utbildningstillfalle-0.xml"
    with zipfile.ZipFile(package) as z:
        old = next(z.read(n) for n in z.namelist() if n.endswith(name))
    new = old.replace(b"<ui:Installt>", b"<ui:Okand>x</ui:Okand><ui:Installt>", 1)
    def swapped(d: bytes, a: bytes, b: bytes) -> bytes:  # a file's checksum and size in a METS, made right
        return (d.replace(hashlib.sha256(a).hexdigest().upper().encode(), hashlib.sha256(b).hexdigest().upper().encode())
                .replace(f'SIZE="{len(a)}"'.encode(), f'SIZE="{len(b)}"'.encode()))

    with zipfile.ZipFile(package) as z:
        rep_old = next(z.read(n) for n in z.namelist() if n.endswith("representations/rep1/METS.xml"))
    rep_new = swapped(rep_old, old, new)

    def change(n, d):
        if n.endswith(name):
            return new
        if n.endswith("representations/rep1/METS.xml"):
            return rep_new
        if n.count("/") == 1 and n.endswith("/METS.xml"):
            return swapped(d, rep_old, rep_new)
        return d

    r = adapter.submit(rewrite(package, tmp_path / package.name, change))
    assert r.status == "avvisat"
    assert rules(r) & {"data.schema"} and "fil.kontrollsumma" not in rules(r)


def test_eark_validators_verdict_counts(archive, package, tmp_path):
    """A root METS without the SIP profile: no checksum covers METS.xml, eark-validator finds it."""
    adapter, _ = archive
    bad = rewrite(package, tmp_path / package.name,
                  lambda n, d: d.replace(b' PROFILE="https://earksip.dilcis.eu/profile/E-ARK-SIP.xml"', b"")
                  if n.count("/") == 1 and n.endswith("/METS.xml") else d)
    r = adapter.submit(bad)
    assert r.status == "avvisat" and any(rule.startswith("eark.") for rule in rules(r)), r.reasons


def test_unsafe_paths_and_a_foreign_objid_are_rejected(archive, package, tmp_path):
    adapter, _ = archive
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("pkg/METS.xml", b"<x/>")
        z.writestr("pkg/../../etc/x", b"x")
    assert "paket.sokvag" in rules(adapter.submit(evil))
    renamed = tmp_path / "renamed.zip"
    top = package.stem
    with zipfile.ZipFile(package) as zin, zipfile.ZipFile(renamed, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename.replace(top, "annat-namn", 1), zin.read(info))
    assert "paket.objid" in rules(adapter.submit(renamed))


def test_a_schema_with_a_doctype_is_refused_and_never_resolved(archive, package, tmp_path):
    """The package's XSDs are untrusted: an external entity (XXE) or an import of a file outside
    the package must not be read."""
    adapter, _ = archive
    secret = tmp_path / "secret.txt"
    secret.write_text("HEMLIGT-INNEHALL")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY s SYSTEM "{secret.as_uri()}">]>'
           '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x">'
           '<xs:annotation><xs:documentation>&s;</xs:documentation></xs:annotation></xs:schema>').encode()
    bad = rewrite(package, tmp_path / package.name,
                  lambda n, d: xxe if n.endswith("schemas/ladok/schemas.ladok.se-dap.xsd") else d)
    r = adapter.submit(bad)
    assert r.status == "avvisat" and "schema.osaker" in rules(r)
    assert not any("HEMLIGT" in text for _, text in r.reasons)

    outside = (f'<?xml version="1.0"?><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:y">'
               f'<xs:include schemaLocation="{secret.as_uri()}"/></xs:schema>').encode()
    bad = rewrite(package, tmp_path / ("b-" + package.name),
                  lambda n, d: outside if n.endswith("schemas/ladok/schemas.ladok.se-dap.xsd") else d)
    r = adapter.submit(bad)
    assert r.status == "avvisat" and "schema.trasigt" in rules(r)
    assert not any("HEMLIGT" in text for _, text in r.reasons)


def test_the_same_content_and_time_build_the_same_bytes(tmp_path):
    state = LadokState()
    seed_catalogue(state, 6, 2, 0, "VT2026")
    docs = [tostring(rep.utbildningstillfalle(t)) for t in state.tillfallen.values()]

    def once(where: Path) -> tuple[str, bytes]:
        where.mkdir()
        with Staging() as st:
            for i, d in enumerate(docs):
                st.add(f"utbildningstillfalle-{i}.xml", d)
            info = PackageInfo(objid=package_id("kurstillfalle", "x", st.content_sha256()), label="Test",
                               created=dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC), subject_kind="kurstillfalle",
                               subject_uid="x", archival_creator=("A", "1"), submitter=("B", "2"))
            (built,) = build(SIP, info, st, where, max_part_bytes=10**9)
        return built.objid, built.path.read_bytes()

    a, b = once(tmp_path / "a"), once(tmp_path / "b")
    assert a[0] == b[0] and a[1] == b[1]
    docs[0] = docs[0].replace(b"</ui:Installt>", b"</ui:Installt><!-- -->", 1)
    assert once(tmp_path / "c")[0] != a[0]  # other content, another OBJID
