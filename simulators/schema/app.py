"""Starlette app of the scheduling-system simulator: TimeEdit's REST API v1 as docs/contracts/
schema.md lists it, and Brygga's HTTP form of LIS delivery.

TimeEdit (JSON; every call but the first needs ``Authorization: Bearer <token>``):
  POST   /v1/organizations/{orgId}/api-keys/authenticate   Authorization: Api-Key <key>, X-Region -> {"token"}
  POST   /v1/objects/upsert     {"importMode": "PATCH"|"PUT", "idFormat": "EXTERNAL", "objects": [...]} -> 207
  POST   /v1/objects/validate   the same body: what upsert would answer, nothing changes -> 207
  DELETE /v1/objects            {"idFormat": "EXTERNAL", "objects": [{"typeId", "extId"}]} -> 207
  POST   /v1/objects/find       {"idFormat": "EXTERNAL", "typeId", "page", "limit", "extIds"?} -> results
LIS (Brygga's own HTTP form): POST /lis/v2/records, a schemas/schema/lis2/records.xsd document -> 207.
Control (JSON): GET /sim/health, GET /sim/stats, POST /sim/reset, POST /sim/record (keep request
bodies), GET /sim/bodies, POST /sim/book/{type}/{extId}, POST /sim/expire-tokens
"""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from brygga import xmlsafe
from brygga.paths import SCHEMAS
from simulators._server import read_body
from simulators.faults import FaultMiddleware
from simulators.schema.state import IMPORT_MODES, ScheduleState

