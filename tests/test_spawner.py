"""The service's workers come from a pre-imported fork server: one process per task, limits before the
upload is read, and nothing lost when the fork server itself dies."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from analyzer.service.sandbox import run_task  # noqa: E402
from analyzer.service.settings import MiB, Settings  # noqa: E402
from analyzer.service.spawner import Spawner, spawner  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _scratch(tmp_path: Path, name: str = "lenet5.onnx") -> Path:
    scratch = tmp_path / "job"
    (scratch / "in").mkdir(parents=True)
    shutil.copy(SAMPLES / name, scratch / "in" / name)
    return scratch


def _inspect_task(name: str = "lenet5.onnx") -> dict:
    return {"kind": "inspect", "inputs": {"model": name}, "labels": {"model": name}, "options": {"format": "json"}}


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_worker_is_a_child_of_the_fork_server_with_its_own_session_and_limits(tmp_path):
    """The task reads back what the worker saw: its parent, its session and its memory limit."""
    scratch = _scratch(tmp_path)
    outcome = run_task(scratch, _inspect_task(), Settings(worker_memory_bytes=700 * MiB), timeout_s=60)
    assert outcome.ok, outcome
    report = json.loads(outcome.body_path.read_text())
    assert report["totals"]["params"] == 61_706  # LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850
    assert report["model"]["path"] == "lenet5.onnx"
    zygote = spawner().pid
    assert zygote is not None and _parent_of(zygote) == os.getpid()
    assert outcome.cpu_s < 5  # the child's own CPU time, not the fork server's imports


def test_a_failing_worker_writes_its_result_and_its_log_in_its_own_scratch_directory(tmp_path):
    """A task kind the worker does not know fails inside the worker, after the upload check."""
    scratch = _scratch(tmp_path)
    task = {**_inspect_task(), "kind": "no-such-task"}
    outcome = run_task(scratch, task, Settings(), timeout_s=60)
    assert not outcome.ok and outcome.code == "analysis_failed", outcome  # a KeyError inside the worker
    result = json.loads((scratch / "result.json").read_text())
    assert result["ok"] is False
    assert (scratch / "worker.log").read_text().count("KeyError") >= 1  # its stderr went to its own log


def test_killing_the_fork_server_loses_no_job_silently(tmp_path):
    """SIGKILL the fork server while its worker runs: the task ends as ``worker_lost`` (never hangs), the
    worker's group is killed, and the next task starts a new fork server."""
    pool = Spawner()
    try:
        scratch = tmp_path / "sleep"
        (scratch / "in").mkdir(parents=True)
        (scratch / "tmp").mkdir()
        # the worker blocks reading task.json, a FIFO nobody writes: a worker that runs until killed
        os.mkfifo(scratch / "task.json")
        child = pool.spawn(scratch)
        first_server = pool.pid
        assert _parent_of(child.pid) == first_server
        os.kill(first_server, signal.SIGKILL)
        assert child.ended.wait(30), "a worker of a dead fork server must be reported"
        assert child.status is None
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}").exists() and _state(child.pid) != "Z":
            assert time.monotonic() < deadline, "the lost worker was not killed"
            time.sleep(0.05)
        again = _scratch(tmp_path / "again")
        (again / "task.json").write_text(json.dumps({**_inspect_task(), "limits": {
            "memory_bytes": 1 << 30, "cpu_seconds": 60, "file_bytes": 1 << 30}}))
        (again / "tmp").mkdir()
        second = pool.spawn(again)
        assert pool.pid != first_server
        assert second.ended.wait(60) and second.status == 0
        assert json.loads((again / "result.json").read_text())["ok"] is True
    finally:
        pool.stop()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_concurrent_tasks_each_get_their_own_worker(tmp_path):
    outcomes = {}

    def run(i: int) -> None:
        scratch = _scratch(tmp_path / str(i))
        outcomes[i] = run_task(scratch, _inspect_task(), Settings(), timeout_s=60)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sorted(outcomes) == list(range(6))
    bodies = {outcome.body_path.read_text() for outcome in outcomes.values() if outcome.ok}
    assert all(o.ok for o in outcomes.values()) and len(bodies) == 1  # six workers, one identical report
