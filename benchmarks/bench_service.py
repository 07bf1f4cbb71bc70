"""Latency of `analyzer serve` (a fresh worker process per request) against the CLI on the same files.

    python benchmarks/bench_service.py [--repeat 10] [--out FILE.md]

Measures, on a server started in this process on a free loopback port with the default settings:
POST /v1/inspect latency (sequential, after one warm-up) for samples/lenet5.onnx and a ResNet-50
export (exporters.export_cached, legacy exporter, .cache/bench/), the Server-Timing split (upload,
worker), the wall time of 10 concurrent lenet5 requests, and beside them `analyzer inspect FILE
--format json` as a whole process and `analyzer.inspect(FILE)` in process.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
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


def start_server():
    import uvicorn

    from analyzer.service.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
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


def concurrent_wall(client, path: Path, n: int, repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            start = time.perf_counter()
            list(pool.map(lambda _: post_inspect(client, path), range(n)))
            walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def main() -> None:
    import httpx

    import exporters

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
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
            burst = concurrent_wall(client, models["lenet5"], 10, 3)
    finally:
        server.should_exit = True
        thread.join()

    lines = [
        f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs (shared); Python {platform.python_version()}; "
        f"date {datetime.date.today().isoformat()}",
        f"Command: `.venv/bin/python benchmarks/bench_service.py --repeat {args.repeat}`",
        f"Server: default settings (a fresh worker process per request, max_workers={workers}), in-process uvicorn, "
        "httpx client on loopback; multipart upload.",
        "",
        "| model | file | service POST /v1/inspect (median / min) | of which upload | of which worker | "
        "CLI `inspect --format json` (process) | `analyzer.inspect` in process | n |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, size, s, cli, api, n in rows:
        lines.append(f"| {name} | {size / 1e6:.1f} MB | {s['median']:.3f} s / {s['min']:.3f} s | {s['upload']:.3f} s | "
                     f"{s['worker']:.3f} s | {cli:.3f} s | {api:.3f} s | {n} |")
    lines += ["", f"10 concurrent POST /v1/inspect of lenet5 (threads, one client): {burst:.2f} s wall (median of 3), "
                  f"{workers} workers at a time."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
