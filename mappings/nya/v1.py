"""NyA contract v1 (``schemas/nya/nya-1.xsd``, namespace ``urn:brygga:nya:1``).

Writers return the SOAP body element as bytes plus the records that had to be left out; readers
stream the SOAP reply (iterparse) and yield records or ``RecordError``s.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import IO, Any

from lxml import etree

from brygga import personnummer as pnr
from brygga.records import Admission, AterbudReport, Condition, ConditionChange, Merit, NyaAterbud, Offer
from mappings.base import Mapping, MappingKey, RecordError, stream_elements, validate_records
from mappings.registry import mapping

NS = "urn:brygga:nya:1"
N = f"{{{NS}}}"


def _el(parent: etree._Element, name: str, value: Any) -> None:
    if value is None or value == "":
        return
    e = etree.SubElement(parent, N + name)
    e.text = ("true" if value else "false") if isinstance(value, bool) else str(value)


class _NyaV1(Mapping):
    schema = "nya/nya-1.xsd"

    def _finish(self, root: etree._Element, record_tag: str, ids: list[str],
                errors: list[RecordError]) -> tuple[bytes, list[RecordError]]:
        errors = errors + validate_records(root, self.xsd(), record_tag, ids)
        return etree.tostring(root, encoding="UTF-8"), errors


def _check_pnr(record_id: str, value: str, errors: list[RecordError], kind: str) -> str | None:
    try:
        return pnr.parse(value).value
    except pnr.InvalidPersonnummer as e:
        errors.append(RecordError(record_id, "Personnummer", str(e), kind))
        return None


@mapping
class OfferV1(_NyaV1):
    key = MappingKey("nya", "offer", 1)
    description = "PublishOffer / WithdrawOffer: utbud for an admission round"
    kind = "ordinary"

    def write(self, offers: Iterable[Offer], *, round_code: str, request_id: str) -> tuple[bytes, list[RecordError]]:
        root = etree.Element(N + "PublishOffer", nsmap={None: NS})
        _el(root, "RequestId", request_id)
        _el(root, "Round", round_code)
        _el(root, "Kind", self.kind)
        ids: list[str] = []
        errors: list[RecordError] = []
        for o in offers:
            missing = self._missing(o)
            if missing:
                errors.append(RecordError(o.offer_id or o.tillfalleskod or "?", missing, "required field missing", "Offer"))
                continue
            e = etree.SubElement(root, N + "Offer")
            for name, value in (
                ("OfferId", o.offer_id), ("Utbildningskod", o.utbildningskod), ("Tillfalleskod", o.tillfalleskod),
                ("NameSv", o.name_sv), ("NameEn", o.name_en), ("Credits", o.credits), ("StudyPeriodStart", o.start),
                ("StudyPeriodEnd", o.end), ("Studieort", o.studieort), ("Studietakt", o.studietakt),
                ("Places", o.places), ("ProgrammeCode", o.programme_code), ("PackageId", o.package_id),
            ):
                _el(e, name, value)
            ids.append(o.offer_id)
        return self._finish(root, N + "Offer", ids, errors)

    def _missing(self, o: Offer) -> str | None:
        for f in ("offer_id", "utbildningskod", "tillfalleskod", "name_sv", "credits", "start", "end"):
            if not getattr(o, f):
                return f
        return None

    def read_results(self, source: bytes | IO[bytes]) -> dict[str, tuple[str, str | None]]:
        """PublishOfferResponse / WithdrawOfferResponse -> {offer id: (outcome, reason)}."""
        return {
            el.findtext(N + "OfferId"): (el.findtext(N + "Outcome"), el.findtext(N + "Reason"))
            for el in stream_elements(source, N + "Result")
        }


@mapping
class OfferWithdrawV1(_NyaV1):
    key = MappingKey("nya", "offer-withdraw", 1)
    description = "WithdrawOffer: take instances out of a round (cancelled / no longer advertised)"

    def write(self, offer_ids: Iterable[str], *, round_code: str, reason: str, request_id: str) -> tuple[bytes, list[RecordError]]:
        root = etree.Element(N + "WithdrawOffer", nsmap={None: NS})
        _el(root, "RequestId", request_id)
        _el(root, "Round", round_code)
        ids = []
        for oid in offer_ids:
            _el(root, "OfferId", oid)
            ids.append(oid)
        _el(root, "Reason", reason)
        return self._finish(root, N + "OfferId", ids, [])

    read_results = OfferV1.read_results


@mapping
class ProgrammeOfferV1(OfferV1):
    """Underlag för anmälan inom program: courses programme students apply to inside their programme."""

    key = MappingKey("nya", "programme-offer", 1)
    description = "PublishOffer kind=programme-internal"
    kind = "programme-internal"

    def _missing(self, o: Offer) -> str | None:
        return super()._missing(o) or ("programme_code" if not o.programme_code else None)


@mapping
class MeritV1(_NyaV1):
    key = MappingKey("nya", "merit", 1)
    description = "SubmitMerits: registrations, results, credit transfers, avbrott, uppehåll, examen"

    def write(self, merits: Iterable[Merit], *, request_id: str) -> tuple[bytes, list[RecordError]]:
        root = etree.Element(N + "SubmitMerits", nsmap={None: NS})
        _el(root, "RequestId", request_id)
        ids: list[str] = []
        errors: list[RecordError] = []
        for m in merits:
            p = _check_pnr(m.merit_id, m.personnummer, errors, "Merit")
            if p is None:
                continue
            e = etree.SubElement(root, N + "Merit")
            for name, value in (
                ("MeritId", m.merit_id), ("Personnummer", p), ("Type", m.type), ("Utbildningskod", m.utbildningskod),
                ("Tillfalleskod", m.tillfalleskod), ("Modul", m.modul), ("Credits", m.credits), ("Grade", m.grade),
                ("Date", m.date), ("SourceReference", m.source_reference),
            ):
                _el(e, name, value)
            ids.append(m.merit_id)
        return self._finish(root, N + "Merit", ids, errors)

    def read_results(self, source: bytes | IO[bytes]) -> dict[str, tuple[str, str | None]]:
        return {
            el.findtext(N + "MeritId"): (el.findtext(N + "Outcome"), el.findtext(N + "Reason"))
            for el in stream_elements(source, N + "Result")
        }


def _bool(el: etree._Element, name: str) -> bool | None:
    v = el.findtext(N + name)
    if v is None:
        return None
    v = v.strip()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise ValueError(f"{name}: not a boolean: {v!r}")


class _Reader:
    """Shared reading of NyA list replies: stream elements, convert, collect NextSequence."""

    next_sequence: int | None = None

    def _stream(self, source: Any, response: str, tag: str, convert: Callable[[etree._Element], object],
                kind: str) -> Iterator[Any]:
        for el in stream_elements(source, (N + "NextSequence", N + tag), parent=N + response):
            if el.tag == N + "NextSequence":
                self.next_sequence = int(el.text)
                continue
            try:
                yield convert(el)
            except (ValueError, TypeError, pnr.InvalidPersonnummer) as e:
                rid = el.findtext(N + f"{tag}Id") or el.findtext(N + "AdmissionId") or el.findtext(N + "Sequence") or "?"
                field, _, rule = str(e).partition(": ")
                yield RecordError(rid, field if rule else tag, rule or str(e), kind)


def _required(el: etree._Element, name: str) -> str:
    v = el.findtext(N + name)
    if v is None or not v.strip():
        raise ValueError(f"{name}: required field missing")
    return v.strip()


def _valid_pnr(el: etree._Element) -> str:
    raw = _required(el, "Personnummer")
    try:
        return pnr.parse(raw).value
    except pnr.InvalidPersonnummer as e:
        raise ValueError(f"Personnummer: {e}") from None


@mapping
class AdmissionV1(_NyaV1, _Reader):
    key = MappingKey("nya", "admission", 1)
    description = "GetAdmissionsResponse (streamed) -> Admission records"

    def read(self, source: bytes | IO[bytes]) -> Iterator[Admission | RecordError]:
        """Stream admissions; ``self.next_sequence`` is set once the reply's header is read."""
        return self._stream(source, "GetAdmissionsResponse", "Admission", self._admission, "Admission")

    def _admission(self, el: etree._Element) -> Admission:
        # The hot path: one dict of the children's texts (one comprehension), then the record as
        # it normally is: every required field present and not blank, flags spelled exactly
        # true/false/1/0, a positive Sequence. Anything else goes to _admission_checked, which
        # decides and names the field and rule; both read every record alike (see the tests).
        f = {child.tag: child.text for child in el}
        g = f.get
        try:
            admission_id, seq, round_code, personnummer, given_name, family_name, offer_id, ukod, tkod = _REQUIRED(f)
            admission_id, seq, round_code, personnummer, given_name, family_name, offer_id, ukod, tkod = (
                admission_id.strip(), seq.strip(), round_code.strip(), personnummer.strip(), given_name.strip(),
                family_name.strip(), offer_id.strip(), ukod.strip(), tkod.strip())
            flags = _FAST_FLAGS[g(_PI)], _FAST_FLAGS[g(_ADM)], _FAST_FLAGS[g(_ACC)], _FAST_FLAGS[g(_FEE)], \
                _FAST_FLAGS[g(_PAID)]
        except (KeyError, AttributeError):  # missing field, empty element (text None), odd flag
            return self._admission_checked(el)
        sequence = int(seq) if len(seq) <= 18 and seq.isascii() and seq.isdecimal() else 0
        if not (admission_id and round_code and personnummer and given_name and family_name and offer_id and ukod
                and tkod and flags[3] is not None and sequence > 0):
            return self._admission_checked(el)
        if _CONDITION in f or _ATERBUD in f:
            conditions, aterbud_date = _conditions_and_aterbud(el)
        else:
            conditions, aterbud_date = (), None
        return _new_admission(  # type: ignore[return-value]  # an Admission, built without its __init__
            admission_id, sequence, round_code, _pnr(personnummer), given_name, family_name, offer_id,
            ukod, tkod, flags[0] is True, flags[1] is True, flags[2] is True, flags[3], flags[4],
            g(_PROGRAMME_CODE), g(_PACKAGE_ID), conditions, aterbud_date)

    def _admission_checked(self, el: etree._Element) -> Admission:
        """The reference reading of one admission: every check, field by field; raises
        ``ValueError("<field>: <rule>")`` for the first bad field. Fields count only in NyA's namespace."""
        f = _fields(el)
        conditions, aterbud_date = _conditions_and_aterbud(el)
        fee_liable = _flag(f, "FeeLiable")
        if fee_liable is None:
            raise ValueError("FeeLiable: required field missing")
        return Admission(
            admission_id=_req(f, "AdmissionId"),
            sequence=_sequence(f),
            round=_req(f, "Round"),
            personnummer=_pnr(_req(f, "Personnummer")),
            given_name=_req(f, "GivenName"),
            family_name=_req(f, "FamilyName"),
            offer_id=_req(f, "OfferId"),
            utbildningskod=_req(f, "Utbildningskod"),
            tillfalleskod=_req(f, "Tillfalleskod"),
            programme_internal=_flag(f, "ProgrammeInternal") is True,
            admitted=_flag(f, "Admitted") is True,
            accepted=_flag(f, "Accepted") is True,
            fee_liable=fee_liable,
            application_fee_paid=_flag(f, "ApplicationFeePaid"),
            programme_code=f.get("ProgrammeCode"),
            package_id=f.get("PackageId"),
            conditions=tuple(conditions),
            aterbud_date=aterbud_date,
        )


