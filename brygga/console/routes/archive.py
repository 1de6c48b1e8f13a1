"""E-arkiv: packages with the archive's receipts, and what is not delivered yet."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from brygga import views
from brygga.console.context import Console, console

router = APIRouter()


@router.get("/archive", response_class=HTMLResponse)
def archive(request: Request, status: str | None = None, limit: int = Query(50, ge=1, le=500),
            offset: int = Query(0, ge=0), cx: Console = Depends(console)) -> HTMLResponse:
    d = views.list_archive(cx.store(), status=status or None, limit=limit, offset=offset)
    return cx.page(request, "archive.html", "E-arkiv", d=d, params={"status": status, "limit": limit})


@router.get("/api/archive")
def api_archive(status: str | None = None, limit: int = Query(views.DEFAULT_LIMIT, ge=1, le=views.MAX_LIMIT),
                offset: int = Query(0, ge=0), cx: Console = Depends(console)) -> dict[str, Any]:
    return views.list_archive(cx.store(), status=status, limit=limit, offset=offset)
