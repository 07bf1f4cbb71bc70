"""The inspection pipeline: load → shape inference → networkx graph → report.

:func:`inspect` runs the stages, one call each; :func:`build_report` is the last one: the per-node
params, MACs, FLOPs, bytes and receptive field, the model totals and the warnings. Renderers read
the :class:`~analyzer.report.Report` it returns.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.clock import StageClock
from analyzer.errors import MALFORMED_ERRORS, AnalyzerError, StrictModeError
from analyzer.report import (
    ModelInfo,
    NodeReport,
    OpTypeSummary,
    Report,
    TensorInfo,
    Totals,
    TrainingMemory,
    UnsupportedOp,
)

# BatchNormalization's running statistics are buffers, not trainable parameters (torch counts them so too):
# they count in weight bytes, not in params. So are the recurrent ops' sequence_lens and initial states
# (torch's dynamo exporter stores a zero initial_h / initial_c as an initializer) and Attention's mask
# and past key/value.
NON_TRAINABLE_INPUTS = {
    ("", "BatchNormalization"): {3, 4},
    ("", "LSTM"): {4, 5, 6},
    ("", "GRU"): {4, 5},
    ("", "RNN"): {4, 5},
    ("", "Attention"): {3, 4, 5},
    # and its quantization scales and zero points
    ("com.microsoft", "DynamicQuantizeLSTM"): {4, 5, 6, 8, 9, 10, 11},
}
# Ops that only move or reshape their data input: a constant read through them is used where their output
# is read (torch's legacy exporter expands a zero Constant into an LSTM's initial_h this way).
DATA_MOVEMENT_OPS = {"Expand", "Tile", "Reshape", "Unsqueeze", "Squeeze", "Cast", "CastLike", "Identity",
                     "Transpose", "Flatten", "Concat"}
# int64 initializers are shapes, axes and indices (Reshape targets, Slice bounds), and rank-0 ones are
# scalar constants (an LRN's alpha, a Pow's exponent): neither is a weight.
INDEX_TYPES = {7}  # onnx.TensorProto.INT64


def _is_weight(tensor) -> bool:
    """Whether a node's input counts as its params and weight bytes: a constant (an initializer, a Constant
    node's value, an Identity of either: ``TensorView.is_initializer``, decided by
    :class:`~analyzer.graph.ViewFactory` ``weights``) that is neither an index tensor nor a scalar."""
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
    input_values: dict[str, Any] | None = None,
) -> Report:
    """Analyze an ONNX model given as a path, bytes or ``onnx.ModelProto`` (never modified).

    ``dims`` binds symbolic dims by name, ``input_shapes`` overrides input shapes, ``batch`` binds
    symbolic batch dims and sets the batch of the training-memory estimate. ``input_values`` binds the
    value of small inputs (``{"sr": 16000}``; a list for a 1-D input): what depends on them is folded, an
    ``If`` on them counts the branch they select. ``strict`` turns ops
    without a counting rule and unknown shapes into a :class:`StrictModeError`. ``timings``, when
    given, receives the seconds of each stage: load, shape_inference, graph, report.
    """
    from analyzer.shapes import Binding

    clock = StageClock()
    try:
        binding = Binding(dims or {}, input_shapes or {}, batch, input_values or {})
        report = _run_stages(source, binding, optimizer, clock)
    finally:
        if timings is not None:
            timings.update(clock.laps)  # this run's laps: a dict reused over runs holds the last run's
    if strict:
        problems = [f"{u.op_type} ({u.count}x)" for u in report.unsupported_ops]
        problems += [w for w in report.warnings if w.startswith("cost unknown")]
        if problems:
            raise StrictModeError("strict mode: no counting rule or unknown shape for " + "; ".join(problems))
    return report


def _run_stages(source: Any, binding, optimizer: str, clock: StageClock) -> Report:
    from analyzer.graph import build_graph
    from analyzer.loader import load_model, sparse_as_dense

    loaded = load_model(_serialized_if_proto(source))
    clock.lap("load")
    model = loaded.proto
    if loaded.proto is source:
        import onnx

        # the caller's ModelProto must stay untouched: bind on a copy
        model = onnx.ModelProto()
        model.CopyFrom(loaded.proto)
    warnings = list(loaded.warnings)
    # the analysis reads sparse initializers as the dense weights onnxruntime makes of them
    warnings += sparse_as_dense(model.graph, str(loaded.path) if loaded.path else "the model")
    shown, counted, assumed, folded = _bound_shapes(model, binding, warnings)
    clock.lap("shape_inference")
    G = build_graph(counted, display=shown if counted is not shown else None, values=folded.values)
    G.graph["resolver"].assumed.update(assumed)
    warnings += G.graph["warnings"]
    clock.lap("graph")
    report = build_report(G, counted, loaded, warnings, batch=binding.batch, optimizer=optimizer)
    report.folded_values = folded.folded
    report.model.input_values = {name: value.tolist() for name, value in folded.bound.items()}
    clock.lap("report")
    return report


def _bound_shapes(model, binding, warnings: list[str]) -> tuple[Any, Any, dict[str, int], Any]:
    """(model with the shapes the report shows, model with the shapes the counts use, {dim: value assumed},
    the shape engine's :class:`~analyzer.shape_engine.FoldResult`).

    Both models are the same unless symbolic input dims remain after the binding. The counted one has
    concrete inputs; what onnx shape inference leaves open in it the shape engine finishes.
    """
    from analyzer.shape_engine import complete_shapes
    from analyzer.shapes import (
        apply_binding,
        bind_input_values,
        bind_remaining_input_dims,
        has_symbolic_inputs,
        infer_shapes,
    )

    warnings += apply_binding(model, binding)
    bound = bind_input_values(model, binding.input_values)
    symbolic, shape_warnings = infer_shapes(model)
    warnings += shape_warnings
    if not has_symbolic_inputs(model):
        folded = complete_shapes(symbolic, bound)
        warnings += _folded_warnings(folded)
        return symbolic, symbolic, {}, folded
    # counts come from concrete shapes (data propagation resolves dynamic Reshape chains);
    # the symbolic run supplies the shapes the report shows
    concrete_model, assumed = bind_remaining_input_dims(model)
    concrete, concrete_warnings = infer_shapes(concrete_model)
    warnings += [w for w in concrete_warnings if w not in shape_warnings]
    folded = complete_shapes(concrete, bound)
    warnings += _folded_warnings(folded)
    return symbolic, concrete, assumed, folded


def _folded_warnings(folded) -> list[str]:
    """One line naming the values the shape engine computed (the report lists them all)."""
    if not folded.folded:
        return []
    names = folded.folded
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return [f"{len(names)} value(s) that onnx shape inference left open were computed from the input shapes "
            f"(all listed as folded_values in the JSON report): {', '.join(names[:5])}{more}"]


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


def _tensor_info(view) -> TensorInfo:
    shape = None if view.symbolic_shape is None else list(view.symbolic_shape)
    return TensorInfo(view.name, shape, view.dtype)


# ---- the report ----


@dataclass
class _Tally:
    """What the per-node pass gathers for the model-wide figures and warnings."""

    # activation tensors (graph inputs and node outputs that are not weight aliases) -> bytes, for liveness
    activation_sizes: dict[str, int]
    node_outputs: dict[int, list[str]] = field(default_factory=dict)
    used_weights: set[str] = field(default_factory=set)
    trainable: set[str] = field(default_factory=set)
    # constants whose every use is a non-trainable input (an initial state, a mask): weight bytes, no params
    state_only: set[str] = field(default_factory=set)
    unsupported: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    unknown_cost: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)  # nodes no runtime would run (analyzer.consistency)
    unknown_size: set[str] = field(default_factory=set)


def build_report(G, model, loaded, warnings: list[str], *, batch: int | None, optimizer: str) -> Report:
    """Per-node params, MACs, FLOPs, bytes, liveness and receptive field; totals and summaries.

    ``warnings`` (the earlier stages') is extended in place and becomes the report's.
    """
    order: list[int] = G.graph["order"]
    tally = _Tally({n: v.nbytes for n, v in G.graph["inputs"].items() if v.nbytes is not None})
    tally.state_only = _state_only_constants(G)
    nodes = {i: _node_report(G, i, tally, warnings) for i in order}
    warnings += _tally_warnings(tally, G.graph["weights"])
    ordered = [nodes[i] for i in order]
    live = _add_liveness(G, ordered, tally)
    warnings += _add_receptive_fields(G, nodes)
    totals = _totals(G.graph["weights"], ordered, tally, live)
    training = _training_memory(G, totals, tally, batch, optimizer)
    totals.training_memory_bytes = training.total
    warnings += _symbolic_input_warnings(G)
    resolver = G.graph["resolver"]
    return Report(
        model=_model_info(model, loaded.path, G),
        totals=totals,
        nodes=ordered,
        by_op_type=_by_op_type(ordered),
        training=training,
        assumed_dims=dict(sorted(resolver.assumed.items())),
        unsupported_ops=[
            UnsupportedOp(op, domain, len(names), names)
            for (domain, op), names in sorted(tally.unsupported.items(), key=lambda kv: -len(kv[1]))
        ],
        warnings=warnings,
    )


def _node_report(G, i: int, tally: _Tally, warnings: list[str]) -> NodeReport:
    """One node's params, weight bytes, cost and output bytes; what the totals need goes to ``tally``."""
    from analyzer.costs import op_category

    view = G.nodes[i]["view"]
    node_weights, params = _node_weights(view, tally)
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
    _count(G, i, report, tally, warnings)
    _count_output_bytes(view, report, tally)
    tally.node_outputs[i] = [out.name for out in view.outputs if out is not None]
    return report


def _node_weights(view, tally: _Tally) -> tuple[dict[str, Any], int]:
    """({initializer: tensor} the node reads, its trainable params)."""
    skip = NON_TRAINABLE_INPUTS.get((view.domain, view.op_type), set())
    node_weights: dict[str, Any] = {}
    params = 0
    forwards_weight = view.op_type == "Identity" and all(_is_weight(t) for t in view.inputs)
    for k, t in enumerate(view.inputs):
        origin = (t.source or t.name) if t is not None else None
        if forwards_weight or not _is_weight(t) or origin in node_weights:
            continue  # a weight read twice by one node counts once; an Identity of a weight is an alias
        node_weights[origin] = t
        if k not in skip and origin not in tally.state_only:
            params += t.numel or 0
            tally.trainable.add(origin)
    tally.used_weights.update(node_weights)
    return node_weights, params


def _state_only_constants(G) -> set[str]:
    """Constants (by origin) that reach only non-trainable inputs (:data:`NON_TRAINABLE_INPUTS`), directly or
    through :data:`DATA_MOVEMENT_OPS`: torch does not count an LSTM's zero initial state as a parameter, however
    the exporter stores it. A constant read anywhere else (a weight slot, a graph output, a subgraph body) is
    a parameter as before."""
    readers: dict[str, list[tuple[int, int]]] = defaultdict(list)
    constants: dict[str, set[str]] = defaultdict(set)  # origin -> the names it is read under
    for i in G.nodes:
        view = G.nodes[i]["view"]
        for k, t in enumerate(view.inputs):
            if t is not None:
                readers[t.name].append((i, k))
                if _is_weight(t):
                    constants[t.source or t.name].add(t.name)
        direct = {t.name for t in view.inputs if t is not None}
        for name in set(_consumed(G, i)) - direct:
            readers[name].append((i, -1))  # read inside an If/Loop body: a use we do not follow
    outputs = set(G.graph["outputs"])
    trainable_use: dict[str, bool] = {}

    def used_as_weight(name: str) -> bool:
        if name not in trainable_use:
            trainable_use[name] = True  # a cycle (never in a valid graph) stays a parameter
            trainable_use[name] = name in outputs or any(_trainable_read(G, i, k, used_as_weight)
                                                         for i, k in readers[name])
        return trainable_use[name]

    return {origin for origin, names in constants.items() if not any(used_as_weight(n) for n in names)}


def _trainable_read(G, i: int, k: int, used_as_weight) -> bool:
    """Whether node ``i`` reading its input ``k`` (-1: inside a body) uses the value as a parameter."""
    view = G.nodes[i]["view"]
    if k in NON_TRAINABLE_INPUTS.get((view.domain, view.op_type), set()):
        return False
    if view.domain in ("", "ai.onnx") and view.op_type in DATA_MOVEMENT_OPS and k >= 0:
        if k > 0 and view.op_type != "Concat":
            return False  # a shape, axes or repeats input
        return any(used_as_weight(t.name) for t in view.outputs if t is not None)
    return True


def _count(G, i: int, report: NodeReport, tally: _Tally, warnings: list[str]) -> None:
    """MACs and FLOPs of node ``i``: its subgraphs' when it has some, else its op's rule."""
    from analyzer.consistency import inconsistency
    from analyzer.costs import node_cost
    from analyzer.subgraph_costs import subgraph_cost
    from analyzer.views import ShapeUnknown

    view = G.nodes[i]["view"]
    problem = inconsistency(view, G.nodes[i]["proto"], view.opset)
    if problem is not None:  # no runtime runs it: not work to count
        tally.unknown_cost.append(f"{view.name} (inconsistent: {problem})")
        tally.inconsistent.append(f"{view.name}: {problem}")
        return
    try:
        cost = subgraph_cost(G.nodes[i]["proto"], G.graph["factory"], warnings, tally.unsupported)
        if cost is None:
            cost = node_cost(view)
        if cost is None:
            report.supported = False
            tally.unsupported[(view.domain, view.op_type)].append(view.name)
        else:
            report.macs, report.flops = cost.macs, cost.flops
    except (ShapeUnknown, AnalyzerError) as e:
        # an unknown or inconsistent shape costs this node its count, not the whole report
        tally.unknown_cost.append(f"{view.name} ({e})")
    except MALFORMED_ERRORS as e:  # attributes that contradict the shapes: bad input, named, not a crash
        tally.unknown_cost.append(f"{view.name} (malformed {view.op_type}: {type(e).__name__}: {e})")


def _count_output_bytes(view, report: NodeReport, tally: _Tally) -> None:
    """Activation bytes of the node's outputs; a constant output (a Constant node's value, an Identity of a
    weight) is a weight or a shape, counted where it is read, never as an activation."""
    for out in view.outputs:
        if out is None or out.is_initializer:
            continue
        if out.nbytes is None or (out.shape and min(out.shape) < 0):  # an impossible shape holds no bytes
            tally.unknown_size.add(out.name)
            continue
        report.activation_bytes += out.nbytes
        tally.activation_sizes[out.name] = out.nbytes


def _tally_warnings(tally: _Tally, weights: dict[str, Any]) -> list[str]:
    warnings = [f"inconsistent node, not counted (onnxruntime would refuse the model): {line}"
                for line in tally.inconsistent[:20]]
    if tally.unknown_cost:
        warnings.append(f"cost unknown (unknown or inconsistent shapes) for {len(tally.unknown_cost)} node(s), "
                        "counted as 0: " + "; ".join(tally.unknown_cost[:5]))
    if tally.unknown_size:
        warnings.append(f"{len(tally.unknown_size)} value(s) have unknown shapes and count 0 bytes: "
                        + ", ".join(sorted(tally.unknown_size)[:5]))
    unused = {n for n, t in weights.items() if _is_weight(t)} - tally.used_weights
    if unused:
        warnings.append(f"{len(unused)} initializer(s) are used by no node and are not counted")
    return warnings


def _add_liveness(G, ordered: list[NodeReport], tally: _Tally) -> Any:
    """Sets each node's ``live_bytes``; returns the :class:`~analyzer.memory.Liveness` (peak) of the run."""
    from analyzer.memory import liveness

    order = G.graph["order"]
    node_inputs = {i: _consumed(G, i) for i in order}
    live = liveness(order, node_inputs, tally.node_outputs, tally.activation_sizes, list(G.graph["inputs"]),
                    G.graph["outputs"])
    for node, live_bytes in zip(ordered, live.live_after):
        node.live_bytes = live_bytes
    return live


def _add_receptive_fields(G, nodes: dict[int, NodeReport]) -> list[str]:
    """Sets each node's ``receptive_field``; returns the analysis' warnings."""
    from analyzer.receptive_field import compute_receptive_fields

    fields, warnings = compute_receptive_fields(G)
    for i, rf in fields.items():
        if i in nodes:
            nodes[i].receptive_field = rf
    return warnings


def _totals(weights: dict[str, Any], ordered: list[NodeReport], tally: _Tally, live) -> Totals:
    """Model totals; the training-memory figure is set by the caller."""
    return Totals(
        params=sum(weights[n].numel or 0 for n in tally.trainable),
        macs=sum(n.macs for n in ordered),
        flops=sum(n.flops for n in ordered),
        weight_bytes=sum(weights[n].nbytes or 0 for n in tally.used_weights),
        activation_bytes=sum(n.activation_bytes for n in ordered),
        peak_memory_bytes=live.peak_bytes,
        peak_memory_node=None if live.peak_position is None else ordered[live.peak_position].name,
        nodes=len(ordered),
    )


def _training_memory(G, totals: Totals, tally: _Tally, batch: int | None, optimizer: str) -> TrainingMemory:
    from analyzer.memory import training_memory

    weights = G.graph["weights"]
    analyzed_batch = _analyzed_batch(G)
    return training_memory(
        batch=batch or analyzed_batch,
        analyzed_batch=analyzed_batch,
        optimizer=optimizer,
        weight_bytes=totals.weight_bytes,
        trainable_bytes=sum(weights[n].nbytes or 0 for n in tally.trainable),
        activation_bytes=totals.activation_bytes,
    )


def _by_op_type(ordered: list[NodeReport]) -> dict[str, OpTypeSummary]:
    """Per op type: node count and summed params, MACs and FLOPs, the heaviest in MACs first."""
    by_op: dict[str, OpTypeSummary] = {}
    for n in ordered:
        s = by_op.setdefault(n.op_type, OpTypeSummary())
        s.count += 1
        s.params += n.params
        s.macs += n.macs
        s.flops += n.flops
    return dict(sorted(by_op.items(), key=lambda kv: -kv[1].macs))


def _symbolic_input_warnings(G) -> list[str]:
    """Symbolic spatial dims evaluated as 1, and dims shape inference left anonymous."""
    warnings = []
    for name, view in G.graph["inputs"].items():
        spatial = [d for d in (view.symbolic_shape or ())[2:] if not isinstance(d, int)]
        if spatial:
            warnings.append(
                f"input {name!r} has symbolic spatial dims {spatial}, evaluated as 1: bind them with "
                "--input-shape or --dim for meaningful MACs and receptive fields"
            )
    anonymous = G.graph["resolver"].anonymous
    if anonymous:
        warnings.append(f"{anonymous} value(s) have dims shape inference could not determine: "
                        "their shapes count as unknown")
    return warnings


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
        analyzed_inputs={name: None if v.shape is None else list(v.shape) for name, v in inputs.items()},
    )
