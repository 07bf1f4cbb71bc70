"""API tokens: 401 on every route but health (the upload page comes with its 401), constant-time
checks, per-token limits, private jobs, tokens never logged; over HTTP, from the command line and in
a browser."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from analyzer.cli import main  # noqa: E402
from analyzer.service.access import Access, TokenFileError, read_token_file  # noqa: E402
from analyzer.service.settings import Settings  # noqa: E402
from test_service import SAMPLES, UPLOAD_LIMIT, cli_json, start_server  # noqa: E402

ALICE = "alice-7c1f0d9a4b2e8f6a1d3c5b7e9f0a2c4d"
BOB = "bob-0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b"


@pytest.fixture
def token_file(tmp_path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# who may use this server\nalice {ALICE}\n\nbob {BOB}  # CI\n")
    return path


@pytest.fixture
def guarded(token_file):
    """A server that needs tokens; alice and bob may each hold one request or job at a time."""
    s = start_server(Settings(max_upload_bytes=UPLOAD_LIMIT, default_compare_seconds=0.5, max_compare_seconds=30),
                     access=Access.from_file(token_file, max_jobs=1))
    yield s
    s.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def inspect(server, token: str | None, name: str = "lenet5.onnx") -> httpx.Response:
    headers = bearer(token) if token else {}
    with open(SAMPLES / name, "rb") as f:
        return server.client.post("/v1/inspect", files={"model": (name, f)}, headers=headers)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.request.method, response.request.url, response.text)
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["x-content-type-options"] == "nosniff"


def all_routes(routes):
    for route in routes:
        if hasattr(route, "path"):
            yield route
        else:  # an included router (FastAPI keeps them nested)
            yield from all_routes(route.original_router.routes)


def test_every_route_but_health_needs_a_token(guarded):
    """Walks the app's own routes, so that a route added later cannot be forgotten."""
    checked = 0
    for route in all_routes(guarded.app.routes):
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            response = guarded.client.request(method, path)
            if route.path == "/v1/health":
                assert response.status_code == 200, (method, path, response.status_code)
            elif route.path == "/" or method == "HEAD":  # the upload page: 401, with the page that asks for the token
                assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
            else:
                assert_unauthorized(response)
                checked += 1
    assert checked >= 10  # inspect, optimize, compare, job GET/DELETE, model download, limits, docs and its assets, schema
    page = guarded.client.get("/")
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert 'id="token-form"' in page.text and "content-security-policy" in page.headers
    assert guarded.client.get("/", headers=bearer(ALICE)).status_code == 200
    assert_unauthorized(guarded.client.get("/no/such/route"))  # 401 first: unknown routes reveal nothing
    assert_unauthorized(guarded.client.get("/v1/limits", headers={"Authorization": "Basic " + ALICE}))
    assert_unauthorized(guarded.client.get("/v1/limits", headers={"Authorization": "Bearer"}))
    assert_unauthorized(guarded.client.get("/v1/limits", headers=bearer(ALICE[:-1])))
    assert_unauthorized(guarded.client.get("/v1/limits", headers=bearer(ALICE + "0")))
    assert guarded.client.get("/v1/limits", headers=bearer(ALICE)).status_code == 200
    assert guarded.client.get("/v1/health").json()["status"] == "ok"


def test_the_right_token_gets_the_same_report_as_the_cli(guarded, capsys):
    assert_unauthorized(inspect(guarded, None))
    assert_unauthorized(inspect(guarded, "x" * 40))
    response = inspect(guarded, BOB)
    assert response.status_code == 200, response.text
    expected = cli_json("inspect", str(SAMPLES / "lenet5.onnx"), "--format", "json", capsys=capsys)
    expected["model"]["path"] = "lenet5.onnx"
    assert response.json() == expected


def test_per_token_limit_holds_for_a_queued_job_and_is_released_when_it_ends(guarded):
    with open(SAMPLES / "mnist_cnn.onnx", "rb") as fa, open(SAMPLES / "mnist_cnn.onnx", "rb") as fb:
        job = guarded.client.post("/v1/compare", data={"time": "20", "threads": "1", "provider": "cpu"},
                                  files={"model_a": ("a.onnx", fa), "model_b": ("b.onnx", fb)}, headers=bearer(ALICE))
    assert job.status_code == 202, job.text
    location = job.headers["location"]
    busy = inspect(guarded, ALICE)  # alice's one slot is her compare job's
    assert busy.status_code == 429 and busy.json()["error"]["code"] == "busy", busy.text
    assert "per-token limit" in busy.json()["error"]["message"] and busy.headers["retry-after"] == "5"
    assert inspect(guarded, BOB).status_code == 200  # bob's slot is his own
    # a job belongs to the token that queued it: bob sees none, and cannot cancel it
    assert guarded.client.get(location, headers=bearer(BOB)).status_code == 404
    assert guarded.client.delete(location, headers=bearer(BOB)).status_code == 404
    assert guarded.client.get(location, headers=bearer(ALICE)).json()["status"] in ("queued", "running")
    cancelled = guarded.client.delete(location, headers=bearer(ALICE)).json()
    assert cancelled["status"] == "cancelled", cancelled
    deadline = time.monotonic() + 10
    while (response := inspect(guarded, ALICE)).status_code == 429:  # released when the job ended
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)
    assert response.status_code == 200, response.text
    # and a finished synchronous request gives its slot back at once
    assert inspect(guarded, ALICE).status_code == 200


