"""Starlette app of the scheduling-system simulator.

Import API (JSON, TimeEdit-style):
  POST /api/v1/objects/upsert     {"objects": [{type, extId, fields, active} | {type, extId, operation: "delete"}]}
                                  header Idempotency-Key; 207 {"results": [{type, extId, status, message}]}
  POST /api/v1/objects/validate   the same body: what upsert would answer, nothing changes
  GET  /api/v1/objects?type=&page=&limit=   what it holds: {"total", "objects": [{type, extId, fields, active}]}
LIS records:
  POST /lis/v1/records            a schemas/schema/lis-1.xsd document; 207 per record (sourcedId)
Control (JSON): GET /sim/health, GET /sim/stats, POST /sim/reset, POST /sim/record (keep request
bodies), GET /sim/bodies, POST /sim/book/{type}/{extId}
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
from simulators.schema.state import ScheduleState

MAX_BODY = 64 * 1024 * 1024
MAX_OBJECTS = 5000
MAX_VALIDATE = 500_000  # a whole export's dry run is one validate request
LIS = "{urn:brygga:schema:lis:1}"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(state: ScheduleState | None = None) -> Starlette:
    state = state if state is not None else ScheduleState()

    async def _objects(request: Request, most: int = MAX_OBJECTS) -> list[Any] | Response:
        body = await read_body(request, MAX_BODY)
        if body is None:
            return _error(413, "begäran är för stor")
        if state.record_bodies:
            state.bodies.append(body)
        try:
            doc = json.loads(body)
        except ValueError as e:
            return _error(400, f"ogiltig JSON: {e}")
        objects = doc.get("objects") if isinstance(doc, dict) else None
        if not isinstance(objects, list):
            return _error(400, "objects saknas")
        if len(objects) > most:
            return _error(413, f"högst {most} objekt per begäran")
        return objects

    async def upsert(request: Request) -> Response:
        objects = await _objects(request)
        if isinstance(objects, Response):
            return objects
        if request.query_params.get("mode", "PATCH") != "PATCH":
            return _error(400, "endast mode=PATCH stöds")
        status, answer = state.upsert(objects, key=request.headers.get("idempotency-key"))
        return JSONResponse(answer, status_code=status)

    async def validate(request: Request) -> Response:
        objects = await _objects(request, MAX_VALIDATE)
        if isinstance(objects, Response):
            return objects
        status, answer = state.upsert(objects, key=None, apply=False)
        return JSONResponse(answer, status_code=status)

    async def listing(request: Request) -> Response:
        try:
            page = max(1, int(request.query_params.get("page", 1)))
            limit = min(5000, max(1, int(request.query_params.get("limit", 1000))))
        except ValueError:
            return _error(400, "page och limit ska vara heltal")
        total, hits = state.list(request.query_params.get("type"), page, limit)
        return JSONResponse({"total": total, "objects": [
            {"type": o.type, "extId": o.ext_id, "fields": o.fields, "active": o.active} for o in hits]})

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
        schema = xmlsafe.load_schema(SCHEMAS / "schema" / "lis-1.xsd")
        if not schema.validate(doc):
            return _error(400, f"dokumentet följer inte lis-1.xsd: {schema.error_log.last_error}")
        key = doc.get("requestId")
        with state.lock:
            if key in state.replay:
                state.stats["replayed"] += 1
                return JSONResponse(state.replay[key][1], status_code=207)
            results = []
            for rec in doc:
                sid = rec.findtext(f"{LIS}sourcedGUID/{LIS}sourcedId")
                kind = rec.tag.removeprefix(LIS).removesuffix("Record")
                payload = rec[1]
                status = payload.findtext(f"{LIS}status")
                state.lis[f"{kind}:{sid}"] = {"kind": kind, "status": status,
                                              **{c.tag.removeprefix(LIS): c.text for c in payload if len(c) == 0}}
                results.append({"type": kind, "extId": sid, "status": 200, "message": "mottaget"})
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
                by_type[f"{typ}.{'active' if o.active else 'inactive'}"] = by_type.get(
                    f"{typ}.{'active' if o.active else 'inactive'}", 0) + 1
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
        return JSONResponse({"type": o.type, "extId": o.ext_id, "bookings": o.bookings})

    routes = [
        Route("/api/v1/objects/upsert", upsert, methods=["POST"]),
        Route("/api/v1/objects/validate", validate, methods=["POST"]),
        Route("/api/v1/objects", listing),
        Route("/lis/v1/records", lis_records, methods=["POST"]),
        Route("/sim/health", health),
        Route("/sim/stats", stats),
        Route("/sim/reset", reset, methods=["POST"]),
        Route("/sim/record", record, methods=["POST"]),
        Route("/sim/bodies", bodies),
        Route("/sim/book/{type}/{ext}", book, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.schedule = state
    return app
