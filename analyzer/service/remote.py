"""Latency jobs on worker hosts, through a Redis queue (RQ): the API side.

``analyzer serve --queue redis://HOST:PORT/DB`` replaces the embedded one-job-at-a-time runner
(:class:`analyzer.service.jobs.JobQueue`) with :class:`RemoteJobQueue`, which has the same methods, so
the routes do not change. A job's uploads go to the :class:`~analyzer.service.store.UploadStore`, its
task to an RQ queue named for what it needs (:func:`queue_name`: a tag, a provider, or any worker),
and its record to a Redis hash that the API and the worker host both update. ``analyzer worker``
(:mod:`analyzer.service.remote_worker`) takes one job at a time from the queues it serves.

Nothing is lost:

- the record lives in Redis: an API that restarts finds every job where it was;
- a worker that runs a job refreshes ``analyzer:alive:ID`` every second (5 s expiry); the API's
  watcher sees a running job whose key has expired as a lost worker (killed, crashed, cut off) and
  queues it again once, on the same queue, for any worker; lost a second time, it fails with
  ``worker_lost``. Every change of state is conditional on the attempt number (a WATCH transaction),
  so a late worker cannot overwrite a job that was given to another;
- a queued job that no live worker serves stays queued and says so (``waiting_for``).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.service.errors import ServiceError
from analyzer.service.jobs import Job, _iso
from analyzer.service.sandbox import Outcome
from analyzer.service.store import UploadStore

log = logging.getLogger("analyzer.service")

JOB = "analyzer:job:{id}"
ACTIVE = "analyzer:active"  # ids of jobs not ended
ALIVE = "analyzer:alive:{id}"
CANCEL = "analyzer:cancel:{id}"
WORKER = "analyzer:worker:{name}"
WORKERS = "analyzer:worker:*"
ALIVE_TTL_S = 5
WORKER_TTL_S = 10
MAX_ATTEMPTS = 2  # the first run, and one more after a lost worker
ENDED = ("succeeded", "failed", "cancelled")
RUN_TASK = "analyzer.service.remote_worker.execute"


def queue_name(task: dict[str, Any]) -> str:
    """The RQ queue of a job: its tag's, else its provider's (cpu, cuda), else any worker's."""
    if task.get("tag"):
        return f"analyzer:tag:{task['tag']}"
    provider = (task["options"].get("bench") or {}).get("provider")
    return f"analyzer:{provider}" if provider in ("cpu", "cuda") else "analyzer:any"


def describe_queue(name: str) -> str:
    kind, _, value = name.removeprefix("analyzer:").partition(":")
    if kind == "tag":
        return f"tag {value!r}"
    return "any worker's" if kind == "any" else f"provider {kind!r}"


def output_folder(job_id: str) -> str:
    """Where a job's optimized model waits in the store (apart from its uploads, which go when it ends)."""
    return f"{job_id}.out"


def connect(url: str):
    import redis

    connection = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    try:
        connection.ping()
    except redis.RedisError as e:
        raise ConnectionError(f"cannot reach the queue at {safe_url(url)}: {e}") from None
    return connection


def safe_url(url: str) -> str:
    """The URL without its password (it is logged and shown)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def live_workers(redis) -> list[dict[str, Any]]:
    workers = []
    for key in redis.scan_iter(match=WORKERS, count=100):
        raw = redis.get(key)
        if raw:
            workers.append(json.loads(raw))
    return sorted(workers, key=lambda w: w["name"])


def update_if(redis, job_id: str, *, attempt: int | None = None, status: tuple[str, ...] | None = None,
              fields: dict[str, Any], expire_s: float | None = None) -> bool:
    """Set ``fields`` of the job's record if its attempt and status are as expected (atomically)."""
    import redis as redis_lib

    key = JOB.format(id=job_id)
    with redis.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                current = pipe.hgetall(key)
                if not current:
                    pipe.unwatch()
                    return False
                if attempt is not None and int(current[b"attempt"]) != attempt:
                    pipe.unwatch()
                    return False
                if status is not None and json.loads(current[b"status"]) not in status:
                    pipe.unwatch()
                    return False
                pipe.multi()
                pipe.hset(key, mapping={k: json.dumps(v) for k, v in fields.items()})
                if expire_s is not None:
                    pipe.expire(key, int(expire_s))
                pipe.execute()
                return True
            except redis_lib.WatchError:
                continue


def read_record(redis, job_id: str) -> dict[str, Any] | None:
    raw = redis.hgetall(JOB.format(id=job_id))
    return {k.decode(): json.loads(v) for k, v in raw.items()} if raw else None


@dataclass
class QueueConfig:
    url: str
    store_dir: Path | None = None  # shared with the worker hosts, for models over inline_bytes
    inline_bytes: int = 64 << 20


class RemoteJob:
    """What the routes read of a remote job: its id, kind and owner; its status from Redis."""

    def __init__(self, queue: RemoteJobQueue, job_id: str, kind: str, owner: str | None) -> None:
        self.queue, self.id, self.kind, self.owner = queue, job_id, kind, owner

    @property
    def status(self) -> str:
        record = read_record(self.queue.redis, self.id)
        return record["status"] if record else "expired"


