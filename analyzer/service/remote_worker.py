"""Latency jobs on worker hosts, through a Redis queue (RQ): the worker host's side.

``analyzer worker --queue redis://... --provider cpu|cuda [--tag NAME]`` runs :func:`serve_queues`: an
RQ ``SimpleWorker`` (one job at a time, in this process) on the queues of its tags, of its provider
and of "any", and a thread that announces it (``analyzer:worker:NAME``, 10 s expiry, refreshed every
2 s: its host, provider, tags, queues, machine and current job), which the API reads to tell a client
that no worker takes its job. RQ was chosen over Celery and Dramatiq: a Redis-only library with one
small dependency, whose jobs are plain function calls and whose worker takes one job at a time by
design; it runs the same on every host with nothing to configure but the Redis URL.

Each job runs :func:`execute`: it fetches the uploads from the store into a scratch directory and
runs the task exactly as the embedded server does, in the same sandbox
(:func:`analyzer.service.sandbox.run_task`: a worker process forked per task, limits set first, the
wall-clock limit enforced), while a heartbeat thread refreshes ``analyzer:alive:ID`` every second,
forwards the progress and watches for a cancellation. The result is the task's own JSON, the same as
the CLI's; the job record says which worker ran it (host, provider, machine).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from analyzer.service.remote import ALIVE, ALIVE_TTL_S, CANCEL, WORKER, WORKER_TTL_S, output_folder, update_if

log = logging.getLogger("analyzer.worker")

# the host's own limits for the sandbox; set by serve_queues from the command line
_SETTINGS: dict[str, Any] = {}
_IDENTITY: dict[str, Any] = {}
_STORE_DIR: list[Path | None] = [None]
_CURRENT: dict[str, str | None] = {"job": None}
_CACHE_DIR: list[str | None] = [None]  # this host's table of layer timings (optimize auto)


def execute(*, job_id: str, attempt: int, task: dict[str, Any], refs: dict[str, Any], store: dict[str, Any],
            timeout_s: float, retention_s: float) -> str:
    """Run one queued task on this host (called by RQ); the outcome goes to the job's record."""
    from rq import get_current_job

    from analyzer.service.jobs import loads_finite
    from analyzer.service.sandbox import Cancel, run_task
    from analyzer.service.settings import Settings
    from analyzer.service.store import UploadStore

    redis = get_current_job().connection
    if task["kind"] == "optimize" and task["options"].get("auto") is not None:
        task = {**task, "cache_dir": _CACHE_DIR[0]}  # timings are this host's: its own table
    alive = ALIVE.format(id=job_id)
    redis.set(alive, _IDENTITY.get("name", "?"), ex=ALIVE_TTL_S)
    if not update_if(redis, job_id, attempt=attempt, status=("queued",), fields={
            "status": "running", "started": time.time(), "worker": _IDENTITY, "progress": None}):
        redis.delete(alive)
        return "skipped: the job was cancelled, or given to another attempt"
    _CURRENT["job"] = job_id
    scratch = Path(tempfile.mkdtemp(prefix="analyzer-job-"))
    cancel = Cancel()
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(redis, job_id, attempt, scratch, cancel, stop), daemon=True)
    beat.start()
    fields: dict[str, Any]
    try:
        uploads = UploadStore(redis, retention_s, store["inline_bytes"], _STORE_DIR[0])
        for role, ref in refs.items():
            uploads.fetch(ref, scratch / "in" / task["inputs"][role])
        outcome = run_task(scratch, task, Settings(**_SETTINGS), timeout_s=timeout_s, cancel=cancel)
        if outcome.ok:
            fields = {"status": "succeeded", "result": loads_finite(outcome.body_path.read_text())}
            if outcome.output_path is not None:  # an optimized model: back to the API through the store
                fields["output"] = uploads.put(output_folder(job_id), "output", outcome.output_path)
        else:
            fields = {"status": "cancelled" if outcome.code == "cancelled" else "failed", "error": outcome.error(),
                      "error_body": outcome.error_body}
    except Exception as e:  # noqa: BLE001 - every failure is the job's, reported in its record
        log.exception("job %s", job_id)
        fields = {"status": "failed", "error": {"status": 500, "code": "worker_error",
                                                "message": f"the worker {_IDENTITY.get('name')} could not run the job: "
                                                           f"{type(e).__name__}: {e}"}}
    finally:
        stop.set()
        beat.join(timeout=5)
        progress = _progress(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        _CURRENT["job"] = None
    fields.update(finished=time.time(), progress={**progress, "phase": fields["status"],
                                                  **({"fraction": 1.0} if fields["status"] == "succeeded" else {})})
    update_if(redis, job_id, attempt=attempt, status=("running",), fields=fields, expire_s=retention_s)
    redis.delete(alive)  # after the record says how it ended: the API never takes an ended job for a lost one
    return fields["status"]


def _progress(scratch: Path) -> dict[str, Any]:
    try:
        state = json.loads((scratch / "progress.json").read_text())
    except (OSError, ValueError):
        return {"fraction": 0.0, "phase": "starting", "rounds": 0}
    return {"fraction": float(state.get("fraction", 0.0)), "phase": state.get("phase", "starting"),
            "rounds": int(state.get("rounds", 0))}


def _heartbeat(redis, job_id: str, attempt: int, scratch: Path, cancel, stop: threading.Event) -> None:
    alive, cancel_key = ALIVE.format(id=job_id), CANCEL.format(id=job_id)
    while not stop.wait(1.0):
        try:
            redis.set(alive, _IDENTITY.get("name", "?"), ex=ALIVE_TTL_S)
            reason = redis.get(cancel_key)
            if reason is not None and not cancel.event.is_set():
                cancel.reason = reason.decode()
                cancel.event.set()
            update_if(redis, job_id, attempt=attempt, status=("running",), fields={"progress": _progress(scratch)})
        except Exception:  # noqa: BLE001 - a Redis hiccup: the next beat tries again
            log.warning("heartbeat of job %s failed", job_id, exc_info=True)


def queues_for(provider: str, tags: list[str]) -> list[str]:
    return [*(f"analyzer:tag:{t}" for t in tags), f"analyzer:{provider}", "analyzer:any"]


def check_provider(provider: str) -> None:
    """A CUDA worker must really run sessions on CUDA (onnxruntime lists CUDA even without a GPU)."""
    if provider != "cuda":
        return
    from onnx import TensorProto, helper

    from analyzer.errors import AnalyzerError
    from analyzer.latency.runtime import CUDA, _import_ort

    ort = _import_ort()
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=[CUDA, "CPUExecutionProvider"])
    if CUDA not in session.get_providers():
        raise AnalyzerError("--provider cuda: onnxruntime cannot run a session on CUDA on this host "
                            f"(the session runs on {session.get_providers()[0]})")


