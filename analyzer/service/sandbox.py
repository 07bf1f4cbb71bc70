"""Run one task on uploaded models in a worker process of its own, and say plainly how it ended.

The worker is forked from the fork server (:mod:`analyzer.service.zygote`, through
:mod:`analyzer.service.spawner`), which imported onnx, numpy and the analyzer once: a worker starts in
milliseconds instead of paying the interpreter and the imports per upload. The fork server runs as
``sys.executable -I -m analyzer.service.zygote`` (isolated mode: no ``PYTHON*`` variables, no user
site, the working directory not on ``sys.path``) with a minimal environment (``PATH``, ``LANG``,
thread counts); each worker is a session leader (its own process group) working in its scratch
directory's ``in/``, with stdin from /dev/null, stdout and stderr to ``worker.log`` and ``HOME`` and
``TMPDIR`` inside the scratch directory. Its first act is to set its own limits (RLIMIT_DATA,
RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_CORE=0) before it reads the upload. The wall-clock limit is enforced
here: past it, the whole process group gets SIGKILL.

How it ended becomes an :class:`Outcome`: the worker's own result, or a rejection naming the cause
(time limit, CPU-time limit, memory, file-size limit, a fatal signal with the stage it was in).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.service.settings import Settings
from analyzer.service.spawner import Child, kill_group, spawner
from analyzer.service.worker import MEMORY_MARKERS

log = logging.getLogger("analyzer.service")

POLL_S = 0.02
SIGNAL_NAMES = {
    signal.SIGSEGV: "SIGSEGV (segmentation fault)",
    signal.SIGABRT: "SIGABRT (abort)",
    signal.SIGBUS: "SIGBUS (bus error)",
    signal.SIGILL: "SIGILL (illegal instruction)",
    signal.SIGFPE: "SIGFPE (arithmetic exception)",
    signal.SIGKILL: "SIGKILL",
    signal.SIGTERM: "SIGTERM",
}


@dataclass
class Outcome:
    ok: bool
    status: int = 200  # HTTP status for a failure (4xx)
    code: str = ""
    message: str = ""
    body_path: Path | None = None  # success: the response body the worker wrote
    media_type: str = "application/json"
    error_body: str | None = None  # failure: a document to return with the error (a failed pass's report)
    output_path: Path | None = None  # optimize: the optimized model
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def error(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "message": self.message}


@dataclass
class Cancel:
    """Set ``event`` to kill a running worker (its Outcome is then ``cancelled``)."""

    event: threading.Event = field(default_factory=threading.Event)
    reason: str = "cancelled"


def worker_environment(scratch: Path) -> dict[str, str]:
    env = {
        "PATH": os.defpath,
        "LANG": "C.UTF-8",
        "HOME": str(scratch),
        "TMPDIR": str(scratch / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONFAULTHANDLER": "1",
    }
    # thread counts of numerical libraries follow the server's settings, nothing else leaks through
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def run_task(
    scratch: Path,
    task: dict[str, Any],
    settings: Settings,
    *,
    timeout_s: float,
    cancel: Cancel | None = None,
) -> Outcome:
    """Run ``task`` (see :mod:`analyzer.service.worker`) with its uploads under ``scratch/in``; never raises
    for anything the worker or the model does."""
    task = {**task, "limits": {"memory_bytes": settings.worker_memory_bytes,
                               "cpu_seconds": settings.worker_cpu_seconds,
                               "file_bytes": settings.worker_file_bytes}}
    start = time.monotonic()
    (scratch / "tmp").mkdir(exist_ok=True)
    (scratch / "in").mkdir(exist_ok=True)
    (scratch / "task.json").write_text(json.dumps(task))
    child = spawner().spawn(scratch)
    ended_by = _wait(child, start, timeout_s, cancel)
    kill_group(child.pid)  # anything the worker left behind in its group
    if child.status is None:
        outcome = Outcome(False, 422, "worker_lost", f"the {task['kind']} worker was lost when the worker fork server "
                                                     "stopped; the model was rejected")
    else:
        outcome = _outcome(scratch, task, settings, os.waitstatus_to_exitcode(child.status), ended_by, timeout_s,
                           cancel, child.cpu_s)
    outcome.wall_s = time.monotonic() - start
    outcome.cpu_s = child.cpu_s
    if not outcome.ok:
        tail = _log_tail(scratch)
        log.info("worker %s (%s) rejected: %s%s", child.pid, task["kind"], outcome.message,
                 f"\n{tail}" if tail and outcome.code not in ("not_onnx", "external_data", "empty_upload") else "")
    return outcome


def _wait(child: Child, start: float, timeout_s: float, cancel: Cancel | None) -> str | None:
    """Wait for the worker to end, killing its group past ``timeout_s`` or on ``cancel``; what ended it
    early ("timeout", "cancel") or None."""
    ended_by: str | None = None
    try:
        while not child.ended.wait(POLL_S):
            if ended_by is None:
                if time.monotonic() - start > timeout_s:
                    ended_by = "timeout"
                    kill_group(child.pid)
                elif cancel is not None and cancel.event.is_set():
                    ended_by = "cancel"
                    kill_group(child.pid)
    except BaseException:
        kill_group(child.pid)
        raise
    return ended_by


def _log_tail(scratch: Path, limit: int = 4000) -> str:
    try:
        data = (scratch / "worker.log").read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace").strip()


def _stage(scratch: Path) -> str | None:
    try:
        return json.loads((scratch / "progress.json").read_text()).get("stage")
    except (OSError, ValueError):
        return None


def _outcome(scratch: Path, task: dict[str, Any], settings: Settings, code: int, ended_by: str | None,
             timeout_s: float, cancel: Cancel | None, cpu_s: float) -> Outcome:
    kind = task["kind"]
    stage = _stage(scratch)
    during = f" while {stage}" if stage else ""
    rejected = "; the model was rejected"
    if ended_by == "cancel":
        return Outcome(False, 409, "cancelled", (cancel.reason if cancel else "cancelled"))
    if ended_by == "timeout":
        return Outcome(False, 422, "time_limit",
                       f"the {kind} worker exceeded the time limit of {timeout_s:g} s{during}{rejected}")
    if code == 0:
        try:
            result = json.loads((scratch / "result.json").read_text())
        except (OSError, ValueError):
            return Outcome(False, 422, "worker_failed", f"the {kind} worker exited without a result{during}{rejected}")
        if result.get("ok"):
            return Outcome(True, body_path=scratch / result["body"], media_type=result["media_type"],
                           output_path=(scratch / "out" / result["output"]) if result.get("output") else None)
        error = result["error"]
        return Outcome(False, int(error["status"]), error["code"], error["message"], error_body=result.get("body"))
    if code < 0:
        signum = -code
        # the soft RLIMIT_CPU sends SIGXCPU; the hard one (5 s later) SIGKILL
        if signum == signal.SIGXCPU or (signum == signal.SIGKILL and cpu_s >= settings.worker_cpu_seconds):
            return Outcome(False, 422, "cpu_limit",
                           f"the {kind} worker exceeded its CPU-time limit of {settings.worker_cpu_seconds} s{during}{rejected}")
        if signum == signal.SIGXFSZ:
            return Outcome(False, 422, "file_size_limit",
                           f"the {kind} worker exceeded its file-size limit of {settings.worker_file_bytes >> 20} MiB"
                           f"{during}{rejected}")
        name = SIGNAL_NAMES.get(signum) or _signal_name(signum)
        return Outcome(False, 422, "worker_killed", f"the {kind} worker was killed by signal {name}{during}{rejected}")
    if _log_mentions_memory(scratch):
        return Outcome(False, 422, "memory_limit",
                       f"the {kind} worker ran out of memory (limit {settings.worker_memory_bytes >> 20} MiB){during}{rejected}")
    return Outcome(False, 422, "worker_failed", f"the {kind} worker exited with status {code}{during}{rejected}")


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"{signum}"


def _log_mentions_memory(scratch: Path) -> bool:
    tail = _log_tail(scratch).lower()
    return any(m in tail for m in MEMORY_MARKERS)