class RemoteJobQueue:
    def __init__(self, config: QueueConfig, *, max_queued: int, retention_s: float,
                 timeout_for: Callable[[str], float], clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.redis = connect(config.url)
        self.store = UploadStore(self.redis, retention_s, config.inline_bytes, config.store_dir)
        self.max_queued, self.retention_s, self.timeout_for, self.clock = max_queued, retention_s, timeout_for, clock
        self.on_end: dict[str, Callable[[], None]] = {}  # this API process's hooks (per-token slots)
        self.stopping = threading.Event()
        self.watcher = threading.Thread(target=self._watch, name="analyzer-queue-watcher", daemon=True)

    def start(self) -> None:
        self.watcher.start()

    def stop(self) -> None:
        """Stop watching; the jobs stay queued in Redis for the workers (and for the next API)."""
        self.stopping.set()
        if self.watcher.is_alive():
            self.watcher.join(timeout=10)
        for hook in self.on_end.values():
            hook()
        self.on_end.clear()

    # ---- what the routes call ----

    def _queued(self) -> int:
        ids = [i.decode() for i in self.redis.smembers(ACTIVE)]
        return sum(1 for i in ids if (r := read_record(self.redis, i)) and r["status"] == "queued")

    def check_room(self) -> None:
        if self.stopping.is_set():
            raise ServiceError(503, "shutting_down", "the server is shutting down")
        queued = self._queued()
        if queued > self.max_queued:
            raise ServiceError(429, "queue_full", f"{queued} latency jobs are already waiting in the queue (the "
                                                  "limit); try again later", headers={"Retry-After": "30"})

    def submit(self, job: Job, *, keep_scratch: bool = False) -> RemoteJob:
        self.check_room()
        try:
            refs = {role: self.store.put(job.id, role, job.scratch / "in" / relative)
                    for role, relative in job.task["inputs"].items()}
            name = queue_name(job.task)
            now = self.clock()
            self.redis.hset(JOB.format(id=job.id), mapping={k: json.dumps(v) for k, v in {
                "kind": job.kind, "owner": job.owner, "status": "queued", "queue": name, "task": job.task,
                "refs": refs, "attempt": 1, "created": now, "started": None, "finished": None, "result": None,
                "error": None, "worker": None, "progress": None, "history": []}.items()})
            self.redis.sadd(ACTIVE, job.id)
            self._enqueue(job.id, 1, name, job.task, refs)
        finally:
            if not keep_scratch:
                shutil.rmtree(job.scratch, ignore_errors=True)  # the uploads are in the store now
        if job.on_end is not None:
            self.on_end[job.id] = job.on_end
        return RemoteJob(self, job.id, job.kind, job.owner)

    def _enqueue(self, job_id: str, attempt: int, name: str, task: dict[str, Any], refs: dict[str, Any]) -> None:
        from rq import Queue

        timeout_s = self.timeout_for(task["kind"])
        store = {"inline_bytes": self.config.inline_bytes}
        Queue(name, connection=self.redis).enqueue_call(
            RUN_TASK, kwargs={"job_id": job_id, "attempt": attempt, "task": task, "refs": refs, "store": store,
                              "timeout_s": timeout_s, "retention_s": self.retention_s},
            job_id=f"{job_id}-{attempt}", timeout=int(timeout_s) + 120, result_ttl=int(self.retention_s),
            failure_ttl=int(self.retention_s), description=f"analyzer {task['kind']} job {job_id}")

    def run_and_wait(self, scratch: Path, task: dict[str, Any], wait_s: float) -> Outcome:
        """Run a synchronous request's task (optimize) on a worker host and wait for it: the same Outcome as a
        local worker's, its body and optimized model written into ``scratch``."""
        job = self.submit(Job(task["kind"], scratch, task), keep_scratch=True)
        start = time.monotonic()
        record = read_record(self.redis, job.id)
        while record is not None and record["status"] not in ENDED:
            if time.monotonic() - start > wait_s:
                self.cancel(job)
                what = "no worker took" if record["status"] == "queued" else "the worker did not finish"
                return Outcome(False, 503, "no_worker", f"{what} the {task['kind']} job within {wait_s:g} s; try again later")
            time.sleep(0.05)
            record = read_record(self.redis, job.id)
        if record is None:
            return Outcome(False, 500, "internal_error", "the job's record expired before it was read")
        if record["status"] != "succeeded":
            error = record["error"] or {"status": 500, "code": "internal_error", "message": "no error recorded"}
            body = record.get("error_body")
            return Outcome(False, error["status"], error["code"], error["message"], error_body=body)
        body = scratch / "body.json"
        body.write_text(json.dumps(record["result"]))
        output = None
        if record.get("output"):
            output = scratch / "out" / task["output_name"]
            try:
                self.store.fetch(record["output"], output)
            finally:
                self.store.delete(output_folder(job.id), {"output": record["output"]})
        return Outcome(True, body_path=body, output_path=output)

    def get(self, job_id: str) -> RemoteJob | None:
        record = read_record(self.redis, job_id)
        return None if record is None else RemoteJob(self, job_id, record["kind"], record["owner"])

    def cancel(self, job: RemoteJob) -> None:
        record = read_record(self.redis, job.id)
        if record is None:
            return
        error = {"status": 409, "code": "cancelled", "message": "cancelled by the client"}
        if update_if(self.redis, job.id, status=("queued",), fields={"status": "cancelled", "error": error,
                                                                       "finished": self.clock()}):
            from rq import Queue

            Queue(record["queue"], connection=self.redis).remove(f"{job.id}-{record['attempt']}")
            self._ended(job.id)
        elif record["status"] == "running":
            self.redis.set(CANCEL.format(id=job.id), "cancelled by the client", ex=int(self.retention_s))

    def describe(self, job: RemoteJob) -> dict[str, Any]:
        record = read_record(self.redis, job.id) or {}
        status = record.get("status", "expired")
        position = waiting_for = None
        if status == "queued":
            position, waiting_for = self._waiting(job.id, record)
        progress = record.get("progress") or {"fraction": 1.0 if status == "succeeded" else 0.0,
                                              "phase": status, "rounds": 0}
        finished = record.get("finished")
        return {
            "id": job.id, "kind": job.kind, "status": status, "position": position, "progress": progress,
            "created_at": _iso(record.get("created")), "started_at": _iso(record.get("started")),
            "finished_at": _iso(finished), "expires_at": _iso(None if finished is None else finished + self.retention_s),
            "result": record.get("result"), "error": record.get("error"), "url": f"/v1/jobs/{job.id}",
            "queue": describe_queue(record["queue"]) if record.get("queue") else None,
            "waiting_for": waiting_for, "worker": record.get("worker"), "attempt": record.get("attempt"),
            "history": record.get("history") or [],
        }

    def _waiting(self, job_id: str, record: dict[str, Any]) -> tuple[int | None, str | None]:
        from rq import Queue

        ids = Queue(record["queue"], connection=self.redis).get_job_ids()
        rq_id = f"{job_id}-{record['attempt']}"
        position = ids.index(rq_id) + 1 if rq_id in ids else None
        workers = live_workers(self.redis)
        takers = [w for w in workers if record["queue"] in w["queues"]]
        if takers:
            busy = sum(1 for w in takers if w.get("job"))
            return position, f"{len(takers)} worker(s) take {describe_queue(record['queue'])} jobs; {busy} busy"
        present = ", ".join(f"{w['name']} ({w['provider']}{', tags ' + ','.join(w['tags']) if w['tags'] else ''})"
                            for w in workers) or "none"
        return position, (f"no worker takes {describe_queue(record['queue'])} jobs now (workers: {present}); "
                          "the job waits until one does")

    def purge(self, now: float | None = None) -> None:
        self.store.sweep(now)  # records expire by themselves (their TTL is set when they end)

    # ---- the watcher: ends, lost workers ----

    def _watch(self) -> None:
        while not self.stopping.wait(0.5):
            try:
                self.check_active()
            except Exception:  # noqa: BLE001 - Redis going away for a while must not stop the watcher
                log.exception("queue watcher")

    def check_active(self) -> None:
        for raw in self.redis.smembers(ACTIVE):
            job_id = raw.decode()
            record = read_record(self.redis, job_id)
            if record is None or record["status"] in ENDED:
                self._ended(job_id, record)
            elif record["status"] == "running" and not self.redis.exists(ALIVE.format(id=job_id)):
                self._lost(job_id, record)

    def _lost(self, job_id: str, record: dict[str, Any]) -> None:
        attempt = record["attempt"]
        worker = (record.get("worker") or {}).get("name", "?")
        history = [*(record.get("history") or []), f"attempt {attempt}: worker {worker} was lost (no heartbeat)"]
        if attempt < MAX_ATTEMPTS:
            if update_if(self.redis, job_id, attempt=attempt, status=("running",), fields={
                    "status": "queued", "attempt": attempt + 1, "worker": None, "started": None, "progress": None,
                    "history": history}):
                log.warning("job %s: worker %s was lost; queued again", job_id, worker)
                self._enqueue(job_id, attempt + 1, record["queue"], record["task"], record["refs"])
            return
        error = {"status": 422, "code": "worker_lost",
                 "message": f"the worker running this job was lost (killed or cut off) on {MAX_ATTEMPTS} attempts "
                            f"(last: {worker}); the job was not run to the end"}
        if update_if(self.redis, job_id, attempt=attempt, status=("running",), fields={
                "status": "failed", "error": error, "finished": self.clock(), "history": history}):
            self._ended(job_id)

    def _ended(self, job_id: str, record: dict[str, Any] | None = None) -> None:
        record = record or read_record(self.redis, job_id)
        if record is not None:
            self.store.delete(job_id, record.get("refs") or {})
            self.redis.expire(JOB.format(id=job_id), int(self.retention_s))
        self.redis.srem(ACTIVE, job_id)
        self.redis.delete(CANCEL.format(id=job_id))
        hook = self.on_end.pop(job_id, None)
        if hook is not None:
            hook()
