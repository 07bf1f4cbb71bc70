"""The HTTP service (``analyzer serve``): a real server on a free loopback port, spoken to with httpx.

Covers the issue's acceptance: sample models' JSON equals the CLI's; bad uploads (not ONNX, too large,
truncated, empty, missing field, bad option) are 4xx with a clear message and the server keeps serving;
ten concurrent inspects; optimize's download; compare jobs queue one at a time with progress; external
data refused with 400 before anything opens it (initializer, absolute path to a canary, Constant
attribute, If subgraph, a non-canonical encoding); workers over their memory limit, killed by a
signal or over their time limit are rejected models and the server goes on; scratch space is cleaned.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from analyzer.cli import main  # noqa: E402
from analyzer.service.app import create_app  # noqa: E402
from analyzer.service.protocol import with_header_deadline  # noqa: E402
from analyzer.service.settings import MiB, Settings  # noqa: E402
from model_builders import make_model, weight  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
SAMPLE_NAMES = ("lenet5.onnx", "mnist_cnn.onnx", "inception_naive.onnx")
UPLOAD_LIMIT = 6 * MiB  # above inception_naive (4.4 MB)


# ---- a real server ----


def run_coroutine(coroutine):
    """asyncio.run in a thread of its own: Playwright's sync API (the browser tests, in the same pytest
    worker) keeps an event loop running in the main thread, where asyncio.run refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    app: object
    uvicorn_server: object
    thread: threading.Thread
    client: httpx.Client

    @property
    def service(self):
        return self.app.state.service

    def stop(self) -> None:
        self.client.close()
        self.uvicorn_server.should_exit = True
        self.thread.join(timeout=60)

    def inspect(self, name: str = "mnist_cnn.onnx", **params) -> httpx.Response:
        with open(SAMPLES / name, "rb") as f:
            return self.client.post("/v1/inspect", params=params, files={"model": (name, f)})

    def assert_serving(self) -> None:
        assert self.client.get("/v1/health").json()["status"] == "ok"
        response = self.inspect("mnist_cnn.onnx")
        assert response.status_code == 200, response.text
        assert response.json()["totals"]["macs"] > 0

    def wait_job(self, url: str, timeout: float = 120.0, until=("succeeded", "failed", "cancelled")) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(url).json()
            if job["status"] in until:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {url} did not reach {until}: {job}")

    def scratch_entries(self) -> list[str]:
        root = self.service.root
        return sorted(str(p.relative_to(root)) for d in ("requests", "jobs") for p in (root / d).iterdir())

    def assert_jobs_cleaned_up(self, timeout: float = 10.0) -> None:
        """No scratch left once the jobs have ended. The runner publishes a job's end first and removes its
        uploads right after, so a client may see the end a moment before they are gone: wait that moment."""
        deadline = time.monotonic() + timeout
        while (entries := self.scratch_entries()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert entries == []


class FrozenClock:
    """A wall clock that stands still until the test moves it: what expires then never depends on how
    fast a loaded machine gets through the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def start_server(settings: Settings, clock=time.time, access=None, queue=None) -> Server:
    import uvicorn

    port = free_port()
    app = create_app(settings, clock=clock, access=access, queue=queue)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           http=with_header_deadline(settings.header_timeout_s)))  # as `serve` runs it
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    return Server(url, app, server, thread, httpx.Client(base_url=url, timeout=120))


@pytest.fixture(scope="module")
def server():
    s = start_server(Settings(max_upload_bytes=UPLOAD_LIMIT, worker_memory_bytes=1024 * MiB,
                              max_compare_seconds=30, default_compare_seconds=0.5, max_workers=2))
    yield s
    root = s.service.root
    s.stop()
    assert not root.exists(), "the server's private work directory is removed on shutdown"


@pytest.fixture
def small_server(request):
    """A server with the settings the test passes by indirect parametrization (or marker-less defaults)."""
    servers = []

    def make(clock=time.time, **overrides) -> Server:
        s = start_server(Settings(**{"max_upload_bytes": UPLOAD_LIMIT, "default_compare_seconds": 0.5, **overrides}),
                         clock)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def cli_json(*argv: str, capsys) -> dict:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def worker_pids() -> list[int]:
    """Live worker processes: the children of this process's worker fork server."""
    from analyzer.service.spawner import spawner

    zygote = spawner().pid
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == zygote and b"analyzer.service.zygote" in cmdline and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def open_upload(server: Server, path: str, *, content_type: str, length: int, first: bytes) -> socket.socket:
    """A raw HTTP request announcing a ``length``-byte body of which only ``first`` is sent (the upload goes on)."""
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n")
    sock.sendall(head.encode() + first)
    return sock


def read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], dict]:
    """Status, headers and JSON body of the answer on ``sock``; socket.timeout if none comes within ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed without an answer: {data!r}"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(rest) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers, json.loads(rest)


# ---- inspect: same JSON as the CLI ----


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_inspect_json_equals_cli(server, name, capsys):
    response = server.inspect(name)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    served = response.json()
    expected = cli_json("inspect", str(SAMPLES / name), "--format", "json", capsys=capsys)
    assert served["model"]["path"] == name  # the upload's base name, never a server path
    assert "worker;dur=" in response.headers["server-timing"]
    expected["model"]["path"] = name
    assert served == expected
    assert str(server.service.root) not in response.text


def test_inspect_options_as_query_or_form_equal_cli(server, capsys):
    expected = cli_json("inspect", str(SAMPLES / "lenet5.onnx"), "--format", "json", "--batch", "4",
                        "--optimizer", "adam", "--input-shape", "input:4x1x32x32", capsys=capsys)
    expected["model"]["path"] = "lenet5.onnx"
    as_query = server.inspect("lenet5.onnx", batch=4, optimizer="adam", input_shape="input:4x1x32x32")
    with open(SAMPLES / "lenet5.onnx", "rb") as f:
        as_form = server.client.post("/v1/inspect", data={"batch": "4", "optimizer": "adam", "input_shape": "input:4x1x32x32"},
                                     files={"model": ("lenet5.onnx", f)})
    assert as_query.status_code == as_form.status_code == 200, as_query.text + as_form.text
    assert as_query.json() == as_form.json() == expected
    assert expected["training_memory"]["optimizer"] == "adam" and expected["training_memory"]["batch"] == 4


def test_inspect_input_value_selects_the_if_branch(server, tmp_path):
    from tests.test_input_values import THEN_MACS, if_on_input_value

    body = if_on_input_value().SerializeToString()
    responses = [server.client.post("/v1/inspect", params=params, files={"model": ("if_on_c.onnx", body)})
                 for params in ({"input_value": "c=1"}, {"input_value": "c"})]
    assert responses[0].status_code == 200, responses[0].text
    assert responses[0].json()["totals"]["macs"] == THEN_MACS
    assert responses[0].json()["model"]["input_values"] == {"c": 1}
    assert responses[1].status_code == 400 and "input_value 'c': expected NAME=NUMBER" in responses[1].text


@pytest.mark.parametrize("fmt, media", [("markdown", "text/markdown"), ("csv", "text/csv")])
def test_inspect_text_formats_equal_cli(server, fmt, media, capsys, tmp_path):
    local = tmp_path / "lenet5.onnx"
    local.write_bytes((SAMPLES / "lenet5.onnx").read_bytes())
    response = server.inspect("lenet5.onnx", format=fmt)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media)
    capsys.readouterr()
    assert main(["inspect", str(local), "--format", fmt]) == 0
    assert response.text == capsys.readouterr().out.replace(str(local), "lenet5.onnx")


def test_inspect_html_report(server):
    response = server.inspect("lenet5.onnx", format="html")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert str(server.service.root) not in response.text
    # opened directly rather than in the page's sandboxed iframe, the report is still its own origin
    assert response.headers["content-security-policy"] == "sandbox allow-scripts"


def test_raw_body_upload_and_client_file_names_are_reduced_to_base_names(server):
    data = (SAMPLES / "mnist_cnn.onnx").read_bytes()
    raw = server.client.post("/v1/inspect", content=data, params={"filename": "../../secret/dir/my model.onnx"},
                             headers={"content-type": "application/octet-stream"})
    assert raw.status_code == 200, raw.text
    assert raw.json()["model"]["path"] == "my_model.onnx"
    form = server.client.post("/v1/inspect", files={"model": ("..\\..\\windows\\x.onnx", data)})
    assert form.json()["model"]["path"] == "x.onnx"
    dots = server.client.post("/v1/inspect", files={"model": ("..", data)})
    assert dots.json()["model"]["path"] == "model.onnx"


# ---- bad uploads: 4xx, a clear message, the server keeps serving ----


def _truncated() -> bytes:
    data = (SAMPLES / "lenet5.onnx").read_bytes()
    return data[: len(data) // 2]


BAD_UPLOADS = {
    "not-onnx": ({"files": {"model": ("notes.onnx", b"this is not an ONNX model, just text\n" * 10)}},
                 400, "not_onnx", "notes.onnx is not an ONNX model"),
    "png-bytes": ({"files": {"model": ("img.onnx", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))}},
                  400, "not_onnx", "is not an ONNX model"),
    "truncated": ({"files": {"model": ("lenet5.onnx", _truncated())}}, 400, "not_onnx", "truncated protobuf"),
    "empty": ({"files": {"model": ("empty.onnx", b"")}}, 400, "empty_upload", "is empty (0 bytes)"),
    "too-large": ({"files": {"model": ("big.onnx", b"\0" * (UPLOAD_LIMIT + 1))}},
                  413, "upload_too_large", "upload limit of 6.00 MiB"),
    "missing-file-field": ({"files": {"batch": (None, "2")}}, 400, "missing_file", "missing file field 'model'"),
    "wrong-file-field": ({"files": {"file": ("m.onnx", b"x")}}, 400, "bad_form", "unexpected file field 'file'"),
    "not-multipart": ({"data": {"batch": "2"}}, 415, "unsupported_media_type", "multipart/form-data"),
    "bad-option-value": ({"params": {"batch": "eight"}, "sample": True}, 400, "bad_option", "'batch' must be an integer"),
    "bad-choice": ({"params": {"format": "pdf"}, "sample": True}, 400, "bad_option", "'format' must be one of json, html"),
    "bad-dim": ({"params": {"dim": "batch"}, "sample": True}, 400, "bad_option", "expected NAME=POSITIVE_INT"),
    "unknown-option": ({"params": {"bacth": "2"}, "sample": True}, 400, "unknown_option", "unknown option 'bacth'"),
    "unbound-dim": ({"params": {"dim": "seq=3"}, "sample": True}, 400, "bad_request", "dim seq: no such symbolic dim"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_is_4xx_with_clear_message_and_server_keeps_serving(server, case):
    request, status, code, message = BAD_UPLOADS[case]
    request = dict(request)
    if request.pop("sample", False):
        request["files"] = {"model": ("mnist_cnn.onnx", (SAMPLES / "mnist_cnn.onnx").read_bytes())}
    response = server.client.post("/v1/inspect", **request)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and error["code"] == code
    assert message in error["message"]
    assert "Traceback" not in error["message"] and str(server.service.root) not in error["message"]
    server.assert_serving()
    assert server.scratch_entries() == []


def test_too_large_is_refused_while_streaming_without_content_length(server):
    def body():
        chunk = b"\0" * MiB
        yield b"--b\r\nContent-Disposition: form-data; name=\"model\"; filename=\"big.onnx\"\r\n\r\n"
        for _ in range(8):
            yield chunk
        yield b"\r\n--b--\r\n"

    response = server.client.post("/v1/inspect", content=body(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413, response.text
    assert "'model' (big.onnx) is over this server's upload limit of 6.00 MiB" in response.json()["error"]["message"]
    server.assert_serving()


class FakeRequest:
    """What :func:`analyzer.service.uploads.receive` reads of a Starlette request; the body ends with a disconnect
    when ``disconnect``."""

    def __init__(self, content_type: str, chunks: list[bytes], *, disconnect: bool = False, query=None) -> None:
        self.headers = {"content-type": content_type}
        self.query_params = query or {}
        self._chunks = iter(chunks)
        self._disconnect = disconnect

    async def stream(self):
        from starlette.requests import ClientDisconnect

        for chunk in self._chunks:
            yield chunk
        if self._disconnect:
            raise ClientDisconnect()


def _form_part(data: bytes) -> bytes:
    return b'--b\r\nContent-Disposition: form-data; name="model"; filename="m.onnx"\r\n\r\n' + data


@pytest.mark.parametrize("raw", [False, True], ids=["multipart", "raw"])
def test_client_going_away_mid_upload_is_a_quiet_400(tmp_path, raw):

    from analyzer.service.errors import ServiceError
    from analyzer.service.uploads import receive

    request = (FakeRequest("application/octet-stream", [b"\0" * 1000], disconnect=True) if raw else
               FakeRequest("multipart/form-data; boundary=b", [_form_part(b"\0" * 1000)], disconnect=True))
    with pytest.raises(ServiceError) as caught:
        run_coroutine(receive(request, {"model": tmp_path / "in"}, Settings(), raw_field="model"))
    assert (caught.value.status, caught.value.code) == (400, "client_disconnected")


@pytest.mark.parametrize("raw", [False, True], ids=["multipart", "raw"])
def test_a_full_disk_while_receiving_is_507_not_a_bad_form(tmp_path, monkeypatch, raw):
    import errno

    from analyzer.service import uploads
    from analyzer.service.errors import ServiceError

    class FullDisk:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(uploads, "open", lambda *args, **kwargs: FullDisk(), raising=False)
    body = [b"\0" * 1000]
    request = (FakeRequest("application/octet-stream", body) if raw else
               FakeRequest("multipart/form-data; boundary=b", [_form_part(body[0]) + b"\r\n--b--\r\n"]))
    with pytest.raises(ServiceError) as caught:
        run_coroutine(uploads.receive(request, {"model": tmp_path / "in"}, Settings(), raw_field="model"))
    assert (caught.value.status, caught.value.code) == (507, "insufficient_storage")
    assert "No space left on device" in caught.value.message


def test_concurrent_uploads_are_capped_with_an_immediate_429(small_server, caplog):
    s = small_server(max_concurrent_uploads=1)
    data = (SAMPLES / "mnist_cnn.onnx").read_bytes()
    held = open_upload(s, "/v1/inspect?filename=m.onnx", content_type="application/octet-stream",
                       length=len(data), first=data[:1000])
    try:
        deadline = time.monotonic() + 10
        while not s.service.upload_slots.locked():  # the held upload is being received
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        refused = s.inspect("mnist_cnn.onnx")
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "busy" and "Retry-After" in refused.headers
        assert time.monotonic() - started < 5, "answered at once, not after waiting for a slot"
    finally:
        held.close()  # the client goes away mid-upload: its slot is freed, quietly
    deadline = time.monotonic() + 10
    while s.service.upload_slots.locked():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    s.assert_serving()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
    assert s.scratch_entries() == []


def test_stalled_uploads_are_dropped_and_free_their_slots(small_server):
    """Clients that send the headers and 100 bytes and then nothing hold the upload slots only until the
    idle timeout: each gets 408, and the next upload goes through."""
    s = small_server(max_concurrent_uploads=2, upload_idle_timeout_s=0.5)
    data = (SAMPLES / "mnist_cnn.onnx").read_bytes()
    stalled = [open_upload(s, "/v1/inspect?filename=m.onnx", content_type="application/octet-stream",
                           length=len(data), first=data[:100]) for _ in range(2)]
    try:
        deadline = time.monotonic() + 10
        while not s.service.upload_slots.locked():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert s.inspect("mnist_cnn.onnx").status_code == 429  # both slots held, for now
        for sock in stalled:
            status, _, body = read_response(sock, timeout=10)
            assert status == 408 and body["error"]["code"] == "upload_timeout", body
            assert "no progress for 0.5 s" in body["error"]["message"]
    finally:
        for sock in stalled:
            sock.close()
    assert s.inspect("mnist_cnn.onnx").status_code == 200
    assert s.scratch_entries() == []


def test_a_request_whose_headers_never_finish_is_closed(small_server):
    s = small_server(header_timeout_s=0.5)
    port = int(s.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(b"POST /v1/inspect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")  # and then nothing
        sock.settimeout(10)
        started = time.monotonic()
        assert sock.recv(1024) == b"", "the server closes the connection"
        assert time.monotonic() - started < 5
    finally:
        sock.close()
    s.assert_serving()  # complete requests are untouched, kept-alive ones included
    assert s.client.get("/v1/health").status_code == 200


def test_unknown_route_and_method_use_the_error_shape(server):
    missing = server.client.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = server.client.get("/v1/inspect")
    assert wrong.status_code == 405 and wrong.json()["error"]["status"] == 405
    assert server.client.get("/v1/models/../../etc/passwd").status_code == 404
    assert server.client.get("/v1/models/" + "a" * 32).json()["error"]["code"] == "not_found"
    assert server.client.get("/v1/jobs/nope").status_code == 404


def test_ten_concurrent_inspects_all_succeed(server):
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: server.inspect("lenet5.onnx"), range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    first = responses[0].json()
    assert all(r.json() == first for r in responses)
    assert server.scratch_entries() == []


# ---- optimize ----


def test_optimize_returns_report_and_download_that_loads(server):
    import onnxruntime as ort

    import analyzer

    with open(SAMPLES / "mnist_cnn.onnx", "rb") as f:
        response = server.client.post("/v1/optimize", data={"pass": ["fold-bn", "separable:m=1"], "samples": "1"},
                                      files={"model": ("mnist_cnn.onnx", f)})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["schema"] == "analyzer.optimize/1" and doc["written"] is True
    assert doc["input"] == "mnist_cnn.onnx" and doc["output"] == "mnist_cnn.optimized.onnx"
    assert [p["pass"] for p in doc["passes"]] == ["fold-bn", "separable"]
    assert doc["after"]["macs"] < doc["before"]["macs"]
    download = doc["download"]
    assert download["url"].startswith("/v1/models/") and len(download["url"].rsplit("/", 1)[1]) == 32
    model = server.client.get(download["url"])
    assert model.status_code == 200 and len(model.content) == download["bytes"]
    assert 'filename="mnist_cnn.optimized.onnx"' in model.headers["content-disposition"]
    session = ort.InferenceSession(model.content, providers=["CPUExecutionProvider"])
    x = np.zeros([d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape], np.float32)
    assert session.run(None, {session.get_inputs()[0].name: x})[0].shape[-1] == 10
    report = analyzer.inspect(model.content)
    for key in ("params", "macs", "peak_memory_bytes", "weight_bytes"):
        assert doc["after"][key] == getattr(report.totals, key)
    assert str(server.service.root) not in response.text
    assert server.scratch_entries() == []


def test_optimize_failed_verification_is_422_with_the_report(server):
    with open(SAMPLES / "mnist_cnn.onnx", "rb") as f:
        response = server.client.post("/v1/optimize", params={"pass": "separable:m=1,max_error=1e-9", "samples": 1},
                                      files={"model": ("mnist_cnn.onnx", f)})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "pass_failed" and "no optimized model was produced" in body["error"]["message"]
    assert body["report"]["written"] is False and body["report"]["failure"]
    assert server.scratch_entries() == []


def test_download_store_drops_the_oldest_past_its_cap_and_refuses_a_model_larger_than_it(tmp_path):
    from analyzer.service.downloads import Downloads
    from analyzer.service.errors import ServiceError

    store = Downloads(tmp_path / "models", 60, max_bytes=250)

    def model(name: str, size: int = 100) -> Path:
        path = tmp_path / name
        path.write_bytes(b"x" * size)
        return path

    first, _ = store.add(model("1"), "a.onnx")
    second, _ = store.add(model("2"), "b.onnx")
    third, _ = store.add(model("3"), "c.onnx")
    assert store.get(first) is None, "the oldest model is dropped to make room"
    assert store.get(second) and store.get(third)
    assert len(list(store.directory.iterdir())) == 2
    with pytest.raises(ServiceError) as caught:
        store.add(model("big", 251), "big.onnx")
    assert (caught.value.status, caught.value.code) == (507, "insufficient_storage")
    assert "larger than this server's store for downloads (250 B)" in caught.value.message
    assert store.get(second) and store.get(third), "nothing is dropped for a model that cannot fit"


@pytest.mark.parametrize("params, message", [
    ({}, "no pass given"),
    ({"pass": "nosuch"}, "unknown pass 'nosuch'"),
    ({"pass": "bottleneck:rank=x"}, "rank must be an integer"),
    ({"pass": "fold-bn", "passes": "cleanup"}, "not both"),
])
def test_optimize_bad_pass_is_400(server, params, message):
    with open(SAMPLES / "mnist_cnn.onnx", "rb") as f:
        response = server.client.post("/v1/optimize", params=params, files={"model": ("mnist_cnn.onnx", f)})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


# ---- compare jobs ----


def _submit_compare(server: Server, a="mnist_cnn.onnx", b="mnist_cnn.onnx", **data) -> httpx.Response:
    data.setdefault("provider", "cpu")  # the same on machines with a GPU
    with open(SAMPLES / a, "rb") as fa, open(SAMPLES / b, "rb") as fb:
        return server.client.post("/v1/compare", data={k: str(v) for k, v in data.items()},
                                  files={"model_a": (a, fa), "model_b": ("after.onnx", fb)})


def test_compare_jobs_queue_one_at_a_time_with_progress(server):
    first = _submit_compare(server, time=1.0, threads=1)
    assert first.status_code == 202, first.text
    assert first.json()["status"] in ("queued", "running")
    assert first.headers["location"] == f"/v1/jobs/{first.json()['id']}"
    server.wait_job(first.headers["location"], until=("running",))
    second = _submit_compare(server, time=0.3, threads=1, analyze="false")
    assert second.status_code == 202, second.text
    queued = server.client.get(second.headers["location"]).json()
    assert queued["status"] == "queued" and queued["position"] == 1 and queued["progress"]["phase"] == "queued"
    seen = []
    while True:
        job = server.client.get(first.headers["location"]).json()
        seen.append((job["status"], job["progress"]["fraction"], job["progress"]["rounds"]))
        if job["status"] not in ("queued", "running"):
            break
        other = server.client.get(second.headers["location"]).json()
        assert other["status"] == "queued", "one latency job at a time"
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    running = [s for s in seen if s[0] == "running"]
    assert running and any(0 < f < 1 for _, f, _ in running), seen
    fractions = [f for _, f, _ in seen]
    assert fractions == sorted(fractions), "progress only grows"
    assert job["progress"]["fraction"] == 1.0 and job["progress"]["rounds"] == job["result"]["rounds"] > 0
    result = job["result"]
    assert result["schema"] == "analyzer.latency.compare/1"
    assert result["a_model"] == "mnist_cnn.onnx" and result["b_model"] == "after.onnx"
    assert result["outputs_match"] is True and result["analyzer_delta"]["delta"]["macs"] == 0
    done = server.wait_job(second.headers["location"])
    assert done["status"] == "succeeded" and done["result"]["analyzer_delta"] is None
    assert done["started_at"] >= job["finished_at"]
    server.assert_jobs_cleaned_up()


@pytest.mark.parametrize("data, message", [
    ({"time": 31}, "at most 30 seconds"),
    ({"time": 1, "iters": 5}, "not both"),
    ({"fail_if_slower": "5"}, "ambiguous"),
    ({"provider": "tpu"}, "'provider' must be one of auto, cuda, cpu"),
    ({"rounds": 0}, "'rounds' must be at least 1"),
])
def test_compare_bad_options_are_400(server, data, message):
    response = _submit_compare(server, **data)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]
    assert server.scratch_entries() == []


def test_compare_needs_both_models(server):
    with open(SAMPLES / "mnist_cnn.onnx", "rb") as f:
        response = server.client.post("/v1/compare", files={"model_a": ("a.onnx", f)})
    assert response.status_code == 400 and "missing file field 'model_b'" in response.json()["error"]["message"]


def test_queue_limit_429_and_cancel(small_server):
    s = small_server(max_queued_jobs=1, max_compare_seconds=30)
    first = _submit_compare(s, time=20, threads=1)
    s.wait_job(first.headers["location"], until=("running",))
    second = _submit_compare(s, time=0.3)
    assert second.status_code == 202 and second.json()["position"] == 1
    third = _submit_compare(s, time=0.3)
    assert third.status_code == 429 and third.json()["error"]["code"] == "queue_full"
    assert "Retry-After" in third.headers
    cancelled = s.client.delete(second.headers["location"]).json()
    assert cancelled["status"] == "cancelled"
    stopped = s.client.delete(first.headers["location"]).json()
    assert stopped["status"] == "cancelled" and stopped["error"]["code"] == "cancelled"
    assert worker_pids() == []
    s.assert_jobs_cleaned_up()


def test_no_queue_server_takes_one_job_when_idle_and_refuses_before_receiving_the_upload(small_server):
    s = small_server(max_queued_jobs=0, max_compare_seconds=30)
    first = _submit_compare(s, time=20, threads=1)
    assert first.status_code == 202, first.text  # an idle server always takes one
    s.wait_job(first.headers["location"], until=("running",))
    second = _submit_compare(s, time=0.3)
    assert second.status_code == 429 and second.json()["error"]["code"] == "queue_full", second.text
    # a full queue answers before the body: 64 MiB announced, 1 KiB sent, and the answer comes anyway
    sock = open_upload(s, "/v1/compare", content_type="multipart/form-data; boundary=b", length=64 * MiB,
                       first=_form_part(b"\0" * 1024))
    try:
        status, headers, body = read_response(sock, timeout=10)
    finally:
        sock.close()
    assert status == 429 and body["error"]["code"] == "queue_full" and "retry-after" in headers
    assert s.scratch_entries() == ["jobs/" + s.service.jobs.running.scratch.name]
    assert s.client.delete(first.headers["location"]).json()["status"] == "cancelled"


def test_compare_bad_query_option_is_refused_before_receiving_the_upload(server):
    sock = open_upload(server, "/v1/compare?bacth=2", content_type="multipart/form-data; boundary=b",
                       length=64 * MiB, first=_form_part(b"\0" * 1024))
    try:
        status, _, body = read_response(sock, timeout=10)
    finally:
        sock.close()
    assert status == 400 and body["error"]["code"] == "unknown_option"
    server.assert_serving()


# ---- library errors in the service's words ----


@pytest.mark.parametrize("parameter, field", [
    ("dims", "dim"), ("input_shapes", "input_shape"), ("time_budget", "time"), ("passes", "pass"),
    ("rounds", "rounds"), ("min_effect", "min_effect"),
])
def test_a_bad_parameter_is_named_as_the_request_field(parameter, field):
    """The library names the Python parameter; the options' check (before the upload is parsed) and the
    worker (after) both name the field a client sets instead."""
    from analyzer.errors import OptionError
    from analyzer.service import options, worker
    from analyzer.service.errors import ServiceError

    def bad() -> None:
        raise OptionError(parameter, "must be positive, got 0")

    with pytest.raises(ServiceError) as caught:
        options._api(bad)
    assert (caught.value.status, caught.value.code) == (400, "bad_option")
    assert caught.value.message == f"{field} must be positive, got 0"
    error = worker._error({"limits": {"memory_bytes": 1 << 30}}, OptionError(parameter, "must be positive, got 0"))
    assert (error.status, error.code, error.message) == (400, "bad_request", f"{field} must be positive, got 0")


def test_a_plain_library_error_keeps_its_message():
    from analyzer.errors import AnalyzerError
    from analyzer.service import worker

    error = worker._error({"limits": {"memory_bytes": 1 << 30}},
                          AnalyzerError("--dim is not a field: kept as the library wrote it\nsecond line"))
    assert (error.status, error.code) == (400, "bad_request")
    assert error.message == "--dim is not a field: kept as the library wrote it"


def test_a_job_that_may_start_is_never_refused_while_the_runner_wakes(tmp_path):
    """Without a runner, the first job waits to be picked up: it counts as the running one, not as a queued one."""
    from analyzer.service.errors import ServiceError
    from analyzer.service.jobs import Job, JobQueue

    queue = JobQueue(lambda job: None, max_queued=1, retention_s=60)
    queue.submit(Job("compare", tmp_path / "1", {}))
    queue.submit(Job("compare", tmp_path / "2", {}))
    with pytest.raises(ServiceError) as caught:
        queue.submit(Job("compare", tmp_path / "3", {}))
    assert caught.value.status == 429 and "1 latency jobs are already waiting" in caught.value.message


def test_a_finished_job_is_never_seen_without_its_result_and_non_finite_numbers_are_null(tmp_path):
    from analyzer.service.jobs import Job, JobQueue
    from analyzer.service.sandbox import Outcome

    body = tmp_path / "body.json"
    body.write_text('{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1.5}')
    queue = JobQueue(lambda job: Outcome(True, body_path=body), max_queued=1, retention_s=60)
    seen = []

    class Watched(Job):
        def __setattr__(self, name, value):  # a poll at every change of the job (same thread: the lock is an RLock)
            super().__setattr__(name, value)
            if self.__dict__.get("watch"):
                seen.append(queue.describe(self))

    job = Watched("compare", tmp_path / "scratch", {})
    job.watch = True
    queue.start()
    try:
        queue.submit(job)
        deadline = time.monotonic() + 10
        while queue.describe(job)["status"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        queue.stop()
    for snapshot in seen:
        if snapshot["status"] in ("succeeded", "failed", "cancelled"):
            assert snapshot["finished_at"] and (snapshot["result"] or snapshot["error"]), snapshot
    assert queue.describe(job)["result"] == {"a": None, "b": None, "c": None, "d": 1.5}


def test_non_finite_numbers_in_a_compare_result_are_null(server):
    """log(x) of the generated inputs (some negative) is NaN: the output comparison has NaN and Infinity."""
    model = make_model([helper.make_node("Log", ["x"], ["y"], name="log")], [("x", [1, 8])],
                       [("y", [1, 8])]).SerializeToString()
    job = server.client.post("/v1/compare", data={"time": "0.2", "provider": "cpu", "analyze": "false"},
                             files={"model_a": ("log.onnx", model), "model_b": ("log2.onnx", model)})
    assert job.status_code == 202, job.text
    done = server.wait_job(job.headers["location"])
    response = server.client.get(job.headers["location"])
    assert response.status_code == 200, response.text
    assert "NaN" not in response.text and "Infinity" not in response.text
    assert done["status"] == "succeeded" or done["error"]["status"] < 500, done
    if done["status"] == "succeeded":
        outputs = done["result"]["outputs"]
        assert outputs["max_abs_error"] is None and outputs["outputs"][0]["cosine_similarity"] is None, outputs
    server.assert_serving()


# ---- external data: refused with 400 before anything opens it ----


def _external(tensor: TensorProto, location: str) -> TensorProto:
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(4 * int(np.prod(tensor.dims))))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _initializer_model(location: str) -> bytes:
    w = _external(weight("w", 4, 3, 3, 3), location)
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    return make_model([node], [("x", [1, 3, 8, 8])], [("y", [1, 4, 6, 6])], [w]).SerializeToString()


def _constant_model(location: str) -> bytes:
    value = _external(weight("c", 1, 3, 8, 8), location)
    nodes = [helper.make_node("Constant", [], ["c"], name="const", value=value),
             helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    return make_model(nodes, [("x", [1, 3, 8, 8])], [("y", [1, 3, 8, 8])]).SerializeToString()


def _subgraph_model(location: str) -> bytes:
    inner = _external(weight("k", 1, 3, 8, 8), location)

    def branch(name: str, op: str) -> onnx.GraphProto:
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [1, 3, 8, 8])
        return helper.make_graph([helper.make_node(op, ["x", "k"] if op == "Add" else ["x"], [f"{name}_out"])],
                                 name, [], [out], [inner] if op == "Add" else [])

    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("If", ["cond"], ["y"], name="if", then_branch=branch("then", "Add"),
                            else_branch=branch("else", "Relu"))
    return make_model([node], [("x", [1, 3, 8, 8])], [("y", [1, 3, 8, 8])], [cond]).SerializeToString()


def _noncanonical_model(location: str) -> bytes:
    """data_location = EXTERNAL written as an overlong varint (70 81 00): protobuf reads it as 1."""
    from analyzer.wire import encode_varint

    tensor = _external(weight("w", 4, 3, 3, 3), location).SerializeToString().replace(b"\x70\x01", b"\x70\x81\x00")
    assert TensorProto.FromString(tensor).data_location == TensorProto.EXTERNAL
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    model = make_model([node], [("x", [1, 3, 8, 8])], [("y", [1, 4, 6, 6])])
    graph = model.graph.SerializeToString() + b"\x2a" + encode_varint(len(tensor)) + tensor  # initializer = field 5
    model.ClearField("graph")
    data = model.SerializeToString() + b"\x3a" + encode_varint(len(graph)) + graph  # graph = field 7
    assert onnx.ModelProto.FromString(data).graph.initializer[0].data_location == TensorProto.EXTERNAL
    return data


@pytest.fixture
def canary(tmp_path):
    """A FIFO: whatever opens it to read blocks (no writer), so a read attempt shows as a hung worker, not a 400."""
    path = tmp_path / "canary.bin"
    os.mkfifo(path)
    yield path
    assert stat.S_ISFIFO(path.stat().st_mode)


MODELS = {"initializer": _initializer_model, "constant": _constant_model, "if-subgraph": _subgraph_model,
          "noncanonical": _noncanonical_model}


@pytest.mark.parametrize("where", list(MODELS))
@pytest.mark.parametrize("target", ["relative", "absolute-canary"])
def test_external_data_is_refused_on_every_route(server, where, target, canary):
    location = "../../etc/passwd" if target == "relative" else str(canary)
    data = MODELS[where](location)
    clean = (SAMPLES / "mnist_cnn.onnx").read_bytes()
    responses = {
        "inspect": server.client.post("/v1/inspect", files={"model": ("ext.onnx", data)}),
        "optimize": server.client.post("/v1/optimize", params={"pass": "cleanup"}, files={"model": ("ext.onnx", data)}),
    }
    job = server.client.post("/v1/compare", data={"time": "0.2"},
                             files={"model_a": ("clean.onnx", clean), "model_b": ("ext.onnx", data)})
    assert job.status_code == 202, job.text
    finished = server.wait_job(job.headers["location"])
    assert finished["status"] == "failed"
    errors = {route: r.json()["error"] for route, r in responses.items()}
    errors["compare"] = finished["error"]
    for route, error in errors.items():
        assert error["status"] == 400, (route, error)
        assert error["code"] == "external_data", (route, error)
        assert error["message"].startswith("external data is not accepted: tensor "), error
        assert f"points to location {location!r}" in error["message"], error
    server.assert_serving()


def test_external_data_check_runs_before_onnx_is_imported(tmp_path):
    from analyzer.service.safety import Refused, check_upload

    path = tmp_path / "m.onnx"
    path.write_bytes(_subgraph_model("/etc/shadow"))
    code = ("import sys; from pathlib import Path; from analyzer.service.safety import check_upload, Refused\n"
            f"try: check_upload(Path({str(path)!r}), 'm.onnx')\nexcept Refused as e: print(e.code)\n"
            "print('onnx' in sys.modules, 'onnxruntime' in sys.modules, 'onnx_ir' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["external_data", "False", "False", "False"]
    with pytest.raises(Refused, match="tensor 'k'"):
        check_upload(path, "m.onnx")


# ---- workers that die or exceed a limit ----


def _memory_bomb() -> bytes:
    """y = x + ConstantOfShape([1, 2^30]): onnxruntime needs a 4 GiB buffer to run it."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1, 1 << 30])
    nodes = [helper.make_node("Constant", [], ["shape_in"], value=shape),
             helper.make_node("ConstantOfShape", ["shape_in"], ["big"],
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
             helper.make_node("Add", ["x", "big"], ["y"])]
    return make_model(nodes, [("x", [1, 1])], [("y", [1, 1 << 30])]).SerializeToString()


def test_sandbox_reports_memory_limit(tmp_path):
    from analyzer.service.sandbox import run_task

    (tmp_path / "in" / "a").mkdir(parents=True)
    (tmp_path / "in" / "b").mkdir(parents=True)
    (tmp_path / "in" / "a" / "bomb.onnx").write_bytes(_memory_bomb())
    (tmp_path / "in" / "b" / "bomb.onnx").write_bytes(_memory_bomb())
    task = {"kind": "compare", "inputs": {"model_a": "a/bomb.onnx", "model_b": "b/bomb.onnx"},
            "labels": {"model_a": "bomb.onnx", "model_b": "bomb.onnx"},
            "options": {"seed": 0, "bench": {"provider": "cpu", "time_budget": 0.2, "threads": 1}, "analyze": False}}
    outcome = run_task(tmp_path, task, Settings(worker_memory_bytes=512 * MiB), timeout_s=120)
    assert not outcome.ok and outcome.status == 422 and outcome.code == "memory_limit", outcome
    assert "more memory than the worker's limit of 512 MiB" in outcome.message


def test_sandbox_knows_every_memory_marker_of_the_worker(tmp_path):
    from analyzer.service import sandbox, worker

    for marker in worker.MEMORY_MARKERS:
        (tmp_path / "worker.log").write_text(f"Traceback ...\nRuntimeError: {marker.upper()} in a kernel\n")
        assert sandbox._log_mentions_memory(tmp_path), marker


def test_worker_over_memory_limit_is_rejected_and_server_goes_on(small_server):
    s = small_server(worker_memory_bytes=512 * MiB)
    bomb = _memory_bomb()
    job = s.client.post("/v1/compare", data={"time": "0.2", "provider": "cpu"},
                        files={"model_a": ("bomb.onnx", bomb), "model_b": ("bomb2.onnx", bomb)})
    failed = s.wait_job(job.headers["location"])
    assert failed["status"] == "failed", failed
    assert failed["error"]["status"] == 422 and failed["error"]["code"] == "memory_limit"
    assert "limit of 512 MiB" in failed["error"]["message"]
    s.assert_serving()
    s.assert_jobs_cleaned_up()


@pytest.mark.parametrize("signum, name", [(signal.SIGKILL, "SIGKILL"), (signal.SIGSEGV, "SIGSEGV (segmentation fault)")])
def test_worker_killed_by_signal_is_rejected_and_server_goes_on(server, signum, name):
    job = _submit_compare(server, time=20, threads=1)
    assert job.status_code == 202
    deadline = time.monotonic() + 60
    while server.client.get(job.headers["location"]).json()["progress"]["phase"] != "measuring":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pids = worker_pids()
    assert len(pids) == 1, pids
    os.kill(pids[0], signum)
    failed = server.wait_job(job.headers["location"], timeout=30)
    assert failed["status"] == "failed", failed
    error = failed["error"]
    assert error["status"] == 422 and error["code"] == "worker_killed"
    assert f"killed by signal {name} while running the timed rounds; the model was rejected" in error["message"]
    server.assert_serving()
    server.assert_jobs_cleaned_up()


def test_wall_clock_limit_kills_the_worker(small_server):
    # a chain of 5,000 Relus: about a second of analysis, where a warm worker inspects mnist_cnn in milliseconds
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(5000)]
    slow = make_model(nodes, [("t0", [1, 8])], [("t5000", [1, 8])]).SerializeToString()
    s = small_server(inspect_timeout_s=0.1)
    response = s.client.post("/v1/inspect", files={"model": ("chain.onnx", slow)})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "time_limit" and "time limit of 0.1 s" in error["message"]
    assert worker_pids() == [] and s.scratch_entries() == []
    assert s.client.get("/v1/health").status_code == 200


