"""The latency-job queue: one runner thread runs one job at a time, first in first out.

A job is ``queued`` (with its position: 1 is next), then ``running`` (with the worker's progress),
then ``succeeded`` (with its result) or ``failed`` (with the error: a rejected model, a limit, a
worker that died) or ``cancelled``. Its uploads are deleted as soon as it ends; the finished job is
kept for ``retention_s`` and then forgotten (404).
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.service.errors import ServiceError
from analyzer.service.sandbox import Cancel, Outcome

log = logging.getLogger("analyzer.service")


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    kind: str
    scratch: Path
    task: dict[str, Any]
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    final_progress: dict[str, Any] | None = None
    cancel: Cancel = field(default_factory=Cancel)

    def progress(self) -> dict[str, Any]:
        if self.final_progress is not None:
            return self.final_progress
        if self.status == "queued":
            return {"fraction": 0.0, "phase": "queued", "rounds": 0}
        try:
            state = json.loads((self.scratch / "progress.json").read_text())
        except (OSError, ValueError):
            state = {}
        return {"fraction": float(state.get("fraction", 0.0)), "phase": state.get("phase", "starting"),
                "rounds": int(state.get("rounds", 0))}


class JobQueue:
    def __init__(self, run: Callable[[Job], Outcome], *, max_queued: int, retention_s: float) -> None:
        self.run = run
        self.max_queued = max_queued
        self.retention_s = retention_s
        self.jobs: dict[str, Job] = {}
        self.queue: collections.deque[Job] = collections.deque()
        self.running: Job | None = None
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="analyzer-job-runner", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            for job in self.queue:
                self._finish(job, "cancelled", error={"status": 409, "code": "cancelled", "message": "the server is shutting down"})
            self.queue.clear()
            if self.running is not None:
                self.running.cancel.reason = "the server is shutting down"
                self.running.cancel.event.set()
            self.cond.notify_all()
        if self.thread.is_alive():
            self.thread.join(timeout=30)

    def submit(self, job: Job) -> Job:
        with self.cond:
            if self.stopping:
                raise ServiceError(503, "shutting_down", "the server is shutting down")
            if len(self.queue) >= self.max_queued:
                raise ServiceError(429, "queue_full",
                                   f"{len(self.queue)} latency jobs are already waiting (the limit); try again later",
                                   headers={"Retry-After": "30"})
            self.jobs[job.id] = job
            self.queue.append(job)
            self.cond.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        with self.cond:
            return self.jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        with self.cond:
            try:
                return self.queue.index(job) + 1
            except ValueError:
                return None

    def cancel(self, job: Job) -> None:
        with self.cond:
            if job.status == "queued" and job in self.queue:
                self.queue.remove(job)
                self._finish(job, "cancelled", error={"status": 409, "code": "cancelled", "message": "cancelled by the client"})
            elif job.status == "running":
                job.cancel.reason = "cancelled by the client"
                job.cancel.event.set()

    def describe(self, job: Job) -> dict[str, Any]:
        position = self.position(job) if job.status == "queued" else None
        return {
            "id": job.id,
            "kind": job.kind,
            "status": job.status,
            "position": position,
            "progress": job.progress(),
            "created_at": _iso(job.created),
            "started_at": _iso(job.started),
            "finished_at": _iso(job.finished),
            "expires_at": _iso(None if job.finished is None else job.finished + self.retention_s),
            "result": job.result,
            "error": job.error,
            "url": f"/v1/jobs/{job.id}",
        }

    def purge(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.cond:
            for job_id in [j.id for j in self.jobs.values() if j.finished is not None and j.finished + self.retention_s < now]:
                del self.jobs[job_id]

    # ---- runner ----

    def _finish(self, job: Job, status: str, *, result: Any = None, error: dict[str, Any] | None = None) -> None:
        if job.final_progress is None:
            progress = job.progress()
            if status == "succeeded":
                progress["fraction"] = 1.0
            progress["phase"] = status
            job.final_progress = progress
        job.status, job.result, job.error = status, result, error
        job.finished = time.time()
        shutil.rmtree(job.scratch, ignore_errors=True)

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.stopping:
                    self.cond.wait()
                if self.stopping:
                    return
                job = self.queue.popleft()
                job.status, job.started = "running", time.time()
                self.running = job
            try:
                outcome = self.run(job)
            except Exception as e:  # noqa: BLE001 - a bug here must not stop the queue
                log.exception("latency job %s failed", job.id)
                outcome = Outcome(False, 500, "internal_error", f"internal error: {type(e).__name__}: {e}")
            with self.cond:
                if outcome.ok:
                    try:
                        result = json.loads(outcome.body_path.read_text())
                        self._finish(job, "succeeded", result=result)
                    except (OSError, ValueError) as e:
                        self._finish(job, "failed", error={"status": 500, "code": "internal_error",
                                                           "message": f"the job's result could not be read: {e}"})
                else:
                    status = "cancelled" if outcome.code == "cancelled" else "failed"
                    self._finish(job, status, error=outcome.error())
                self.running = None
