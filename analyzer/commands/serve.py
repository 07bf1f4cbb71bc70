"""``analyzer serve``: the HTTP service (FastAPI + uvicorn, the ``serve`` extra) over the same Python API."""

from __future__ import annotations

import argparse
import ipaddress

EPILOG = """\
Routes: GET / (upload page), POST /v1/inspect, POST /v1/optimize, GET /v1/models/{token},
POST /v1/compare (a queued latency job), GET|DELETE /v1/jobs/{id}, GET /v1/limits, GET /v1/health,
GET /docs and /openapi.json. Errors: {"error": {"status", "code", "message"}} with a 4xx (or 5xx) status.

Every parse, analysis, rewrite and benchmark of an uploaded model runs in a worker process of its own
(forked from a pre-imported fork server, one task per process) with the memory, CPU-time and
wall-clock limits below; a worker that dies or exceeds a limit is answered with 422 and the reason,
and the server goes on serving. Models whose tensors use external data are
refused (400) before anything parses them. One latency job runs at a time; the others queue.

The server binds 127.0.0.1 unless told otherwise. A host that is not a loopback address needs
--allow-remote and --token-file: every request but GET /v1/health must then carry
"Authorization: Bearer TOKEN" (401 without; the upload page comes with its 401 and asks for the
token), and each token may hold --max-jobs-per-token requests and jobs at once (429 past it). A
token file holds one token a line, or "NAME TOKEN"; make a token with: python -c "import secrets; print(secrets.token_urlsafe(32))".
Tokens are never logged. Serve over TLS (a reverse proxy) beyond a trusted network: a bearer token
travels in clear over plain HTTP.
"""


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'number' if kind is float else 'whole number'}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    from analyzer.service.settings import MiB, Settings  # dataclasses only: --help stays fast

    d = Settings()
    p = subparsers.add_parser(
        "serve",
        help="HTTP service: inspect, optimize and compare uploaded models (FastAPI; the serve extra)",
        description="Serve the analyzer over HTTP, every model in a resource-limited worker process.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding a non-loopback address such as 0.0.0.0 (needs --token-file)")
    p.add_argument("--token-file", help="API tokens, one a line (or NAME TOKEN): every request but GET /v1/health must "
                                        "carry one as 'Authorization: Bearer TOKEN'; required beyond loopback")
    p.add_argument("--max-jobs-per-token", type=_positive(int), default=4,
                   help="requests and latency jobs one token may hold at once, with --token-file (default %(default)s)")
    p.add_argument("--max-upload-mb", type=_positive(float), default=d.max_upload_bytes / MiB,
                   help="largest uploaded model, MiB (default %(default)g)")
    p.add_argument("--worker-memory-mb", type=_positive(int), default=d.worker_memory_bytes // MiB,
                   help="memory limit of a worker process (RLIMIT_DATA), MiB (default %(default)s)")
    p.add_argument("--worker-cpu-seconds", type=_positive(int), default=d.worker_cpu_seconds,
                   help="CPU-time limit of a worker process, all threads together (default %(default)s)")
    p.add_argument("--max-workers", type=_positive(int),
                   help=f"concurrent inspect/optimize workers (default: the cores, at most 4; here {d.max_workers})")
    p.add_argument("--inspect-timeout", type=_positive(float), default=d.inspect_timeout_s,
                   help="wall-clock limit of an inspect, s (default %(default)g)")
    p.add_argument("--optimize-timeout", type=_positive(float), default=d.optimize_timeout_s,
                   help="wall-clock limit of an optimize, s (default %(default)g)")
    p.add_argument("--compare-timeout", type=_positive(float), default=d.compare_timeout_s,
                   help="wall-clock limit of a compare job, s (default %(default)g)")
    p.add_argument("--max-compare-seconds", type=_positive(float), default=d.max_compare_seconds,
                   help="largest time budget a client may ask a compare job for, s (default %(default)g)")
    p.add_argument("--max-queued-jobs", type=int, default=d.max_queued_jobs,
                   help="latency jobs waiting behind the running one; more get 429 (default %(default)s)")
    p.add_argument("--max-concurrent-uploads", type=_positive(int),
                   help="uploads received at once, all routes together; more get 429 at once "
                        "(default: 16, or 2 x --max-workers + 2 if more)")
    p.add_argument("--max-stored-mb", type=_positive(float), default=d.max_stored_bytes / MiB,
                   help="optimized models kept for download, MiB in all; past it the oldest are dropped "
                        "(default %(default)g)")
    p.add_argument("--retention", type=_positive(float), default=d.retention_s,
                   help="seconds finished jobs and optimized models are kept (default %(default)g)")
    p.add_argument("--upload-idle-timeout", type=_positive(float), default=d.upload_idle_timeout_s,
                   help="seconds an upload may send nothing before it is answered 408 and its slot freed "
                        "(default %(default)g)")
    p.add_argument("--header-timeout", type=_positive(float), default=d.header_timeout_s,
                   help="seconds a connection has to complete its request headers (default %(default)g)")
    p.add_argument("--work-dir", help="directory in which the server makes its private analyzer-serve-* folder for "
                                      "uploads, worker scratch and results, removed on exit; nothing else in the "
                                      "directory is touched (default: the system's temporary directory)")
    p.add_argument("--queue", metavar="redis://HOST:PORT/DB",
                   help="send latency (compare) jobs to worker hosts through this Redis queue ('analyzer worker' on "
                        "each host); without it they run here, one at a time")
    p.add_argument("--store-dir", help="with --queue: a directory shared with the worker hosts (same path there) for "
                                       "uploads over --store-inline-mb; smaller ones travel through Redis")
    p.add_argument("--store-inline-mb", type=_positive(float), default=64,
                   help="with --queue: largest upload that travels through Redis, MiB (default %(default)g)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def settings_from(args: argparse.Namespace):
    from pathlib import Path

    from analyzer.service.settings import MiB, Settings

    extra = {} if args.max_workers is None else {"max_workers": args.max_workers}
    if args.max_concurrent_uploads is not None:
        extra["max_concurrent_uploads"] = args.max_concurrent_uploads
    return Settings(
        max_upload_bytes=int(args.max_upload_mb * MiB),
        worker_memory_bytes=args.worker_memory_mb * MiB,
        worker_cpu_seconds=args.worker_cpu_seconds,
        inspect_timeout_s=args.inspect_timeout,
        optimize_timeout_s=args.optimize_timeout,
        compare_timeout_s=args.compare_timeout,
        max_compare_seconds=args.max_compare_seconds,
        max_queued_jobs=args.max_queued_jobs,
        max_stored_bytes=int(args.max_stored_mb * MiB),
        retention_s=args.retention,
        upload_idle_timeout_s=args.upload_idle_timeout,
        header_timeout_s=args.header_timeout,
        work_dir=Path(args.work_dir) if args.work_dir else None,
        **extra,
    )


def run(args: argparse.Namespace) -> int:
    from analyzer.errors import AnalyzerError

    if not is_loopback(args.host) and not args.allow_remote:
        raise AnalyzerError(f"refusing to bind {args.host}, which is not a loopback address: pass --allow-remote "
                            "and --token-file to serve beyond this machine")
    if not is_loopback(args.host) and not args.token_file:
        raise AnalyzerError(f"refusing to bind {args.host} without API tokens: beyond loopback the service needs "
                            "--token-file (one token a line)")
    access = None
    if args.token_file:
        from pathlib import Path

        from analyzer.service.access import Access, TokenFileError

        try:
            access = Access.from_file(Path(args.token_file), args.max_jobs_per_token)
        except TokenFileError as e:
            raise AnalyzerError(str(e)) from None
    if not 0 <= args.port <= 65535:
        raise AnalyzerError(f"--port must be between 0 and 65535, got {args.port}")
    if args.max_queued_jobs < 0:
        raise AnalyzerError(f"--max-queued-jobs must be zero or more, got {args.max_queued_jobs}")
    try:
        import uvicorn

        from analyzer.service.app import create_app
    except ModuleNotFoundError as e:
        raise AnalyzerError(f"the serve extra is not installed ({e.name} is missing): "
                            "pip install 'cnn-onnx-analyzer[serve]'") from None
    import logging

    from analyzer.service.settings import MiB

    try:
        settings = settings_from(args)
    except ValueError as e:
        raise AnalyzerError(str(e).replace("_s ", " ").replace("compare_timeout", "--compare-timeout")
                            .replace("max_compare_seconds", "--max-compare-seconds")) from None
    if (args.store_dir or args.store_inline_mb != 64) and not args.queue:
        raise AnalyzerError("--store-dir and --store-inline-mb go with --queue")
    queue = None
    if args.queue:
        from pathlib import Path

        from analyzer.service.remote import QueueConfig

        queue = QueueConfig(args.queue, Path(args.store_dir).resolve() if args.store_dir else None,
                            int(args.store_inline_mb * MiB))
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    try:
        app = create_app(settings, access=access, queue=queue)
    except ConnectionError as e:
        raise AnalyzerError(str(e)) from None
    from analyzer.service.protocol import with_header_deadline

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, server_header=False,
                http=with_header_deadline(settings.header_timeout_s))
    return 0
