"""``GET /``: the upload page, one self-contained HTML file."""

from __future__ import annotations

import importlib.resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from analyzer.service.routes.common import SECURITY_HEADERS

# the upload page: inline script and style only; the report is shown in a sandboxed srcdoc iframe
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
            "font-src data:; connect-src 'self'; frame-src 'self' about:; base-uri 'none'; form-action 'self'")

router = APIRouter(tags=["page"])


@router.get("/", response_class=HTMLResponse, summary="the upload page")
async def page() -> Response:
    text = importlib.resources.files("analyzer.service").joinpath("static/index.html").read_text(encoding="utf-8")
    return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache",
                                       **SECURITY_HEADERS})
