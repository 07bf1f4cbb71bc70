"""The FastAPI app: ``create_app(settings=None)``; the routes (:mod:`analyzer.service.routes`) are thin
shells over uploads, sandbox and jobs, and share one :class:`~analyzer.service.state.Service`.

Routes (every error is ``{"error": {"status", "code", "message"}}`` with a 4xx or 5xx status; a
non-finite number in a result, NaN or Infinity, is null in the service's JSON):

- ``GET /``: the upload page; ``GET /v1/health``; ``GET /v1/limits``: the limits in force
- ``POST /v1/inspect``: one model (multipart field ``model``, or an ``application/octet-stream``
  body) -> the report (``format`` json | html | markdown | csv)
- ``POST /v1/optimize``: one model + ``pass`` fields -> the optimize JSON + ``download``
- ``GET /v1/models/{token}``: the optimized model
- ``POST /v1/compare``: ``model_a`` + ``model_b`` -> 202, a latency job (``Location: /v1/jobs/{id}``)
- ``GET /v1/jobs/{id}``: status, queue position, progress, then the result; ``DELETE`` cancels it

With ``access`` (:mod:`analyzer.service.access`), every route but health needs ``Authorization:
Bearer TOKEN`` (401 without; the upload page comes with its 401 and asks for the token), and each
token holds a limited number of requests and jobs at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import analyzer
from analyzer.service.access import OPEN_ROUTES, Access, AccessMiddleware
from analyzer.service.errors import ServiceError, error_body
from analyzer.service.remote import QueueConfig
from analyzer.service.routes import docs, download, jobs, meta, models, pages
from analyzer.service.routes.common import SECURITY_HEADERS
from analyzer.service.settings import Settings
from analyzer.service.state import Service

log = logging.getLogger("analyzer.service")

DESCRIPTION = ("Inspect, optimize and compare ONNX models over HTTP. Every parse, analysis, rewrite and "
               "benchmark of an uploaded model runs in a worker process with memory, CPU-time and "
               "wall-clock limits; errors are `{\"error\": {\"status\", \"code\", \"message\"}}`.")


def create_app(settings: Settings | None = None, *, clock: Callable[[], float] = time.time,
               access: Access | None = None, queue: QueueConfig | None = None) -> FastAPI:
    """The service's app; ``clock`` is the wall clock that the retention of results is measured by;
    ``access``: API tokens (None: none needed, for a server on loopback); ``queue``: latency jobs go to
    worker hosts through this Redis queue (None: they run here, one at a time)."""
    settings = settings or Settings()
    # /docs is ours (routes/docs.py: Swagger UI served from the package, offline); no ReDoc (CDN-only)
    app = FastAPI(title="cnn-onnx-analyzer", version=analyzer.__version__, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = Service(settings, clock, queue)
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
    for router in (pages.router, docs.router, meta.router, models.router, download.router,
                   jobs.compare_router(settings), jobs.router):
        app.include_router(router)
    if access is not None:
        app.add_middleware(AccessMiddleware, access=access)
        _declare_bearer(app)
    return app


def _declare_bearer(app: FastAPI) -> None:
    """The OpenAPI schema says every route but the open ones needs a bearer token."""
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = plain()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http", "scheme": "bearer", "description": "an API token from the server's --token-file"}
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    if not (method in ("get", "head") and path in OPEN_ROUTES):
                        operation["security"] = [{"bearer": []}]
                        operation.setdefault("responses", {})["401"] = {"description": "no valid API token"}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    service: Service = app.state.service
    service.start()
    try:
        yield
    finally:
        await run_in_threadpool(service.stop)


# ---- every error, ours and FastAPI's, as {"error": {"status", "code", "message"}} ----


async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers={**exc.headers, **SECURITY_HEADERS})


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such route: {request.method} {request.url.path}"
    return JSONResponse(error_body(exc.status_code, code, message), status_code=exc.status_code,
                        headers={**(exc.headers or {}), **SECURITY_HEADERS})


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return JSONResponse(error_body(400, "bad_request", f"{where}: {first.get('msg', 'invalid request')}"),
                        status_code=400, headers=SECURITY_HEADERS)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body(500, "internal_error", "internal error; see the server log"), status_code=500)
