import sys
import textwrap

import pytest

from mappings import registry
from mappings.base import MappingError, MappingKey


def test_every_required_mapping_is_registered():
    keys = {str(m.key) for m in registry.all_mappings()}
    assert {
        "ladok.events.v1", "ladok.student.v1", "ladok.utbildningstillfalle.v1", "ladok.placement.v1",
        "nya.offer.v1", "nya.offer.v2", "nya.programme-offer.v1", "nya.offer-withdraw.v1", "nya.merit.v1",
        "nya.admission.v1", "nya.aterbud.v1", "nya.villkor.v1",
    } <= keys


def test_default_is_lowest_version_newer_ones_are_opt_in(monkeypatch):
    monkeypatch.delenv("BRYGGA_MAPPINGS", raising=False)
    assert registry.select("nya", "offer").key == MappingKey("nya", "offer", 1)
    monkeypatch.setenv("BRYGGA_MAPPINGS", "nya.offer=2")
    assert registry.select("nya", "offer").key.version == 2
    # a peer Connection's extra.mappings wins over the environment
    assert registry.select("nya", "offer", overrides={"offer": 1}).key.version == 1


def test_unknown_version_names_what_exists():
    with pytest.raises(MappingError, match=r"nya\.offer\.v9 \(available: \[1, 2\]\)"):
        registry.get("nya", "offer", 9)


def test_bad_configuration_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("BRYGGA_MAPPINGS", "nya.offer=two")
    with pytest.raises(MappingError, match="bad BRYGGA_MAPPINGS entry"):
        registry.select("nya", "offer")


def test_drop_in_package_with_python_and_xslt_mappings(tmp_path, monkeypatch):
    pkg = tmp_path / "myuni_mappings"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "merit_v7.py").write_text(textwrap.dedent('''
        from mappings.base import Mapping, MappingKey
        from mappings.registry import mapping

        @mapping
        class MyMerit(Mapping):
            key = MappingKey("nya", "merit", 7)
            description = "a university's own merit mapping"
    '''))
    xsl = (registry.__file__.rsplit("/", 1)[0]) + "/nya/nya.offer.v2.xsl"
    (pkg / "nya.offer.v8.xsl").write_text(open(xsl).read())
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry._import_package("myuni_mappings")
        assert registry.get("nya", "merit", 7).description == "a university's own merit mapping"
        assert registry.get("nya", "offer", 8).schema == "nya/nya-1.xsd"
        assert 7 in registry.versions("nya", "merit")
    finally:
        for k in [MappingKey("nya", "merit", 7), MappingKey("nya", "offer", 8)]:
            registry._mappings.pop(k, None)
        sys.modules.pop("myuni_mappings", None)
        sys.modules.pop("myuni_mappings.merit_v7", None)


def test_two_classes_claiming_one_key_is_an_error():
    from mappings.base import Mapping

    class Clash(Mapping):
        key = MappingKey("nya", "merit", 1)

    with pytest.raises(MappingError, match="two mappings claim nya.merit.v1"):
        registry.register(Clash())