MAX_BODY = 64 * 1024 * 1024
MAX_OBJECTS = 5000
MAX_VALIDATE = 500_000  # a whole export's dry run is one validate request
MAX_FIND = 1000


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(state: ScheduleState | None = None) -> Starlette:
    state = state if state is not None else ScheduleState()

    async def _json(request: Request) -> dict[str, Any] | Response:
        if not state.authorized(request.headers.get("authorization")):
            return _error(401, "ogiltig eller utgången token")
        body = await read_body(request, MAX_BODY)
        if body is None:
            return _error(413, "begäran är för stor")
        if state.record_bodies:
            state.bodies.append(body)
        try:
            doc = json.loads(body)
        except ValueError as e:
            return _error(400, f"ogiltig JSON: {e}")
        if not isinstance(doc, dict):
            return _error(400, "kroppen ska vara ett JSON-objekt")
        if doc.get("idFormat") != "EXTERNAL":
            return _error(400, "idFormat ska vara EXTERNAL (objekt, fält och typer med externa id)")
        return doc

    async def _objects(request: Request, most: int) -> tuple[dict[str, Any], list[Any]] | Response:
        if request.query_params:
            return _error(400, "parametrar hör till kroppen (importMode, idFormat), inte till adressen")
        doc = await _json(request)
        if isinstance(doc, Response):
            return doc
        objects = doc.get("objects")
        if not isinstance(objects, list):
            return _error(400, "objects saknas")
        if len(objects) > most:
            return _error(413, f"högst {most} objekt per begäran")
        return doc, objects

    async def authenticate(request: Request) -> Response:
        if not request.headers.get("x-region"):
            return _error(400, "X-Region saknas")
        token = state.authenticate(request.path_params["org"], request.headers.get("authorization"))
        if token is None:
            return _error(401, "API-nyckeln gäller inte för organisationen")
        return JSONResponse({"token": token})

    async def upsert(request: Request, apply: bool = True) -> Response:
        got = await _objects(request, MAX_OBJECTS if apply else MAX_VALIDATE)
        if isinstance(got, Response):
            return got
        doc, objects = got
        if doc.get("importMode") not in IMPORT_MODES:
            return _error(400, "importMode ska vara PATCH eller PUT")
        return JSONResponse(state.upsert(objects, doc["importMode"], apply=apply), status_code=207)

    async def validate(request: Request) -> Response:
        return await upsert(request, apply=False)

    async def delete(request: Request) -> Response:
        got = await _objects(request, MAX_OBJECTS)
        if isinstance(got, Response):
            return got
        return JSONResponse(state.delete(got[1]), status_code=207)

    async def find(request: Request) -> Response:
        doc = await _json(request)
        if isinstance(doc, Response):
            return doc
        try:
            page = max(1, int(doc.get("page", 1)))
            limit = min(MAX_FIND, max(1, int(doc.get("limit", 100))))
        except (TypeError, ValueError):
            return _error(400, "page och limit ska vara heltal")
        ext_ids = doc.get("extIds")
        total, hits = state.find(doc.get("typeId"), page, limit, ext_ids if isinstance(ext_ids, list) else None)
        return JSONResponse({"results": [
            {"id": o.ext_id, "typeId": o.type, "active": o.active, "organizations": list(o.organizations),
             "fields": [{"fieldId": f"{o.type}.{k}", "values": v} for k, v in o.fields.items()]} for o in hits],
            "page": page, "limit": limit, "totalResults": total, "totalPages": -(-total // limit)})

    async def lis_records(request: Request) -> Response:
        body = await read_body(request, MAX_BODY)
        if body is None:
            return _error(413, "begäran är för stor")
        if state.record_bodies:
            state.bodies.append(body)
        try:
            doc = xmlsafe.fromstring(body)
        except xmlsafe.UnreadableXML as e:
            return _error(400, f"oläsbar XML: {e}")
        schema = xmlsafe.load_schema(SCHEMAS / "schema" / "lis2" / "records.xsd")
        if not schema.validate(doc):
            return _error(400, f"dokumentet följer inte records.xsd: {schema.error_log.last_error}")
        key = doc.get("requestId")
        with state.lock:
            if key in state.replay:
                state.stats["replayed"] += 1
                return JSONResponse(state.replay[key][1], status_code=207)
            results = []
            for rec in doc:
                typ = rec.tag.rpartition("}")[2]
                sid = rec[0][0].text
                status = next((e.text for e in rec.iter() if isinstance(e.tag, str) and e.tag.endswith("}status")), None)
                state.lis[f"{typ}:{sid}"] = {"type": typ, "status": status}
                results.append({"type": typ, "sourcedId": sid, "status": 200, "message": "mottaget"})
            answer = {"results": results}
            state.replay[key] = (207, answer)
            state.stats["lis.requests"] += 1
        return JSONResponse(answer, status_code=207)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "objects": len(state.objects)})

    async def stats(request: Request) -> Response:
        with state.lock:
            by_type: dict[str, int] = {}
            for (typ, _), o in state.objects.items():
                k = f"{typ}.{'active' if o.active else 'inactive'}"
                by_type[k] = by_type.get(k, 0) + 1
            return JSONResponse({"stats": dict(state.stats), "objects": by_type, "lis": len(state.lis)})

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"status": "reset"})

    async def record(request: Request) -> Response:
        state.record_bodies = True
        return JSONResponse({"record_bodies": True})

    async def bodies(request: Request) -> Response:
        return JSONResponse({"bodies": [base64.b64encode(b).decode() for b in state.bodies]})

    async def book(request: Request) -> Response:
        try:
            o = state.book(request.path_params["type"], request.path_params["ext"])
        except KeyError:
            return _error(404, "finns inte")
        return JSONResponse({"typeId": o.type, "extId": o.ext_id, "bookings": o.bookings})

    async def expire(request: Request) -> Response:
        state.expire_tokens()
        return JSONResponse({"tokens": 0})

    routes = [
        Route("/v1/organizations/{org}/api-keys/authenticate", authenticate, methods=["POST"]),
        Route("/v1/objects/upsert", upsert, methods=["POST"]),
        Route("/v1/objects/validate", validate, methods=["POST"]),
        Route("/v1/objects/find", find, methods=["POST"]),
        Route("/v1/objects", delete, methods=["DELETE"]),
        Route("/lis/v2/records", lis_records, methods=["POST"]),
        Route("/sim/health", health),
        Route("/sim/stats", stats),
        Route("/sim/reset", reset, methods=["POST"]),
        Route("/sim/record", record, methods=["POST"]),
        Route("/sim/bodies", bodies),
        Route("/sim/book/{type}/{ext}", book, methods=["POST"]),
        Route("/sim/expire-tokens", expire, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.schedule = state
    app.add_middleware(FaultMiddleware)  # the fault plan (issue 33): POST /sim/faults
    return app
