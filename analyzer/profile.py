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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analyzer import runtime
from analyzer.bench import DEFAULT_WARMUP, BenchOptions, IoBoundRun, machine_info
from analyzer.errors import AnalyzerError

SORT_CHOICES = ("rate", "time", "efficiency")
INSERTED_OPS = {"ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost", "Transpose_nchwc"}
# ORT trace element type -> bytes
TRACE_DTYPE_BYTES = {
    "float": 4, "float16": 2, "bfloat16": 2, "double": 8, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
    "uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1, "bool": 1,
}
ORT_NAME_SUFFIXES = re.compile(r"(_nchwc|_token_\d+|_fused.*|/Fused\w*)$")
DEFAULT_PROFILE_ITERS = 20


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
            "schema": "analyzer.profile/1",
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


def _graph_of_model(model: Any) -> _Graph:
    ops, ins, outs, producer, tensors = {}, {}, {}, {}, set()
    for node in model.graph.node:
        ops[node.name] = node.op_type
        ins[node.name] = [t for t in node.input if t]
        outs[node.name] = [t for t in node.output if t]
        for t in outs[node.name]:
            producer[t] = node.name
        tensors.update(ins[node.name], outs[node.name])
    tensors.update(v.name for v in model.graph.input)
    tensors.update(v.name for v in model.graph.output)
    return _Graph(ops, ins, outs, producer, tensors)


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


@dataclass
class ProfileOptions:
    bench: BenchOptions = field(default_factory=BenchOptions)
    optimization: str = "all"  # onnxruntime graph optimization level, as bench runs it
    peak_gflops: float | None = None
    bandwidth_gbs: float | None = None
    sort: str = "rate"
    top: int | None = None

    def validate(self) -> None:
        self.bench.validate()
        if self.sort not in SORT_CHOICES:
            raise AnalyzerError(f"unknown sort {self.sort!r}; choose one of {', '.join(SORT_CHOICES)}")
        for name, value in (("--peak-gflops", self.peak_gflops), ("--bandwidth", self.bandwidth_gbs), ("--top", self.top)):
            if value is not None and not value > 0:
                raise AnalyzerError(f"{name} must be positive, got {value}")


def _sort_key(sort: str):
    if sort == "time":
        return lambda r: -r.time_s
    if sort == "efficiency":
        return lambda r: (r.efficiency is None, r.efficiency if r.efficiency is not None else 0.0, -r.time_s)
    # rate: slowest per MAC first (lowest GMAC/s); kernels without MACs after, longest first
    return lambda r: (r.macs == 0, r.gmacs_per_s if r.macs else 0.0, -r.time_s)


