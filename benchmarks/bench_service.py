"""Latency and throughput of `analyzer serve` (a worker forked per request) against the CLI on the same files.

    python benchmarks/bench_service.py [--repeat 20] [--clients 8] [--requests 200] [--out FILE.md]

Measures, on a server started in this process on a free loopback port with the default settings:
POST /v1/inspect latency (sequential, after one warm-up) for samples/lenet5.onnx and a ResNet-50
export (exporters.export_cached, legacy exporter, .cache/bench/), the Server-Timing split (upload,
worker), and beside them `analyzer inspect FILE --format json` as a whole process and
`analyzer.inspect(FILE)` in process; then throughput: ``--requests`` lenet5 uploads from
``--clients`` concurrent clients (one thread and one HTTP connection each), every answer checked to be
200 and equal to the CLI's JSON, none allowed to take longer than the per-request timeout (a hung
request fails the run).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CACHE = REPO / ".cache" / "bench"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return re.search(r"Model name:\s*(.+)", out).group(1).strip()
    except Exception:  # noqa: BLE001
        return platform.processor() or platform.machine()


def start_server(queue_url: str | None = None, settings=None):
    """The service in this process on a free loopback port (default settings unless given; ``queue_url``: with
    a queue)."""
    import uvicorn

    from analyzer.service.app import create_app
    from analyzer.service.remote import QueueConfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(settings, queue=QueueConfig(queue_url) if queue_url else None)
    from analyzer.service.protocol import with_header_deadline

    settings = app.state.service.settings
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           http=with_header_deadline(settings.header_timeout_s)))  # as `serve` runs
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return app, server, thread, f"http://127.0.0.1:{port}"


def server_timing(header: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) / 1e3 for m in re.finditer(r"(\w+);dur=([\d.]+)", header)}


def post_inspect(client, path: Path):
    with open(path, "rb") as f:
        start = time.perf_counter()
        response = client.post("/v1/inspect", files={"model": (path.name, f)})
        wall = time.perf_counter() - start
    response.raise_for_status()
    return wall, server_timing(response.headers.get("server-timing", ""))


def sequential(client, path: Path, repeat: int) -> dict[str, float]:
    post_inspect(client, path)  # warm-up: server-side imports, file pages
    walls, uploads, workers = [], [], []
    for _ in range(repeat):
        wall, timing = post_inspect(client, path)
        walls.append(wall)
        uploads.append(timing["upload"])
        workers.append(timing["worker"])
    return {"median": statistics.median(walls), "min": min(walls), "upload": statistics.median(uploads),
            "worker": statistics.median(workers)}


def cli_process(path: Path, repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "analyzer.cli", "inspect", str(path), "--format", "json"],
                       check=True, stdout=subprocess.DEVNULL, cwd=REPO)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def in_process(path: Path, repeat: int) -> float:
    import analyzer

    analyzer.inspect(path)
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        analyzer.inspect(path)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def cli_json(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "analyzer.cli", "inspect", str(path), "--format", "json"],
                         check=True, capture_output=True, cwd=REPO).stdout
    doc = json.loads(out)
    doc["model"]["path"] = path.name  # the service names the upload by its base name
    return doc


def throughput(url: str, path: Path, clients: int, requests: int, timeout_s: float = 30.0) -> dict:
    """``requests`` uploads spread over ``clients`` threads, each with its own connection."""
    import httpx

    expected = cli_json(path)
    data = path.read_bytes()
    counts = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    latencies: list[float] = []
    failures: list[str] = []

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=url, timeout=timeout_s) as client:
            for _ in range(n):
                start = time.perf_counter()
                try:
                    response = client.post("/v1/inspect", files={"model": (path.name, data)})
                except httpx.HTTPError as e:  # a timeout is a hung request
                    failures.append(f"{type(e).__name__}: {e}")
                    continue
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                elif response.json() != expected:
                    failures.append("result differs from the CLI's")

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, counts))
    wall = time.perf_counter() - start
    latencies.sort()
    return {"wall": wall, "rate": requests / wall, "ok": requests - len(failures), "failures": failures,
            "median": statistics.median(latencies), "p95": latencies[int(0.95 * (len(latencies) - 1))]}


def main() -> int:
    import httpx

    import exporters

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--out", help="write the Markdown table here too")
    args = parser.parse_args()

    models = {"lenet5": REPO / "samples" / "lenet5.onnx", "resnet50": exporters.export_cached("resnet50", CACHE)}
    app, server, thread, url = start_server()
    workers = app.state.service.settings.max_workers
    rows = []
    try:
        with httpx.Client(base_url=url, timeout=600) as client:
            for name, path in models.items():
                repeat = args.repeat if name == "lenet5" else max(3, args.repeat // 2)
                served = sequential(client, path, repeat)
                rows.append((name, path.stat().st_size, served, cli_process(path, 3), in_process(path, 3), repeat))
        burst = throughput(url, models["lenet5"], args.clients, args.requests)
    finally:
        server.should_exit = True
        thread.join()

    lines = [
        f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs (shared); Python {platform.python_version()}; "
        f"date {datetime.date.today().isoformat()}",
        f"Command: `.venv/bin/python benchmarks/bench_service.py --repeat {args.repeat} --clients {args.clients} "
        f"--requests {args.requests}`",
        f"Server: default settings (a worker forked from the pre-imported fork server per request, "
        f"max_workers={workers}), in-process uvicorn, "
        "httpx client on loopback; multipart upload.",
        "",
        "| model | file | service POST /v1/inspect (median / min) | of which upload | of which worker | "
        "CLI `inspect --format json` (process) | `analyzer.inspect` in process | n |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, size, s, cli, api, n in rows:
        lines.append(f"| {name} | {size / 1e6:.1f} MB | {s['median']:.3f} s / {s['min']:.3f} s | {s['upload']:.3f} s | "
                     f"{s['worker']:.3f} s | {cli:.3f} s | {api:.3f} s | {n} |")
    lines += ["", f"{args.requests} POST /v1/inspect of lenet5 from {args.clients} concurrent clients: "
                  f"{burst['wall']:.2f} s wall, **{burst['rate']:.1f} requests/s**, latency median {burst['median'] * 1e3:.0f} ms, "
                  f"p95 {burst['p95'] * 1e3:.0f} ms; {burst['ok']} of {args.requests} answered 200 with the CLI's JSON; "
                  f"{workers} workers at a time."]
    lines += [f"- failure: {f}" for f in burst["failures"][:10]]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if burst["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
