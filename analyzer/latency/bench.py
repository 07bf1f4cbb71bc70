"""Latency of one model under onnxruntime: warm-up, a timed loop, statistics and the machine it ran on.

Timing: each iteration is ``time.perf_counter()`` around one ``session.run`` (or
``run_with_iobinding``). On CUDA, inputs live on the device (IO binding), outputs are bound to the
device and ``synchronize_outputs()`` ends each timed iteration, so the time is the device's, not the
launch's. Run length: ``iters`` iterations exactly, or as many as fit in ``time_budget`` seconds
(at most ``max_iters``); warm-up is ``warmup`` iterations, cut short after ``time_budget`` seconds
too, so a run takes at most about twice the budget plus session creation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analyzer import units
from analyzer.errors import AnalyzerError, first_line
from analyzer.latency import runtime
from analyzer.latency.machine import machine_info
from analyzer.latency.options import BenchOptions
from analyzer.latency.stats import LatencyStats, summarize


@dataclass
class Runner:
    """A loaded model with its inputs bound, ready to time one iteration at a time."""

    model_label: str
    info: runtime.SessionInfo
    feeds: dict[str, np.ndarray]
    assumed_dims: dict[str, int]
    io_binding: bool
    run_once: Callable[[], float]  # one timed iteration, seconds

    @property
    def on_cuda(self) -> bool:
        return self.info.provider == runtime.CUDA

    @property
    def items_per_run(self) -> int:
        """Leading dim of the first input: the batch a throughput figure counts."""
        first = next(iter(self.feeds.values()), None)
        return int(first.shape[0]) if first is not None and first.ndim > 0 else 1

    def outputs(self) -> list[np.ndarray]:
        """One untimed run through plain ``session.run``, outputs on the host."""
        return [np.asarray(o) for o in self.info.session.run(None, self.feeds)]


def _timed_plain(session: Any, feeds: dict[str, np.ndarray]) -> Callable[[], float]:
    def run_once() -> float:
        start = time.perf_counter()
        session.run(None, feeds)
        return time.perf_counter() - start

    return run_once


class IoBoundRun:
    """Inputs copied once to ``device``; outputs bound there; each timed iteration ends synchronised."""

    def __init__(self, session: Any, feeds: dict[str, np.ndarray], device: str) -> None:
        import onnxruntime as ort

        self.session = session
        self.binding = session.io_binding()
        # the OrtValues stay referenced here for as long as the binding uses them
        self.device_inputs = {
            name: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), device, 0) for name, array in feeds.items()
        }
        for name, value in self.device_inputs.items():
            self.binding.bind_ortvalue_input(name, value)
        for output in session.get_outputs():
            self.binding.bind_output(output.name, device)
        self.binding.synchronize_inputs()

    def __call__(self) -> float:
        start = time.perf_counter()
        self.session.run_with_iobinding(self.binding)
        self.binding.synchronize_outputs()
        return time.perf_counter() - start


def prepare(
    model: str | os.PathLike | bytes,
    options: BenchOptions,
    *,
    feeds: dict[str, np.ndarray] | None = None,
    bind_inputs: bool | None = None,
    **session_options: Any,
) -> Runner:
    """Create the session (explicit providers), build or load inputs (or take ``feeds``), bind them and run
    once, so that a model that cannot run on these inputs fails here in one line, before any timing.

    ``bind_inputs`` None binds inputs and outputs as OrtValues when ``options.io_binding`` or on CUDA;
    ``session_options`` (profiling, optimization level) go to :func:`runtime.create_session` as they are.
    """
    options.validate()
    info = runtime.create_session(
        model,
        provider=options.provider,
        threads=options.threads,
        cuda_options={"cudnn_conv_algo_search": options.cudnn_conv_algo_search},
        verbose=options.verbose,
        session_config=options.session_config,
        **session_options,
    )
    if feeds is not None:
        assumed = {}
    elif options.inputs_file:
        feeds, assumed = runtime.load_inputs(options.inputs_file, info.session), {}
    else:
        feeds, assumed = runtime.make_inputs(info.session, dims=options.dims, batch=options.batch,
                                             shapes=options.input_shapes, seed=options.seed)
    on_cuda = info.provider == runtime.CUDA
    use_binding = (options.io_binding or on_cuda) if bind_inputs is None else bind_inputs
    if use_binding:
        run_once = IoBoundRun(info.session, feeds, "cuda" if on_cuda else "cpu")
    else:
        run_once = _timed_plain(info.session, feeds)
    label = runtime.model_label(model)
    try:
        run_once()
    except Exception as e:
        raise AnalyzerError(f"onnxruntime cannot run {label} on these inputs: {first_line(e)}") from e
    return Runner(label, info, feeds, assumed, use_binding, run_once)


def warm_up(runner: Runner, count: int, time_budget: float | None) -> list[float]:
    """Run up to ``count`` iterations not counted in the statistics, stopping after ``time_budget``
    seconds; returns their durations."""
    start = time.perf_counter()
    durations: list[float] = []
    while len(durations) < count:
        durations.append(runner.run_once())
        if time_budget is not None and time.perf_counter() - start >= time_budget:
            break
    return durations


def measure(runner: Runner, *, iters: int | None, time_budget: float | None, max_iters: int) -> list[float]:
    """Per-iteration seconds: ``iters`` of them, or as many as fit in ``time_budget`` (at least one)."""
    samples: list[float] = []
    limit = iters if iters is not None else max_iters
    deadline = None if time_budget is None else time.perf_counter() + time_budget
    while len(samples) < limit:
        samples.append(runner.run_once())
        if deadline is not None and time.perf_counter() >= deadline:
            break
    return samples


def thread_settings(runner: Runner, requested: int | None) -> dict[str, Any]:
    options = runner.info.session.get_session_options()
    return {
        "intra_op": requested if requested is not None else "onnxruntime default (one per physical core)",
        "inter_op": options.inter_op_num_threads or "onnxruntime default",
        "execution_mode": str(options.execution_mode).rsplit(".", 1)[-1],
    }


@dataclass
class BenchResult:
    model: str
    provider: str
    providers: list[str]
    requested_provider: str
    fell_back: bool
    io_binding: bool
    batch: int
    input_shapes: dict[str, list[int]]
    assumed_dims: dict[str, int]
    warmup_iterations: int
    session_creation_s: float
    stats: LatencyStats
    threads: dict[str, Any]
    machine: dict[str, Any]
    samples: list[float] = field(repr=False, default_factory=list)

    @property
    def notes(self) -> list[str]:
        notes = []
        if self.fell_back:
            notes.append(runtime.fallback_note(self.provider))
        if self.assumed_dims:
            dims = ", ".join(f"{k}={v}" for k, v in self.assumed_dims.items())
            notes.append(f"symbolic dims not given, assumed {dims} (bind them with --dim/--batch)")
        if self.stats.median_ci_coverage < self.stats.confidence:
            notes.append(
                f"only {self.stats.iterations} iterations: the median CI covers "
                f"{self.stats.median_ci_coverage:.0%}, not {self.stats.confidence:.0%}"
            )
        return notes

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "analyzer.latency.bench/1",
            "model": self.model,
            "provider": self.provider,
            "providers": self.providers,
            "requested_provider": self.requested_provider,
            "fell_back": self.fell_back,
            "io_binding": self.io_binding,
            "batch": self.batch,
            "input_shapes": self.input_shapes,
            "assumed_dims": self.assumed_dims,
            "warmup_iterations": self.warmup_iterations,
            "session_creation_s": self.session_creation_s,
            "stats": self.stats.to_dict(),
            "threads": self.threads,
            "machine": self.machine,
            "notes": self.notes,
        }


def result_from_samples(runner: Runner, options: BenchOptions, samples: list[float], warmup_done: int) -> BenchResult:
    return BenchResult(
        model=runner.model_label,
        provider=runner.info.provider,
        providers=list(runner.info.providers),
        requested_provider=runner.info.requested,
        fell_back=runner.info.fell_back,
        io_binding=runner.io_binding,
        batch=runner.items_per_run,
        input_shapes={k: list(v.shape) for k, v in runner.feeds.items()},
        assumed_dims=dict(runner.assumed_dims),
        warmup_iterations=warmup_done,
        session_creation_s=runner.info.creation_seconds,
        stats=summarize(samples, batch=runner.items_per_run),
        threads=thread_settings(runner, options.threads),
        machine=machine_info(runner.on_cuda),
        samples=samples,
    )


def benchmark(model: str | os.PathLike | bytes, options: BenchOptions | None = None) -> BenchResult:
    """Warm up, then time ``model``; see the module docstring for the run-length rules."""
    options = options or BenchOptions()
    runner = prepare(model, options)
    budget = options.effective_time_budget
    # prepare() already ran once (to turn shape errors into one line): that run is the first warm-up
    warmup_done = 1 + len(warm_up(runner, options.warmup_runs(runner.on_cuda) - 1, budget))
    samples = measure(runner, iters=options.iters, time_budget=budget, max_iters=options.max_iters)
    return result_from_samples(runner, options, samples, warmup_done)


# ---- rendering: one function per format, all reading BenchResult ----


def _stat_rows(stats: LatencyStats) -> list[tuple[str, str]]:
    return [
        ("iterations", str(stats.iterations)),
        ("mean (ms)", units.ms(stats.mean)),
        ("median (ms)", units.ms(stats.median)),
        (
            f"median {stats.confidence:.0%} CI (ms)",
            f"[{units.ms(stats.median_ci[0])}, {units.ms(stats.median_ci[1])}] ({stats.ci_method})",
        ),
        ("p90 (ms)", units.ms(stats.p90)),
        ("p99 (ms)", units.ms(stats.p99)),
        ("min (ms)", units.ms(stats.min)),
        ("std (ms)", units.ms(stats.std)),
        ("throughput (items/s)", f"{stats.throughput:.1f}"),
    ]


def _context_rows(result: BenchResult) -> list[tuple[str, str]]:
    m = result.machine
    threads = result.threads
    return [
        ("provider", f"{result.provider} (requested {result.requested_provider}; session: {', '.join(result.providers)})"),
        ("io binding", "yes" if result.io_binding else "no"),
        ("inputs", "; ".join(f"{k} {v}" for k, v in result.input_shapes.items())),
        ("warm-up iterations", str(result.warmup_iterations)),
        ("session creation (ms)", units.ms(result.session_creation_s)),
        ("threads", f"intra-op {threads['intra_op']}, inter-op {threads['inter_op']}, {threads['execution_mode']}"),
        ("machine", f"{m['cpu']}, {m['logical_cores']} logical / {m['physical_cores'] or '?'} physical cores"
         + (f", GPU {m['gpu']}" if m.get("gpu") else "")),
        ("onnxruntime", m["onnxruntime"]),
        ("load average", ", ".join(str(x) for x in m["load_average"] or [])),
    ]


def aligned_rows(rows: list[tuple[str, str]]) -> list[str]:
    """(label, value) rows as indented text lines, the values in one column."""
    width = max(len(k) for k, _ in rows)
    return [f"  {k:<{width}}  {v}" for k, v in rows]


def markdown_rows(rows: list[tuple[str, str]]) -> list[str]:
    """(label, value) rows as markdown table lines; a '|' in a value would split its cell."""
    return [f"| {k} | {v.replace('|', '/')} |" for k, v in rows]


def render_table(result: BenchResult) -> str:
    rows = _stat_rows(result.stats) + _context_rows(result)
    lines = [f"{result.model}"] + aligned_rows(rows)
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def render_markdown(result: BenchResult) -> str:
    rows = _stat_rows(result.stats) + _context_rows(result)
    lines = [f"### Latency of `{result.model}`", "", "| metric | value |", "|---|---|"]
    lines += markdown_rows(rows)
    lines += [""] + [f"> **Note:** {n}" for n in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def render_json(result: BenchResult) -> str:
    import json

    return json.dumps(result.to_dict(), indent=2) + "\n"
