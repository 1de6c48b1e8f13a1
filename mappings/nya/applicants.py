"""NyA contract v1 (``schemas/nya/nya-1.xsd``): admission rounds, the applicants of a round and the
merits NyA holds for an applicant. The merit sync reads these to know who is an applicant; tests
and operators read the merits back.

| key | request (writer) | reply (reader) |
|---|---|---|
| ``nya.rounds.v1`` | ``ListAdmissionRounds`` (optional ``Status``) | ``AdmissionRound`` per ``Round`` |
| ``nya.applicants.v1`` | ``ListApplicants`` (``Round``) | ``ApplicantList`` (12-digit personnummer) |
| ``nya.applicant-merits.v1`` | ``GetApplicantMerits`` (``Personnummer``) | ``ReceivedMerit`` per ``Merit`` |

Writers build the request element and validate it against the XSD (``ValueError`` naming the
field when a value breaks the contract, e.g. a round code ``HT27``). Readers stream the SOAP reply
(iterparse, flat memory: ``ListApplicants`` of a national round is large) and check each record
against the XSD's types (round code pattern, status and merit type enumerations, dates,
personnummer check digit); a bad record comes back as a ``RecordError`` in its place. With
``strict=True`` the whole response element is validated against the XSD first (tests; a reply
that breaks the contract raises ``ValueError``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from lxml import etree

from brygga import personnummer as pnr
from brygga import xmlsafe
from brygga.records import Merit
from mappings.base import Mapping, MappingKey, RecordError, stream_elements
from mappings.registry import mapping

NS = "urn:brygga:nya:1"
N = f"{{{NS}}}"

_NS_RE = re.compile(r"\{(?:urn|https?):[^}]*\}")  # "{urn:brygga:nya:1}" in libxml2 messages
ROUND_CODE = re.compile(r"(HT|VT)[0-9]{4}")
ROUND_STATUS = ("open", "closed")
MERIT_TYPES = ("registrering", "resultat", "tillgodoraknande", "avbrott", "studieuppehall", "examen")


@dataclass(frozen=True)
class AdmissionRound:
    """An antagningsomgång as NyA lists it (``ListAdmissionRounds``)."""

    code: str
    name: str
    status: str  # open | closed
    application_opens: str | None = None
    application_closes: str | None = None
    admission_notice: str | None = None
    term_start: str | None = None


@dataclass
class ApplicantList:
    """``ListApplicantsResponse``: the round, NyA's count and the personnummer (12 digits)."""

    round_code: str | None = None
    count: int | None = None
    personnummer: list[str] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


@dataclass(frozen=True)
class ReceivedMerit(Merit):
    """A merit as NyA holds it (``GetApplicantMerits``): what was sent, when, in which request."""

    received: str | None = None
    request_id: str | None = None


# --------------------------------------------------------------------------- helpers

class _NyaMessage(Mapping):
    schema = "nya/nya-1.xsd"
    request: str  # request element name
    response: str  # response element name

    def _request(self, **fields: Any) -> bytes:
        root = etree.Element(N + self.request, nsmap={None: NS})
        for name, value in fields.items():
            if value is not None:
                etree.SubElement(root, N + name).text = str(value)
        schema = self.xsd()
        if not schema.validate(root):
            message = _NS_RE.sub("", schema.error_log.last_error.message)
            where = re.match(r"Element '([^']+)'", message)
            raise ValueError(f"{where.group(1) if where else self.request}: {pnr.mask(message)}")
        return etree.tostring(root, encoding="UTF-8")

    def _records(self, source: bytes | IO[bytes], tags: tuple[str, ...], strict: bool) -> Iterator[etree._Element]:
        """The children of the response element named ``tags`` (streamed, or from a validated tree)."""
        wanted = tuple(N + t for t in tags)
        if not strict:
            yield from stream_elements(source, wanted, parent=N + self.response, require=N + self.response)
            return
        data = source if isinstance(source, (bytes, bytearray)) else source.read()
        root = xmlsafe.fromstring(data)
        resp = root if root.tag == N + self.response else root.find(f".//{N}{self.response}")
        if resp is None:
            raise xmlsafe.UnexpectedReply(f"the reply has no {self.response}")
        schema = self.xsd()
        if not schema.validate(resp):
            err = schema.error_log.last_error
            raise ValueError(f"{self.response} not valid against nya-1.xsd: line {err.line}: "
                             f"{_NS_RE.sub('', err.message)}")
        for child in resp:
            if child.tag in wanted:
                yield child


def _text(el: etree._Element, name: str) -> str | None:
    v = el.findtext(N + name)
    v = v.strip() if v is not None else None
    return v or None


def _required(el: etree._Element, name: str) -> str:
    v = _text(el, name)
    if v is None:
        raise ValueError(f"{name}: required field missing")
    return v


def _date(el: etree._Element, name: str, required: bool = False) -> str | None:
    v = _required(el, name) if required else _text(el, name)
    if v is not None:
        try:
            dt.date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{name}: not a date (xs:date): {v!r}") from None
    return v


