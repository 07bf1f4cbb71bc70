"""The FastAPI app: ``create_app(settings=None)``; routes are thin shells over uploads, sandbox and jobs.

Routes (every error is ``{"error": {"status", "code", "message"}}`` with a 4xx or 5xx status; a
non-finite number in a result, NaN or Infinity, is null in the service's JSON):

- ``GET /``: the upload page; ``GET /v1/health``; ``GET /v1/limits``: the limits in force
- ``POST /v1/inspect``: one model (multipart field ``model``, or an ``application/octet-stream``
  body) -> the report (``format`` json | html | markdown | csv)
- ``POST /v1/optimize``: one model + ``pass`` fields -> the optimize JSON + ``download``
- ``GET /v1/models/{token}``: the optimized model
- ``POST /v1/compare``: ``model_a`` + ``model_b`` -> 202, a latency job (``Location: /v1/jobs/{id}``)
- ``GET /v1/jobs/{id}``: status, queue position, progress, then the result; ``DELETE`` cancels it
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import json
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import analyzer
from analyzer.service import options as opts
from analyzer.service.downloads import Downloads
from analyzer.service.errors import ServiceError, error_body
from analyzer.service.jobs import Job, JobQueue, loads_finite
from analyzer.service.sandbox import Outcome, run_task
from analyzer.service.settings import Settings
from analyzer.service.uploads import receive

log = logging.getLogger("analyzer.service")

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["status", "code", "message"]}},
}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
# the upload page: inline script and style only; the report is shown in a sandboxed srcdoc iframe
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
            "font-src data:; connect-src 'self'; frame-src 'self' about:; base-uri 'none'; form-action 'self'")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": "error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for status in statuses}


def _openapi_extra(specs: list[opts.Option], files: dict[str, str], *, raw: bool) -> dict[str, Any]:
    parameters = [{"name": o.name, "in": "query", "required": False, "description": o.help, "schema": o.schema(),
                   **({"style": "form", "explode": True} if o.repeated else {})} for o in specs]
    properties: dict[str, Any] = {name: {"type": "string", "format": "binary", "description": text}
                                  for name, text in files.items()}
    properties.update({o.name: {**o.schema(), "description": o.help} for o in specs})
    content: dict[str, Any] = {"multipart/form-data": {"schema": {"type": "object", "properties": properties,
                                                                  "required": list(files)}}}
    if raw:
        content["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
        parameters.append({"name": "filename", "in": "query", "required": False, "schema": {"type": "string"},
                           "description": "name shown in the report for an application/octet-stream body"})
    return {"parameters": parameters, "requestBody": {"required": True, "content": content,
            "description": "options may be given as query parameters or as form fields"}}


class Service:
    """State shared by the routes: directories, worker slots, downloads, the job queue."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # always a new private (0700) folder of our own, also inside a --work-dir: only it is removed on
        # shutdown, never the work directory or anything else in it
        parent = None
        if settings.work_dir is not None:
            parent = Path(settings.work_dir).resolve()
            parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="analyzer-serve-", dir=parent))
        self.requests_dir = self.root / "requests"
        self.jobs_dir = self.root / "jobs"
        for d in (self.requests_dir, self.jobs_dir):
            d.mkdir(exist_ok=True)
        self.downloads = Downloads(self.root / "models", settings.retention_s, settings.max_stored_bytes)
        self.upload_slots = asyncio.Semaphore(settings.max_concurrent_uploads)
        self.slots = threading.BoundedSemaphore(settings.max_workers)
        self.jobs = JobQueue(self._run_job, max_queued=settings.max_queued_jobs, retention_s=settings.retention_s)
        self.stop_janitor = threading.Event()
        self.janitor = threading.Thread(target=self._janitor, name="analyzer-janitor", daemon=True)

    def start(self) -> None:
        self.jobs.start()
        self.janitor.start()

    def stop(self) -> None:
        self.jobs.stop()
        self.stop_janitor.set()
        self.downloads.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def _janitor(self) -> None:
        interval = max(0.05, min(60.0, self.settings.retention_s / 4))
        while not self.stop_janitor.wait(interval):
            self.downloads.purge()
            self.jobs.purge()

    def scratch(self, parent: Path) -> Path:
        return Path(tempfile.mkdtemp(dir=parent))

    @contextlib.asynccontextmanager
    async def upload_slot(self):
        """Hold one of ``max_concurrent_uploads`` while a body is received; none free: 429 at once."""
        if self.upload_slots.locked():
            raise ServiceError(429, "busy", f"{self.settings.max_concurrent_uploads} uploads are being received "
                                            "already (this server's limit); try again later",
                               headers={"Retry-After": "5"})
        async with self.upload_slots:  # free, so this does not wait
            yield

    def run_now(self, scratch: Path, task: dict[str, Any]) -> Outcome:
        """Run a worker for a synchronous request, waiting for a free worker slot."""
        if not self.slots.acquire(timeout=self.settings.worker_slot_wait_s):
            raise ServiceError(429, "busy", f"all {self.settings.max_workers} workers are busy; try again later",
                               headers={"Retry-After": "5"})
        try:
            return run_task(scratch, task, self.settings, timeout_s=self.settings.timeout_for(task["kind"]))
        finally:
            self.slots.release()

    def _run_job(self, job: Job) -> Outcome:
        return run_task(job.scratch, job.task, self.settings, timeout_s=self.settings.timeout_for(job.kind),
                        cancel=job.cancel)


