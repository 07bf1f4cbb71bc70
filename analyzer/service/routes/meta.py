"""``GET /v1/health`` and ``GET /v1/limits``: about the server itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import analyzer
from analyzer.service.state import ServiceDep

router = APIRouter(tags=["service"])


@router.get("/v1/health", summary="liveness")
async def health() -> dict[str, Any]:
    return {"status": "ok", "version": analyzer.__version__}


@router.get("/v1/limits", summary="the limits this server enforces")
async def limits(service: ServiceDep) -> dict[str, Any]:
    return service.settings.public()