def _personnummer(raw: str, name: str = "Personnummer") -> str:
    if not re.fullmatch(r"[0-9]{12}|[0-9]{8}[A-Z][0-9]{3}", raw):  # (an interimspersonnummer: a letter)
        raise ValueError(f"{name}: not in the canonical form NyA replies carry (12 digits, or YYYYMMDD, a "
                         "capital letter and 3 digits)")
    try:
        return pnr.parse(raw).value
    except pnr.InvalidPersonnummer as e:
        raise ValueError(f"{name}: {e}") from None


def _convert(el: etree._Element, convert: Callable[[etree._Element], Any], id_field: str, kind: str) -> Any:
    try:
        return convert(el)
    except ValueError as e:
        field_name, _, rule = str(e).partition(": ")
        return RecordError(_text(el, id_field) or "?", field_name if rule else kind, rule or str(e), kind)


# --------------------------------------------------------------------------- mappings

@mapping
class RoundsV1(_NyaMessage):
    key = MappingKey("nya", "rounds", 1)
    description = "ListAdmissionRounds: the admission rounds (antagningsomgångar), optionally by status"
    request, response = "ListAdmissionRounds", "ListAdmissionRoundsResponse"

    def write(self, *, status: str | None = None) -> bytes:
        return self._request(Status=status)

    def read(self, source: bytes | IO[bytes], *, strict: bool = False) -> Iterator[AdmissionRound | RecordError]:
        for el in self._records(source, ("Round",), strict):
            yield _convert(el, self._round, "Code", "Round")

    @staticmethod
    def _round(el: etree._Element) -> AdmissionRound:
        code = _required(el, "Code")
        if not ROUND_CODE.fullmatch(code):
            raise ValueError(f"Code: not a round code (HT|VT + year): {code!r}")
        status = _required(el, "Status")
        if status not in ROUND_STATUS:
            raise ValueError(f"Status: not one of {'/'.join(ROUND_STATUS)}: {status!r}")
        return AdmissionRound(
            code=code, name=_required(el, "Name"), status=status,
            application_opens=_date(el, "ApplicationOpens"), application_closes=_date(el, "ApplicationCloses"),
            admission_notice=_date(el, "AdmissionNotice"), term_start=_date(el, "TermStart"),
        )


@mapping
class ApplicantsV1(_NyaMessage):
    key = MappingKey("nya", "applicants", 1)
    description = "ListApplicants: personnummer of every applicant in an open round"
    request, response = "ListApplicants", "ListApplicantsResponse"

    def write(self, *, round_code: str) -> bytes:
        return self._request(Round=round_code)

    def read(self, source: bytes | IO[bytes], *, strict: bool = False) -> ApplicantList:
        out = ApplicantList()
        for el in self._records(source, ("Round", "Count", "Personnummer"), strict):
            local = el.tag[len(N):]
            text = (el.text or "").strip()
            if local == "Personnummer":
                try:
                    out.personnummer.append(_personnummer(text))
                except ValueError as e:
                    out.errors.append(RecordError(pnr.mask(text) or "?", "Personnummer",
                                                  str(e).partition(": ")[2], "Applicant"))
            elif local == "Round":
                out.round_code = text
            elif text.isdigit():
                out.count = int(text)
            else:
                out.errors.append(RecordError(out.round_code or "?", "Count", f"not a count: {text!r}", "Applicants"))
        if out.count is not None and out.count != len(out.personnummer) + len(out.errors):
            out.errors.append(RecordError(out.round_code or "?", "Count",
                                          f"NyA counted {out.count} applicants, the reply lists "
                                          f"{len(out.personnummer) + len(out.errors)}", "Applicants"))
        return out


@mapping
class ApplicantMeritsV1(_NyaMessage):
    key = MappingKey("nya", "applicant-merits", 1)
    description = "GetApplicantMerits: the merits NyA holds for one applicant, with when and how they came"
    request, response = "GetApplicantMerits", "GetApplicantMeritsResponse"

    def write(self, *, personnummer: str) -> bytes:
        return self._request(Personnummer=personnummer)

    def read(self, source: bytes | IO[bytes], *, strict: bool = False) -> Iterator[ReceivedMerit | RecordError]:
        for el in self._records(source, ("Merit",), strict):
            yield _convert(el, self._merit, "MeritId", "Merit")

    @staticmethod
    def _merit(el: etree._Element) -> ReceivedMerit:
        mtype = _required(el, "Type")
        if mtype not in MERIT_TYPES:
            raise ValueError(f"Type: not a merit type: {mtype!r}")
        received = _text(el, "Received")
        if received is not None:
            try:
                dt.datetime.fromisoformat(received.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"Received: not a dateTime: {received!r}") from None
        return ReceivedMerit(
            merit_id=_required(el, "MeritId"), personnummer=_personnummer(_required(el, "Personnummer")),
            type=mtype, utbildningskod=_required(el, "Utbildningskod"), date=_date(el, "Date", required=True) or "",
            tillfalleskod=_text(el, "Tillfalleskod"), modul=_text(el, "Modul"), credits=_text(el, "Credits"),
            grade=_text(el, "Grade"), source_reference=_text(el, "SourceReference"),
            received=received, request_id=_text(el, "RequestId"),
        )
