"""The inspection pipeline: load → shape inference → networkx graph → per-node annotation → report.

Each stage is one function call below; renderers read the :class:`~analyzer.report.Report` it returns.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from analyzer.errors import AnalyzerError, StrictModeError
from analyzer.report import (
    ModelInfo,
    NodeReport,
    OpTypeSummary,
    Report,
    TensorInfo,
    Totals,
    UnsupportedOp,
)

# BatchNormalization's running statistics are buffers, not trainable parameters (torch counts them so too):
# they count in weight bytes, not in params.
NON_TRAINABLE_INPUTS = {("", "BatchNormalization"): {3, 4}}
# int64 initializers are shapes, axes and indices (Reshape targets, Slice bounds), and rank-0 ones are
# scalar constants (an LRN's alpha, a Pow's exponent): neither is a weight.
INDEX_TYPES = {7}  # onnx.TensorProto.INT64


def _is_weight(tensor) -> bool:
    return (
        tensor is not None
        and tensor.is_initializer
        and tensor.elem_type not in INDEX_TYPES
        and tensor.shape != ()
    )


def inspect(
    source: Any,
    *,
    dims: dict[str, int] | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    batch: int | None = None,
    optimizer: str = "sgd",
    strict: bool = False,
    timings: dict[str, float] | None = None,
) -> Report:
    """Analyze an ONNX model given as a path, bytes or ``onnx.ModelProto`` (never modified).

    ``dims`` binds symbolic dims by name, ``input_shapes`` overrides input shapes, ``batch`` binds
    symbolic batch dims and sets the batch of the training-memory estimate. ``strict`` turns ops
    without a counting rule and unknown shapes into a :class:`StrictModeError`.
    """
    from analyzer.graph import build_graph
    from analyzer.loader import load_model
    from analyzer.shapes import Binding, apply_binding, bind_remaining_input_dims, has_symbolic_inputs, infer_shapes

    clock = _Clock(timings)
    loaded = load_model(_serialized_if_proto(source))
    clock.lap("load")
    model = loaded.proto
    if loaded.proto is source:
        import onnx

        # the caller's ModelProto must stay untouched: bind on a copy
        model = onnx.ModelProto()
        model.CopyFrom(loaded.proto)
    warnings = list(loaded.warnings)
    warnings += apply_binding(model, Binding(dims or {}, input_shapes or {}, batch))
    symbolic, shape_warnings = infer_shapes(model)
    warnings += shape_warnings
    assumed: dict[str, int] = {}
    inferred = symbolic
    if has_symbolic_inputs(model):
        # counts come from concrete shapes (data propagation resolves dynamic Reshape chains);
        # the symbolic run supplies the shapes the report shows
        concrete_model, assumed = bind_remaining_input_dims(model)
        inferred, concrete_warnings = infer_shapes(concrete_model)
        warnings += [w for w in concrete_warnings if w not in shape_warnings]
    clock.lap("shape_inference")
    G = build_graph(inferred, display=symbolic if inferred is not symbolic else None)
    G.graph["resolver"].assumed.update(assumed)
    warnings += G.graph["warnings"]
    clock.lap("graph")
    report = annotate(G, inferred, loaded, warnings, batch=batch, optimizer=optimizer)
    clock.lap("annotate")
    if strict:
        problems = [f"{u.op_type} ({u.count}x)" for u in report.unsupported_ops]
        problems += [w for w in report.warnings if w.startswith("cost unknown")]
        if problems:
            raise StrictModeError("strict mode: no counting rule or unknown shape for " + "; ".join(problems))
    return report


def _serialized_if_proto(source: Any) -> Any:
    """A ModelProto as bytes, so the loader strips its weight payloads like a file's.

    Shape inference would otherwise copy every weight byte through each of its runs (seconds for
    AlexNet). Over 2 GB a proto cannot be serialized; it is then analyzed as it is.
    """
    if hasattr(source, "SerializeToString") and hasattr(source, "graph"):
        try:
            return source.SerializeToString()
        except ValueError:
            return source
    return source


class _Clock:
    def __init__(self, sink: dict[str, float] | None) -> None:
        self.sink = sink
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        if self.sink is not None:
            self.sink[stage] = now - self.last
        self.last = now


def _tensor_info(view) -> TensorInfo:
    shape = None if view.symbolic_shape is None else list(view.symbolic_shape)
    return TensorInfo(view.name, shape, view.dtype)


def annotate(G, model, loaded, warnings: list[str], *, batch: int | None, optimizer: str) -> Report:
    """Per-node params, MACs, FLOPs, bytes, liveness and receptive field; totals and summaries."""
    from analyzer.costs import node_cost, op_category
    from analyzer.memory import liveness, training_memory
    from analyzer.receptive_field import compute_receptive_fields
    from analyzer.subgraph_costs import subgraph_cost
    from analyzer.views import ShapeUnknown

    order: list[int] = G.graph["order"]
    weights = G.graph["weights"]
    nodes: dict[int, NodeReport] = {}
    unsupported: dict[tuple[str, str], list[str]] = defaultdict(list)
    unknown_cost: list[str] = []
    unknown_size: set[str] = set()
    # activation tensors (graph inputs and node outputs that are not weight aliases) -> bytes, for liveness
    activation_sizes: dict[str, int] = {n: v.nbytes for n, v in G.graph["inputs"].items() if v.nbytes is not None}
    node_outputs: dict[int, list[str]] = {}
    used_weights: set[str] = set()
    trainable: set[str] = set()

    for i in order:
        view = G.nodes[i]["view"]
        skip = NON_TRAINABLE_INPUTS.get((view.domain, view.op_type), set())
        node_weights: dict[str, Any] = {}
        params = 0
        forwards_weight = view.op_type == "Identity" and all(_is_weight(t) for t in view.inputs)
        for k, t in enumerate(view.inputs):
            origin = (t.source or t.name) if t is not None else None
            if forwards_weight or not _is_weight(t) or origin in node_weights:
                continue  # a weight read twice by one node counts once; an Identity of a weight is an alias
            node_weights[origin] = t
            if k not in skip:
                params += t.numel or 0
                trainable.add(origin)
        used_weights.update(node_weights)
        report = NodeReport(
            name=view.name,
            op_type=view.op_type,
            domain=view.domain,
            module=G.nodes[i]["module"],
            inputs=[_tensor_info(t) for t in view.inputs if t is not None],
            outputs=[_tensor_info(t) for t in view.outputs if t is not None],
            params=params,
            weight_bytes=sum(t.nbytes or 0 for t in node_weights.values()),
            category=op_category(view),
        )
        try:
            cost = subgraph_cost(G.nodes[i]["proto"], G.graph["factory"], warnings, unsupported)
            if cost is None:
                cost = node_cost(view)
            if cost is None:
                report.supported = False
                unsupported[(view.domain, view.op_type)].append(view.name)
            else:
                report.macs, report.flops = cost.macs, cost.flops
        except (ShapeUnknown, AnalyzerError) as e:
            # an unknown or inconsistent shape costs this node its count, not the whole report
            unknown_cost.append(f"{view.name} ({e})")
        node_outputs[i] = [out.name for out in view.outputs if out is not None]
        for out in view.outputs:
            if out is None:
                continue
            if out.nbytes is None:
                unknown_size.add(out.name)
                continue
            report.activation_bytes += out.nbytes
            if not out.is_initializer:
                activation_sizes[out.name] = out.nbytes
        nodes[i] = report

    if unknown_cost:
        warnings.append(f"cost unknown (unknown or inconsistent shapes) for {len(unknown_cost)} node(s), counted as 0: " + "; ".join(unknown_cost[:5]))
    if unknown_size:
        warnings.append(f"{len(unknown_size)} value(s) have unknown shapes and count 0 bytes: " + ", ".join(sorted(unknown_size)[:5]))
    unused = {n for n, t in weights.items() if _is_weight(t)} - used_weights
    if unused:
        warnings.append(f"{len(unused)} initializer(s) are used by no node and are not counted")

    # memory by liveness
    node_inputs = {i: _consumed(G, i) for i in order}
    live = liveness(order, node_inputs, node_outputs, activation_sizes, list(G.graph["inputs"]), G.graph["outputs"])
    for k, i in enumerate(order):
        nodes[i].live_bytes = live.live_after[k]

    fields, rf_warnings = compute_receptive_fields(G)
    warnings += rf_warnings
    for i, rf in fields.items():
        if i in nodes:
            nodes[i].receptive_field = rf

    ordered = [nodes[i] for i in order]
    totals = Totals(
        params=sum(weights[n].numel or 0 for n in trainable),
        macs=sum(n.macs for n in ordered),
        flops=sum(n.flops for n in ordered),
        weight_bytes=sum(weights[n].nbytes or 0 for n in used_weights),
        activation_bytes=sum(n.activation_bytes for n in ordered),
        peak_memory_bytes=live.peak_bytes,
        peak_memory_node=None if live.peak_position is None else ordered[live.peak_position].name,
        nodes=len(ordered),
    )
    analyzed_batch = _analyzed_batch(G)
    training = training_memory(
        batch=batch or analyzed_batch,
        analyzed_batch=analyzed_batch,
        optimizer=optimizer,
        weight_bytes=totals.weight_bytes,
        trainable_bytes=sum(weights[n].nbytes or 0 for n in trainable),
        activation_bytes=totals.activation_bytes,
    )
    totals.training_memory_bytes = training.total

    by_op: dict[str, OpTypeSummary] = {}
    for n in ordered:
        s = by_op.setdefault(n.op_type, OpTypeSummary())
        s.count += 1
        s.params += n.params
        s.macs += n.macs
        s.flops += n.flops
    resolver = G.graph["resolver"]
    for name, view in G.graph["inputs"].items():
        spatial = [d for d in (view.symbolic_shape or ())[2:] if not isinstance(d, int)]
        if spatial:
            warnings.append(
                f"input {name!r} has symbolic spatial dims {spatial}, evaluated as 1: bind them with "
                "--input-shape or --dim for meaningful MACs and receptive fields"
            )
    if resolver.anonymous:
        warnings.append(f"{resolver.anonymous} value(s) have dims shape inference could not determine: their shapes count as unknown")
    return Report(
        model=_model_info(model, loaded.path, G),
        totals=totals,
        nodes=ordered,
        by_op_type=dict(sorted(by_op.items(), key=lambda kv: -kv[1].macs)),
        training=training,
        assumed_dims=dict(sorted(resolver.assumed.items())),
        unsupported_ops=[
            UnsupportedOp(op, domain, len(names), names)
            for (domain, op), names in sorted(unsupported.items(), key=lambda kv: -len(kv[1]))
        ],
        warnings=warnings,
    )


def _consumed(G, i: int) -> list[str]:
    names = [t.name for t in G.nodes[i]["view"].inputs if t is not None]
    for u in G.predecessors(i):
        names.extend(G.edges[u, i]["tensors"])  # includes names read inside If/Loop bodies
    return names


def _analyzed_batch(G) -> int:
    for view in G.graph["inputs"].values():
        if view.shape:
            return view.shape[0]
    return 1


def _model_info(model, path: Path | None, G) -> ModelInfo:
    inputs = G.graph["inputs"]
    factory = G.graph["factory"]
    return ModelInfo(
        path=None if path is None else str(path),
        ir_version=model.ir_version,
        opsets={(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        producer=" ".join(p for p in (model.producer_name, model.producer_version) if p),
        inputs=[_tensor_info(v) for v in inputs.values()],
        outputs=[_tensor_info(factory.tensor(n)) for n in G.graph["outputs"]],
    )
