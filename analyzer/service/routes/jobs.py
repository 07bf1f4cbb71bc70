"""``POST /v1/compare`` queues a latency job; ``GET`` / ``DELETE /v1/jobs/{job_id}`` follow or cancel it."""

from __future__ import annotations

import asyncio
import shutil

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from analyzer.service import options as opts
from analyzer.service.errors import ServiceError
from analyzer.service.jobs import Job
from analyzer.service.routes.common import SECURITY_HEADERS, error_responses, upload_openapi
from analyzer.service.settings import Settings
from analyzer.service.state import Service, ServiceDep
from analyzer.service.uploads import receive

COMPARE_FILES = {"model_a": "A, the before model (.onnx)", "model_b": "B, the after model (.onnx)"}

router = APIRouter(tags=["jobs"])


def compare_router(settings: Settings) -> APIRouter:
    """``POST /v1/compare``, in a router of its own: its options, and so its OpenAPI description, carry this
    server's limits (the largest time budget, the default one, the most iterations)."""
    compare = APIRouter(tags=["jobs"])
    compare.add_api_route(
        "/v1/compare", compare_models, methods=["POST"], status_code=202,
        summary="A/B latency of two models (a queued job)",
        description="Queues a latency comparison (`analyzer compare A B --format json`); one job runs at a time. "
                    "Answers 202 with the job and `Location: /v1/jobs/{id}`. A full queue and bad query-string "
                    "options are refused before the uploads are received.",
        responses={202: {"description": "the job, queued"}, **error_responses(400, 413, 415, 429, 507)},
        openapi_extra=upload_openapi(opts.compare_specs(settings), COMPARE_FILES, raw=False),
    )
    return compare


async def compare_models(request: Request, service: ServiceDep) -> Response:
    specs = opts.compare_specs(service.settings)
    # refused before a byte of the uploads is stored: unknown or mistyped query options, a full queue
    opts.collect(specs, request.query_params.multi_items(), {})
    await run_in_threadpool(service.jobs.check_room)
    scratch = service.scratch(service.jobs_dir)
    try:
        async with service.upload_slot():
            upload = await receive(request, {"model_a": scratch / "in" / "a", "model_b": scratch / "in" / "b"},
                                   service.settings)
        values = opts.collect(specs, request.query_params.multi_items(), upload.fields)
        options = await run_in_threadpool(opts.compare_options, values, service.settings)
        a, b = upload.files["model_a"], upload.files["model_b"]
        task = {"kind": "compare", "inputs": {"model_a": f"a/{a.label}", "model_b": f"b/{b.label}"},
                "labels": {"model_a": a.label, "model_b": b.label}, "options": options,
                "tag": opts.job_tag(values, queued=service.remote)}
        slot = getattr(request.state, "access_slot", None)  # the token's slot goes with the job until it ends
        job = await run_in_threadpool(service.jobs.submit, Job("compare", scratch, task, owner=token_name(request),
                                                               on_end=slot.release if slot else None))
        if slot is not None:
            slot.handed_to_job = True
    except BaseException:
        await run_in_threadpool(shutil.rmtree, scratch, True)
        raise
    return JSONResponse(service.jobs.describe(job), status_code=202,
                        headers={"Location": f"/v1/jobs/{job.id}", **SECURITY_HEADERS})


def token_name(request: Request) -> str | None:
    return getattr(request.state, "token_name", None)


def _job(service: Service, job_id: str, request: Request) -> Job:
    job = service.jobs.get(job_id)
    if job is None or job.owner != token_name(request):  # another token's job is no job of yours
        raise ServiceError(404, "not_found", "no such job (the id is wrong or the job has expired)")
    return job


@router.get("/v1/jobs/{job_id}", summary="a job's status, queue position, progress and result",
            responses=error_responses(404))
async def get_job(job_id: str, request: Request, service: ServiceDep) -> Response:
    job = _job(service, job_id, request)
    return JSONResponse(service.jobs.describe(job), headers={"Cache-Control": "no-store", **SECURITY_HEADERS})


@router.delete("/v1/jobs/{job_id}", summary="cancel a queued or running job", responses=error_responses(404))
async def cancel_job(job_id: str, request: Request, service: ServiceDep) -> Response:
    job = _job(service, job_id, request)
    await run_in_threadpool(service.jobs.cancel, job)  # takes the queue's lock; may delete the job's uploads
    for _ in range(100):  # a running worker is killed within a poll interval
        if job.status != "running":
            break
        await asyncio.sleep(0.02)
    return JSONResponse(service.jobs.describe(job), headers=SECURITY_HEADERS)