def _fields(el: etree._Element) -> dict[str, str | None]:
    """Local name -> text of the children in NyA's namespace."""
    return {child.tag[_NLEN:]: child.text for child in el if isinstance(child.tag, str) and child.tag.startswith(N)}


def _conditions_and_aterbud(el: etree._Element) -> tuple[tuple[Condition, ...], str | None]:
    conditions: list[Condition] = []
    aterbud_date = None
    for child in el:
        if child.tag == _CONDITION:
            c = _fields(child)
            conditions.append(Condition(_req(c, "Code"), _req(c, "Text"), _flag(c, "Lifted") is True,
                                        c.get("LiftedDate")))
        elif child.tag == _ATERBUD:
            aterbud_date = child.findtext(N + "Date")
    return tuple(conditions), aterbud_date


_NLEN = len(N)
_MAX_LONG = 2**63 - 1
_FLAGS: dict[str | None, bool | None] = {"true": True, "1": True, "false": False, "0": False}
_FAST_FLAGS: dict[str | None, bool | None] = {**_FLAGS, None: None}  # exact spellings only; anything else -> the checked path
_REQUIRED = itemgetter(*(N + name for name in (
    "AdmissionId", "Sequence", "Round", "Personnummer", "GivenName", "FamilyName", "OfferId", "Utbildningskod",
    "Tillfalleskod")))