def test_tokens_are_never_logged(guarded, caplog):
    caplog.set_level(logging.DEBUG)
    assert inspect(guarded, ALICE).status_code == 200
    assert_unauthorized(inspect(guarded, BOB[:-2] + "zz"))
    assert_unauthorized(guarded.client.get("/v1/limits", headers=bearer("not-a-token-at-all-0000")))
    assert "401 for POST /v1/inspect" in caplog.text  # refusals are logged, by route
    for secret in (ALICE, BOB[:-2] + "zz", "not-a-token-at-all-0000"):
        assert secret not in caplog.text


def test_openapi_declares_the_bearer_scheme(guarded):
    assert_unauthorized(guarded.client.get("/openapi.json"))
    schema = guarded.client.get("/openapi.json", headers=bearer(BOB)).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/inspect"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/v1/health"]["get"]


def test_token_file_errors_are_one_clear_line(tmp_path):
    cases = {"": "holds no token", "# only a comment\n": "holds no token", "short\n": "at least 16 characters",
             f"a {ALICE}\na {BOB}\n": "names two tokens alike: a", f"{ALICE}\n{ALICE}\n": "same token twice",
             f"a b {ALICE}\n": "expected TOKEN or NAME TOKEN"}
    for text, message in cases.items():
        path = tmp_path / "tokens"
        path.write_text(text)
        with pytest.raises(TokenFileError, match=message):
            read_token_file(path)
    with pytest.raises(TokenFileError, match="cannot read the token file"):
        read_token_file(tmp_path / "missing")
    assert [name for name, _ in read_token_file(_write(tmp_path / "t", f"{ALICE}\n\n{BOB}\n"))] == ["token-1", "token-3"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_constant_time_check_compares_every_digest(token_file, monkeypatch):
    """The check does not stop at the first match: as many comparisons for the first token as for a wrong one."""
    import hmac

    access = Access.from_file(token_file)
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert access.identify(f"Bearer {ALICE}") == "alice"
    first = len(calls)
    assert access.identify("Bearer " + "w" * 30) is None
    assert first == len(calls) - first == 2


@pytest.mark.parametrize("argv, message", [
    (["--host", "0.0.0.0"], "pass --allow-remote and --token-file"),
    (["--host", "0.0.0.0", "--allow-remote"], "without API tokens"),
    (["--host", "10.1.2.3", "--allow-remote", "--token-file", "{missing}"], "cannot read the token file"),
    (["--token-file", "{short}"], "at least 16 characters"),
])
def test_serve_refuses_to_listen_beyond_loopback_without_tokens(tmp_path, capsys, argv, message):
    short = _write(tmp_path / "short", "tooshort\n")
    argv = [a.format(missing=tmp_path / "nope", short=short) for a in argv]
    assert main(["serve", *argv, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert ALICE not in err


def test_upload_page_asks_for_a_token_and_then_shows_the_report(guarded, chromium_browser):
    sample = SAMPLES / "lenet5.onnx"
    expected = inspect(guarded, ALICE).json()
    page = chromium_browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.goto(guarded.url + "/")
        assert page.locator("#token-form").is_hidden()
        page.set_input_files("#model-file", str(sample))
        page.click("#submit")
        page.locator("#token-form").wait_for(state="visible", timeout=30_000)
        assert "401" in page.locator("#status").inner_text()
        page.fill("#token", "a-wrong-token-of-enough-length")
        page.click("#use-token")
        page.locator("#token-form").wait_for(state="visible", timeout=30_000)  # refused again: asked again
        assert "not valid" in page.locator("#status").inner_text()
        page.fill("#token", ALICE)
        page.click("#use-token")
        frame = page.frame_locator("#report")
        frame.locator(".node").first.wait_for(timeout=60_000)
        assert frame.locator(".node").count() == len(expected["nodes"])
        assert page.locator("#token-form").is_hidden()
        assert "analyzed in" in page.locator("#status").inner_text()
        assert page.evaluate("sessionStorage.getItem('analyzer-api-token')") == ALICE
    finally:
        page.close()