def serve_queues(url: str, provider: str, tags: list[str], name: str | None, store_dir: Path | None,
                 settings: dict[str, Any], *, cache_dir: str | None = None, burst: bool = False) -> int:
    from rq import SimpleWorker

    from analyzer.latency.machine import machine_info
    from analyzer.service.remote import connect

    check_provider(provider)
    redis = connect(url)
    name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    queues = queues_for(provider, tags)
    _SETTINGS.update(settings)
    _STORE_DIR[0] = store_dir
    if cache_dir is None:
        from analyzer.cache import default_cache_dir

        cache_dir = str(default_cache_dir())
    _CACHE_DIR[0] = cache_dir
    _IDENTITY.update(name=name, host=socket.gethostname(), pid=os.getpid(), provider=provider, tags=tags,
                     machine=machine_info(on_cuda=provider == "cuda"))
    stop = threading.Event()
    announcer = threading.Thread(target=_announce, args=(redis, name, queues, stop), daemon=True)
    announcer.start()
    log.info("worker %s takes jobs from %s", name, ", ".join(queues))
    try:
        worker = SimpleWorker(queues, connection=redis, name=name, worker_ttl=30)
        worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
    finally:
        stop.set()
        redis.delete(WORKER.format(name=name))
    return 0


def _announce(redis, name: str, queues: list[str], stop: threading.Event) -> None:
    key = WORKER.format(name=name)
    while True:
        try:
            redis.set(key, json.dumps({**_IDENTITY, "queues": queues, "job": _CURRENT["job"]}), ex=WORKER_TTL_S)
        except Exception:  # noqa: BLE001 - Redis away for a moment: announce again on the next round
            log.warning("could not announce worker %s", name, exc_info=True)
        if stop.wait(2.0):
            return

