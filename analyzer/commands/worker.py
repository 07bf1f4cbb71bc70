"""``analyzer worker``: take latency jobs from an ``analyzer serve --queue`` deployment, one at a time."""

from __future__ import annotations

import argparse

EPILOG = """\
Run one on each host that should measure latency (the GPU host, the CPU the models ship on). It takes
jobs from the queues of its --tag names, of its --provider and of jobs that named no provider, one at a
time, each in the same sandbox as the embedded server (a worker process per task with memory, CPU-time
and wall-clock limits), and records its host, provider and machine beside the result. Killed mid-job,
its job is given once to another worker (docs/deployment.md). Needs the queue extra:
pip install 'cnn-onnx-analyzer[serve,queue]'.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from analyzer.service.settings import MiB, Settings  # dataclasses only: --help stays fast

    d = Settings()
    p = subparsers.add_parser("worker", help="take latency jobs from an 'analyzer serve --queue' Redis queue",
                              description="A worker host for 'analyzer serve --queue': one job at a time.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queue", required=True, metavar="redis://HOST:PORT/DB", help="the server's Redis queue")
    p.add_argument("--provider", choices=("cpu", "cuda"), default="cpu",
                   help="the execution provider this host measures with (default cpu)")
    p.add_argument("--tag", action="append", default=[], metavar="NAME",
                   help="also take jobs that ask for this tag (repeatable), e.g. the host's CPU family")
    p.add_argument("--name", help="this worker's name in job records (default HOST-PID-random)")
    p.add_argument("--store-dir", help="the server's --store-dir, as mounted on this host (for large uploads)")
    p.add_argument("--worker-memory-mb", type=int, default=d.worker_memory_bytes // MiB,
                   help="memory limit of a task's process, MiB (default %(default)s)")
    p.add_argument("--worker-cpu-seconds", type=int, default=d.worker_cpu_seconds,
                   help="CPU-time limit of a task's process (default %(default)s)")
    p.add_argument("--cache-dir", help="this host's table of measured layer timings for optimize auto jobs "
                                       "(default $ANALYZER_CACHE_DIR or ~/.cache/onnx-analyzer)")
    p.add_argument("--burst", action="store_true", help="exit when the queues are empty (for scripts and tests)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import re
    from pathlib import Path

    from analyzer.errors import AnalyzerError
    from analyzer.service.settings import MiB

    for tag in args.tag:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", tag):
            raise AnalyzerError(f"--tag {tag!r}: use 1 to 64 letters, digits, '_', '.' or '-'")
    if args.worker_memory_mb < 1 or args.worker_cpu_seconds < 1:
        raise AnalyzerError("--worker-memory-mb and --worker-cpu-seconds must be positive")
    try:
        from analyzer.service.remote_worker import serve_queues
        import rq  # noqa: F401
    except ModuleNotFoundError as e:
        raise AnalyzerError(f"the queue extra is not installed ({e.name} is missing): "
                            "pip install 'cnn-onnx-analyzer[serve,queue]'") from None
    logging.basicConfig(level="INFO", format="%(levelname)s: %(name)s: %(message)s")
    settings = {"worker_memory_bytes": args.worker_memory_mb * MiB, "worker_cpu_seconds": args.worker_cpu_seconds}
    try:
        return serve_queues(args.queue, args.provider, args.tag, args.name,
                            Path(args.store_dir).resolve() if args.store_dir else None, settings, cache_dir=args.cache_dir,
                            burst=args.burst)
    except ConnectionError as e:
        raise AnalyzerError(str(e)) from None