_PI, _ADM, _ACC, _FEE, _PAID = (N + name for name in (
    "ProgrammeInternal", "Admitted", "Accepted", "FeeLiable", "ApplicationFeePaid"))
_PROGRAMME_CODE, _PACKAGE_ID, _CONDITION, _ATERBUD = (N + name for name in (
    "ProgrammeCode", "PackageId", "Condition", "Aterbud"))


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
        obj.__dict__.update(zip(names, values, strict=False))
        return obj

    return make


_new_admission = _record_factory(Admission)


def _req(fields: dict[str, str | None], name: str) -> str:
    v = fields.get(name)
    if not v or not v.strip():
        raise ValueError(f"{name}: required field missing")
    return v.strip()


def _sequence(fields: dict[str, str | None]) -> int:
    v = _req(fields, "Sequence")
    digits = v.removeprefix("+").lstrip("0")  # "" for 0
    if not (digits.isascii() and digits.isdecimal() and len(digits) <= 19 and int(digits) <= _MAX_LONG):
        raise ValueError(f"Sequence: not a positive integer (xs:long): {v[:40]!r}")
    return int(digits)


def _flag(fields: dict[str, str | None], name: str) -> bool | None:
    v = fields.get(name)
    if v is None:
        return None
    try:
        return _FLAGS[v.strip()]
    except KeyError:
        raise ValueError(f"{name}: not a boolean: {v!r}") from None