def _timing(started: float, received: float, outcome: Outcome) -> str:
    """``Server-Timing``: upload (body received), worker (wall, with its CPU seconds), total; milliseconds."""
    total = time.perf_counter() - started
    return (f"upload;dur={1e3 * (received - started):.1f}, "
            f"worker;dur={1e3 * outcome.wall_s:.1f};desc=\"cpu {outcome.cpu_s:.2f} s\", total;dur={1e3 * total:.1f}")


def _failure(outcome: Outcome) -> ServiceError:
    return ServiceError(outcome.status, outcome.code, outcome.message)


def optimized_name(label: str) -> str:
    """The download's file name for an uploaded ``label``: ``net.onnx`` -> ``net.optimized.onnx``."""
    stem = label[:-5] if label.lower().endswith(".onnx") else label
    return f"{stem}.optimized.onnx"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(
        title="cnn-onnx-analyzer",
        version=analyzer.__version__,
        description="Inspect, optimize and compare ONNX models over HTTP. Every parse, analysis, rewrite and "
                    "benchmark of an uploaded model runs in a worker process with memory, CPU-time and "
                    "wall-clock limits; errors are `{\"error\": {\"status\", \"code\", \"message\"}}`.",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers={**exc.headers, **SECURITY_HEADERS})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such route: {request.method} {request.url.path}"
        return JSONResponse(error_body(exc.status_code, code, message), status_code=exc.status_code,
                            headers={**(exc.headers or {}), **SECURITY_HEADERS})

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(error_body(400, "bad_request", f"{where}: {first.get('msg', 'invalid request')}"),
                            status_code=400, headers=SECURITY_HEADERS)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, "internal_error", "internal error; see the server log"), status_code=500)

    @app.get("/", response_class=HTMLResponse, summary="the upload page", tags=["page"])
    async def page() -> Response:
        text = importlib.resources.files("analyzer.service").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache",
                                           **SECURITY_HEADERS})

    @app.get("/v1/health", summary="liveness", tags=["service"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": analyzer.__version__}

    @app.get("/v1/limits", summary="the limits this server enforces", tags=["service"])
    async def limits() -> dict[str, Any]:
        return settings.public()

    async def run_on_upload(request: Request, scratch, kind: str, specs, to_options, task_extra=lambda label: {}):
        """Receive one model and its options into ``scratch`` and run task ``kind`` on it in a worker.
        Returns the options, the Outcome and the Server-Timing header."""
        started = time.perf_counter()
        async with service.upload_slot():
            upload = await receive(request, {"model": scratch / "in"}, settings, raw_field="model")
        received = time.perf_counter()
        values = opts.collect(specs, request.query_params.multi_items(), upload.fields, ignore=("filename",))
        options = await run_in_threadpool(to_options, values)
        label = upload.files["model"].label
        task = {"kind": kind, "inputs": {"model": label}, "labels": {"model": label}, "options": options,
                **task_extra(label)}
        outcome = await run_in_threadpool(service.run_now, scratch, task)
        return options, outcome, _timing(started, received, outcome)

    @app.post(
        "/v1/inspect", tags=["models"], summary="analyze one model",
        description="The report of `analyzer inspect FILE --format FORMAT`; `model.path` is the upload's base name.",
        responses={200: {"description": "the report", "content": {"application/json": {}, "text/html": {},
                                                                   "text/markdown": {}, "text/csv": {}}},
                   **_errors(400, 413, 415, 422, 429, 507)},
        openapi_extra=_openapi_extra(opts.INSPECT, {"model": "the .onnx file"}, raw=True),
    )
    async def inspect_model(request: Request) -> Response:
        scratch = service.scratch(service.requests_dir)
        try:
            options, outcome, timing = await run_on_upload(request, scratch, "inspect", opts.INSPECT, opts.inspect_options)
            if not outcome.ok:
                raise _failure(outcome)
            headers = {**SECURITY_HEADERS, "Server-Timing": timing}
            if options["format"] == "html":
                headers["Content-Security-Policy"] = "sandbox allow-scripts"  # opened directly: its own origin
            return Response(outcome.body_path.read_bytes(), media_type=outcome.media_type, headers=headers)
        finally:
            await run_in_threadpool(shutil.rmtree, scratch, True)

    @app.post(
        "/v1/optimize", tags=["models"], summary="rewrite one model with verified passes",
        description="The JSON of `analyzer optimize FILE -o OUT --pass ... --format json` (`input`/`output` are base "
                    "names) plus `download`: the URL of the optimized model, kept for the retention time. A pass that "
                    "fails verification: 422 with the run's JSON under `report`.",
        responses={200: {"description": "the optimize report"}, **_errors(400, 413, 415, 422, 429, 507)},
        openapi_extra=_openapi_extra(opts.OPTIMIZE, {"model": "the .onnx file"}, raw=True),
    )
    async def optimize_model(request: Request) -> Response:
        scratch = service.scratch(service.requests_dir)
        try:
            _, outcome, timing = await run_on_upload(request, scratch, "optimize", opts.OPTIMIZE, opts.optimize_options,
                                                     lambda label: {"output_name": optimized_name(label)})
            if not outcome.ok:
                extra = {}
                if outcome.error_body:
                    with contextlib.suppress(ValueError):
                        extra["report"] = loads_finite(outcome.error_body)
                error = _failure(outcome)
                return JSONResponse({**error.body(), **extra}, status_code=error.status, headers=SECURITY_HEADERS)
            doc = loads_finite(outcome.body_path.read_text())
            output_name = outcome.output_path.name  # the worker wrote it under the task's output_name
            token, stored = await run_in_threadpool(service.downloads.add, outcome.output_path, output_name)
            doc["download"] = {
                "url": str(request.url_for("download_model", token=token).path),
                "filename": output_name,
                "bytes": stored.size,
                "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stored.expires)),
            }
            return JSONResponse(doc, headers={**SECURITY_HEADERS, "Server-Timing": timing})
        finally:
            await run_in_threadpool(shutil.rmtree, scratch, True)

    @app.get("/v1/models/{token}", name="download_model", tags=["models"], summary="download an optimized model",
             responses={200: {"content": {"application/octet-stream": {}}}, **_errors(404)})
    async def download_model(token: str) -> Response:
        stored = service.downloads.get(token)
        if stored is None:
            raise ServiceError(404, "not_found", "no such model (the link is wrong or has expired)")
        return FileResponse(stored.path, media_type="application/octet-stream", filename=stored.filename,
                            headers=SECURITY_HEADERS)

    compare_specs = opts.compare_specs(settings)

    @app.post(
        "/v1/compare", status_code=202, tags=["jobs"], summary="A/B latency of two models (a queued job)",
        description="Queues a latency comparison (`analyzer compare A B --format json`); one job runs at a time. "
                    "Answers 202 with the job and `Location: /v1/jobs/{id}`. A full queue and bad query-string "
                    "options are refused before the uploads are received.",
        responses={202: {"description": "the job, queued"}, **_errors(400, 413, 415, 429, 507)},
        openapi_extra=_openapi_extra(compare_specs, {"model_a": "A, the before model (.onnx)",
                                                     "model_b": "B, the after model (.onnx)"}, raw=False),
    )
    async def compare_models(request: Request) -> Response:
        # refused before a byte of the uploads is stored: unknown or mistyped query options, a full queue
        opts.collect(compare_specs, request.query_params.multi_items(), {})
        await run_in_threadpool(service.jobs.check_room)
        scratch = service.scratch(service.jobs_dir)
        try:
            async with service.upload_slot():
                upload = await receive(request, {"model_a": scratch / "in" / "a", "model_b": scratch / "in" / "b"},
                                       settings)
            values = opts.collect(compare_specs, request.query_params.multi_items(), upload.fields)
            options = await run_in_threadpool(opts.compare_options, values, settings)
            a, b = upload.files["model_a"], upload.files["model_b"]
            task = {"kind": "compare", "inputs": {"model_a": f"a/{a.label}", "model_b": f"b/{b.label}"},
                    "labels": {"model_a": a.label, "model_b": b.label}, "options": options}
            job = await run_in_threadpool(service.jobs.submit, Job("compare", scratch, task))
        except BaseException:
            await run_in_threadpool(shutil.rmtree, scratch, True)
            raise
        return JSONResponse(service.jobs.describe(job), status_code=202,
                            headers={"Location": f"/v1/jobs/{job.id}", **SECURITY_HEADERS})

    def _job(job_id: str) -> Job:
        job = service.jobs.get(job_id)
        if job is None:
            raise ServiceError(404, "not_found", "no such job (the id is wrong or the job has expired)")
        return job

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], summary="a job's status, queue position, progress and result",
             responses=_errors(404))
    async def get_job(job_id: str) -> Response:
        job = _job(job_id)
        return JSONResponse(service.jobs.describe(job), headers={"Cache-Control": "no-store", **SECURITY_HEADERS})

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"], summary="cancel a queued or running job", responses=_errors(404))
    async def cancel_job(job_id: str) -> Response:
        job = _job(job_id)
        await run_in_threadpool(service.jobs.cancel, job)  # takes the queue's lock; may delete the job's uploads
        for _ in range(100):  # a running worker is killed within a poll interval
            if job.status != "running":
                break
            await asyncio.sleep(0.02)
        return JSONResponse(service.jobs.describe(job), headers=SECURITY_HEADERS)

    return app
