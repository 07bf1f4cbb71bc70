"""An independent MAC count: run the model once in onnxruntime and count from the real tensor shapes.

Every node output of a copy of the model becomes a graph output (a bare name: onnxruntime infers its
type), the copy runs once on CPU with all graph optimizations off (so no node is fused away), and each
multiply-accumulate node is counted from the shapes of the tensors it actually read and wrote. Nothing
here reads the analyzer's code: a disagreement is a finding, not a tautology.

Conventions (bias, activation and elementwise gate arithmetic excluded throughout):

- Conv, ConvInteger, QLinearConv, com.microsoft FusedConv:
  ``|Y| * prod(W.shape[1:])`` = N·Cout·Hout·Wout · (Cin/group)·kh·kw.
- ConvTranspose: ``|X| * prod(W.shape[1:])`` = N·Cin·Hin·Win · (Cout/group)·kh·kw.
- Gemm, com.microsoft FusedGemm/QGemm: ``|Y| * K`` = M·N·K (K from A and transA).
- MatMul, MatMulInteger, QLinearMatMul, com.microsoft MatMulIntegerToFloat/FusedMatMul:
  ``|Y| * K`` with K the shared dim of A: batch·M·N·K after broadcasting (1-D operands promoted).
- LSTM / GRU / RNN (and com.microsoft DynamicQuantizeLSTM): the input and recurrent matrix products,
  ``D · S · B · G·H · (I + H)`` = ``S · B · (|W| + |R|)`` with G = 4, 3, 1 gates, D directions,
  S the sequence length and B the batch of X (layout aware), I the input size, H the hidden size.
  The full padded S counts, whatever ``sequence_lens`` says (a static counter cannot read it);
  peephole products, biases and the gates' elementwise math are excluded.
- Attention (ai.onnx, opset 23): ``Q·Kᵀ`` plus ``softmax(...)·V``: ``(|Q| + |Y|) · L`` with L the
  key length including ``past_key`` (= B·Hq·Lq·L·(Dqk + Dv), grouped-query heads included).

Control flow: a top-level ``If`` is replaced by the branch its condition took in the run (its nodes
inlined under prefixed names) and the model runs again, until no ``If`` is left, so the count is what
the run executed. ``Loop`` and ``Scan`` bodies are not counted: they are listed in ``skipped``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

MS = "com.microsoft"
MAX_IR_VERSION = 13  # the newest IR onnxruntime 1.31 loads
MAX_ROUNDS = 16  # nested Ifs: one inlining round per level
SMALL_INITIALIZER = 64  # elements: initializers up to this size are read as values, larger ones only as shapes

Shapes = dict[str, tuple[int, ...]]


@dataclass
class OracleCount:
    linear: int = 0  # Conv/ConvTranspose/Gemm/MatMul and their quantized and fused forms
    recurrent: int = 0  # LSTM/GRU/RNN
    attention: int = 0  # Attention
    per_node: dict[str, int] = field(default_factory=dict)  # first present output -> MACs (node names may be empty)
    inlined_ifs: int = 0
    skipped: list[str] = field(default_factory=list)  # Loop/Scan nodes whose bodies were not counted

    @property
    def total(self) -> int:
        return self.linear + self.recurrent + self.attention


# --- counting rules: (node, shapes of its inputs, shapes of its outputs) -> MACs ------------------

Rule = Callable[[onnx.NodeProto, list, list], int]


def _attr(node: onnx.NodeProto, name: str, default: int = 0) -> int:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _conv(w_index: int) -> Rule:
    return lambda node, ins, outs: math.prod(outs[0]) * math.prod(ins[w_index][1:])


def _conv_transpose(node, ins, outs) -> int:
    return math.prod(ins[0]) * math.prod(ins[1][1:])


def _gemm(node, ins, outs) -> int:
    a = ins[0]
    k = a[0] if _attr(node, "transA") else a[1]
    return math.prod(outs[0]) * k


def _matmul(node, ins, outs) -> int:
    a = ins[0]
    k = a[-2] if _attr(node, "transA") and len(a) > 1 else a[-1]  # transA: com.microsoft FusedMatMul only
    return math.prod(outs[0]) * k


def _recurrent(w_index: int, r_index: int) -> Rule:
    def rule(node, ins, outs) -> int:
        x = ins[0]
        seq, batch = (x[1], x[0]) if _attr(node, "layout") else (x[0], x[1])
        return seq * batch * (math.prod(ins[w_index]) + math.prod(ins[r_index]))

    return rule


def _attention(node, ins, outs) -> int:
    k = ins[1]
    kv_len = k[-2] if len(k) == 4 else k[1]
    past = ins[4] if len(ins) > 4 and ins[4] is not None else None
    if past is not None:
        kv_len += past[-2]
    return (math.prod(ins[0]) + math.prod(outs[0])) * kv_len


LINEAR: dict[tuple[str, str], Rule] = {
    ("", "Conv"): _conv(1),
    ("", "ConvInteger"): _conv(1),
    ("", "QLinearConv"): _conv(3),
    (MS, "FusedConv"): _conv(1),
    ("", "ConvTranspose"): _conv_transpose,
    ("", "Gemm"): _gemm,
    (MS, "FusedGemm"): _gemm,
    (MS, "QGemm"): _gemm,
    ("", "MatMul"): _matmul,
    ("", "MatMulInteger"): _matmul,
    ("", "QLinearMatMul"): _matmul,
    (MS, "MatMulIntegerToFloat"): _matmul,
    (MS, "FusedMatMul"): _matmul,
}
RECURRENT: dict[tuple[str, str], Rule] = {
    ("", "LSTM"): _recurrent(1, 2),
    ("", "GRU"): _recurrent(1, 2),
    ("", "RNN"): _recurrent(1, 2),
    (MS, "DynamicQuantizeLSTM"): _recurrent(1, 2),  # W [D, I, 4H], R [D, H, 4H]: the same element counts
}
ATTENTION: dict[tuple[str, str], Rule] = {("", "Attention"): _attention}
# ops with MACs the oracle has no rule for: a model holding one is reported, never silently undercounted
UNCOUNTED = {("", "Einsum"), (MS, "Attention"), (MS, "MultiHeadAttention"), (MS, "GroupQueryAttention"),
             (MS, "QAttention"), (MS, "DynamicQuantizeMatMul"), (MS, "DecoderAttention")}


def _domain(node: onnx.NodeProto) -> str:
    return "" if node.domain in ("", "ai.onnx") else node.domain


def count_node(node: onnx.NodeProto, shapes: Shapes, result: OracleCount) -> None:
    key = (_domain(node), node.op_type)
    for table, bucket in ((LINEAR, "linear"), (RECURRENT, "recurrent"), (ATTENTION, "attention")):
        if key in table:
            ins = [shapes.get(name) if name else None for name in node.input]
            outs = [shapes.get(name) if name else None for name in node.output]
            macs = table[key](node, ins, outs)
            setattr(result, bucket, getattr(result, bucket) + macs)
            result.per_node[next((o for o in node.output if o), node.name)] = macs  # optional outputs may be ''
            return
    if key in UNCOUNTED:
        result.skipped.append(f"{node.op_type} {node.name!r} (no oracle rule)")
    elif node.op_type in ("Loop", "Scan"):
        result.skipped.append(f"{node.op_type} {node.name!r} (body not counted)")


# --- running the model with every value exposed -----------------------------------------------------


def _exposed(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.ir_version = min(copy.ir_version, MAX_IR_VERSION)
    present = {o.name for o in copy.graph.output}
    for node in copy.graph.node:
        for name in node.output:
            if name and name not in present:
                copy.graph.output.add().name = name  # no type: onnxruntime infers it
                present.add(name)
    return copy


def run_all(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every top-level value of one CPU run: node outputs, the feeds and the small initializers (an If
    condition can be one); weight payloads stay out, their shapes come from the initializers' dims."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3  # the exposed outputs make onnxruntime warn about every one of them
    exposed = _exposed(model)
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(names, {k: v for k, v in feeds.items() if k in wanted})))
    for init in model.graph.initializer:
        if math.prod(init.dims) <= SMALL_INITIALIZER:
            values.setdefault(init.name, numpy_helper.to_array(init))
    values.update({k: v for k, v in feeds.items() if k not in values})
    return values


# --- inlining the branch an If took --------------------------------------------------------------


def _produced(graph: onnx.GraphProto) -> set[str]:
    names = {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(n for n in node.output if n)
    return names


def _rename_inputs(graph: onnx.GraphProto, renames: dict[str, str]) -> None:
    """Rename reads of outer names in a graph and in its nested subgraphs (names are SSA-unique)."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                _rename_inputs(sub, renames)