def _pnr(raw: str) -> str:
    try:
        return pnr.canonical(raw)
    except pnr.InvalidPersonnummer as e:
        raise ValueError(f"Personnummer: {e}") from None


@mapping
class AterbudV1(_NyaV1, _Reader):
    key = MappingKey("nya", "aterbud", 1)
    description = "GetAterbudResponse (NyA -> Ladok) and ReportAterbud (Ladok -> NyA)"

    def read(self, source: bytes | IO[bytes]) -> Iterator[NyaAterbud | RecordError]:
        return self._stream(source, "GetAterbudResponse", "Aterbud", self._aterbud, "Aterbud")

    def _aterbud(self, el: etree._Element) -> NyaAterbud:
        return NyaAterbud(
            aterbud_id=_required(el, "AterbudId"), sequence=int(_required(el, "Sequence")),
            admission_id=_required(el, "AdmissionId"), personnummer=_valid_pnr(el),
            offer_id=_required(el, "OfferId"), date=_required(el, "Date"), origin=_required(el, "Origin"),
            registered=el.findtext(N + "Registered"),
        )

    def write(self, reports: Iterable[AterbudReport], *, round_code: str, request_id: str,
              source: str = "ladok") -> tuple[bytes, list[RecordError]]:
        root = etree.Element(N + "ReportAterbud", nsmap={None: NS})
        _el(root, "RequestId", request_id)
        _el(root, "Round", round_code)
        ids = []
        for r in reports:
            e = etree.SubElement(root, N + "Aterbud")
            _el(e, "AdmissionId", r.admission_id)
            _el(e, "Date", r.date)
            _el(e, "Source", source)
            _el(e, "SourceReference", r.source_reference)
            ids.append(r.admission_id)
        return self._finish(root, N + "Aterbud", ids, [])

    def read_results(self, source: bytes | IO[bytes]) -> dict[str, tuple[str, str | None]]:
        """ReportAterbudResponse -> {AdmissionId: (Outcome, Reason)} (registered|duplicate|rejected)."""
        return {el.findtext(N + "AdmissionId"): (el.findtext(N + "Outcome"), el.findtext(N + "Reason"))
                for el in stream_elements(source, N + "Result", parent=N + "ReportAterbudResponse")}


@mapping
class ConditionV1(_NyaV1, _Reader):
    key = MappingKey("nya", "villkor", 1)
    description = "GetConditionChangesResponse -> behörighetsvillkor added/lifted"

    def read(self, source: bytes | IO[bytes]) -> Iterator[ConditionChange | RecordError]:
        return self._stream(source, "GetConditionChangesResponse", "Change", self._change, "ConditionChange")

    def _change(self, el: etree._Element) -> ConditionChange:
        return ConditionChange(
            sequence=int(_required(el, "Sequence")), admission_id=_required(el, "AdmissionId"),
            personnummer=_valid_pnr(el), offer_id=_required(el, "OfferId"), code=_required(el, "Code"),
            text=_required(el, "Text"), change=_required(el, "Change"), date=_required(el, "Date"),
        )
