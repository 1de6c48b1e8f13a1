"""SOAP 1.1 plumbing: read a request envelope safely, write response and fault envelopes."""

from __future__ import annotations

from lxml import etree

from brygga import xmlsafe

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
NS = "urn:brygga:nya:1"
CONTENT_TYPE = "text/xml; charset=utf-8"


class SoapFault(Exception):
    """``faultcode`` is Client, Server, VersionMismatch or MustUnderstand; ``code`` goes to the detail."""

    def __init__(self, faultcode: str, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.faultcode, self.code, self.message, self.field = faultcode, code, message, field


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def sub(parent: etree._Element, tag: str, value) -> etree._Element:
    el = etree.SubElement(parent, q(tag))
    if value is not None:
        el.text = value if isinstance(value, str) else text(value)
    return el


def opt(parent: etree._Element, tag: str, value) -> None:
    if value is not None:
        sub(parent, tag, value)


def text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def element(tag: str) -> etree._Element:
    return etree.Element(q(tag), nsmap={None: NS})


def _shell() -> tuple[bytes, bytes]:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    etree.SubElement(etree.SubElement(env, f"{{{SOAP_ENV}}}Body"), "_")
    head, tail = etree.tostring(env, xml_declaration=True, encoding="UTF-8").split(b"<_/>")
    return head, tail


_HEAD, _TAIL = _shell()


def envelope(payload: bytes | etree._Element) -> bytes:
    """Wrap a serialized body element (or an element) in a SOAP 1.1 envelope."""
    if not isinstance(payload, bytes):
        payload = etree.tostring(payload, encoding="UTF-8")
    return _HEAD + payload + _TAIL


def fault_envelope(f: SoapFault) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{f.faultcode}"
    etree.SubElement(fault, "faultstring").text = f.message
    detail = etree.SubElement(etree.SubElement(fault, "detail"), q("FaultDetail"), nsmap={None: NS})
    sub(detail, "Code", f.code)
    sub(detail, "Message", f.message[:500])
    opt(detail, "Field", f.field)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def body_element(data: bytes) -> etree._Element:
    """The single element inside soap:Body of a SOAP 1.1 request; SoapFault for anything else."""
    try:
        root = xmlsafe.fromstring(data)
    except (xmlsafe.UnsafeXML, xmlsafe.MalformedXML) as e:
        raise SoapFault("Client", "malformed-xml", str(e)) from None
    if root.tag == f"{{{SOAP12_ENV}}}Envelope":
        raise SoapFault("VersionMismatch", "not-soap", "SOAP 1.2 envelopes are not supported; use SOAP 1.1")
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapFault("Client", "not-soap", f"root element must be soap:Envelope ({SOAP_ENV})")
    header = root.find(f"{{{SOAP_ENV}}}Header")
    if header is not None:
        for h in header:
            if h.get(f"{{{SOAP_ENV}}}mustUnderstand") in ("1", "true"):
                raise SoapFault("MustUnderstand", "not-soap", f"header {etree.QName(h).localname} is not understood")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    children = [] if body is None else [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapFault("Client", "not-soap", "soap:Body must contain exactly one element")
    return children[0]
