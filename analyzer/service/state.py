"""What the routes share: one :class:`Service` per app (``app.state.service``), reached through :data:`ServiceDep`.

It holds the settings, the server's private folder, the upload slots, the worker slots, the download
store and the latency-job queue, and starts and stops the threads behind them (the job runner and the
janitor that forgets expired results). ``clock`` is the wall clock that retention is measured by.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

from analyzer.service.downloads import Downloads
from analyzer.service.errors import ServiceError
from analyzer.service.jobs import Job, JobQueue
from analyzer.service.remote import QueueConfig, RemoteJobQueue
from analyzer.service.sandbox import Outcome, run_task
from analyzer.service.settings import Settings
from analyzer.service.slots import FairSlots


class Service:
    """State shared by the routes: directories, upload and worker slots, downloads, the job queue."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time, queue: QueueConfig | None = None) -> None:
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
        self.downloads = Downloads(self.root / "models", settings.retention_s, settings.max_stored_bytes, clock=clock)
        self.upload_slots = asyncio.Semaphore(settings.max_concurrent_uploads)
        self.slots = FairSlots(settings.max_workers)  # first come, first served
        self.remote = queue is not None
        if queue is None:  # embedded: one latency job at a time, on this host
            self.jobs: JobQueue | RemoteJobQueue = JobQueue(self._run_job, max_queued=settings.max_queued_jobs,
                                                            retention_s=settings.retention_s, clock=clock)
        else:  # on worker hosts, through Redis
            self.jobs = RemoteJobQueue(queue, max_queued=settings.max_queued_jobs, retention_s=settings.retention_s,
                                       timeout_for=settings.timeout_for, clock=clock)
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
        """Run a worker for a synchronous request, waiting for a free worker slot; with a queue, an optimize
        runs on a worker host (its verification times the model) and this waits for it."""
        if self.remote and task["kind"] == "optimize":
            return self.jobs.run_and_wait(scratch, task, self.settings.timeout_for("optimize"))
        if task["kind"] == "optimize" and task["options"].get("auto") is not None:
            task = {**task, "cache_dir": str(self.root / "auto-cache")}  # layer timings kept while the server runs
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


def service_of(request: Request) -> Service:
    return request.app.state.service


# a route parameter of this type receives the app's Service (a dependency: nothing in the OpenAPI schema)
ServiceDep = Annotated[Service, Depends(service_of)]
