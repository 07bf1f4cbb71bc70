"""Per-node time from onnxruntime's profiler, joined with the analyzer's per-node costs.

For every kernel onnxruntime ran (averaged over the profiled runs, warm-up runs excluded):

- time t, share of the summed kernel time
- achieved GMAC/s = MACs / t / 1e9 and GB/s = bytes / t / 1e9, where bytes is what the kernel's
  inputs and outputs occupy (from the shapes in the trace; a lower bound on its memory traffic)
- roofline bound t_min = max(FLOPs / peak, bytes / bandwidth) and efficiency = t_min / t; above
  100% means the peaks are too low for that kernel (its data stayed in cache, bandwidth being DRAM's)

Joining: onnxruntime fuses and renames nodes (Conv+Relu -> FusedConv keeps the Conv's name; the
NCHWc layout pass names a convolution after its output tensor plus ``_nchwc`` and inserts
Reorder nodes). The graph onnxruntime really ran is saved and read back; a kernel is matched to
original nodes by, in order: its name; the original producer of an output it writes; its name less
an onnxruntime suffix being an original tensor. Original nodes whose outputs vanished from the
optimized graph are counted into the kernel that consumed their work (the fusion). Kernels that
match nothing (layout reorders, copies) and original nodes no kernel covers (constant-folded or
eliminated) are reported as such, never dropped.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analyzer import units
from analyzer.errors import AnalyzerError
from analyzer.latency import runtime
from analyzer.latency.bench import IoBoundRun, Runner, measure, prepare, warm_up
from analyzer.latency.machine import machine_info
from analyzer.latency.options import ProfileOptions

INSERTED_OPS = {"ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost", "Transpose_nchwc"}
# ORT trace element type -> bytes
TRACE_DTYPE_BYTES = {
    "float": 4, "float16": 2, "bfloat16": 2, "double": 8, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
    "uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1, "bool": 1,
}
ORT_NAME_SUFFIXES = re.compile(r"(_nchwc|_token_\d+|_fused.*|/Fused\w*)$")


@dataclass
class Peaks:
    gflops: float  # FLOP/s / 1e9 (1 MAC = 2 FLOPs)
    bandwidth_gbs: float
    source: str


@dataclass
class KernelRow:
    kernel: str  # the name in onnxruntime's trace
    op_type: str  # as onnxruntime ran it (FusedConv, Conv, ReorderOutput, ...)
    match: str  # name | fused | renamed | inserted
    covers: list[str]  # original node names
    covered_ops: list[str]
    time_s: float  # mean per run
    share: float
    macs: int
    flops: int
    bytes: int
    gmacs_per_s: float | None
    gb_per_s: float | None
    bound_s: float | None  # roofline lower bound
    efficiency: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ProfileResult:
    model: str
    provider: str
    fell_back: bool
    optimization: str
    runs: int
    warmup_runs: int
    input_shapes: dict[str, list[int]]
    model_run_s: float  # mean wall time of a whole run in the trace
    kernel_total_s: float
    rows: list[KernelRow]
    not_timed: list[dict[str, Any]]  # original nodes no kernel covers
    peaks: Peaks
    machine: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "analyzer.latency.profile/1",
            "model": self.model,
            "provider": self.provider,
            "fell_back": self.fell_back,
            "optimization": self.optimization,
            "runs": self.runs,
            "warmup_runs": self.warmup_runs,
            "input_shapes": self.input_shapes,
            "model_run_s": self.model_run_s,
            "kernel_total_s": self.kernel_total_s,
            "peaks": dict(self.peaks.__dict__),
            "rows": [r.to_dict() for r in self.rows],
            "unmatched_kernels": [r.kernel for r in self.rows if r.match == "inserted"],
            "fused": {r.kernel: r.covers for r in self.rows if len(r.covers) > 1},
            "not_timed": self.not_timed,
            "machine": self.machine,
            "notes": self.notes,
        }


# ---- trace parsing ----


def trace_bytes(shapes: list[dict[str, list[int]]]) -> int:
    """Bytes of the tensors listed in a trace's input_type_shape / output_type_shape."""
    total = 0
    for entry in shapes or []:
        for dtype, dims in entry.items():
            total += int(np.prod(dims, dtype=np.int64)) * TRACE_DTYPE_BYTES.get(dtype, 4)
    return total


