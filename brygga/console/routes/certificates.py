"""Certifikat: every Connection's client certificate and each peer's server certificate, with the
days left; the Ladok certificate's environment and, per flow, the rights it needs and lacks."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from brygga.console.context import Console, console, safe

router = APIRouter()


@router.get("/certificates", response_class=HTMLResponse)
def certificates(request: Request, cx: Console = Depends(console)) -> HTMLResponse:
    af = cx.airflow
    certs = safe(lambda: af.certificates() if af.certificates else None)
    access = safe(lambda: af.ladok_access() if af.ladok_access else None)
    return cx.page(request, "certificates.html", "Certifikat", certs=certs, known=af.certificates is not None,
                   access=access, access_known=af.ladok_access is not None)
