"""Start worker processes through the fork server (:mod:`analyzer.service.zygote`), and learn how they ended.

One fork server per server process, started on first use and again if it dies. It runs as
``sys.executable -I -m analyzer.service.zygote`` in a session of its own with the workers' minimal
environment (:func:`analyzer.service.sandbox.worker_environment`); a reader thread turns its replies
into :class:`Child` objects. A worker is killed through its process group (it is a session leader);
its wait status comes from the fork server, which alone can ``wait4()`` it.

If the fork server itself dies, every worker it had started is reported as lost (status None) and
killed; the next spawn starts a new fork server.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("analyzer.service")

START_TIMEOUT_S = 120.0  # the imports, on a loaded machine
SPAWN_TIMEOUT_S = 30.0


class SpawnError(RuntimeError):
    """The fork server could not be started or did not answer."""


@dataclass
class Child:
    pid: int
    ended: threading.Event = field(default_factory=threading.Event)
    status: int | None = None  # the wait status; None: lost with its fork server
    cpu_s: float = 0.0

    def finish(self, status: int | None, cpu_s: float = 0.0) -> None:
        self.status, self.cpu_s = status, cpu_s
        self.ended.set()


def kill_group(pid: int) -> None:
    """SIGKILL the worker's process group (itself and anything it started)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:  # killed before it became a session leader
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Spawner:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # one request on the pipe at a time; starting and stopping
        self._proc: subprocess.Popen | None = None
        self._home: Path | None = None
        self._ready = threading.Event()
        self._next_id = 0
        self._replies: dict[int, tuple[threading.Event, list[Child]]] = {}
        self._children: dict[int, Child] = {}
        self.pid: int | None = None  # the fork server's pid (tests look for its children)

    def spawn(self, scratch: Path) -> Child:
        """Fork a worker for ``scratch`` (``task.json`` already written there)."""
        with self._lock:
            proc = self._running()
            self._next_id += 1
            request_id = self._next_id
            reply: tuple[threading.Event, list[Child]] = (threading.Event(), [])
            self._replies[request_id] = reply
            try:
                proc.stdin.write((json.dumps({"id": request_id, "scratch": str(scratch)}) + "\n").encode())
                proc.stdin.flush()
            except (BrokenPipeError, OSError) as e:
                self._replies.pop(request_id, None)
                raise SpawnError(f"the worker fork server stopped ({e})") from None
            if not reply[0].wait(SPAWN_TIMEOUT_S) or not reply[1]:
                self._replies.pop(request_id, None)
                raise SpawnError("the worker fork server did not start a worker")
            return reply[1][0]

    def _running(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        from analyzer.service.sandbox import worker_environment

        self._home = Path(tempfile.mkdtemp(prefix="analyzer-zygote-"))
        (self._home / "tmp").mkdir()
        self._ready.clear()
        with open(self._home / "zygote.log", "wb") as errors:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-m", "analyzer.service.zygote"],
                cwd=self._home, env=worker_environment(self._home), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=errors, start_new_session=True, close_fds=True)
        threading.Thread(target=self._read, args=(self._proc,), name="analyzer-zygote-reader", daemon=True).start()
        if not self._ready.wait(START_TIMEOUT_S) or self._proc.poll() is not None:
            tail = (self._home / "zygote.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            self._stop_locked()
            raise SpawnError(f"the worker fork server did not start: {tail[0]}")
        return self._proc

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            message = json.loads(line)
            if "ready" in message:
                self.pid = message["pid"]
                log.debug("worker fork server %s ready (imports %.2f s)", message["pid"], message["preload_s"])
                self._ready.set()
            elif "exit" in message:
                child = self._children.pop(message["exit"], None)
                if child is not None:
                    child.finish(message["status"], message["cpu_s"])
            elif "id" in message:
                child = Child(message["pid"])
                self._children[child.pid] = child
                event, box = self._replies.pop(message["id"], (None, None))
                if event is not None:
                    box.append(child)
                    event.set()
        # end of output: the fork server is gone, and with it the only parent that could reap our workers
        proc.wait()
        lost, self._children = self._children, {}
        if lost:
            log.error("the worker fork server exited with status %s; %d worker(s) lost", proc.returncode, len(lost))
        for child in lost.values():
            kill_group(child.pid)
            child.finish(None)
        for event, _ in list(self._replies.values()):
            event.set()
        self._ready.set()

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()  # end of input: it exits
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                kill_group(proc.pid)
                proc.wait()
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None


_spawner: Spawner | None = None
_spawner_lock = threading.Lock()


def spawner() -> Spawner:
    """The process's fork server client (started on the first spawn)."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = Spawner()
            atexit.register(_spawner.stop)
        return _spawner
