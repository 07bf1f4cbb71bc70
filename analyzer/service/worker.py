"""The worker: :func:`main` runs one task on uploaded models, in a process of its own.

The fork server (:mod:`analyzer.service.zygote`) forks a process per task that calls :func:`main`
in a new session, with the upload directory ``SCRATCH/in`` as its working directory and a minimal
environment (``python -I -m analyzer.service.worker SCRATCH`` does the same by hand, for debugging).
Protocol (files in ``SCRATCH``):

- ``task.json`` (written by the service): ``kind`` (inspect | optimize | compare), ``limits``
  (memory_bytes, cpu_seconds, file_bytes), ``inputs`` (role -> path relative to ``in/``),
  ``labels`` (role -> the upload's base file name), ``options``;
- ``progress.json`` (rewritten atomically by the worker): ``stage`` (what it is doing, named in the
  reason when it dies), ``phase``, ``fraction`` (0..1 of the whole task), ``rounds``;
- ``result.json``: ``{"ok": true, "body": FILE, "media_type": ...}`` (the response body in
  ``SCRATCH/FILE``) or ``{"ok": false, "error": {"status", "code", "message"}, "body": ...}``;
- ``out/``: the optimized model; ``worker.log``: its stderr (faulthandler tracebacks), for the server log.

The first thing the worker does is set its resource limits (memory, CPU time, file size, no core
dumps); the second is to refuse external data with :mod:`analyzer.service.safety`, a pure-Python walk
of the protobuf wire, before onnx, onnx-ir or onnxruntime read the upload (the fork server imported
onnx, but nothing has parsed the upload). Only then does it call the Python API.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from analyzer.atomic import write_text_atomic
from analyzer.errors import first_line

# lower-case words of an out-of-memory failure, in an exception's text (here) or the worker's log (the sandbox)
MEMORY_MARKERS = ("memoryerror", "bad_alloc", "failed to allocate memory", "cannot allocate memory", "out of memory",
                  "std::length_error")


class TaskError(Exception):
    def __init__(self, status: int, code: str, message: str, body: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.body = status, code, message, body


def apply_limits(limits: dict[str, int]) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    memory = int(limits["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    cpu = int(limits["cpu_seconds"])
    # soft limit: SIGXCPU; the hard one a few seconds later: SIGKILL
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    size = int(limits["file_bytes"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


class Progress:
    """``progress.json``, rewritten atomically (the service reads it while the worker runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict[str, Any] = {"stage": "starting", "phase": "starting", "fraction": 0.0, "rounds": 0}
        self.last_write = 0.0

    def update(self, *, force: bool = True, **fields: Any) -> None:
        self.state.update(fields)
        now = time.monotonic()
        if not force and now - self.last_write < 0.1:
            return
        self.last_write = now
        write_text_atomic(self.path, json.dumps(self.state))


def _is_memory_failure(error: BaseException) -> bool:
    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return any(isinstance(e, MemoryError) or any(m in f"{type(e).__name__}: {e}".lower() for m in MEMORY_MARKERS)
               for e in chain)


# ---- tasks ----


def run_inspect(task: dict[str, Any], progress: Progress, scratch: Path) -> dict[str, Any]:
    from analyzer.pipeline import inspect
    from analyzer.render import render

    options = task["options"]
    progress.update(stage="running the analysis (onnx shape inference, the analyzer)", phase="analysis")
    report = inspect(
        Path(task["inputs"]["model"]),
        dims=options.get("dims") or {},
        input_shapes=options.get("input_shapes") or {},
        batch=options.get("batch"),
        input_values=options.get("input_values") or {},
        optimizer=options.get("optimizer", "sgd"),
        strict=bool(options.get("strict")),
    )
    report.model.path = task["labels"]["model"]  # never a server path
    fmt = options.get("format", "json")
    progress.update(stage="rendering the report", phase="rendering")
    text = render(report, fmt)
    return _body(scratch, text, fmt)


MEDIA_TYPES = {"json": "application/json", "html": "text/html; charset=utf-8",
               "markdown": "text/markdown; charset=utf-8", "csv": "text/csv; charset=utf-8"}


def _body(scratch: Path, text: str, fmt: str) -> dict[str, Any]:
    name = f"body.{fmt}"
    (scratch / name).write_text(text, encoding="utf-8")
    return {"body": name, "media_type": MEDIA_TYPES[fmt]}


OPTIMIZE_STAGES = {"loading": "reading the model (onnx)", "passes": "running passes",
                   "saving": "writing the optimized model"}


def run_optimize(task: dict[str, Any], progress: Progress, scratch: Path) -> dict[str, Any]:
    from passes import PassFailed, VerifyOptions, optimize
    from passes.report import render_json

    options = task["options"]
    label = str(Path(task["labels"]["model"]))  # never a server path
    output_name = task["output_name"]

    def on_pass(pass_name: str, index: int, total: int, node: str) -> None:
        progress.update(force=False, stage=f"running pass {pass_name} on node {node!r}", phase=pass_name,
                        fraction=(index + 1) / max(total, 1))

    def on_stage(stage: str) -> None:
        progress.update(stage=OPTIMIZE_STAGES[stage], phase=stage)

    if options.get("auto") is not None:
        return _run_auto(task, progress, scratch, label, output_name)
    given = {key: options[key] for key in ("samples", "seed", "dims", "input_shapes", "batch") if options.get(key) is not None}
    verify = VerifyOptions(**given)
    out_dir = scratch / "out"
    out_dir.mkdir(exist_ok=True)
    target = out_dir / output_name
    try:
        result = optimize(Path(task["inputs"]["model"]), options["passes"], verify=verify, output=target,
                          progress=on_pass, on_stage=on_stage)
    except PassFailed as e:
        e.run.source = label
        raise TaskError(422, "pass_failed", f"{e}; no optimized model was produced", body=render_json(e.run)) from None
    if target.with_name(target.name + ".data").exists():
        raise TaskError(422, "output_too_large",
                        "the optimized model is over protobuf's 2 GiB limit (its weights would need an external data file); "
                        "the service serves single-file models only")
    result.source, result.output = label, output_name
    return {**_body(scratch, render_json(result), "json"), "output": output_name}


def _run_auto(task: dict[str, Any], progress: Progress, scratch: Path, label: str, output_name: str) -> dict[str, Any]:
    """``optimize --auto`` on the upload; the per-layer latency table is kept in ``task["cache_dir"]`` (the
    host's, across tasks) when the task names one."""
    from passes.auto import AutoOptions, auto_optimize
    from passes.auto.render import render_json

    def on_progress(stage: str, done: int, total: int, detail: str) -> None:
        progress.update(force=False, stage=f"auto: {stage} {detail}".strip(), phase=stage,
                        fraction=round(done / total, 4) if total else 0.0)

    options = AutoOptions(**task["options"]["auto"], cache_dir=task.get("cache_dir"),
                          use_cache=task.get("cache_dir") is not None)
    out_dir = scratch / "out"
    out_dir.mkdir(exist_ok=True)
    result = auto_optimize(Path(task["inputs"]["model"]), options, output=out_dir / output_name, progress=on_progress)
    result.source, result.output = label, output_name  # never a server path
    return {**_body(scratch, render_json(result.to_dict()), "json"), "output": output_name}


PHASE_SPAN = {"sessions": (0.0, 0.05), "warm-up": (0.05, 0.1), "measuring": (0.1, 0.9),
              "outputs": (0.9, 0.95), "analyzer": (0.95, 1.0)}
PHASE_STAGE = {"sessions": "creating the onnxruntime sessions", "warm-up": "running warm-up iterations",
               "measuring": "running the timed rounds", "outputs": "comparing the outputs",
               "analyzer": "analyzing both models"}


def run_compare(task: dict[str, Any], progress: Progress, scratch: Path) -> dict[str, Any]:
    from analyzer.latency.compare import compare, render_json
    from analyzer.latency.options import BenchOptions, CompareOptions

    options = dict(task["options"])
    seed = int(options.pop("seed", 0))
    bench = BenchOptions(**options.pop("bench"))
    compare_options = CompareOptions(bench=bench, **options)

    def on_progress(phase: str, fraction: float, rounds: int) -> None:
        low, high = PHASE_SPAN.get(phase, (0.0, 1.0))
        progress.update(force=phase != "measuring", stage=PHASE_STAGE.get(phase, phase), phase=phase,
                        fraction=round(low + (high - low) * fraction, 4), rounds=rounds)

    result = compare(Path(task["inputs"]["model_a"]), Path(task["inputs"]["model_b"]), compare_options,
                     seed=seed, progress=on_progress)
    # labels are the uploads' base names, not the names they were stored under
    result.model_a, result.model_b = task["labels"]["model_a"], task["labels"]["model_b"]
    return _body(scratch, render_json(result), "json")


TASKS = {"inspect": run_inspect, "optimize": run_optimize, "compare": run_compare}


def run_task(task: dict[str, Any], progress: Progress, scratch: Path) -> dict[str, Any]:
    from analyzer.service.safety import Refused, check_upload

    progress.update(stage="checking the upload (protobuf walk, external data)", phase="checking")
    for role, path in task["inputs"].items():
        try:
            check_upload(Path(path), task["labels"][role])
        except Refused as e:
            raise TaskError(400, e.code, e.message) from None
    return TASKS[task["kind"]](task, progress, scratch)


def _error(task: dict[str, Any], error: BaseException) -> TaskError:
    from analyzer.errors import AnalyzerError, ModelLoadError, StrictModeError
    from analyzer.service.errors import error_message

    limit_mib = int(task["limits"]["memory_bytes"]) >> 20
    if isinstance(error, TaskError):
        return error
    if _is_memory_failure(error):
        return TaskError(422, "memory_limit",
                         f"the model needs more memory than the worker's limit of {limit_mib} MiB: {first_line(error)}")
    if isinstance(error, ModelLoadError):
        return TaskError(400, "not_onnx", first_line(error))
    if isinstance(error, StrictModeError):
        return TaskError(422, "strict", first_line(error))
    if isinstance(error, AnalyzerError):
        lines = error_message(error).strip().splitlines()  # a bad parameter named as the request field (dim)
        return TaskError(400, "bad_request", lines[0] if lines else type(error).__name__)
    if isinstance(error, RecursionError):
        return TaskError(400, "not_onnx", "the model is nested too deeply to analyze")
    return TaskError(422, "analysis_failed",
                     f"the model could not be processed ({type(error).__name__}: {first_line(error)})")


def main(argv: list[str]) -> int:
    scratch = Path(argv[1]).resolve()
    task = json.loads((scratch / "task.json").read_text())
    apply_limits(task["limits"])  # before anything reads the upload
    import faulthandler

    faulthandler.enable()  # a fatal signal writes the Python stack to worker.log (stderr), then kills
    progress = Progress(scratch / "progress.json")
    try:
        outcome: dict[str, Any] = {"ok": True, **run_task(task, progress, scratch)}
    except BaseException as e:  # noqa: BLE001 - every failure becomes a result the service can report
        if isinstance(e, KeyboardInterrupt):
            raise
        error = _error(task, e)
        if error.code in ("analysis_failed",):
            import traceback

            traceback.print_exc()
        message = error.message.replace(str(scratch) + os.sep, "").replace(str(scratch), "<upload>")
        outcome = {"ok": False, "error": {"status": error.status, "code": error.code, "message": message},
                   "body": error.body, "stage": progress.state.get("stage")}
    progress.update(stage="writing the result", phase="done", fraction=1.0)
    write_text_atomic(scratch / "result.json", json.dumps(outcome, allow_nan=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
