"""NyA contract v1 (``schemas/nya/nya-1.xsd``, namespace ``urn:brygga:nya:1``).

Writers return the SOAP body element as bytes plus the records that had to be left out; readers
stream the SOAP reply (``reading.Reply``) and yield records or ``RecordError``s. The admission reader,
the bulk one, is in ``admission.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from lxml import etree

from brygga import personnummer as pnr
from brygga.records import Applicant, AterbudReport, ConditionChange, Merit, NyaAterbud, Offer
from mappings.base import Mapping, MappingKey, RecordError, stream_elements, validate_records
from mappings.nya import reading as rd
from mappings.nya.reading import Reply
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


def _results(source: bytes | IO[bytes], response: str, id_field: str) -> dict[str, tuple[str, str | None]]:
    """A send's per-record results, ``{id: (Outcome, Reason)}``; a reply that is not ``response``
    raises ``UnexpectedReply`` (never read as "no results")."""
    return {el.findtext(N + id_field): (el.findtext(N + "Outcome"), el.findtext(N + "Reason"))
            for el in stream_elements(source, N + "Result", parent=N + response, require=N + response)}


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

    response = "PublishOfferResponse"

    def read_results(self, source: bytes | IO[bytes]) -> dict[str, tuple[str, str | None]]:
        """PublishOfferResponse / WithdrawOfferResponse -> {offer id: (outcome, reason)}."""
        return _results(source, self.response, "OfferId")


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

    response = "WithdrawOfferResponse"
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
        """SubmitMeritsResponse -> {MeritId: (Outcome, Reason)}."""
        return _results(source, "SubmitMeritsResponse", "MeritId")


ATERBUD_ORIGINS = ("applicant", "staff", "ladok")
CONDITION_CHANGES = ("added", "lifted")


def _one_of(fields: dict[str, str | None], name: str, allowed: tuple[str, ...]) -> str:
    v = rd.required(fields, name)
    if v not in allowed:
        raise ValueError(f"{name}: not one of {', '.join(allowed)}")
    return v


@mapping
class AterbudV1(_NyaV1):
    key = MappingKey("nya", "aterbud", 1)
    description = "GetAterbudResponse (NyA -> Ladok) and ReportAterbud (Ladok -> NyA)"

    def read(self, source: bytes | IO[bytes]) -> Reply:
        return Reply(source, "GetAterbudResponse", "Aterbud", self._aterbud, "Aterbud", rd.id_or_sequence("AterbudId"))

    def _aterbud(self, el: etree._Element) -> NyaAterbud:
        f = rd.children(el)
        return NyaAterbud(
            aterbud_id=rd.identifier(f, "AterbudId"), sequence=rd.sequence(f),
            admission_id=rd.identifier(f, "AdmissionId"), personnummer=rd.personnummer(f),
            offer_id=rd.uid(f, "OfferId") or "", date=rd.date(f.get("Date"), "Date") or "",
            origin=_one_of(f, "Origin", ATERBUD_ORIGINS),
            registered=rd.timestamp(f.get("Registered"), "Registered", optional=True),
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
        return _results(source, "ReportAterbudResponse", "AdmissionId")


@mapping
class MeritWithdrawV1(_NyaV1):
    key = MappingKey("nya", "merit-withdraw", 1)
    description = "WithdrawMerits: merits Ladok no longer has, taken back"

    def write(self, merit_ids: Iterable[str], *, request_id: str, reason: str | None = None) -> tuple[bytes, list[RecordError]]:
        root = etree.Element(N + "WithdrawMerits", nsmap={None: NS})
        _el(root, "RequestId", request_id)
        ids = []
        for mid in merit_ids:
            _el(root, "MeritId", mid)
            ids.append(mid)
        _el(root, "Reason", reason)
        return self._finish(root, N + "MeritId", ids, [])

    def read_results(self, source: bytes | IO[bytes]) -> dict[str, tuple[str, str | None]]:
        """WithdrawMeritsResponse -> {MeritId: (Outcome, Reason)} (withdrawn|not-held)."""
        return _results(source, "WithdrawMeritsResponse", "MeritId")


@mapping
class ApplicantStreamV1(_NyaV1):
    key = MappingKey("nya", "applicant-stream", 1)
    description = "GetApplicantsResponse -> the round's applicants as they first applied (Sequence, Personnummer)"

    def read(self, source: bytes | IO[bytes]) -> Reply:
        return Reply(source, "GetApplicantsResponse", "Applicant", self._applicant, "Applicant", _by_sequence)

    @staticmethod
    def _applicant(el: etree._Element) -> Applicant:
        f = rd.children(el)
        return Applicant(sequence=rd.sequence(f), personnummer=rd.personnummer(f))


def _by_sequence(el: etree._Element) -> tuple[str, bool]:
    """A bad applicant record is named by its Sequence (its personnummer is what may be wrong)."""
    seq = (el.findtext(N + "Sequence") or "").strip()
    return (f"sequence:{seq[:40]}" if seq else "?"), False


@mapping
class ConditionV1(_NyaV1):
    key = MappingKey("nya", "villkor", 1)
    description = "GetConditionChangesResponse -> behörighetsvillkor added/lifted"

    def read(self, source: bytes | IO[bytes]) -> Reply:
        return Reply(source, "GetConditionChangesResponse", "Change", self._change, "ConditionChange",
                     rd.id_or_sequence("AdmissionId"))

    def _change(self, el: etree._Element) -> ConditionChange:
        f = rd.children(el)
        return ConditionChange(
            sequence=rd.sequence(f), admission_id=rd.identifier(f, "AdmissionId"), personnummer=rd.personnummer(f),
            offer_id=rd.uid(f, "OfferId") or "", code=rd.code(f, "Code") or "", text=rd.text(f, "Text"),
            change=_one_of(f, "Change", CONDITION_CHANGES), date=rd.date(f.get("Date"), "Date") or "",
        )
