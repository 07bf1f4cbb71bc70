"""Latency jobs through a real Redis queue and two worker processes standing for two hosts: jobs spread
over both, a job no worker serves says so, a killed worker's job is run again elsewhere, an API that
restarts keeps its jobs, and the results are the CLI's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("rq")
httpx = pytest.importorskip("httpx")
REDIS_SERVER = shutil.which("redis-server")
if REDIS_SERVER is None:
    pytest.skip("redis-server is not installed (apt-get install redis-server): the queue tests need it",
                allow_module_level=True)

from analyzer.service.remote import QueueConfig, connect  # noqa: E402
from analyzer.service.settings import Settings  # noqa: E402
from test_service import REPO, SAMPLES, UPLOAD_LIMIT, free_port, start_server  # noqa: E402


@pytest.fixture
def redis_url(tmp_path):
    port = free_port()
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 20
    while True:
        try:
            connect(url)
            break
        except ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield url
    proc.kill()
    proc.wait()


class Workers:
    """``analyzer worker`` processes, each in its own process group (a "host")."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url, self.tmp_path, self.procs = url, tmp_path, {}

    def start(self, name: str, *extra: str) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "analyzer.cli", "worker", "--queue", self.url, "--name", name,
                                 *extra], stdout=log, stderr=log, cwd=REPO, start_new_session=True)
        self.procs[name] = proc
        redis = connect(self.url)
        deadline = time.monotonic() + 60
        while not redis.exists(f"analyzer:worker:{name}"):
            assert proc.poll() is None, (self.tmp_path / f"{name}.log").read_text()
            assert time.monotonic() < deadline, f"worker {name} did not announce itself"
            time.sleep(0.05)
        return proc

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def workers(redis_url, tmp_path):
    w = Workers(redis_url, tmp_path)
    yield w
    w.stop()


def api(url: str):
    return start_server(Settings(max_upload_bytes=UPLOAD_LIMIT, default_compare_seconds=0.5, max_compare_seconds=30,
                                 max_queued_jobs=32), queue=QueueConfig(url))


def post_compare(server, **data) -> httpx.Response:
    data.setdefault("provider", "cpu")
    with open(SAMPLES / "mnist_cnn.onnx", "rb") as fa, open(SAMPLES / "mnist_cnn.onnx", "rb") as fb:
        return server.client.post("/v1/compare", data={k: str(v) for k, v in data.items()},
                                  files={"model_a": ("mnist_cnn.onnx", fa), "model_b": ("after.onnx", fb)})


def submit(server, **data) -> str:
    response = post_compare(server, **data)
    assert response.status_code == 202, response.text
    return response.headers["location"]


def wait(server, location: str, until=lambda doc: doc["status"] in ("succeeded", "failed", "cancelled"),
         timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        doc = server.client.get(location).json()
        if until(doc):
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.1)


def test_jobs_spread_over_two_workers_and_report_where_they_ran(redis_url, workers, capsys):
    workers.start("host-a", "--provider", "cpu")
    workers.start("host-b", "--provider", "cpu")
    server = api(redis_url)
    try:
        locations = [submit(server, time=1, threads=1) for _ in range(4)]
        docs = [wait(server, loc) for loc in locations]
    finally:
        server.stop()
    assert [d["status"] for d in docs] == ["succeeded"] * 4, docs
    assert {d["worker"]["name"] for d in docs} == {"host-a", "host-b"}
    for doc in docs:
        assert doc["worker"]["provider"] == "cpu" and doc["worker"]["host"] and doc["worker"]["machine"]["cpu"]
        assert doc["queue"] == "provider 'cpu'" and doc["attempt"] == 1
    # the result is the CLI's: same document, timing figures aside
    from analyzer.cli import main

    capsys.readouterr()
    assert main(["compare", str(SAMPLES / "mnist_cnn.onnx"), str(SAMPLES / "mnist_cnn.onnx"), "--provider", "cpu",
                 "--time", "1", "--threads", "1", "--format", "json"]) in (0, 1)
    cli = json.loads(capsys.readouterr().out)
    served = docs[0]["result"]
    assert served["schema"] == cli["schema"] and sorted(served) == sorted(cli)
    for key in ("a", "b"):  # the analyzer's deltas and the outputs are deterministic; timings are not
        assert served["analyzer_delta"][key] == cli["analyzer_delta"][key]
        assert served[key]["input_shapes"] == cli[key]["input_shapes"] and served[key]["provider"] == cli[key]["provider"]
    assert served["outputs"] == cli["outputs"] and served["outputs_match"] is cli["outputs_match"] is True