# ---- the rest of the surface ----


def test_openapi_lists_the_routes(server):
    schema = server.client.get("/openapi.json").json()
    paths = schema["paths"]
    for path, method in [("/v1/inspect", "post"), ("/v1/optimize", "post"), ("/v1/compare", "post"),
                         ("/v1/jobs/{job_id}", "get"), ("/v1/jobs/{job_id}", "delete"), ("/v1/models/{token}", "get"),
                         ("/", "get"), ("/v1/limits", "get")]:
        assert method in paths[path], (path, method)
    body = paths["/v1/inspect"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["model"]["format"] == "binary" and "format" in body["properties"]
    compare = paths["/v1/compare"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert compare["required"] == ["model_a", "model_b"]
    assert server.client.get("/docs").status_code == 200


def test_upload_page_has_the_stable_ids(server):
    page = server.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ('id="model-file"', 'id="submit"', 'id="report"', 'id="status"', 'id="download-json"'):
        assert element in page.text
    # "Download JSON" reads the shown HTML report's embedded data instead of uploading the model again
    assert 'getElementById("analyzer-data")' in page.text and 'body("json")' not in page.text
    assert "http://" not in page.text and "https://" not in page.text  # self-contained, no CDN
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_limits_route_shows_no_paths(server):
    limits = server.client.get("/v1/limits").json()
    assert limits["max_upload_bytes"] == UPLOAD_LIMIT and "work_dir" not in limits


def test_results_expire(small_server):
    """Retention runs on the service's clock, frozen here: nothing can expire while a slow machine gets
    through the requests; moved past the retention, both results answer 404 and the janitor deletes the model."""
    clock = FrozenClock(1_700_000_000.0)  # 2023-11-14T22:13:20Z
    s = small_server(retention_s=0.5, clock=clock)
    with open(SAMPLES / "mnist_cnn.onnx", "rb") as f:
        doc = s.client.post("/v1/optimize", params={"pass": "cleanup"}, files={"model": ("m.onnx", f)}).json()
    assert doc["download"]["expires_at"] == "2023-11-14T22:13:20Z"  # 1_700_000_000.5, in whole seconds
    assert s.client.get(doc["download"]["url"]).status_code == 200
    job = _submit_compare(s, time=0.2, analyze="false")
    done = s.wait_job(job.headers["location"])
    assert done["status"] == "succeeded"
    assert (done["finished_at"], done["expires_at"]) == ("2023-11-14T22:13:20.000Z", "2023-11-14T22:13:20.500Z")

    clock.advance(0.4)  # 0.1 s of the retention left
    s.service.downloads.purge()  # what the janitor does, at this moment: nothing is due yet
    s.service.jobs.purge()
    assert s.client.get(doc["download"]["url"]).status_code == 200
    assert s.client.get(job.headers["location"]).status_code == 200

    clock.advance(0.2)  # 0.1 s past it: the next janitor round (every 0.125 s of real time) forgets both
    deadline = time.monotonic() + 30
    while list(s.service.downloads.directory.iterdir()) or s.client.get(job.headers["location"]).status_code != 404:
        assert time.monotonic() < deadline, "expired results are purged within a janitor round or so"
        time.sleep(0.05)
    assert s.client.get(doc["download"]["url"]).status_code == 404


def test_serve_binds_loopback_unless_allowed(capsys):
    from analyzer.cli import build_parser
    from analyzer.commands.serve import is_loopback, settings_from

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8000 and not args.allow_remote
    settings = settings_from(args)
    assert settings.max_upload_bytes == Settings().max_upload_bytes == 256 * MiB
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "not a loopback address" in capsys.readouterr().err
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_serve_command_serves(tmp_path):
    port = free_port()
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "analyzer.cli", "serve", "--port", str(port), "--work-dir", str(work),
                             "--max-upload-mb", "1", "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/v1/health")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
                    time.sleep(0.1)
            with open(SAMPLES / "lenet5.onnx", "rb") as f:
                assert client.post("/v1/inspect", files={"model": ("lenet5.onnx", f)}).json()["model"]["path"] == "lenet5.onnx"
            assert client.get("/v1/limits").json()["max_upload_bytes"] == MiB
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert sorted(p.name for p in work.iterdir()) == [], "the work directory's contents are removed on exit"


def test_work_dir_is_never_chmodded_or_emptied(small_server, tmp_path):
    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    (work / "models" / "keep.txt").write_text("user data")
    (work / "requests").mkdir()
    work.chmod(0o755)
    s = small_server(work_dir=work)
    assert s.service.root.parent == work and s.service.root.name.startswith("analyzer-serve-")
    assert stat.S_IMODE(s.service.root.stat().st_mode) == 0o700
    s.assert_serving()
    root = s.service.root
    s.stop()
    assert not root.exists()
    assert (work / "models" / "keep.txt").read_text() == "user data" and (work / "requests").is_dir()
    assert stat.S_IMODE(work.stat().st_mode) == 0o755
    assert sorted(p.name for p in work.iterdir()) == ["models", "requests"]


# ---- the upload page in a browser ----


def test_docs_page_works_with_no_internet(server, chromium_browser):
    """Every request other than to the server itself is refused: Swagger UI still draws the API."""
    page = chromium_browser.new_page()
    outside: list[str] = []

    def only_the_server(route):
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    try:
        page.route("**/*", only_the_server)
        page.goto(server.url + "/docs")
        page.locator(".swagger-ui .info .title").wait_for(timeout=30_000)
        assert "cnn-onnx-analyzer" in page.locator(".swagger-ui .info .title").inner_text()
        page.locator(".opblock-summary-path", has_text="/v1/inspect").first.wait_for(timeout=30_000)
        assert outside == []
    finally:
        page.close()


def test_upload_page_shows_the_html_report_of_an_uploaded_model(server, chromium_browser, tmp_path):
    """GET / in headless Chromium: pick a sample, submit, and the report's graph draws one element per
    node; clicking a Conv shows its MACs as the report counts them."""
    sample = SAMPLES / "inception_naive.onnx"
    report = json.loads(server.inspect(sample.name).text)
    conv = next(n for n in report["nodes"] if n["op_type"] == "Conv")
    page = chromium_browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(server.url + "/")
        page.set_input_files("#model-file", str(sample))
        page.click("#submit")
        frame = page.frame_locator("#report")
        frame.locator(".node").first.wait_for(timeout=60_000)
        assert frame.locator(".node").count() == len(report["nodes"])
        frame.locator(f'.node[data-node="{conv["name"]}"]').click()
        assert frame.locator('[data-field="macs"]').first.inner_text().split()[0] == f"{conv['macs']:,}"
        page.screenshot(path=str(tmp_path / "upload-page.png"))
        # "Download JSON" saves the report on show, read from the HTML report: nothing is uploaded again
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        with page.expect_download() as info:
            page.click("#download-json")
        download = info.value
        assert download.suggested_filename == "inception_naive.report.json"
        saved = json.loads(Path(download.path()).read_text())
        assert saved["totals"]["macs"] == report["totals"]["macs"]
        assert saved == report
        assert not [url for url in requests if "/v1/" in url], requests
    finally:
        page.close()
    server.assert_serving()


def test_optimize_auto_answers_the_auto_report_with_a_download(small_server):
    s = small_server()
    params = {"auto": "true", "layer_time": "0.05", "time": "0.3", "samples": "2", "max_error": "0.5"}
    with open(SAMPLES / "mnist_cnn.onnx", "rb") as f:
        response = s.client.post("/v1/optimize", params=params, files={"model": ("mnist_cnn.onnx", f)})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["schema"] == "analyzer.optimize.auto/1" and doc["input"] == "mnist_cnn.onnx"
    assert doc["calibration"]["kind"] == "random" and "random" in doc["calibration"]["note"].lower()
    assert doc["max_error"] == 0.5 and doc["written"] is True
    model = s.client.get(doc["download"]["url"])
    assert model.status_code == 200 and len(model.content) == doc["download"]["bytes"]
    # the layer timings stay in the server's table: a second search measures no layer again
    with open(SAMPLES / "mnist_cnn.onnx", "rb") as f:
        again = s.client.post("/v1/optimize", params=params, files={"model": ("mnist_cnn.onnx", f)}).json()
    assert again["cache"]["misses"] == 0 and again["cache"]["hits"] > 0, again["cache"]
    for bad, message in (({"auto": "true", "pass": "fold-bn"}, "not both"), ({"max_error": "0.1", "pass": "fold-bn"},
                                                                             "applies to auto=true only"),
                         ({"auto": "true", "max_error": "-1"}, "max_error")):
        with open(SAMPLES / "mnist_cnn.onnx", "rb") as f:
            refused = s.client.post("/v1/optimize", params=bad, files={"model": ("mnist_cnn.onnx", f)})
        assert refused.status_code == 400 and message in refused.json()["error"]["message"], refused.text