@dataclass
class KernelTiming:
    op_type: str
    total_us: float = 0.0
    calls: int = 0
    bytes: int = 0
    order: int = 0


def parse_trace(events: list[dict[str, Any]], skip_runs: int) -> tuple[dict[str, KernelTiming], int, float]:
    """Per-kernel time over the runs after the first ``skip_runs``; returns (timings, runs, mean run µs)."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"), key=lambda e: e["ts"])
    kept = runs[skip_runs:]
    if not kept:
        raise AnalyzerError("the profile trace holds no timed runs")
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in kept]
    timings: dict[str, KernelTiming] = {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        if not any(lo <= e["ts"] <= hi for lo, hi in windows):
            continue
        name = e["name"][: -len("_kernel_time")]
        args = e.get("args", {})
        timing = timings.setdefault(name, KernelTiming(args.get("op_name", "?"), order=len(timings)))
        timing.total_us += e["dur"]
        timing.calls += 1
        timing.bytes = trace_bytes(args.get("input_type_shape")) + trace_bytes(args.get("output_type_shape"))
    return timings, len(kept), float(np.mean([e["dur"] for e in kept]))


# ---- joining the optimized graph to the original ----


@dataclass
class _Graph:
    node_ops: dict[str, str]
    node_inputs: dict[str, list[str]]
    node_outputs: dict[str, list[str]]
    producer: dict[str, str]  # tensor -> node
    tensors: set[str]


def _graph_from(nodes: Iterable[tuple[str, str, Iterable[str], Iterable[str]]], boundary: Iterable[str] = ()) -> _Graph:
    """A :class:`_Graph` from (name, op type, input tensors, output tensors); ``boundary``: the graph's own
    input and output tensors. Empty names (omitted optional inputs) are dropped."""
    ops, ins, outs, producer, tensors = {}, {}, {}, {}, set(boundary)
    for name, op_type, inputs, outputs in nodes:
        ops[name] = op_type
        ins[name] = [t for t in inputs if t]
        outs[name] = [t for t in outputs if t]
        for t in outs[name]:
            producer[t] = name
        tensors.update(ins[name], outs[name])
    return _Graph(ops, ins, outs, producer, tensors)


def _graph_of_model(model: Any) -> _Graph:
    """The graph onnxruntime saved after its own optimizations."""
    graph = model.graph
    return _graph_from(
        ((n.name, n.op_type, n.input, n.output) for n in graph.node), [v.name for v in (*graph.input, *graph.output)]
    )


def _graph_of_report(report: Any) -> _Graph:
    """The original graph, as the analyzer's report lists it."""
    return _graph_from(
        (n.name, n.op_type, [t.name for t in n.inputs], [t.name for t in n.outputs]) for n in report.nodes
    )


def match_kernel(kernel: str, op_type: str, original: _Graph, optimized: _Graph | None) -> tuple[str, list[str]]:
    """(match kind, seed original nodes) for one kernel; see the module docstring for the order."""
    if op_type in INSERTED_OPS:
        return "inserted", []
    if kernel in original.node_ops:
        return ("name" if original.node_ops[kernel] == op_type else "fused"), [kernel]
    if optimized is not None and kernel in optimized.node_outputs:
        seeds = [original.producer[t] for t in optimized.node_outputs[kernel] if t in original.producer]
        if seeds:
            return "renamed", seeds
    stripped = ORT_NAME_SUFFIXES.sub("", kernel)
    if stripped in original.node_ops:
        return "renamed", [stripped]
    if stripped in original.producer:
        return "renamed", [original.producer[stripped]]
    return "inserted", []