def test_a_job_no_worker_serves_stays_queued_and_says_so(redis_url, workers):
    workers.start("cpu-host", "--provider", "cpu")
    server = api(redis_url)
    try:
        location = submit(server, time=0.3, provider="cuda")
        time.sleep(1.5)
        doc = server.client.get(location).json()
        assert doc["status"] == "queued" and doc["position"] == 1, doc
        assert doc["queue"] == "provider 'cuda'"
        assert doc["waiting_for"].startswith("no worker takes provider 'cuda' jobs now (workers: cpu-host (cpu))")
        tagged = submit(server, time=0.3, tag="xeon")
        doc = server.client.get(tagged).json()
        assert "no worker takes tag 'xeon' jobs now" in doc["waiting_for"]
        workers.start("xeon-host", "--provider", "cpu", "--tag", "xeon")  # a worker that serves it arrives
        assert wait(server, tagged)["worker"]["name"] == "xeon-host"
        assert server.client.get(location).json()["status"] == "queued"
        assert server.client.delete(location).json()["status"] == "cancelled"
    finally:
        server.stop()


def test_a_killed_worker_loses_no_job(redis_url, workers):
    workers.start("doomed", "--provider", "cpu")
    server = api(redis_url)
    try:
        location = submit(server, time=5, threads=1)
        wait(server, location, until=lambda d: d["status"] == "running" and d["progress"]["phase"] == "measuring")
        workers.kill("doomed")  # SIGKILL to its whole process group: worker, fork server, task process
        workers.start("survivor", "--provider", "cpu")
        doc = wait(server, location)
        assert doc["status"] == "succeeded" and doc["attempt"] == 2 and doc["worker"]["name"] == "survivor", doc
        assert "attempt 1: worker doomed was lost" in doc["history"][0]
        assert doc["result"]["rounds"] > 0
    finally:
        server.stop()


def test_a_worker_lost_twice_fails_the_job_with_the_reason(redis_url, workers):
    server = api(redis_url)
    try:
        location = submit(server, time=20, threads=1)
        for attempt, name in ((1, "first"), (2, "second")):
            workers.start(name, "--provider", "cpu")
            wait(server, location, until=lambda d: d["status"] == "running" and d["attempt"] == attempt
                 and d["progress"]["phase"] == "measuring")
            workers.kill(name)
        doc = wait(server, location, timeout=30)
        assert doc["status"] == "failed" and doc["error"]["code"] == "worker_lost", doc
        assert "last: second" in doc["error"]["message"]
    finally:
        server.stop()


def test_queued_jobs_survive_an_api_restart(redis_url, workers):
    first = api(redis_url)
    try:
        location = submit(first, time=0.3)
        assert first.client.get(location).json()["status"] == "queued"
    finally:
        first.stop()
    second = api(redis_url)
    try:
        assert second.client.get(location).json()["status"] == "queued"
        workers.start("late", "--provider", "cpu")
        assert wait(second, location)["status"] == "succeeded"
        redis = connect(redis_url)
        assert wait(second, location)["status"] == "succeeded"
        deadline = time.monotonic() + 10
        while list(redis.scan_iter(match="analyzer:upload:*")):  # the uploads leave the store with the job
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        second.stop()


def test_tag_needs_a_queue_and_a_plain_name(redis_url):
    for server, tag, message in ((start_server(Settings(max_upload_bytes=UPLOAD_LIMIT)), "gpu", "without --queue"),
                                 (api(redis_url), "a b", "option 'tag' must be")):
        try:
            response = post_compare(server, tag=tag)
            assert response.status_code == 400 and message in response.json()["error"]["message"], response.text
        finally:
            server.stop()


