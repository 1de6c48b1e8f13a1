"""Starlette app of the archive simulator (e-arkiv): receives E-ARK SIP packages.

  POST /arkiv/v1/paket          body: the package zip (Content-Type application/zip). Checks it
                                (simulators/arkiv/checks.py: checksums, completeness, the data files
                                against the package's XSDs, eark-validator) and answers a kvittens
                                (schemas/arkiv/kvittens-1.xsd): 200 ``mottaget`` or ``redan-mottaget``
                                (the same OBJID and the same bytes were accepted before), 422 ``avvisat``
                                with the reasons, 409 ``avvisat`` for an OBJID accepted with other bytes.
  GET  /arkiv/v1/paket/{objid}  the kvittens of an accepted package; 404 if none.
Control (JSON): GET /sim/health, GET /sim/stats, GET /sim/packages, POST /sim/reset, POST /sim/refuse
({"objid_contains": "..."}: refuse every package whose OBJID contains it; null: none).
See docs/contracts/arkiv.md.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from lxml import etree
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from brygga import xmlsafe
from brygga.paths import ROOT, SCHEMAS
from simulators.arkiv.checks import Inspection, inspect
from simulators.arkiv.state import ArchiveState, Received
from simulators.faults import FaultMiddleware

NS = "urn:brygga:arkiv:1"
K = f"{{{NS}}}"
MAX_PACKAGE = 4 * 1024**3
RECEIPT_TYPE = "application/xml;charset=UTF-8"


def eark_command() -> list[str] | None:
    """How to run eark-validator: ``BRYGGA_EARK_PYTHON`` or ``.venv-eark/bin/python`` with the
    wrapper; None when neither is there."""
    python = os.environ.get("BRYGGA_EARK_PYTHON") or str(ROOT / ".venv-eark" / "bin" / "python")
    if not Path(python).is_file():
        return None
    return [python, str(Path(__file__).with_name("run_eark_validator.py"))]


def receipt(objid: str, status: str, *, archive_id: str | None = None, received: dt.datetime | None = None,
            sha256: str | None = None, reasons: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    root = etree.Element(K + "Kvittens", nsmap={None: NS})
    etree.SubElement(root, K + "PaketId").text = objid
    etree.SubElement(root, K + "Status").text = status
    if archive_id:
        etree.SubElement(root, K + "ArkivId").text = archive_id
    if received:
        etree.SubElement(root, K + "Mottaget").text = received.isoformat(timespec="seconds")
    if sha256:
        etree.SubElement(root, K + "Sha256").text = sha256
    for rule, text in reasons:
        etree.SubElement(root, K + "Orsak", regel=rule).text = text[:2000]
    xmlsafe.load_schema(SCHEMAS / "arkiv" / "kvittens-1.xsd").assertValid(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _safe_id(objid: str | None) -> str:
    import re
    return objid if objid and re.fullmatch(r"[A-Za-z0-9_.:\-]{1,100}", objid) else "okant"


def create_app(state: ArchiveState | None = None, *, eark: list[str] | None | bool = True) -> Starlette:
    """``eark``: the validator command, True for the default (``eark_command()``, required), False
    to skip it (unit tests of the simulator's own checks)."""
    state = state or ArchiveState()
    command = eark_command() if eark is True else (None if eark is False else eark)
    if eark is True and command is None:
        raise RuntimeError("eark-validator is not installed (.venv-eark): run scripts/bootstrap.sh")

    def judge(path: Path, size: int) -> tuple[int, bytes]:
        with tempfile.TemporaryDirectory(prefix="arkiv-") as work:
            found: Inspection = inspect(path, Path(work), command)
        objid = _safe_id(found.objid)
        with state.lock:
            before = state.accepted.get(objid) if found.objid else None
            if before is not None and before.sha256 == found.sha256:
                status, code, reasons = "redan-mottaget", 200, []
            elif before is not None:
                status, code = "avvisat", 409
                reasons = [("paket.objid.upptaget", "Ett annat paket med samma OBJID är redan mottaget")]
            elif found.reasons:
                status, code, reasons = "avvisat", 422, found.reasons
            elif state.refuse_matching and state.refuse_matching in objid:
                status, code, reasons = "avvisat", 422, [("sim.avvisat", "Avvisat av simulatorn (POST /sim/refuse)")]
            else:
                before = state.accepted[objid] = Received(objid, found.sha256, state.next_archive_id(),
                                                          dt.datetime.now(dt.UTC), found.files, size)
                status, code, reasons = "mottaget", 200, []
            state.deliveries.append({"objid": objid, "sha256": found.sha256, "status": status, "size": size,
                                     "reasons": reasons, "warnings": found.warnings})
        body = receipt(objid, status, archive_id=before.archive_id if before and code == 200 else None,
                       received=before.received if before and code == 200 else None, sha256=found.sha256,
                       reasons=reasons)
        return code, body

    async def post_package(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_PACKAGE:
            return JSONResponse({"error": "package too large"}, status_code=413)
        fd, name = tempfile.mkstemp(prefix="arkiv-in-", suffix=".zip")
        path, size = Path(name), 0
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_PACKAGE:
                        return JSONResponse({"error": "package too large"}, status_code=413)
                    f.write(chunk)
            code, body = await run_in_threadpool(judge, path, size)
            return Response(body, status_code=code, media_type=RECEIPT_TYPE)
        finally:
            path.unlink(missing_ok=True)

    async def get_package(request: Request) -> Response:
        objid = request.path_params["objid"]
        with state.lock:
            r = state.accepted.get(objid)
        if r is None:
            return JSONResponse({"error": "no such package"}, status_code=404)
        return Response(receipt(r.objid, "mottaget", archive_id=r.archive_id, received=r.received, sha256=r.sha256),
                        media_type=RECEIPT_TYPE)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "eark_validator": command is not None})

    async def stats(request: Request) -> Response:
        with state.lock:
            by_status: dict[str, int] = {}
            for d in state.deliveries:
                by_status[d["status"]] = by_status.get(d["status"], 0) + 1
            return JSONResponse({"accepted": len(state.accepted), "deliveries": len(state.deliveries),
                                 "by_status": by_status})

    async def packages(request: Request) -> Response:
        with state.lock:
            return JSONResponse({"accepted": [{"objid": r.objid, "sha256": r.sha256, "archive_id": r.archive_id,
                                               "files": r.files, "size": r.size} for r in state.accepted.values()],
                                 "deliveries": list(state.deliveries)})

    async def refuse(request: Request) -> Response:
        body = await request.json()
        state.refuse_matching = body.get("objid_contains") or None
        return JSONResponse({"refuse_matching": state.refuse_matching})

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[
        Route("/arkiv/v1/paket", post_package, methods=["POST"]),
        Route("/arkiv/v1/paket/{objid}", get_package),
        Route("/sim/health", health), Route("/sim/stats", stats), Route("/sim/packages", packages),
        Route("/sim/reset", reset, methods=["POST"]), Route("/sim/refuse", refuse, methods=["POST"]),
    ])
    app.state.arkiv = state
    app.add_middleware(FaultMiddleware)  # the fault plan (issue 33): POST /sim/faults
    return app

