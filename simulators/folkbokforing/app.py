"""Starlette app of the population register simulator.

Register API (XML, namespace ``urn:brygga:folkbokforing:1``):
  GET  /folkbokforing/person/{personnummer}   one person; 404 unknown, 400 invalid number
  POST /folkbokforing/personer                batch lookup of up to 1000 numbers
Control API (JSON):
  GET  /sim/health, GET /sim/stats, POST /sim/reset
  POST /sim/personer  (add/update), GET|PUT|DELETE /sim/personer/{personnummer}
  POST /sim/fault     ``{"kind": "cut"|"html"|"doctype"|"503", "times": n}``: the next n batch
                      replies broken so (cut short, an HTML page with 200, a DTD, unavailable)

Requests are parsed with ``brygga.xmlsafe`` only; responses are built with lxml and are valid
against ``schemas/folkbokforing/folkbokforing-1.xsd``. The address of a protected person
(sekretessmarkering or skyddad folkbokföring) is never part of a register response.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from brygga import personnummer as pnr_mod
from brygga import xmlsafe
from brygga.paths import SCHEMAS
from simulators._server import read_body
from simulators.faults import FaultMiddleware
from simulators.folkbokforing.state import ControlError, FolkbokforingState, PersonRecord

NS = "urn:brygga:folkbokforing:1"
SCHEMA_PATH = SCHEMAS / "folkbokforing" / "folkbokforing-1.xsd"
XML_MEDIA_TYPE = "application/xml; charset=utf-8"
MAX_BATCH = 1000
MAX_BODY = 1_000_000  # bytes; 1000 numbers in XML or JSON fit comfortably
FAULTS = ("cut", "html", "doctype", "503")


def broken_reply(kind: str, good: bytes) -> Response:
    """A batch reply as a failing register (or what sits in front of it) might send it."""
    if kind == "cut":  # the connection dropped half-way: 200 and half the document
        return Response(good[: len(good) // 2], media_type=XML_MEDIA_TYPE)
    if kind == "html":  # a proxy's error page with 200
        return Response(b"<html><body><h1>Temporarily unavailable</h1></body></html>", media_type="text/html")
    if kind == "doctype":
        return Response(b'<?xml version="1.0"?><!DOCTYPE Personer [<!ENTITY x "x">]><Personer xmlns="' + NS.encode()
                        + b'">&x;</Personer>', media_type=XML_MEDIA_TYPE)
    return fel(503, "otillganglig", "the register is not available")


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _sub(parent: etree._Element, tag: str, text: str) -> etree._Element:
    el = etree.SubElement(parent, _q(tag))
    el.text = text
    return el


def _bool(v: bool) -> str:
    return "true" if v else "false"


def person_element(rec: PersonRecord, parent: etree._Element | None = None) -> etree._Element:
    el = etree.Element(_q("Person"), nsmap={None: NS}) if parent is None else etree.SubElement(parent, _q("Person"))
    _sub(el, "Personnummer", rec.personnummer)
    _sub(el, "Samordningsnummer", _bool(rec.samordningsnummer))
    _sub(el, "Fornamn", rec.fornamn)
    _sub(el, "Efternamn", rec.efternamn)
    _sub(el, "Sekretessmarkering", _bool(rec.sekretessmarkering))
    _sub(el, "SkyddadFolkbokforing", _bool(rec.skyddad_folkbokforing))
    if not rec.skyddad and rec.adress is not None:
        adr = etree.SubElement(el, _q("Folkbokforingsadress"))
        _sub(adr, "Utdelningsadress", rec.adress.utdelningsadress)
        _sub(adr, "Postnummer", rec.adress.postnummer)
        _sub(adr, "Postort", rec.adress.postort)
    return el


def _xml(root: etree._Element, status: int = 200) -> Response:
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Response(body, status_code=status, media_type=XML_MEDIA_TYPE)


def fel(status: int, kod: str, meddelande: str) -> Response:
    root = etree.Element(_q("Fel"), nsmap={None: NS})
    _sub(root, "Status", str(status))
    _sub(root, "Kod", kod)
    _sub(root, "Meddelande", meddelande)
    return _xml(root, status)


def canonical(raw: str) -> str:
    """Validate like the register does; raises InvalidPersonnummer with a readable reason."""
    p = pnr_mod.parse(raw)
    if not 1800 <= int(p.value[:4]) <= 2099:
        raise pnr_mod.InvalidPersonnummer("personnummer has an impossible birth year")
    return p.value


def _json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _batch_numbers(body: bytes, content_type: str) -> list[str]:
    """The requested numbers, from JSON (a list, or {"personnummer": [...]}) or XML PersonerFraga."""
    ct = content_type.split(";")[0].strip().lower()
    looks_json = ct.endswith("json") or (not ct.endswith("xml") and body.lstrip()[:1] in (b"[", b"{"))
    if looks_json:
        try:
            data = json.loads(body)
        except ValueError:
            raise _BadRequest("ogiltig-begaran", "request body is not valid JSON") from None
        if isinstance(data, dict):
            data = data.get("personnummer")
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise _BadRequest(
                "ogiltig-begaran", 'JSON body must be a list of strings or {"personnummer": [strings]}'
            )
        return data
    try:
        root = xmlsafe.fromstring(body)
    except xmlsafe.UnsafeXML as e:
        raise _BadRequest("osaker-xml", str(e)) from None
    except xmlsafe.MalformedXML as e:
        raise _BadRequest("ogiltig-xml", str(e)) from None
    if root.tag != _q("PersonerFraga"):
        raise _BadRequest("ogiltig-begaran", f"root element must be {{{NS}}}PersonerFraga")
    out = []
    for child in root:
        if child.tag != _q("Personnummer"):
            raise _BadRequest("ogiltig-begaran", "PersonerFraga may only contain Personnummer elements")
        out.append((child.text or "").strip())
    return out


class _BadRequest(Exception):
    def __init__(self, kod: str, meddelande: str):
        super().__init__(meddelande)
        self.kod = kod
        self.meddelande = meddelande


def create_app(state: FolkbokforingState | None = None) -> Starlette:
    state = state if state is not None else FolkbokforingState()

    # -- register API ------------------------------------------------------------------
    async def person(request: Request) -> Response:
        raw = request.path_params["personnummer"]
        try:
            key = canonical(raw)
        except pnr_mod.InvalidPersonnummer as e:
            return fel(400, "ogiltigt-personnummer", str(e))
        rec = state.get(key)
        if rec is None:
            return fel(404, "person-saknas", "no person with that personnummer in the register")
        return _xml(person_element(rec))

    async def personer(request: Request) -> Response:
        body = await read_body(request, MAX_BODY)
        if body is None:
            return fel(413, "for-stor-begaran", f"request body larger than {MAX_BODY} bytes")
        try:
            numbers = _batch_numbers(body, request.headers.get("content-type", ""))
        except _BadRequest as e:
            return fel(400, e.kod, e.meddelande)
        if len(numbers) > MAX_BATCH:
            return fel(400, "for-manga", f"at most {MAX_BATCH} personnummer per request (got {len(numbers)})")
        if faults:
            kind = faults.pop(0)
            return broken_reply(kind, etree.tostring(batch_element(state, numbers), xml_declaration=True,
                                                     encoding="UTF-8"))
        return _xml(batch_element(state, numbers))

    # -- control API -------------------------------------------------------------------
    faults: list[str] = []

    async def fault(request: Request) -> Response:
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            return _json_error(400, "body must be JSON")
        kind, times = (data.get("kind"), data.get("times", 1)) if isinstance(data, dict) else (None, None)
        if kind not in FAULTS or not isinstance(times, int) or isinstance(times, bool) or not 0 <= times <= 1000:
            return _json_error(400, f"'kind' one of {', '.join(FAULTS)}; 'times' 0..1000")
        faults.extend([kind] * times)
        return JSONResponse({"pending": list(faults)})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "people": len(state)})

    async def stats(request: Request) -> Response:
        people = state.all()
        return JSONResponse(
            {
                "seed": state.seed,
                "seeded_people": state.people,
                "people": len(people),
                "protected": sum(1 for p in people if p.skyddad),
                "samordningsnummer": sum(1 for p in people if p.samordningsnummer),
            }
        )

    async def reset(request: Request) -> Response:
        data: Any = {}
        body = await read_body(request, MAX_BODY)
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                return _json_error(400, "body must be JSON")
        if not isinstance(data, dict):
            return _json_error(400, "body must be a JSON object")
        seed, people = data.get("seed"), data.get("people")
        for k, v in (("seed", seed), ("people", people)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                return _json_error(400, f"'{k}' must be a non-negative integer")
        if people is not None and people > 2_000_000:
            return _json_error(400, "'people' must be at most 2000000")
        state.reset(seed=seed, people=people)
        return JSONResponse({"seed": state.seed, "people": len(state)})

    async def upsert(request: Request) -> Response:
        body = await read_body(request, MAX_BODY)
        if body is None:
            return _json_error(413, "body too large")
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return _json_error(400, "body must be JSON")
        path_pnr = request.path_params.get("personnummer")
        try:
            rec, created = state.upsert_json(data, path_pnr=path_pnr)
        except ControlError as e:
            return _json_error(400, str(e))
        return JSONResponse(rec.to_json(), status_code=201 if created else 200)

    async def control_person(request: Request) -> Response:
        try:
            key = canonical(request.path_params["personnummer"])
        except pnr_mod.InvalidPersonnummer as e:
            return _json_error(400, str(e))
        if request.method == "DELETE":
            if not state.delete(key):
                return _json_error(404, "unknown person")
            return Response(status_code=204)
        rec = state.get(key)
        if rec is None:
            return _json_error(404, "unknown person")
        return JSONResponse(rec.to_json())

    routes = [
        Route("/folkbokforing/person/{personnummer}", person, methods=["GET"]),
        Route("/folkbokforing/personer", personer, methods=["POST"]),
        Route("/sim/health", health, methods=["GET"]),
        Route("/sim/stats", stats, methods=["GET"]),
        Route("/sim/reset", reset, methods=["POST"]),
        Route("/sim/fault", fault, methods=["POST"]),
        Route("/sim/personer", upsert, methods=["POST"]),
        Route("/sim/personer/{personnummer}", upsert, methods=["PUT"]),
        Route("/sim/personer/{personnummer}", control_person, methods=["GET", "DELETE"]),
    ]
    app = Starlette(routes=routes)
    app.state.register = state
    app.add_middleware(FaultMiddleware)  # the fault plan (issue 33): POST /sim/faults
    return app


def batch_element(state: FolkbokforingState, numbers: Iterable[str]) -> etree._Element:
    """``Personer``: one Person / EjFunnen / Ogiltig per requested number, in request order."""
    numbers = list(numbers)
    root = etree.Element(_q("Personer"), nsmap={None: NS})
    _sub(root, "Antal", str(len(numbers)))
    for raw in numbers:
        try:
            key = canonical(raw)
        except pnr_mod.InvalidPersonnummer as e:
            bad = etree.SubElement(root, _q("Ogiltig"))
            _sub(bad, "Indata", _printable(pnr_mod.mask(raw)))
            _sub(bad, "Orsak", str(e))
            continue
        rec = state.get(key)
        if rec is None:
            missing = etree.SubElement(root, _q("EjFunnen"))
            _sub(missing, "Personnummer", key)
        else:
            person_element(rec, root)
    return root


def _printable(s: str) -> str:
    s = "".join(ch if ch.isprintable() else "?" for ch in s)
    return s[:40]
