"""The fork server: ``python -I -m analyzer.service.zygote`` imports the heavy modules once, then forks
one worker per task.

A fresh ``python -I -m analyzer.service.worker`` per upload paid the interpreter and the imports of
onnx, numpy and networkx (about 0.45 s) for a 2 ms analysis. This process pays them once, while it is
still single-threaded, and each request is answered with ``os.fork()``: the child is a worker with
everything imported, and it is still one process per task with its own limits, set before it reads
the upload (:func:`analyzer.service.worker.main`).

Protocol, one JSON object per line. The server (:mod:`analyzer.service.spawner`) writes
``{"id": N, "scratch": PATH}`` on stdin; this process answers ``{"id": N, "pid": PID}`` at once and,
when that child has ended, ``{"exit": PID, "status": WAIT_STATUS, "cpu_s": SECONDS}`` (the child is
ours, so only we can ``wait4()`` it). The first line it writes is ``{"ready": true, ...}``, after the
imports. End of stdin (the server closed it, or died): it kills the process group of every worker
still running, so none outlives the server that waits for it, and exits.

The child makes itself a session leader (so the server can kill its whole process group), sends its
stdout and stderr to ``SCRATCH/worker.log``, closes every other descriptor it inherited, moves into
``SCRATCH/in`` with ``HOME`` and ``TMPDIR`` inside the scratch directory, and runs
:func:`analyzer.service.worker.main` exactly as the per-process worker did.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import sys
import time

# Everything an inspect needs, and the bulk of what optimize and compare need, minus onnxruntime: its
# environment starts thread pools on first use, and those would not exist in a forked child. (numpy's
# OpenBLAS has a worker thread from import on; OpenBLAS stops it around fork() itself, and a child's
# first BLAS call starts its own: checked by the optimize tests, which run SVDs in forked workers.)
PRELOAD = ("numpy", "onnx", "onnx.shape_inference", "onnx.numpy_helper", "networkx", "analyzer.pipeline",
           "analyzer.render.json_format", "analyzer.render.html", "analyzer.service.safety", "analyzer.service.errors",
           "analyzer.service.worker", "passes", "passes.report", "analyzer.latency.compare")
LOG_NAME = "worker.log"


def _warm_up() -> None:
    """Inspect a tiny model once: the analyzer imports its cost, shape and memory modules on first use
    (about 40 ms, twenty times the analysis of LeNet-5), and onnx builds its schema tables."""
    from onnx import TensorProto, helper

    from analyzer.pipeline import inspect
    from analyzer.render import render

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["p"]),
         helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "g"], ["y"], transB=1)],
        "warm_up", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 3, 3], [0.0] * 9),
         helper.make_tensor("g", TensorProto.FLOAT, [2, 1], [0.0] * 2)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    render(inspect(model), "json")


def _send(message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(1, data):]


def _reap(live: set[int]) -> None:
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        live.discard(pid)
        _send({"exit": pid, "status": status, "cpu_s": usage.ru_utime + usage.ru_stime})


def _kill_all(live: set[int]) -> None:
    for pid in live:
        for kill in (os.killpg, os.kill):  # its group; itself if it had no time to become a session leader
            try:
                kill(pid, signal.SIGKILL)
                break
            except (ProcessLookupError, PermissionError):
                continue


def _become_worker(scratch: str) -> None:
    """In the forked child: detach, redirect, confine to the scratch directory, run the worker; never returns."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        log = os.open(os.path.join(scratch, LOG_NAME), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, max(os.sysconf("SC_OPEN_MAX"), 1024))
        os.chdir(os.path.join(scratch, "in"))
        os.environ["HOME"] = scratch
        os.environ["TMPDIR"] = os.path.join(scratch, "tmp")
        import tempfile

        tempfile.tempdir = None  # computed again from TMPDIR on first use

        from analyzer.service import worker

        code = worker.main(["worker", scratch])
    except BaseException:  # noqa: BLE001 - whatever happens, this process must not return into the server loop
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> int:
    start = time.perf_counter()
    for name in PRELOAD:
        importlib.import_module(name)
    _warm_up()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)  # SIGCHLD wakes the select below
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    _send({"ready": True, "pid": os.getpid(), "preload_s": round(time.perf_counter() - start, 4)})
    pending = b""
    live: set[int] = set()
    try:
        while True:
            readable, _, _ = select.select([0, wake_read], [], [])
            if wake_read in readable:
                try:
                    while os.read(wake_read, 512):
                        pass
                except BlockingIOError:
                    pass
            _reap(live)
            if 0 not in readable:
                continue
            data = os.read(0, 65536)
            if not data:
                _kill_all(live)
                return 0
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _become_worker(request["scratch"])
                live.add(pid)
                _send({"id": request["id"], "pid": pid})
    except BrokenPipeError:  # the server is gone: so is every reason for its workers to run
        _kill_all(live)
        return 0


if __name__ == "__main__":
    sys.exit(serve())