def test_serve_and_worker_refuse_an_unreachable_queue(capsys):
    from analyzer.cli import main

    port = free_port()  # nothing listens there
    assert main(["worker", "--queue", f"redis://127.0.0.1:{port}/0"]) == 2
    assert "cannot reach the queue" in capsys.readouterr().err
    assert main(["serve", "--port", "0", "--queue", f"redis://:secret@127.0.0.1:{port}/0"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the queue" in err and "secret" not in err and len(err.strip().splitlines()) == 1


def _optimize(server, *passes: str) -> httpx.Response:
    with open(SAMPLES / "mnist_cnn.onnx", "rb") as f:
        return server.client.post("/v1/optimize", data={"pass": list(passes), "samples": "1"},
                                  files={"model": ("mnist_cnn.onnx", f)})


def test_optimize_runs_on_a_worker_host_and_answers_as_the_embedded_server(redis_url, workers, tmp_path):
    from test_service import start_server as start_embedded

    embedded = start_embedded(Settings(max_upload_bytes=UPLOAD_LIMIT))
    try:
        local = _optimize(embedded, "fold-bn", "separable:m=1")
        local_model = embedded.client.get(local.json()["download"]["url"]).content
    finally:
        embedded.stop()
    workers.start("optimizer", "--provider", "cpu")
    server = api(redis_url)
    try:
        remote = _optimize(server, "fold-bn", "separable:m=1")
        assert remote.status_code == 200, remote.text
        doc, expected = remote.json(), local.json()
        for volatile in ("download",):
            doc.pop(volatile), expected.pop(volatile)
        for section in (doc, expected):  # wall-clock seconds differ from run to run
            for item in section["passes"]:
                item.pop("seconds")
        assert doc == expected
        model = server.client.get(remote.json()["download"]["url"]).content
        assert model == local_model  # the same rewrite, byte for byte
        failed = _optimize(server, "separable:m=1,max_error=1e-9")
        assert failed.status_code == 422 and failed.json()["error"]["code"] == "pass_failed", failed.text
        assert failed.json()["report"]["schema"] == "analyzer.optimize/1"
        redis = connect(redis_url)
        deadline = time.monotonic() + 10
        while list(redis.scan_iter(match="analyzer:upload:*")):  # uploads and outputs leave the store
            assert time.monotonic() < deadline, list(redis.scan_iter(match="analyzer:upload:*"))
            time.sleep(0.1)
    finally:
        server.stop()


def test_optimize_with_no_worker_is_a_clear_503(redis_url):
    server = start_server(Settings(max_upload_bytes=UPLOAD_LIMIT, optimize_timeout_s=1.5), queue=QueueConfig(redis_url))
    try:
        response = _optimize(server, "fold-bn")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["message"].startswith("no worker took the optimize job within 1.5 s")
        redis = connect(redis_url)
        assert redis.scard("analyzer:active") == 0  # the job was withdrawn, not left for a later worker
    finally:
        server.stop()


def test_optimize_auto_runs_on_the_worker_host_with_its_own_latency_table(redis_url, workers, tmp_path):
    table = tmp_path / "host-table"
    workers.start("timer", "--provider", "cpu", "--cache-dir", str(table))
    server = api(redis_url)
    params = {"auto": "true", "layer_time": "0.05", "time": "0.3", "samples": "2", "max_error": "0.5", "provider": "cpu"}
    try:
        docs = []
        for _ in range(2):
            with open(SAMPLES / "mnist_cnn.onnx", "rb") as f:
                response = server.client.post("/v1/optimize", params=params, files={"model": ("mnist_cnn.onnx", f)})
            assert response.status_code == 200, response.text
            docs.append(response.json())
    finally:
        server.stop()
    assert docs[0]["schema"] == "analyzer.optimize.auto/1" and docs[0]["provider"] == "CPUExecutionProvider"
    assert (table / "layer-latency.json").is_file()  # the host's table, not the API's
    assert docs[1]["cache"]["misses"] == 0 and docs[1]["cache"]["hits"] > 0