def covered_nodes(seeds: list[str], kernel: str, original: _Graph, optimized: _Graph | None) -> list[str]:
    """Seeds, producers of the kernel's original outputs, and every original node upstream whose
    output vanished from the optimized graph (fused into this kernel)."""
    found: list[str] = []
    stack = list(seeds)
    if optimized is not None and kernel in optimized.node_outputs:
        stack += [original.producer[t] for t in optimized.node_outputs[kernel] if t in original.producer]
    while stack:
        node = stack.pop()
        if node in found:
            continue
        found.append(node)
        for t in original.node_inputs.get(node, []):
            if optimized is not None and t not in optimized.tensors and t in original.producer:
                stack.append(original.producer[t])
    return found


# ---- peaks ----


def measure_peaks(provider: str, threads: int | None, matmul_n: int | None = None, bandwidth_mib: int = 128) -> Peaks:
    """Achievable FLOP/s (fp32 MatMul n³; n = 1024 on CPU, 4096 on CUDA) and memory bandwidth (Add over
    a large tensor, read + write), each the best of a few runs under the same provider and thread count."""
    import onnx
    from onnx import TensorProto, helper

    def model(nodes, inputs, outputs, inits=()):
        graph = helper.make_graph(nodes, "peak", inputs, outputs, list(inits))
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10).SerializeToString()

    f = TensorProto.FLOAT
    n = matmul_n or (4096 if provider == "cuda" else 1024)
    matmul = model(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        [helper.make_tensor_value_info("a", f, [n, n]), helper.make_tensor_value_info("b", f, [n, n])],
        [helper.make_tensor_value_info("c", f, [n, n])],
    )
    elements = bandwidth_mib * (1 << 20) // 4
    add = model(
        [helper.make_node("Add", ["x", "one"], ["y"])],
        [helper.make_tensor_value_info("x", f, [elements])],
        [helper.make_tensor_value_info("y", f, [elements])],
        [onnx.numpy_helper.from_array(np.ones(1, np.float32), "one")],
    )
    rng = np.random.default_rng(0)

    def best(model_bytes, feeds, repeats=5):
        info = runtime.create_session(model_bytes, provider=provider, threads=threads)
        # inputs and outputs bound on the device: no host copies in the timing (on CUDA they would dominate)
        device = "cuda" if info.provider == runtime.CUDA else "cpu"
        run_once = IoBoundRun(info.session, feeds, device)
        run_once()
        return min(run_once() for _ in range(repeats))

    mat = rng.standard_normal((n, n)).astype(np.float32)
    t_matmul = best(matmul, {"a": mat, "b": mat})
    t_add = best(add, {"x": np.zeros(elements, np.float32)})
    return Peaks(
        gflops=2 * n**3 / t_matmul / 1e9,
        bandwidth_gbs=2 * elements * 4 / t_add / 1e9,
        source=f"measured on this machine ({provider}: MatMul {n}x{n}x{n} fp32; Add over {bandwidth_mib} MiB, read+write)",
    )


# ---- the command's work ----


def _sort_key(sort: str):
    if sort == "time":
        return lambda r: -r.time_s
    if sort == "efficiency":
        return lambda r: (r.efficiency is None, r.efficiency if r.efficiency is not None else 0.0, -r.time_s)
    # rate: slowest per MAC first (lowest GMAC/s); kernels without MACs after, longest first
    return lambda r: (r.macs == 0, r.gmacs_per_s if r.macs else 0.0, -r.time_s)


@dataclass
class _Trace:
    """What the profiled runs left: the runner (session and inputs), onnxruntime's trace events, how many
    runs were warm-up, and the graph onnxruntime really ran (None when it wrote none)."""

    runner: Runner
    warmup_runs: int
    events: list[dict[str, Any]]
    optimized: _Graph | None


