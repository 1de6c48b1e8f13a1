"""Certifikat: every Connection's client certificate and each peer's server certificate, with the
days left."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from brygga.console.context import Console, console, safe

router = APIRouter()


@router.get("/certificates", response_class=HTMLResponse)
def certificates(request: Request, cx: Console = Depends(console)) -> HTMLResponse:
    af = cx.airflow
    certs = safe(lambda: af.certificates() if af.certificates else None)
    return cx.page(request, "certificates.html", "Certifikat", certs=certs, known=af.certificates is not None)
