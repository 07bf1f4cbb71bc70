"""``POST /v1/inspect`` and ``POST /v1/optimize``: one uploaded model, one worker, answered at once."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from analyzer.service import options as opts
from analyzer.service.errors import ServiceError
from analyzer.service.jobs import loads_finite
from analyzer.service.routes.common import SECURITY_HEADERS, error_responses, upload_openapi
from analyzer.service.sandbox import Outcome
from analyzer.service.state import Service, ServiceDep
from analyzer.service.uploads import receive

router = APIRouter(tags=["models"])
MODEL_FILE = {"model": "the .onnx file"}


def optimized_name(label: str) -> str:
    """The download's file name for an uploaded ``label``: ``net.onnx`` -> ``net.optimized.onnx``."""
    stem = label[:-5] if label.lower().endswith(".onnx") else label
    return f"{stem}.optimized.onnx"


def server_timing(started: float, received: float, outcome: Outcome) -> str:
    """``Server-Timing``: upload (body received), worker (wall, with its CPU seconds), total; milliseconds."""
    total = time.perf_counter() - started
    return (f"upload;dur={1e3 * (received - started):.1f}, "
            f"worker;dur={1e3 * outcome.wall_s:.1f};desc=\"cpu {outcome.cpu_s:.2f} s\", total;dur={1e3 * total:.1f}")


def failure(outcome: Outcome) -> ServiceError:
    return ServiceError(outcome.status, outcome.code, outcome.message)


async def run_on_upload(request: Request, service: Service, scratch: Path, kind: str, specs: list[opts.Option],
                        to_options: Callable[[dict[str, Any]], dict[str, Any]],
                        task_extra: Callable[[str], dict[str, Any]] = lambda label: {},
                        ) -> tuple[dict[str, Any], Outcome, str]:
    """Receive one model and its options into ``scratch`` and run task ``kind`` on it in a worker.
    Returns the options, the Outcome and the Server-Timing header."""
    started = time.perf_counter()
    async with service.upload_slot():
        upload = await receive(request, {"model": scratch / "in"}, service.settings, raw_field="model")
    received = time.perf_counter()
    values = opts.collect(specs, request.query_params.multi_items(), upload.fields, ignore=("filename",))
    options = await run_in_threadpool(to_options, values)
    label = upload.files["model"].label
    task = {"kind": kind, "inputs": {"model": label}, "labels": {"model": label}, "options": options,
            **task_extra(label)}
    outcome = await run_in_threadpool(service.run_now, scratch, task)
    return options, outcome, server_timing(started, received, outcome)


@router.post(
    "/v1/inspect", summary="analyze one model",
    description="The report of `analyzer inspect FILE --format FORMAT`; `model.path` is the upload's base name.",
    responses={200: {"description": "the report", "content": {"application/json": {}, "text/html": {},
                                                               "text/markdown": {}, "text/csv": {}}},
               **error_responses(400, 413, 415, 422, 429, 507)},
    openapi_extra=upload_openapi(opts.INSPECT, MODEL_FILE, raw=True),
)
async def inspect_model(request: Request, service: ServiceDep) -> Response:
    scratch = service.scratch(service.requests_dir)
    try:
        options, outcome, timing = await run_on_upload(request, service, scratch, "inspect", opts.INSPECT,
                                                       opts.inspect_options)
        if not outcome.ok:
            raise failure(outcome)
        headers = {**SECURITY_HEADERS, "Server-Timing": timing}
        if options["format"] == "html":
            headers["Content-Security-Policy"] = "sandbox allow-scripts"  # opened directly: its own origin
        return Response(outcome.body_path.read_bytes(), media_type=outcome.media_type, headers=headers)
    finally:
        await run_in_threadpool(shutil.rmtree, scratch, True)


@router.post(
    "/v1/optimize", summary="rewrite one model with verified passes",
    description="The JSON of `analyzer optimize FILE -o OUT --pass ... --format json` (`input`/`output` are base "
                "names) plus `download`: the URL of the optimized model, kept for the retention time. A pass that "
                "fails verification: 422 with the run's JSON under `report`.",
    responses={200: {"description": "the optimize report"}, **error_responses(400, 413, 415, 422, 429, 507)},
    openapi_extra=upload_openapi(opts.OPTIMIZE, MODEL_FILE, raw=True),
)
async def optimize_model(request: Request, service: ServiceDep) -> Response:
    scratch = service.scratch(service.requests_dir)
    try:
        _, outcome, timing = await run_on_upload(request, service, scratch, "optimize", opts.OPTIMIZE,
                                                 opts.optimize_options,
                                                 lambda label: {"output_name": optimized_name(label)})
        if not outcome.ok:
            return _optimize_failed(outcome)
        doc = loads_finite(outcome.body_path.read_text())
        doc["download"] = await _store_for_download(request, service, outcome)
        return JSONResponse(doc, headers={**SECURITY_HEADERS, "Server-Timing": timing})
    finally:
        await run_in_threadpool(shutil.rmtree, scratch, True)


def _optimize_failed(outcome: Outcome) -> JSONResponse:
    """The error, with the run's JSON under ``report`` when the worker wrote one (a pass failed verification)."""
    extra = {}
    if outcome.error_body:
        with contextlib.suppress(ValueError):
            extra["report"] = loads_finite(outcome.error_body)
    error = failure(outcome)
    return JSONResponse({**error.body(), **extra}, status_code=error.status, headers=SECURITY_HEADERS)


async def _store_for_download(request: Request, service: Service, outcome: Outcome) -> dict[str, Any]:
    """Move the optimized model into the download store; its ``download`` record for the answer."""
    output_name = outcome.output_path.name  # the worker wrote it under the task's output_name
    token, stored = await run_in_threadpool(service.downloads.add, outcome.output_path, output_name)
    return {
        "url": str(request.url_for("download_model", token=token).path),
        "filename": output_name,
        "bytes": stored.size,
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stored.expires)),
    }