def inline_branch(node: onnx.NodeProto, branch: onnx.GraphProto, prefix: str) -> tuple[list, list]:
    """The nodes and initializers that replace ``node`` by ``branch``: branch outputs take the If's
    output names, every other name the branch defines gets ``prefix`` so nothing outside clashes."""
    body = onnx.GraphProto()
    body.CopyFrom(branch)
    outputs = dict(zip((o.name for o in body.output), node.output))
    defined = {n for n in _produced(body) if n not in outputs}
    renames = {n: f"{prefix}{n}" for n in defined}
    produced_outputs = {n for nd in body.node for n in nd.output if n in outputs}
    renames.update({n: outputs[n] for n in produced_outputs})
    _rename_inputs(body, renames)
    for nd in body.node:
        nd.output[:] = [renames.get(n, n) for n in nd.output]
        nd.name = f"{prefix}{nd.name}" if nd.name else ""
    for init in body.initializer:
        init.name = renames[init.name] if init.name in renames else init.name
    # a branch output that only forwards an outer value or an initializer needs a node of its own
    forwards = [helper.make_node("Identity", [renames.get(src, src)], [dst], name=f"{prefix}forward/{dst}")
                for src, dst in outputs.items() if src not in produced_outputs]
    return list(body.node) + forwards, list(body.initializer)