def profile(model: str | os.PathLike, options: ProfileOptions | None = None) -> ProfileResult:
    """Profile ``model`` with onnxruntime and join per-kernel times with the analyzer's node costs."""
    import onnx

    import analyzer

    options = options or ProfileOptions()
    options.validate()
    bench = options.bench
    with tempfile.TemporaryDirectory(prefix="analyzer-profile-") as tmp:
        optimized_path = Path(tmp) / "optimized.onnx"
        info = runtime.create_session(
            model,
            provider=bench.provider,
            threads=bench.threads,
            cuda_options={"cudnn_conv_algo_search": bench.cudnn_conv_algo_search},
            enable_profiling=True,
            profile_prefix=str(Path(tmp) / "ort-trace"),
            verbose=bench.verbose,
            graph_optimization=options.optimization,
            optimized_model_path=optimized_path,
        )
        session = info.session
        if bench.inputs_file:
            feeds = runtime.load_inputs(bench.inputs_file, session)
        else:
            feeds, _ = runtime.make_inputs(session, dims=bench.dims, batch=bench.batch, seed=bench.seed)
        warmup = bench.warmup if bench.warmup is not None else DEFAULT_WARMUP["cuda" if info.provider == runtime.CUDA else "cpu"]
        budget = bench.time_budget
        # --time: as many runs as fit (up to --max-iters); otherwise --iters (default 20)
        iters = bench.iters or (bench.max_iters if budget else DEFAULT_PROFILE_ITERS)
        warmup = max(warmup, 1)  # the first run always counts as warm-up
        try:
            start = time.perf_counter()
            for done in range(1, warmup + 1):
                session.run(None, feeds)
                if budget is not None and time.perf_counter() - start >= budget:
                    warmup = done
                    break
            start, runs = time.perf_counter(), 0
            while runs < iters:
                session.run(None, feeds)
                runs += 1
                if budget is not None and time.perf_counter() - start >= budget:
                    break
        except Exception as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise AnalyzerError(f"onnxruntime cannot run {Path(model).name} on these inputs: {first_line}") from e
        trace_path = Path(session.end_profiling())
        try:
            events = json.loads(trace_path.read_text())
        finally:
            trace_path.unlink(missing_ok=True)  # the temporary directory goes too; this covers a prefix elsewhere
        optimized = _graph_of_model(onnx.load(str(optimized_path), load_external_data=False)) if optimized_path.exists() else None
    timings, runs, model_run_us = parse_trace(events, skip_runs=warmup)
    input_shapes = {k: list(v.shape) for k, v in feeds.items()}
    report = analyzer.inspect(model, input_shapes=input_shapes)
    original = _graph_of_report(report)
    node_costs = {n.name: n for n in report.nodes}
    original_order = {n.name: i for i, n in enumerate(report.nodes)}
    peaks = _peaks(options, info)
    total_us = sum(t.total_us for t in timings.values()) / runs
    rows, claimed = [], set()
    for kernel, timing in sorted(timings.items(), key=lambda kv: kv[1].order):
        kind, seeds = match_kernel(kernel, timing.op_type, original, optimized)
        covers = [n for n in covered_nodes(seeds, kernel, original, optimized) if n not in claimed] if seeds else []
        claimed.update(covers)
        covers.sort(key=original_order.get)
        if kind in ("name", "renamed") and len(covers) > 1:
            kind = "fused"
        rows.append(_row(kernel, timing, kind, covers, node_costs, runs, total_us, peaks))
    rows.sort(key=_sort_key(options.sort))
    not_timed = [
        {"name": n.name, "op_type": n.op_type, "macs": n.macs}
        for n in report.nodes
        if n.name not in claimed
    ]
    notes = []
    if info.fell_back:
        notes.append(f"CUDA execution provider was listed but the session fell back to {info.provider}")
    inserted = [r.kernel for r in rows if r.match == "inserted"]
    if inserted:
        notes.append(f"{len(inserted)} kernel(s) match no original node (inserted by onnxruntime): {', '.join(inserted[:8])}")
    untimed_compute = [d["name"] for d in not_timed if d["macs"]]
    if untimed_compute:
        notes.append(f"compute nodes without a kernel of their own: {', '.join(untimed_compute[:8])}")
    if options.top:
        rows = rows[: options.top]
    return ProfileResult(
        model=Path(model).name,
        provider=info.provider,
        fell_back=info.fell_back,
        optimization=options.optimization,
        runs=runs,
        warmup_runs=warmup,
        input_shapes=input_shapes,
        model_run_s=model_run_us / 1e6,
        kernel_total_s=total_us / 1e6,
        rows=rows,
        not_timed=not_timed,
        peaks=peaks,
        machine=machine_info(info.provider == runtime.CUDA),
        notes=notes,
    )


def _graph_of_report(report: Any) -> _Graph:
    ops, ins, outs, producer, tensors = {}, {}, {}, {}, set()
    for node in report.nodes:
        ops[node.name] = node.op_type
        ins[node.name] = [t.name for t in node.inputs if t.name]
        outs[node.name] = [t.name for t in node.outputs if t.name]
        for t in outs[node.name]:
            producer[t] = node.name
        tensors.update(ins[node.name], outs[node.name])
    return _Graph(ops, ins, outs, producer, tensors)


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
    from analyzer import units

    covers = ", ".join(r.covers) if r.covers else "(none)"
    return [
        r.kernel, r.op_type, r.match, covers, f"{r.time_s * 1e3:.3f}", units.percent(r.share), units.count(r.macs),
        _fmt(r.gmacs_per_s, ".2f"), _fmt(r.gb_per_s, ".2f"), _fmt(r.efficiency and 100 * r.efficiency, ".1f"),
    ]


HEADERS = ["kernel", "op", "match", "original nodes", "ms", "share", "MACs", "GMAC/s", "GB/s", "roofline %"]


def _header_lines(result: ProfileResult) -> list[str]:
    p = result.peaks
    return [
        f"{result.model}: {result.runs} profiled runs after {result.warmup_runs} warm-up, provider {result.provider}, "
        f"onnxruntime optimization {result.optimization}, inputs "
        + "; ".join(f"{k} {v}" for k, v in result.input_shapes.items()),
        f"run {result.model_run_s * 1e3:.3f} ms, kernels {result.kernel_total_s * 1e3:.3f} ms; "
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