def _profiled_runs(model: str | os.PathLike, options: ProfileOptions, scratch: Path) -> _Trace:
    """Warm up and run ``model`` under onnxruntime's profiler, as bench runs it; read the trace and the
    optimized graph back from ``scratch`` before the caller removes it."""
    import onnx

    bench = options.bench
    optimized_path = scratch / "optimized.onnx"
    # plain session.run: the profile times what onnxruntime runs for numpy inputs, host copies included
    runner = prepare(
        model, bench, bind_inputs=False, enable_profiling=True, profile_prefix=str(scratch / "ort-trace"),
        graph_optimization=options.optimization, optimized_model_path=optimized_path,
    )
    # prepare() made the first warm-up run; the profiler recorded it too
    warmup_runs = 1 + len(warm_up(runner, bench.warmup_runs(runner.on_cuda) - 1, bench.time_budget))
    measure(runner, iters=options.max_runs, time_budget=bench.time_budget, max_iters=options.max_runs)
    trace_path = Path(runner.info.session.end_profiling())
    try:
        events = json.loads(trace_path.read_text())
    finally:
        trace_path.unlink(missing_ok=True)  # the temporary directory goes too; this covers a prefix elsewhere
    optimized = _graph_of_model(onnx.load(str(optimized_path), load_external_data=False)) if optimized_path.exists() else None
    return _Trace(runner, warmup_runs, events, optimized)


def _kernel_rows(
    timings: dict[str, KernelTiming], runs: int, total_us: float, report: Any, optimized: _Graph | None, peaks: Peaks
) -> tuple[list[KernelRow], set[str]]:
    """One row per kernel, in the trace's order, and the original nodes the rows claimed (each node once)."""
    original = _graph_of_report(report)
    node_costs = {n.name: n for n in report.nodes}
    original_order = {n.name: i for i, n in enumerate(report.nodes)}
    rows, claimed = [], set()
    for kernel, timing in sorted(timings.items(), key=lambda kv: kv[1].order):
        kind, seeds = match_kernel(kernel, timing.op_type, original, optimized)
        covers = [n for n in covered_nodes(seeds, kernel, original, optimized) if n not in claimed] if seeds else []
        claimed.update(covers)
        covers.sort(key=original_order.get)
        if kind in ("name", "renamed") and len(covers) > 1:
            kind = "fused"
        rows.append(_row(kernel, timing, kind, covers, node_costs, runs, total_us, peaks))
    return rows, claimed


def _notes(info: runtime.SessionInfo, rows: list[KernelRow], not_timed: list[dict[str, Any]]) -> list[str]:
    notes = []
    if info.fell_back:
        notes.append(runtime.fallback_note(info.provider))
    inserted = [r.kernel for r in rows if r.match == "inserted"]
    if inserted:
        notes.append(f"{len(inserted)} kernel(s) match no original node (inserted by onnxruntime): {', '.join(inserted[:8])}")
    untimed_compute = [d["name"] for d in not_timed if d["macs"]]
    if untimed_compute:
        notes.append(f"compute nodes without a kernel of their own: {', '.join(untimed_compute[:8])}")
    return notes


def profile(model: str | os.PathLike, options: ProfileOptions | None = None) -> ProfileResult:
    """Profile ``model`` with onnxruntime and join per-kernel times with the analyzer's node costs."""
    import analyzer

    options = options or ProfileOptions()
    options.validate()
    with tempfile.TemporaryDirectory(prefix="analyzer-profile-") as tmp:
        trace = _profiled_runs(model, options, Path(tmp))
    info = trace.runner.info
    timings, runs, model_run_us = parse_trace(trace.events, skip_runs=trace.warmup_runs)
    input_shapes = {k: list(v.shape) for k, v in trace.runner.feeds.items()}
    report = analyzer.inspect(model, input_shapes=input_shapes)
    peaks = _peaks(options, info)
    total_us = sum(t.total_us for t in timings.values()) / runs
    rows, claimed = _kernel_rows(timings, runs, total_us, report, trace.optimized, peaks)
    rows.sort(key=_sort_key(options.sort))
    not_timed = [{"name": n.name, "op_type": n.op_type, "macs": n.macs} for n in report.nodes if n.name not in claimed]
    notes = _notes(info, rows, not_timed)
    return ProfileResult(
        model=runtime.model_label(model),
        provider=info.provider,
        fell_back=info.fell_back,
        optimization=options.optimization,
        runs=runs,
        warmup_runs=trace.warmup_runs,
        input_shapes=input_shapes,
        model_run_s=model_run_us / 1e6,
        kernel_total_s=total_us / 1e6,
        rows=rows[: options.top] if options.top else rows,
        not_timed=not_timed,
        peaks=peaks,
        machine=machine_info(info.provider == runtime.CUDA),
        notes=notes,
    )


