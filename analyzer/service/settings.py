"""The service's limits, with defaults; ``analyzer serve`` flags and ``create_app(settings)`` override them."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True)
class Settings:
    # uploads
    max_upload_bytes: int = 256 * MiB  # per uploaded model; larger: 413
    max_form_fields: int = 64  # non-file form fields per request
    max_field_bytes: int = 64 * 1024  # per non-file form field
    # worker processes (one per parse, analysis, rewrite or benchmark of an uploaded model)
    worker_memory_bytes: int = 4 * GiB  # RLIMIT_DATA: heap + anonymous mappings
    worker_cpu_seconds: int = 900  # RLIMIT_CPU (all threads together)
    worker_file_bytes: int = 2 * GiB  # RLIMIT_FSIZE: the largest file a worker may write
    max_workers: int = dataclasses.field(default_factory=_default_workers)  # concurrent inspect/optimize workers
    worker_slot_wait_s: float = 60.0  # a request waits this long for a free worker, then 429
    # wall-clock limit of one worker, per request kind
    inspect_timeout_s: float = 120.0
    optimize_timeout_s: float = 600.0
    compare_timeout_s: float = 300.0
    # latency jobs (one runs at a time, the others queue)
    max_compare_seconds: float = 60.0  # largest `time` budget a client may ask for
    default_compare_seconds: float = 5.0  # `time` when the client gives neither time nor iters
    max_compare_iters: int = 10_000  # largest `iters` a client may ask for
    max_queued_jobs: int = 16  # jobs that may wait while one runs (an idle server always takes one); more: 429
    # a request body that sends nothing for this long is answered 408 and its upload slot freed
    upload_idle_timeout_s: float = 30.0
    # a connection whose request headers are not complete this long after it opened (or after its last
    # response) is closed (analyzer serve's protocol; another ASGI server has its own settings)
    header_timeout_s: float = 10.0
    # uploads being received at once (all routes); more: 429 at once. None: 16, or 2 x max_workers + 2 if more
    max_concurrent_uploads: int | None = None
    # optimized models kept for download, all together; past it the oldest are dropped first
    max_stored_bytes: int = 2 * GiB
    # retention of finished jobs and optimized models
    retention_s: float = 3600.0
    # where the service's private folder (uploads, worker scratch, results) is made; None: the system's
    # temporary directory. Either way the service works in a new analyzer-serve-* folder inside it and
    # removes only that folder on shutdown
    work_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.max_concurrent_uploads is None:
            object.__setattr__(self, "max_concurrent_uploads", max(16, 2 * self.max_workers + 2))
        for name in ("max_upload_bytes", "max_form_fields", "max_field_bytes", "worker_memory_bytes",
                     "worker_cpu_seconds", "worker_file_bytes", "max_workers", "max_compare_iters",
                     "max_concurrent_uploads", "max_stored_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("worker_slot_wait_s", "inspect_timeout_s", "optimize_timeout_s", "compare_timeout_s",
                     "max_compare_seconds", "default_compare_seconds", "retention_s", "upload_idle_timeout_s",
                     "header_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_queued_jobs < 0:
            raise ValueError(f"max_queued_jobs must be zero or more, got {self.max_queued_jobs}")
        if self.compare_timeout_s < 2 * self.max_compare_seconds:
            raise ValueError(f"compare_timeout_s ({self.compare_timeout_s:g}) must be at least twice max_compare_seconds "
                             f"({self.max_compare_seconds:g}): warm-up, sessions and analysis come on top of the timed rounds")
        if self.default_compare_seconds > self.max_compare_seconds:
            object.__setattr__(self, "default_compare_seconds", self.max_compare_seconds)

    def timeout_for(self, kind: str) -> float:
        return {"inspect": self.inspect_timeout_s, "optimize": self.optimize_timeout_s,
                "compare": self.compare_timeout_s}[kind]

    def public(self) -> dict[str, object]:
        """The limits a client may see (``GET /v1/limits``): no paths."""
        out = dataclasses.asdict(self)
        out.pop("work_dir")
        return out
