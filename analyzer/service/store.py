"""Where the uploads of a queued job wait for the worker host that takes it.

A model up to ``inline_bytes`` travels in the Redis instance of the queue itself (one key per file,
expiring after the retention time whatever happens); a larger one goes to ``shared_dir``, a directory
the deployment mounts at the same path on the API host and on every worker host (NFS, a shared
volume). Without a shared directory, a model over the inline limit is refused with 413 before the
job is queued. The API removes a job's files when the job ends; :meth:`UploadStore.sweep` removes
shared files older than the retention time (a crashed API's leftovers).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.service.errors import ServiceError

KEY = "analyzer:upload:{job}:{role}"


@dataclass
class UploadStore:
    redis: Any
    retention_s: float
    inline_bytes: int = 64 << 20
    shared_dir: Path | None = None

    def put(self, job_id: str, role: str, path: Path) -> dict[str, Any]:
        """Store one upload; its reference (what the worker needs to fetch it)."""
        size = path.stat().st_size
        if size <= self.inline_bytes:
            key = KEY.format(job=job_id, role=role)
            self.redis.set(key, path.read_bytes(), ex=int(self.retention_s) + 60)
            return {"redis": key, "name": path.name, "bytes": size}
        if self.shared_dir is None:
            raise ServiceError(413, "upload_too_large",
                               f"{path.name} is {size >> 20} MiB, over the {self.inline_bytes >> 20} MiB that travel to "
                               "worker hosts through Redis; the server needs --store-dir (a directory shared with the "
                               "workers) for larger models")
        target = self.shared_dir / job_id / role / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        return {"shared": str(target.relative_to(self.shared_dir)), "name": path.name, "bytes": size}

    def fetch(self, ref: dict[str, Any], target: Path) -> None:
        """Write the referenced upload to ``target`` (on a worker host)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if "redis" in ref:
            data = self.redis.get(ref["redis"])
            if data is None:
                raise FileNotFoundError(f"the upload {ref['name']} is no longer in the store (expired)")
            target.write_bytes(data)
            return
        if self.shared_dir is None:
            raise FileNotFoundError(f"the upload {ref['name']} is in a shared directory this worker was not given "
                                    "(--store-dir)")
        shutil.copyfile(self.shared_dir / ref["shared"], target)

    def delete(self, job_id: str, refs: dict[str, dict[str, Any]]) -> None:
        for role, ref in refs.items():
            if "redis" in ref:
                self.redis.delete(ref["redis"])
        if self.shared_dir is not None:
            shutil.rmtree(self.shared_dir / job_id, ignore_errors=True)

    def sweep(self, now: float | None = None) -> None:
        """Remove shared job folders older than the retention time."""
        if self.shared_dir is None or not self.shared_dir.is_dir():
            return
        now = time.time() if now is None else now
        for entry in self.shared_dir.iterdir():
            try:
                if entry.is_dir() and now - entry.stat().st_mtime > self.retention_s:
                    shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                continue

    @staticmethod
    def shared(path: str | os.PathLike | None) -> Path | None:
        return Path(path).resolve() if path else None
