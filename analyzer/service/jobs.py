"""The latency-job queue: one runner thread runs one job at a time, first in first out.

A job is ``queued`` (with its position: 1 is next), then ``running`` (with the worker's progress),
then ``succeeded`` (with its result) or ``failed`` (with the error: a rejected model, a limit, a
worker that died) or ``cancelled``. Its uploads are deleted as soon as it ends; the finished job is
kept for ``retention_s`` and then forgotten (404). The queue's ``clock`` (``time.time`` unless told
otherwise) stamps a job's times and measures its retention.

At most ``max_queued`` jobs wait while one runs (an idle server always takes one): a submit past that
is a 429. A job's fields change under the queue's lock, its status last, and :meth:`JobQueue.describe`
reads them under that lock, so a poll never sees a finished job without its result or error. A result
is JSON with any non-finite number (NaN, Infinity) turned into null.
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
    created: float = field(default_factory=time.time)  # the queue stamps it again, on its clock, at submit
    started: float | None = None
    finished: float | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    final_progress: dict[str, Any] | None = None
    cancel: Cancel = field(default_factory=Cancel)
    owner: str | None = None  # the name of the API token that queued it (None: tokens are off)
    on_end: Callable[[], None] | None = None  # called once when it ends, however it ends

    def read_progress(self) -> dict[str, Any]:
        """The running worker's progress, from its progress.json."""
        try:
            state = json.loads((self.scratch / "progress.json").read_text())
        except (OSError, ValueError):
            state = {}
        return {"fraction": float(state.get("fraction", 0.0)), "phase": state.get("phase", "starting"),
                "rounds": int(state.get("rounds", 0))}


def loads_finite(text: str) -> Any:
    """JSON with NaN / Infinity / -Infinity read as None (strict JSON, as the service answers, has no such numbers)."""
    return json.loads(text, parse_constant=lambda _: None)


class JobQueue:
    def __init__(self, run: Callable[[Job], Outcome], *, max_queued: int, retention_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.run = run
        self.max_queued = max_queued
        self.retention_s = retention_s
        self.clock = clock
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
            ended = list(self.queue)
            for job in ended:
                self._finish(job, "cancelled", error={"status": 409, "code": "cancelled",
                                                      "message": "the server is shutting down"})
            self.queue.clear()
            if self.running is not None:
                self.running.cancel.reason = "the server is shutting down"
                self.running.cancel.event.set()
            self.cond.notify_all()
        _remove(ended)
        if self.thread.is_alive():
            self.thread.join(timeout=30)

    def _full(self) -> ServiceError | None:
        """With the lock held: the 429 to answer when no job may join now. ``max_queued`` jobs may wait while
        one runs; a job not yet picked up by the runner counts as the one running, so an idle server always
        takes one and the answer does not depend on when the runner wakes."""
        pending = len(self.queue) + (self.running is not None)
        if pending <= self.max_queued:
            return None
        limit = ("a latency job is running and this server queues none behind it" if self.max_queued == 0 else
                 f"{pending - 1} latency jobs are already waiting behind the running one (the limit)")
        return ServiceError(429, "queue_full", f"{limit}; try again later", headers={"Retry-After": "30"})

    def check_room(self) -> None:
        """Raise the 429 a submit would get now (the compare route asks before it receives the uploads)."""
        with self.cond:
            if self.stopping:
                raise ServiceError(503, "shutting_down", "the server is shutting down")
            error = self._full()
        if error is not None:
            raise error

    def submit(self, job: Job) -> Job:
        with self.cond:
            if self.stopping:
                raise ServiceError(503, "shutting_down", "the server is shutting down")
            error = self._full()
            if error is None:
                job.created = self.clock()
                self.jobs[job.id] = job
                self.queue.append(job)
                self.cond.notify_all()
        if error is not None:
            raise error
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
        """Cancel a queued job, or kill a running one (its runner then ends it). Blocking: call it off the event loop."""
        removed = []
        with self.cond:
            if job.status == "queued" and job in self.queue:
                self.queue.remove(job)
                self._finish(job, "cancelled", error={"status": 409, "code": "cancelled",
                                                      "message": "cancelled by the client"})
                removed.append(job)
            elif job.status == "running":
                job.cancel.reason = "cancelled by the client"
                job.cancel.event.set()
        _remove(removed)

    def describe(self, job: Job) -> dict[str, Any]:
        with self.cond:  # a consistent snapshot: no finished status without its result or error
            status, result, error = job.status, job.result, job.error
            started, finished, progress = job.started, job.finished, job.final_progress
            position = self.queue.index(job) + 1 if status == "queued" and job in self.queue else None
        if progress is None:
            progress = ({"fraction": 0.0, "phase": "queued", "rounds": 0} if status == "queued"
                        else job.read_progress())
        return {
            "id": job.id,
            "kind": job.kind,
            "status": status,
            "position": position,
            "progress": progress,
            "created_at": _iso(job.created),
            "started_at": _iso(started),
            "finished_at": _iso(finished),
            "expires_at": _iso(None if finished is None else finished + self.retention_s),
            "result": result,
            "error": error,
            "url": f"/v1/jobs/{job.id}",
        }

    def purge(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        with self.cond:
            for job_id in [j.id for j in self.jobs.values() if j.finished is not None and j.finished + self.retention_s < now]:
                del self.jobs[job_id]

    # ---- runner ----

    def _finish(self, job: Job, status: str, *, result: Any = None, error: dict[str, Any] | None = None,
                progress: dict[str, Any] | None = None) -> None:
        """With the lock held: end ``job``; its status is set last. The caller removes its scratch afterwards
        (:func:`_remove`), outside the lock."""
        if job.final_progress is None:
            progress = dict(progress or {"fraction": 0.0, "phase": "queued", "rounds": 0})
            if status == "succeeded":
                progress["fraction"] = 1.0
            progress["phase"] = status
            job.final_progress = progress
        job.result, job.error = result, error
        job.finished = self.clock()
        job.status = status
        if job.on_end is not None:
            job.on_end()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.stopping:
                    self.cond.wait()
                if self.stopping:
                    return
                job = self.queue.popleft()
                job.started = self.clock()
                job.status = "running"
                self.running = job
            try:
                outcome = self.run(job)
            except Exception as e:  # noqa: BLE001 - a bug here must not stop the queue
                log.exception("latency job %s failed", job.id)
                outcome = Outcome(False, 500, "internal_error", f"internal error: {type(e).__name__}: {e}")
            # read the result and the last progress before taking the lock
            fields: dict[str, Any] = {"progress": job.read_progress()}
            if outcome.ok:
                try:
                    fields.update(status="succeeded", result=loads_finite(outcome.body_path.read_text()))
                except (OSError, ValueError) as e:
                    fields.update(status="failed", error={"status": 500, "code": "internal_error",
                                                          "message": f"the job's result could not be read: {e}"})
            else:
                fields.update(status="cancelled" if outcome.code == "cancelled" else "failed", error=outcome.error())
            with self.cond:
                self._finish(job, fields.pop("status"), **fields)
                self.running = None
            _remove([job])


def _remove(jobs: list[Job]) -> None:
    """Delete ended jobs' uploads and scratch (outside the queue's lock)."""
    for job in jobs:
        shutil.rmtree(job.scratch, ignore_errors=True)
