"""NyA's ``GetAdmissionsResponse`` (contract v1), streamed, as ``Admission`` records: the admission
import's bulk path (a national round is ~300,000 of them), so it has a fast path.

Every record is read by the same rules (``reading.py``: the contract's ids, codes, texts, dates,
flags, the personnummer). The fast path takes the record as it normally is; anything else goes to
the checked path, which applies the rules field by field and names the first that breaks — both
read every record alike (held to that by tests, on 3,000 randomly broken records too)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from operator import itemgetter
from typing import IO, Any

from lxml import etree

from brygga import personnummer as pnr
from brygga.records import Admission, Condition
from mappings.base import MappingKey
from mappings.nya import reading as r
from mappings.nya.reading import ID, ROUND, UID, N, Reply
from mappings.nya.v1 import _NyaV1
from mappings.registry import mapping

_FLAGS: dict[str | None, bool | None] = {"true": True, "1": True, "false": False, "0": False}
_FAST_FLAGS: dict[str | None, bool | None] = {**_FLAGS, None: None}  # exact spellings only; else the checked path
_REQUIRED = itemgetter(*(N + name for name in (
    "AdmissionId", "Sequence", "Round", "Personnummer", "GivenName", "FamilyName", "OfferId", "Utbildningskod",
    "Tillfalleskod")))
_PI, _ADM, _ACC, _FEE, _PAID = (N + name for name in (
    "ProgrammeInternal", "Admitted", "Accepted", "FeeLiable", "ApplicationFeePaid"))
_PROGRAMME_CODE, _PACKAGE_ID, _CONDITION, _ATERBUD = (N + name for name in (
    "ProgrammeCode", "PackageId", "Condition", "Aterbud"))
_id, _uid, _round = ID.fullmatch, UID.fullmatch, ROUND.fullmatch
_ROUNDS: set[str] = set()  # values already found to be a round code / a Ladok UID
_UIDS: set[str] = set()


def _known(seen: set[str], value: str, check: Callable[[str], object]) -> bool:
    """Whether ``value`` passes ``check``, remembered (a round has a few rounds and some thousand
    offers; the memory is bounded)."""
    if not check(value):
        return False
    if len(seen) < 100_000:
        seen.add(value)
    return True


def _record_factory(cls: type) -> Callable[..., object]:
    """A positional constructor for a frozen dataclass that skips its ``__init__`` (which sets
    every field through ``object.__setattr__``: most of the cost of a record). The instance is the
    same as ``cls(*values)`` (same ``__dict__``, so equal, hashable, picklable). Only for a value
    for every field, and only while ``cls`` is a plain frozen dataclass (no ``__post_init__``,
    ``__slots__``, ``InitVar`` or ``init=False`` field); otherwise this is just ``cls``."""
    fields = dataclasses.fields(cls)
    init_fields = [f for f in fields if f.init]
    plain = (dataclasses.is_dataclass(cls) and vars(cls)["__dataclass_params__"].frozen
             and not hasattr(cls, "__post_init__") and "__slots__" not in vars(cls)
             and len(init_fields) == len(fields)
             and len(init_fields) == len(inspect.signature(cls.__init__).parameters) - 1)
    if not plain:
        return cls
    names = tuple(f.name for f in fields)
    count, new = len(names), object.__new__

    def make(*values: Any) -> object:
        if len(values) != count:  # defaults or a wrong call: the real constructor decides
            return cls(*values)
        obj: Any = new(cls)
        obj.__dict__.update(zip(names, values, strict=False))  # (the count is checked above)
        return obj

    return make


_new_admission = _record_factory(Admission)


def _flag(fields: dict[str, str | None], name: str) -> bool | None:
    v = fields.get(name)
    if v is None:
        return None
    try:
        return _FLAGS[v.strip()]
    except KeyError:
        raise ValueError(f"{name}: not a boolean: {v[:40]!r}") from None


@mapping
class AdmissionV1(_NyaV1):
    key = MappingKey("nya", "admission", 1)
    description = "GetAdmissionsResponse (streamed) -> Admission records"

    def read(self, source: bytes | IO[bytes]) -> Reply:
        """Stream admissions; the reply's ``next_sequence`` is set once its head is read."""
        return Reply(source, "GetAdmissionsResponse", "Admission", self._admission, "Admission",
                     r.id_or_sequence("AdmissionId"))

    def _admission(self, el: etree._Element) -> Admission:
        # The hot path: one dict of the children's texts (one comprehension), then the record as
        # it normally is: every required field present, not blank and within its bounds, flags
        # spelled exactly true/false/1/0, a positive Sequence. Anything else goes to the checked path.
        f = {child.tag: child.text for child in el}
        g = f.get
        try:
            admission_id, seq, round_code, personnummer, given_name, family_name, offer_id, ukod, tkod = _REQUIRED(f)
            given_name, family_name = given_name.strip(), family_name.strip()
            flags = _FAST_FLAGS[g(_PI)], _FAST_FLAGS[g(_ADM)], _FAST_FLAGS[g(_ACC)], _FAST_FLAGS[g(_FEE)], \
                _FAST_FLAGS[g(_PAID)]
            programme_code, package_id = g(_PROGRAMME_CODE), g(_PACKAGE_ID)
            # Values are taken as they are, not stripped: one with blanks around it fails a check
            # here and is read (stripped) by the checked path. Rounds and offers repeat: checked once.
            usual = (given_name and family_name and flags[3] is not None
                     and len(personnummer) == 12 and personnummer.isdecimal()
                     and len(given_name) <= 300 and len(family_name) <= 300
                     and len(ukod) <= 20 and ukod.isalnum() and len(tkod) <= 20 and tkod.isalnum()
                     and len(seq) <= 18 and seq.isascii() and seq.isdecimal() and seq[0] != "0"
                     and _id(admission_id) and (round_code in _ROUNDS or _known(_ROUNDS, round_code, _round))
                     and (offer_id in _UIDS or _known(_UIDS, offer_id, _uid))
                     and (programme_code is None or len(programme_code) <= 20 and programme_code.isalnum())
                     and (package_id is None or package_id in _UIDS or _known(_UIDS, package_id, _uid)))
        except (KeyError, AttributeError, TypeError):  # missing field, empty element (text None), odd flag
            return self._admission_checked(el)
        if not usual:
            return self._admission_checked(el)
        try:  # (the checked path would name the personnummer first too: every other field is fine)
            personnummer = pnr.canonical(personnummer)
        except pnr.InvalidPersonnummer as e:
            raise ValueError(f"Personnummer: {e}") from None
        if _CONDITION in f or _ATERBUD in f:
            conditions, aterbud_date = _conditions_and_aterbud(el)
        else:
            conditions, aterbud_date = (), None
        return _new_admission(  # type: ignore[return-value]  # an Admission, built without its __init__
            admission_id, int(seq), round_code, personnummer, given_name, family_name, offer_id, ukod, tkod,
            flags[0] is True, flags[1] is True, flags[2] is True, flags[3], flags[4], programme_code, package_id,
            conditions, aterbud_date)

    def _admission_checked(self, el: etree._Element) -> Admission:
        """The reference reading of one admission: every rule, field by field; raises
        ``ValueError("<field>: <rule>")`` for the first bad field. Fields count only in NyA's namespace."""
        f = r.children(el)
        admission_id, sequence, round_code = r.identifier(f, "AdmissionId"), r.sequence(f), r.round_code(f)
        personnummer = r.personnummer(f)
        given_name, family_name = r.text(f, "GivenName"), r.text(f, "FamilyName")
        offer_id, ukod, tkod = r.uid(f, "OfferId"), r.code(f, "Utbildningskod"), r.code(f, "Tillfalleskod")
        programme_internal, admitted, accepted = (_flag(f, "ProgrammeInternal") is True, _flag(f, "Admitted") is True,
                                                  _flag(f, "Accepted") is True)
        fee_liable = _flag(f, "FeeLiable")
        if fee_liable is None:
            raise ValueError("FeeLiable: required field missing")
        application_fee_paid = _flag(f, "ApplicationFeePaid")
        programme_code, package_id = r.code(f, "ProgrammeCode", optional=True), r.uid(f, "PackageId", optional=True)
        conditions, aterbud_date = _conditions_and_aterbud(el)
        return Admission(
            admission_id=admission_id, sequence=sequence, round=round_code, personnummer=personnummer,
            given_name=given_name, family_name=family_name, offer_id=offer_id or "", utbildningskod=ukod or "",
            tillfalleskod=tkod or "", programme_internal=programme_internal, admitted=admitted, accepted=accepted,
            fee_liable=fee_liable, application_fee_paid=application_fee_paid, programme_code=programme_code,
            package_id=package_id, conditions=conditions, aterbud_date=aterbud_date)


def _conditions_and_aterbud(el: etree._Element) -> tuple[tuple[Condition, ...], str | None]:
    conditions: list[Condition] = []
    aterbud_date = None
    for child in el:
        if child.tag == _CONDITION:
            c = r.children(child)
            conditions.append(Condition(r.code(c, "Code") or "", r.text(c, "Text"), _flag(c, "Lifted") is True,
                                        r.date(c.get("LiftedDate"), "LiftedDate", optional=True)))
        elif child.tag == _ATERBUD:
            aterbud_date = r.date(child.findtext(N + "Date"), "Aterbud/Date")
    return tuple(conditions), aterbud_date
