"""NyA: SOAP 1.1 over HTTP. Request bodies come from the NyA mappings; replies are streamed to
them (``adapters.http`` with ``stream=True`` feeding lxml iterparse, so a 100k-admission reply is never
held as a tree or deserialised by zeep). The WSDL in ``schemas/nya`` is the contract (zeep loads
it in the tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO, Any

from adapters.http import PeerError, TransportError, UnreadableReply, session, transport_error
from brygga import xmlsafe
from brygga.connections import PeerConfig
from mappings import registry

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
NYA_NS = "urn:brygga:nya:1"
ENVELOPE_HEAD = f'<soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body>'.encode()
ENVELOPE_TAIL = b"</soap:Body></soap:Envelope>"


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


class NyaAdapter:
    def __init__(self, peer: PeerConfig, *, mappings: dict[str, int] | None = None):
        self.peer = peer
        self.url = peer.base_url.rstrip("/") + "/nya/soap"
        self.http = session(peer)
        self.mappings = mappings if mappings is not None else peer.extra.get("mappings")

    def mapping(self, message: str) -> Any:
        return registry.select("nya", message, self.mappings)

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
                raise PeerError("nya", f"{operation}: HTTP {r.status_code}", status=r.status_code,
                                transient=r.status_code in (429, 502, 503, 504))
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

    # ------------------------------------------------------------------ rounds, applicants, their merits
    # Requests and replies are translated by mappings/nya/applicants.py (nya.rounds / nya.applicants /
    # nya.applicant-merits); records the mapping refuses are logged (masked) and left out.

    def open_rounds(self) -> list[str]:
        """Codes of the admission rounds that are open (``ListAdmissionRounds(Status=open)``)."""
        m = self.mapping("rounds")
        with self.call("ListAdmissionRounds", m.write(status="open")) as reply:
            rounds = list(m.read(reply))
        return [r.code for r in _usable(rounds, "ListAdmissionRounds")]

    def list_applicants(self, round_code: str) -> set[str]:
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
    from mappings.base import RecordError

    bad = [r for r in records if isinstance(r, RecordError)]
    for err in bad:
        get_logger("adapters.nya").warning("nya %s: record left out: %s", operation, err)
    return [r for r in records if not isinstance(r, RecordError)] if bad else records
