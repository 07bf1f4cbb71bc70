"""``GET /v1/models/{token}``: an optimized model, while the download store keeps it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from analyzer.service.errors import ServiceError
from analyzer.service.routes.common import SECURITY_HEADERS, error_responses
from analyzer.service.state import ServiceDep

router = APIRouter(tags=["models"])


@router.get("/v1/models/{token}", name="download_model", summary="download an optimized model",
            responses={200: {"content": {"application/octet-stream": {}}}, **error_responses(404)})
async def download_model(token: str, service: ServiceDep) -> Response:
    stored = service.downloads.get(token)
    if stored is None:
        raise ServiceError(404, "not_found", "no such model (the link is wrong or has expired)")
    return FileResponse(stored.path, media_type="application/octet-stream", filename=stored.filename,
                        headers=SECURITY_HEADERS)
