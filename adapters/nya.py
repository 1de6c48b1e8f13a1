"""NyA: SOAP 1.1 over HTTP. Request bodies come from the NyA mappings; replies are streamed to
them (``adapters.http`` with ``stream=True`` feeding lxml iterparse, so a 100k-admission reply is never
held as a tree or deserialised by zeep). The WSDL in ``schemas/nya`` is the contract (zeep loads
it in the tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from adapters.http import PeerError, TransportError, UnreadableReply, session, status_error, transport_error
from brygga import xmlsafe
from brygga.config import PeerConfig
from brygga.records import AterbudReport, Merit, Offer
from mappings import registry
from mappings.base import RecordError

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
NYA_NS = "urn:brygga:nya:1"
ENVELOPE_HEAD = f'<soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body>'.encode()
ENVELOPE_TAIL = b"</soap:Body></soap:Envelope>"
#: The offer kinds and the mapping message each is published with.
OFFER_MESSAGES = {"ordinary": "offer", "programme-internal": "programme-offer"}
Results = dict[str, tuple[str, "str | None"]]


class NyaFault(PeerError):
    """A SOAP Fault. Client faults (bad request) are permanent; Server faults are transient."""

    def __init__(self, faultcode: str, code: str, message: str, field: str | None):
        transient = faultcode.endswith("Server")
        super().__init__("nya", f"{faultcode} {code}: {message}" + (f" ({field})" if field else ""),
                         status=500, transient=transient)
        self.faultcode, self.code, self.field = faultcode, code, field


class _Counted:
    """A reply stream that counts what was read (where an unreadable reply broke)."""

    __slots__ = ("_raw", "count")

    def __init__(self, raw: Any):
        self._raw, self.count = raw, 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._raw.read(n)
        self.count += len(data)
        return data


class _Records:
    """A stream's records as they are read: a reply that turns out unreadable part-way raises
    ``UnreadableReply`` (named by peer and operation) where the reader meets it, so what was read
    before it can be kept."""

    def __init__(self, reply: Any, operation: str, counted: _Counted):
        self._reply, self._operation, self._counted = reply, operation, counted

    @property
    def next_sequence(self) -> int | None:
        n: int | None = self._reply.next_sequence
        return n

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._reply
        except xmlsafe.UnreadableXML as e:
            raise UnreadableReply("nya", self._operation, e, transient=isinstance(e, xmlsafe.MalformedXML),
                                  read_bytes=self._counted.count) from e


class NyaContract:
    """NyA's contract without a connection: what a request would refuse, checked by the configured
    mappings against the XSD (the offer export's dry run validates with it when it has no NyA)."""

    def __init__(self, mappings: dict[str, int] | None = None):
        self.mappings = mappings

    def mapping(self, message: str) -> Any:
        return registry.select("nya", message, self.mappings)

    def invalid_offers(self, kind: str, offers: list[Offer], round_code: str) -> dict[str, str]:
        """The offers NyA's contract refuses (offer id -> why), checked as one request would be."""
        _, errors = self.mapping(OFFER_MESSAGES[kind]).write(offers, round_code=round_code, request_id="validation")
        return {e.record_id: str(e) for e in errors}

    def invalid_merits(self, merits: list[Merit]) -> dict[str, str]:
        """The merits NyA's contract refuses (merit id -> the field and rule), before they are queued."""
        _, errors = self.mapping("merit").write(merits, request_id="validation")
        return {e.record_id: f"field {e.field}: {e.rule}" for e in errors}


class NyaAdapter(NyaContract):
    def __init__(self, peer: PeerConfig, *, mappings: dict[str, int] | None = None):
        super().__init__(mappings if mappings is not None else peer.mappings)
        self.peer = peer
        self.url = peer.base_url.rstrip("/") + "/nya/soap"
        self.http = session(peer)

    @contextlib.contextmanager
    def call(self, operation: str, body: bytes) -> Iterator[IO[bytes]]:
        """POST one operation; yields the reply as a stream for a mapping to read."""
        try:
            r = self.http.post(
                self.url, data=ENVELOPE_HEAD + body + ENVELOPE_TAIL, stream=True, timeout=self.peer.timeout,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NYA_NS}#{operation}"'},
            )
        except TransportError as e:
            raise transport_error("nya", e) from None
        try:
            if r.status_code == 500:
                raise self._fault(r.content)
            if r.status_code != 200:
                raise status_error("nya", operation, r.status_code, r.headers)
            stream = _Counted(r.raw)
            try:
                yield stream  # type: ignore[misc]  # a file-like with read(n): all a reader needs
            except xmlsafe.UnreadableXML as e:  # raised by the mapping reading the reply
                raise UnreadableReply("nya", operation, e, transient=isinstance(e, xmlsafe.MalformedXML),
                                      read_bytes=stream.count) from e
        finally:
            r.close()

    def _fault(self, body: bytes) -> PeerError:
        try:
            root = xmlsafe.fromstring(body)
        except ValueError:
            return PeerError("nya", "HTTP 500 without a SOAP fault", status=500, transient=True)
        fault = root.find(f".//{{{SOAP_NS}}}Fault")
        if fault is None:
            return PeerError("nya", "HTTP 500 without a SOAP fault", status=500, transient=True)
        detail = fault.find(f".//{{{NYA_NS}}}FaultDetail")
        get = (lambda n: detail.findtext(f"{{{NYA_NS}}}{n}")) if detail is not None else (lambda n: None)
        return NyaFault(fault.findtext("faultcode") or "", get("Code") or "", get("Message") or
                        (fault.findtext("faultstring") or ""), get("Field"))

    def body(self, operation: str, **fields: Any) -> bytes:
        """A small request element built from keyword fields, e.g. ``body("GetOffers", Round="HT2027")``."""
        from lxml import etree

        root = etree.Element(f"{{{NYA_NS}}}{operation}", nsmap={None: NYA_NS})
        for name, value in fields.items():
            if value is not None:
                etree.SubElement(root, f"{{{NYA_NS}}}{name}").text = str(value).lower() if isinstance(value, bool) else str(value)
        return etree.tostring(root)

    # ------------------------------------------------------------------ the gateway the flows use
    # Flows call these typed methods (brygga.flows.ports.Nya) and never name an operation or a
    # field: requests are written and replies read by the configured mappings (mappings/nya/).

    @contextlib.contextmanager
    def _stream(self, operation: str, message: str, round_code: str, from_sequence: int,
                **fields: Any) -> Iterator[Any]:
        """A round's stream from ``from_sequence`` (0: from its start): the reply, to iterate for
        records (``RecordError`` in place of a bad one) and its ``next_sequence``."""
        body = self.body(operation, Round=round_code, FromSequence=from_sequence or None, **fields)
        with self.call(operation, body) as reply:
            yield _Records(self.mapping(message).read(reply), operation, reply)  # type: ignore[arg-type]

    def admissions(self, round_code: str, from_sequence: int = 0) -> contextlib.AbstractContextManager[Any]:
        """The round's admitted-and-accepted admissions (``Admission``) from ``from_sequence``."""
        return self._stream("GetAdmissions", "admission", round_code, from_sequence, OnlyAccepted=True)

    def condition_changes(self, round_code: str, from_sequence: int = 0) -> contextlib.AbstractContextManager[Any]:
        """The round's behörighetsvillkor added and lifted (``ConditionChange``) from ``from_sequence``."""
        return self._stream("GetConditionChanges", "villkor", round_code, from_sequence)

    def aterbud(self, round_code: str, from_sequence: int = 0) -> contextlib.AbstractContextManager[Any]:
        """The round's återbud (``NyaAterbud``) from ``from_sequence``."""
        return self._stream("GetAterbud", "aterbud", round_code, from_sequence)

    def applicant_stream(self, round_code: str, from_sequence: int = 0) -> contextlib.AbstractContextManager[Any]:
        """The round's applicants as they first applied (``Applicant``: sequence, personnummer)."""
        return self._stream("GetApplicants", "applicant-stream", round_code, from_sequence)

    def _send(self, operation: str, body: bytes, errors: list[RecordError], mapping: Any, count: int,
              describe: Callable[[RecordError], str] = lambda e: f"field {e.field}: {e.rule}") -> Results:
        """Send a request unless its mapping refused every record; {record id: (outcome, reason)},
        the refused ones ``rejected`` with the field and rule they broke."""
        results: Results = {e.record_id: ("rejected", describe(e)) for e in errors}
        if len(errors) < count:
            with self.call(operation, body) as reply:
                results.update(mapping.read_results(reply))
        return results

    def publish_offers(self, kind: str, offers: list[Offer], round_code: str, request_id: str) -> Results:
        """Publish (create or update) offers of ``kind`` (ordinary / programme-internal)."""
        m = self.mapping(OFFER_MESSAGES[kind])
        body, errors = m.write(offers, round_code=round_code, request_id=request_id)
        return self._send("PublishOffer", body, errors, m, len(offers), describe=str)

    def withdraw_offers(self, offer_ids: list[str], round_code: str, reason: str, request_id: str) -> Results:
        m = self.mapping("offer-withdraw")
        body, errors = m.write(offer_ids, round_code=round_code, reason=reason, request_id=request_id)
        return self._send("WithdrawOffer", body, errors, m, len(offer_ids))

    def submit_merits(self, merits: list[Merit], request_id: str) -> Results:
        m = self.mapping("merit")
        body, errors = m.write(merits, request_id=request_id)
        return self._send("SubmitMerits", body, errors, m, len(merits))

    def withdraw_merits(self, merit_ids: list[str], request_id: str, reason: str | None = None) -> Results:
        """Take back merits Ladok no longer has: {MeritId: (withdrawn | not-held, reason)}."""
        m = self.mapping("merit-withdraw")
        body, errors = m.write(merit_ids, request_id=request_id, reason=reason)
        return self._send("WithdrawMerits", body, errors, m, len(merit_ids))

    def report_aterbud(self, reports: list[AterbudReport], round_code: str, request_id: str) -> Results:
        m = self.mapping("aterbud")
        body, errors = m.write(reports, round_code=round_code, request_id=request_id)
        return self._send("ReportAterbud", body, errors, m, len(reports))

    # Requests and replies of the rounds, applicants and their merits are translated by
    # mappings/nya/applicants.py (nya.rounds / nya.applicants / nya.applicant-merits); records the
    # mapping refuses are logged (masked) and left out.

    def open_rounds(self) -> list[str]:
        """Codes of the admission rounds that are open (``ListAdmissionRounds(Status=open)``)."""
        m = self.mapping("rounds")
        with self.call("ListAdmissionRounds", m.write(status="open")) as reply:
            rounds = list(m.read(reply))
        return [r.code for r in _usable(rounds, "ListAdmissionRounds")]

    def applicants(self, round_code: str) -> set[str]:
        """Personnummer (12 digits) of every applicant in an open round (``ListApplicants``)."""
        m = self.mapping("applicants")
        with self.call("ListApplicants", m.write(round_code=round_code)) as reply:
            result = m.read(reply)
        _usable(result.errors, "ListApplicants")
        return set(result.personnummer)

    def applicant_merits(self, personnummer: str) -> list[Any]:
        """The merits NyA holds for one applicant (``GetApplicantMerits``): ``ReceivedMerit`` records
        (a ``Merit`` plus ``received`` and ``request_id``)."""
        m = self.mapping("applicant-merits")
        with self.call("GetApplicantMerits", m.write(personnummer=personnummer)) as reply:
            return _usable(list(m.read(reply)), "GetApplicantMerits")


def _usable(records: list[Any], operation: str) -> list[Any]:
    """The records without the ``RecordError``s, which are logged (personnummer masked)."""
    from brygga.logmask import get_logger

    bad = [r for r in records if isinstance(r, RecordError)]
    for err in bad:
        get_logger("adapters.nya").warning("nya %s: record left out: %s", operation, err)
    return [r for r in records if not isinstance(r, RecordError)] if bad else records
