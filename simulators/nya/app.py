"""Starlette app of the NyA simulator.

SOAP 1.1 service (contract ``urn:brygga:nya:1``, docs/contracts/nya.md):
  GET  /nya/soap?wsdl        the WSDL, service address rewritten to this server
  GET  /nya/nya-1.xsd        the schema the WSDL imports
  POST /nya/soap             the operations; faults are HTTP 500 with a soap:Fault
Control API (JSON) under /sim/ for tests and demos; see ``routes`` below.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from lxml import etree
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from brygga import xmlsafe
from simulators._server import read_body
from simulators.faults import FaultMiddleware
from simulators.nya import service
from simulators.nya.soap import CONTENT_TYPE, SoapFault, body_element, envelope, fault_envelope
from simulators.nya.state import Applicant, NyaError, NyaState, canonical_pnr, sample_offer, seed

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024 * 1024
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
NOT_FOUND = {"unknown-round", "unknown-admission", "unknown-condition"}


def _fault_response(f: SoapFault) -> Response:
    return Response(fault_envelope(f), status_code=500, media_type=CONTENT_TYPE)


def _handle(state: NyaState, body: bytes, soap_action: str | None) -> Response:
    try:
        payload, replayed = service.dispatch(state, body_element(body), soap_action)
    except SoapFault as f:
        return _fault_response(f)
    except Exception:  # a bug in the simulator, not the caller's fault
        log.exception("NyA simulator: internal error")
        return _fault_response(SoapFault("Server", "internal-error", "internal error in the NyA service"))
    headers = {"X-Nya-Replayed": "true"} if replayed else None
    return Response(envelope(payload), media_type=CONTENT_TYPE, headers=headers)


def _default(o: Any) -> Any:
    if dataclasses.is_dataclass(o):
        return {k: v for k, v in dataclasses.asdict(o).items() if k != "xml"}
    if isinstance(o, (dt.date, Decimal)):
        return o.isoformat() if isinstance(o, dt.date) else str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(type(o).__name__)


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=_default, ensure_ascii=False), status_code=status,
                    media_type="application/json")


def control(fn: Callable[[Request, dict], Any]) -> Callable[[Request], Awaitable[Response]]:
    """JSON in (body, optional), JSON out; NyaError -> 400/404 {"error", "code"}."""

    async def endpoint(request: Request) -> Response:
        raw = await read_body(request, MAX_BODY)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            return _json({"error": "body must be JSON", "code": "bad-json"}, 400)
        if not isinstance(data, dict):
            return _json({"error": "body must be a JSON object", "code": "bad-json"}, 400)
        try:
            return _json(await run_in_threadpool(fn, request, data))
        except NyaError as e:
            return _json({"error": e.message, "code": e.code}, 404 if e.code in NOT_FOUND else 400)
        except (KeyError, TypeError, ValueError) as e:
            return _json({"error": f"bad request: {e}", "code": "bad-request"}, 400)

    return endpoint


def _applicant(d: dict) -> Applicant:
    return Applicant(
        canonical_pnr(str(d["personnummer"])), str(d["given_name"]), str(d["family_name"]), list(d["choices"]),
        float(d.get("score", 10.0)), bool(d.get("fee_liable", False)), bool(d.get("application_fee_paid", True)),
        tuple((c["code"], c["text"]) for c in d.get("conditions", [])), bool(d.get("auto_accept", False)))


def create_app(state: NyaState | None = None) -> Starlette:
    state = state if state is not None else seed(NyaState())
    wsdl_root = xmlsafe.fromstring(service.WSDL_PATH.read_bytes())
    xsd_bytes = service.SCHEMA_PATH.read_bytes()

    async def wsdl(request: Request) -> Response:
        if "wsdl" not in {k.lower() for k in request.query_params}:
            return Response("POST SOAP 1.1 requests here; GET ?wsdl for the WSDL\n", 400, media_type="text/plain")
        doc = etree.fromstring(etree.tostring(wsdl_root))  # copy, then point the service at this server
        for addr in doc.iter(f"{{{WSDL_SOAP}}}address"):
            addr.set("location", str(request.base_url).rstrip("/") + "/nya/soap")
        return Response(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"), media_type=CONTENT_TYPE)

    async def xsd(request: Request) -> Response:
        return Response(xsd_bytes, media_type=CONTENT_TYPE)

    async def soap(request: Request) -> Response:
        body = await read_body(request, MAX_BODY)
        if body is None:
            return _fault_response(SoapFault("Client", "too-large", f"request body larger than {MAX_BODY} bytes"))
        return await run_in_threadpool(_handle, state, body, request.headers.get("soapaction"))

    # -- control API --------------------------------------------------------------------------
    def code(r: Request) -> str:
        return r.path_params["code"]

    def reset(r, d):
        state.reset()
        if not d.get("empty"):
            seed(state, int(d.get("seed", 1)), offers=int(d.get("offers", 0)),
                 applicants=int(d.get("applicants", 0)), select=bool(d.get("select", False)))
        return state.stats()

    def put_round(r, d):
        if d.get("status", "open") not in ("open", "closed"):
            raise NyaError("bad-request", "status must be open or closed")
        dates = {k: dt.date.fromisoformat(d[k]) for k in
                 ("application_opens", "application_closes", "admission_notice", "term_start") if k in d}
        return state.put_round(d["code"], d.get("status", "open"), d.get("name"), **dates)

    def sample_offers(r, d):
        n, places = int(r.query_params.get("n", 3)), int(r.query_params.get("places", 30))
        kind = r.query_params.get("kind", "ordinary")
        with state.lock:
            start = sum(len(rs.offers) for rs in state.rounds.values()) + 1
            offers = [sample_offer(i, places=places, kind=kind, seed=state.seed) for i in range(start, start + n)]
            results = state.publish_offers(code(r), kind, offers)
        return [{"offer_id": i, "outcome": o, "reason": why} for i, o, why in results]

    def add_applicants(r, d):
        return {"added": state.add_applicants(code(r), [_applicant(a) for a in d["applicants"]])}

    def generate(r, d):
        p = {**r.query_params, **d}
        opts = {k: float(p[k]) for k in ("fee_share", "fee_paid_share", "condition_share", "accept_share") if k in p}
        added = state.generate_applicants(code(r), int(p.get("n", 100)),
                                          seed=int(p["seed"]) if "seed" in p else None,
                                          choices=int(p["choices"]) if "choices" in p else None, **opts)
        return {"added": added}

    def aterbud(r, d):
        if d.get("origin", "applicant") not in ("applicant", "staff"):
            raise NyaError("bad-request", "origin must be applicant or staff (Ladok reports via SOAP)")
        outcome, adm, rec, reason = state.register_aterbud(
            code(r), admission_id=d.get("admission_id"),
            pnr=canonical_pnr(d["personnummer"]) if d.get("personnummer") else None, offer_id=d.get("offer_id"),
            date=dt.date.fromisoformat(d["date"]) if d.get("date") else None, origin=d.get("origin", "applicant"))
        if outcome == "rejected":
            raise NyaError("unknown-admission", reason)
        return {"outcome": outcome, "aterbud": rec}

    def lift(r, d):
        return state.lift_condition(code(r), d["admission_id"], d["code"],
                                    dt.date.fromisoformat(d["date"]) if d.get("date") else None)

    def admissions(r, d):
        p = r.query_params
        pnr = canonical_pnr(p["personnummer"]) if "personnummer" in p else None
        with state.lock:
            _, adms, _ = state.admissions_since(code(r), int(p.get("from_sequence", 0)))
            return [a for a in adms if (pnr is None or a.personnummer == pnr)
                    and ("offer_id" not in p or a.offer_id == p["offer_id"])]

    def get(path: str, fn) -> Route:
        return Route(path, control(fn), methods=["GET"])

    def post(path: str, fn) -> Route:
        return Route(path, control(fn), methods=["POST"])

    routes = [
        Route("/nya/soap", wsdl, methods=["GET"]),
        Route("/nya/soap", soap, methods=["POST"]),
        Route("/nya/nya-1.xsd", xsd, methods=["GET"]),
        get("/sim/health", lambda r, d: {"status": "ok"}),
        get("/sim/stats", lambda r, d: state.stats()),
        post("/sim/reset", reset),
        get("/sim/rounds", lambda r, d: [rs.round for rs in state.rounds.values()]),
        post("/sim/rounds", put_round),
        get("/sim/rounds/{code}/offers", lambda r, d: state.get_offers(code(r), r.query_params.get("kind"))),
        post("/sim/rounds/{code}/offers/sample", sample_offers),
        get("/sim/rounds/{code}/applicants", lambda r, d: list(state.round_state(code(r)).applicants.values())),
        post("/sim/rounds/{code}/applicants", add_applicants),
        post("/sim/rounds/{code}/applicants/generate", generate),
        post("/sim/rounds/{code}/selection", lambda r, d: state.run_selection(code(r))),
        post("/sim/rounds/{code}/accept", lambda r, d: state.accept(
            code(r), canonical_pnr(d["personnummer"]), d.get("offer_id"))),
        get("/sim/rounds/{code}/admissions", admissions),
        # fault surface: <Admission> fragments as a broken NyA would send them, into GetAdmissions
        post("/sim/rounds/{code}/admissions/raw",
             lambda r, d: {"sequences": state.add_raw_admissions(code(r), list(d["fragments"]))}),
        post("/sim/rounds/{code}/aterbud", aterbud),
        get("/sim/rounds/{code}/aterbud", lambda r, d: state.round_state(code(r)).aterbud),
        post("/sim/rounds/{code}/conditions/lift", lift),
        get("/sim/rounds/{code}/condition-changes", lambda r, d: state.round_state(code(r)).changes),
        get("/sim/merits/{personnummer}",
            lambda r, d: state.applicant_merits(canonical_pnr(r.path_params["personnummer"]))),
    ]
    app = Starlette(routes=routes)
    app.state.nya = state
    app.add_middleware(FaultMiddleware)  # the fault plan (issue 33): POST /sim/faults
    return app