def _peaks(options: ProfileOptions, info: runtime.SessionInfo) -> Peaks:
    if options.peak_gflops and options.bandwidth_gbs:
        return Peaks(options.peak_gflops, options.bandwidth_gbs, "given (--peak-gflops, --bandwidth)")
    provider = "cuda" if info.provider == runtime.CUDA else "cpu"
    measured = measure_peaks(provider, options.bench.threads)
    return Peaks(
        options.peak_gflops or measured.gflops,
        options.bandwidth_gbs or measured.bandwidth_gbs,
        measured.source if not (options.peak_gflops or options.bandwidth_gbs) else measured.source + ", partly given",
    )


def _row(kernel, timing, kind, covers, node_costs, runs, total_us, peaks) -> KernelRow:
    time_s = timing.total_us / runs / 1e6
    macs = sum(node_costs[n].macs for n in covers)
    flops = sum(node_costs[n].flops for n in covers)
    bound = max(flops / (peaks.gflops * 1e9), timing.bytes / (peaks.bandwidth_gbs * 1e9))
    positive = time_s > 0
    return KernelRow(
        kernel=kernel,
        op_type=timing.op_type,
        match=kind,
        covers=covers,
        covered_ops=[node_costs[n].op_type for n in covers],
        time_s=time_s,
        share=(timing.total_us / runs) / total_us if total_us else 0.0,
        macs=macs,
        flops=flops,
        bytes=timing.bytes,
        gmacs_per_s=macs / time_s / 1e9 if positive and macs else None,
        gb_per_s=timing.bytes / time_s / 1e9 if positive else None,
        bound_s=bound,
        efficiency=bound / time_s if positive and bound else None,
    )


# ---- rendering ----


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _row_cells(r: KernelRow) -> list[str]:
    covers = ", ".join(r.covers) if r.covers else "(none)"
    return [
        r.kernel, r.op_type, r.match, covers, units.ms(r.time_s), units.percent(r.share), units.count(r.macs),
        _fmt(r.gmacs_per_s, ".2f"), _fmt(r.gb_per_s, ".2f"), _fmt(r.efficiency and 100 * r.efficiency, ".1f"),
    ]


HEADERS = ["kernel", "op", "match", "original nodes", "ms", "share", "MACs", "GMAC/s", "GB/s", "roofline %"]


def _header_lines(result: ProfileResult) -> list[str]:
    p = result.peaks
    return [
        f"{result.model}: {result.runs} profiled runs after {result.warmup_runs} warm-up, provider {result.provider}, "
        f"onnxruntime optimization {result.optimization}, inputs "
        + "; ".join(f"{k} {v}" for k, v in result.input_shapes.items()),
        f"run {units.ms(result.model_run_s)} ms, kernels {units.ms(result.kernel_total_s)} ms; "
        f"peaks {p.gflops:.1f} GFLOP/s, {p.bandwidth_gbs:.1f} GB/s ({p.source})",
    ]


def render_table(result: ProfileResult) -> str:
    cells = [HEADERS] + [_row_cells(r) for r in result.rows]
    widths = [min(max(len(row[i]) for row in cells), 48) for i in range(len(HEADERS))]
    lines = _header_lines(result) + [""]
    for row in cells:
        lines.append("  ".join(c[:48].ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    if result.not_timed:
        lines += ["", "original nodes with no kernel of their own (constant-folded or eliminated): "
                  + ", ".join(d["name"] for d in result.not_timed)]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def render_markdown(result: ProfileResult) -> str:
    lines = [f"### Profile of `{result.model}`", ""] + [f"{line}  " for line in _header_lines(result)] + [""]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * 4 + "---:|" * (len(HEADERS) - 4)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in _row_cells(r)) + " |" for r in result.rows]
    if result.not_timed:
        lines += ["", "Not timed (constant-folded or eliminated): " + ", ".join(f"`{d['name']}`" for d in result.not_timed)]
    lines += [""] + [f"> **Note:** {n}" for n in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def render_json(result: ProfileResult) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"
