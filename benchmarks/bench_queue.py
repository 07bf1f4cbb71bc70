"""Throughput of `analyzer serve --queue` over 1 and 2 local `analyzer worker` processes; no job lost.

    python benchmarks/bench_queue.py [--jobs 20] [--time 1.0] [--workers 1 2]

Starts Debian's `redis-server` on a free loopback port, the API in this process (uvicorn, default
settings but room in the queue for every job, plus the queue), and for each worker count that many `analyzer worker --provider cpu`
processes; submits ``--jobs`` compare jobs (samples/mnist_cnn.onnx against itself, ``time`` seconds of
interleaved timing each, one onnxruntime thread) all at once, waits for every one, and prints the wall
time, jobs per minute, how the jobs spread over the workers, and whether every job succeeded. A job
that does not end within ten minutes counts as lost. Exits 1 if any job failed or was lost.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_service import cpu_model, start_server  # noqa: E402

SAMPLE = REPO / "samples" / "mnist_cnn.onnx"


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    import socket

    from analyzer.service.remote import connect

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(400):
        try:
            connect(url).flushdb()
            return proc, url
        except ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def start_workers(url: str, count: int, folder: Path) -> list[subprocess.Popen]:
    from analyzer.service.remote import connect

    procs = []
    for i in range(count):
        log = open(folder / f"worker-{i}.log", "wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "analyzer.cli", "worker", "--queue", url, "--provider", "cpu",
                                       "--name", f"worker-{i}"], stdout=log, stderr=log, cwd=REPO,
                                      start_new_session=True))
    redis = connect(url)
    deadline = time.monotonic() + 120
    while sum(1 for i in range(count) if redis.exists(f"analyzer:worker:worker-{i}")) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not start")
        time.sleep(0.1)
    return procs


def run(url: str, jobs: int, budget: float) -> dict:
    import httpx

    from analyzer.service.settings import Settings

    app, server, thread, api = start_server(queue_url=url, settings=Settings(max_queued_jobs=jobs))
    try:
        with httpx.Client(base_url=api, timeout=60) as client:
            start = time.perf_counter()
            locations = []
            for _ in range(jobs):
                with open(SAMPLE, "rb") as fa, open(SAMPLE, "rb") as fb:
                    response = client.post("/v1/compare", data={"time": str(budget), "threads": "1", "provider": "cpu"},
                                           files={"model_a": ("a.onnx", fa), "model_b": ("b.onnx", fb)})
                response.raise_for_status()
                locations.append(response.headers["location"])
            done: dict[str, dict] = {}
            deadline = time.monotonic() + 600
            while len(done) < jobs and time.monotonic() < deadline:
                for location in locations:
                    if location not in done:
                        doc = client.get(location).json()
                        if doc["status"] in ("succeeded", "failed", "cancelled"):
                            done[location] = doc
                time.sleep(0.1)
            wall = time.perf_counter() - start
    finally:
        server.should_exit = True
        thread.join()
    statuses = collections.Counter(d["status"] for d in done.values())
    spread = collections.Counter(d["worker"]["name"] for d in done.values() if d.get("worker"))
    return {"wall": wall, "per_minute": 60 * len(done) / wall, "statuses": dict(statuses), "lost": jobs - len(done),
            "spread": dict(sorted(spread.items()))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--time", type=float, default=1.0, help="seconds of timing per compare job")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 2
    rows, failed = [], False
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        redis_proc, url = start_redis(Path(tmp))
        try:
            for count in args.workers:
                workers = start_workers(url, count, Path(tmp))
                try:
                    result = run(url, args.jobs, args.time)
                finally:
                    for proc in workers:
                        os.killpg(proc.pid, signal.SIGTERM)
                    for proc in workers:
                        proc.wait(timeout=60)
                rows.append((count, result))
                failed |= result["lost"] > 0 or result["statuses"].get("succeeded", 0) != args.jobs
        finally:
            redis_proc.kill()
            redis_proc.wait()
    print(f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}; "
          f"date {datetime.date.today().isoformat()}")
    print(f"Command: `python benchmarks/bench_queue.py --jobs {args.jobs} --time {args.time:g} --workers "
          f"{' '.join(map(str, args.workers))}`\n")
    print("| workers | wall | jobs/min | speed-up | statuses | lost | jobs per worker |")
    print("|---:|---:|---:|---:|---|---:|---|")
    base = rows[0][1]["wall"]
    for count, r in rows:
        print(f"| {count} | {r['wall']:.1f} s | {r['per_minute']:.1f} | {base / r['wall']:.2f}x | {r['statuses']} | "
              f"{r['lost']} | {r['spread']} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