def _branch(node: onnx.NodeProto, taken: bool) -> onnx.GraphProto:
    want = "then_branch" if taken else "else_branch"
    return next(a.g for a in node.attribute if a.name == want)


def inline_taken_ifs(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> int:
    """Replace each top-level If whose condition the run computed by the branch it took; returns how many."""
    graph, new_nodes, inlined = model.graph, [], 0
    for node in graph.node:
        cond = values.get(node.input[0]) if node.op_type == "If" else None
        if cond is None:
            new_nodes.append(node)
            continue
        prefix = f"{node.name or node.output[0]}/{'then' if bool(cond) else 'else'}/"
        nodes, inits = inline_branch(node, _branch(node, bool(cond)), prefix)
        new_nodes += nodes
        graph.initializer.extend(inits)
        inlined += 1
    del graph.node[:]
    graph.node.extend(new_nodes)
    return inlined


# --- the count -----------------------------------------------------------------------------------


def _shapes(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> Shapes:
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    shapes.update({name: tuple(np.shape(v)) for name, v in values.items()})
    return shapes


def count(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> OracleCount:
    """MACs of one run of ``model`` on ``feeds`` (the model is not modified)."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    result = OracleCount()
    for _ in range(MAX_ROUNDS):
        values = run_all(work, feeds)
        inlined = inline_taken_ifs(work, values)
        result.inlined_ifs += inlined
        if not inlined:
            break
    else:
        raise RuntimeError(f"Ifs still nested after {MAX_ROUNDS} inlining rounds")
    shapes = _shapes(work, values)
    for node in work.graph.node:
        count_node(node, shapes, result)
    return result


# --- inputs --------------------------------------------------------------------------------------


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Inputs a caller feeds: initializers listed as inputs (IR < 4 style) keep their stored value."""
    initializers = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in initializers]


def declared_shape(value: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in value.type.tensor_type.shape.dim]


def make_feeds(model: onnx.ModelProto, shapes: dict[str, Sequence[int]], fill: dict[str, float],
               seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of the bound shapes: ``fill`` values where given, else standard normal floats, zero ints."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in graph_inputs(model):
        dtype = helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        shape = list(shapes.get(value.name, declared_shape(value)))
        if any(d is None for d in shape):
            raise ValueError(f"input {value.name!r} has unbound dims {shape}: bind a shape in models.py")
        if value.name in fill:
            feeds[value.name] = np.full(shape, fill[value.name], dtype=dtype)
        elif np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[value.name] = np.zeros(shape, dtype=dtype)
    return feeds


def load_test_data(model: onnx.ModelProto, folder) -> dict[str, np.ndarray]:
    """An onnx node test's ``input_<i>.pb`` files, fed to the graph inputs in order."""
    from pathlib import Path

    files = sorted(Path(folder).glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
    feeds = {}
    for value, path in zip(graph_inputs(model), files):
        tensor = onnx.TensorProto()
        tensor.ParseFromString(path.read_bytes())
        feeds[value.name] = numpy_helper.to_array(tensor)
    return feeds
