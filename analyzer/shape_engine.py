"""The shape engine: finishes what onnx shape inference leaves open once the input shapes are concrete.

Exporters compute some shapes at run time: torch's legacy exporter turns ``x.chunk(2, dim=1)`` into
Slice bounds computed by ``Shape → Gather → Add → Div → Mul``, a detection head builds its anchor grid
with ``Range`` over the feature-map size, an OCR recognizer reshapes to ``(h, w)`` taken from
``x.shape``. onnx's data propagation follows only part of that arithmetic (not ``Div``, not float
maths), so the values downstream keep unknown shapes and their nodes cannot be counted.

With every graph input concrete (bound by the user or assumed), such values are computable without the
weights: small constants (initializers whose payload the loader kept, Constant nodes), ``Shape`` and
``Size`` of a value whose shape is known, and any deterministic op of :data:`FOLDABLE_OPS` all of whose
inputs are computable. Walking the nodes in order, the engine re-infers each node whose outputs still
lack a concrete shape with onnx's own per-node shape inference, handing it the values of the inputs it
can compute; a value is computed on demand (walking back through its producers) by onnx's reference
evaluator, one node at a time, and only when its shape is known and it has at most
:data:`MAX_FOLDED_ELEMENTS` elements — never a weight payload. This is what onnxruntime's
``symbolic_shape_infer.py`` and onnx-tool do with their own evaluators, kept small by reusing onnx's.

The bodies of ``If``, ``Loop`` and ``Scan`` are completed as scopes of their own, reading the values of
the enclosing graph (:data:`CONTROL_FLOW_RULES`): an ``If`` whose condition is computable (a test on a
shape) takes the shapes of the branch it selects; a ``Loop``'s carried values are assumed to keep their
initial shapes, and the body's results are dropped when they do not. onnxruntime's contrib ops, which
onnx has no schema for, take their output shapes from :data:`CONTRIB_SHAPE_RULES`.

Graph inputs whose values the user bound (``--input-value sr=16000``) are known like constants, so what
depends on them folds too: the condition of an ``If`` on a sample rate, which then selects its branch.

Nothing runs and nothing is imported for a model whose shapes inference already resolved, unless it has
control flow (whose conditions and trip counts the counts want folded) or bound input values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import onnx

DEFAULT_DOMAINS = ("", "ai.onnx")
# Folded values are shape arithmetic, anchor grids, index lists: an output over this many elements is
# an activation or a weight, not a shape, and is never computed.
MAX_FOLDED_ELEMENTS = 65536
# Initializers and Constant payloads up to this many bytes are read (the loader keeps payloads up to
# 4096 bytes and strips the weights above).
MAX_CONSTANT_BYTES = 4096
# A value computed on demand walks back through its producers; deeper chains are not shape arithmetic.
MAX_DEPTH = 64
# Passes over the nodes: one suffices when the file's order is topological (ONNX requires it).
MAX_PASSES = 3

# Deterministic default-domain ops evaluated when every input is computable (Shape and Size: see
# SHAPE_READERS). Random, stateful, sequence and control-flow ops are left out.
FOLDABLE_OPS = frozenset({
    "Constant", "Identity", "Cast", "CastLike",
    "Gather", "GatherElements", "GatherND", "Slice", "Concat", "Split",
    "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Transpose", "Expand", "Tile",
    "Range", "ConstantOfShape",
    "Add", "Sub", "Mul", "Div", "Mod", "Pow", "Neg", "Abs", "Floor", "Ceil", "Round", "Sqrt",
    "Reciprocal", "Sign", "Min", "Max", "Sum",
    "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Not", "And", "Or", "Xor", "Where",
    "ReduceProd", "ReduceSum", "ReduceMin", "ReduceMax", "ArgMax", "ArgMin", "CumSum",
})


def shape_value(node: onnx.NodeProto, shape: tuple[int, ...]) -> Any:
    """Shape: the input's dims ``shape[start:end]`` as int64 (``start``/``end`` attributes from opset 15,
    negative counting from the end, clamped as Python slices are)."""
    import numpy as np

    attrs = {a.name: a.i for a in node.attribute}
    return np.array(shape[attrs.get("start", 0): attrs.get("end", len(shape))], dtype=np.int64)


def size_value(node: onnx.NodeProto, shape: tuple[int, ...]) -> Any:
    """Size: the input's element count, prod(shape), as an int64 scalar."""
    import numpy as np

    return np.array(math.prod(shape), dtype=np.int64)


# ops whose value comes from their input's shape alone, never from its data
SHAPE_READERS = {"Shape": shape_value, "Size": size_value}


def recurrent_outputs(node: onnx.NodeProto, inputs: list[onnx.TypeProto | None]) -> dict[str, onnx.TypeProto]:
    """LSTM-style outputs from X [seq, batch, input]: Y [seq, directions, batch, hidden], then
    Y_h (and Y_c) [directions, batch, hidden]; directions = 2 when bidirectional, else 1."""
    x_shape = concrete_shape(inputs[0]) if inputs else None
    attrs = {a.name: a for a in node.attribute}
    if x_shape is None or len(x_shape) != 3 or "hidden_size" not in attrs:
        return {}
    directions = 2 if attrs.get("direction") is not None and attrs["direction"].s == b"bidirectional" else 1
    seq, batch, hidden = x_shape[0], x_shape[1], attrs["hidden_size"].i
    elem_type = inputs[0].tensor_type.elem_type
    shapes = [[seq, directions, batch, hidden]] + [[directions, batch, hidden]] * (len(node.output) - 1)
    return {name: onnx.helper.make_tensor_type_proto(elem_type, shape)
            for name, shape in zip(node.output, shapes) if name}


# Output shapes of contrib ops onnx has no schema for (onnxruntime's own), by (domain, op).
CONTRIB_SHAPE_RULES = {("com.microsoft", "DynamicQuantizeLSTM"): recurrent_outputs}


@dataclass
class FoldResult:
    """What :func:`complete_shapes` computed."""

    folded: list[str] = field(default_factory=list)  # node outputs computed by evaluating their node
    values: dict[str, Any] = field(default_factory=dict)  # folded name -> numpy value
    resolved: list[str] = field(default_factory=list)  # values whose shape became concrete
    bound: dict[str, Any] = field(default_factory=dict)  # graph input -> the value the caller bound


def concrete_shape(type_proto: onnx.TypeProto | None) -> tuple[int, ...] | None:
    """The dims of a tensor type when every one is a known value, else None."""
    if type_proto is None or not type_proto.HasField("tensor_type"):
        return None
    tensor_type = type_proto.tensor_type
    if not tensor_type.HasField("shape") or not tensor_type.elem_type:
        return None
    dims = tensor_type.shape.dim
    if not all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
        return None
    return tuple(d.dim_value for d in dims)


def _declared_types(graph: onnx.GraphProto) -> dict[str, onnx.TypeProto]:
    """Name -> type from inputs, outputs, value_info and initializers; an entry with a shape wins."""
    types: dict[str, onnx.TypeProto] = {}
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name not in types or concrete_shape(value.type) is not None:
            types[value.name] = value.type
    for tensor in graph.initializer:
        types[tensor.name] = onnx.helper.make_tensor_type_proto(tensor.data_type, list(tensor.dims))
    return types


def unresolved_outputs(graph: onnx.GraphProto, outer: dict[str, onnx.TypeProto] | None = None) -> list[str]:
    """Node outputs of ``graph`` and of its nodes' bodies that have no concrete tensor shape."""
    types = {**(outer or {}), **_declared_types(graph)}
    found = []
    for node in graph.node:
        found += [out for out in node.output if out and concrete_shape(types.get(out)) is None]
        for body in _bodies(node):
            found += unresolved_outputs(body, types)
    return found


def complete_shapes(model: onnx.ModelProto, input_values: dict[str, Any] | None = None) -> FoldResult:
    """Fold what can be folded and write the shapes it resolves into the ``value_info`` of the graph
    (and of the If / Loop / Scan bodies) they belong to, in place.

    ``model`` has been through onnx shape inference with concrete graph inputs; its nodes are kept as
    they are (the counts still see every node). ``input_values`` (graph input -> numpy value, as
    :func:`analyzer.shapes.bind_input_values` makes them) are known like constants. Returns the folded
    values (the bound ones among them) and the resolved names. A model with control flow is always run
    through: an If's condition folded here decides which branch the counts take.
    """
    bound = dict(input_values or {})
    if not bound and not unresolved_outputs(model.graph) and not any(_bodies(n) for n in model.graph.node):
        return FoldResult()
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    root = _Scope(model.graph, _ModelContext(opsets, model.ir_version))
    root.values.update(bound)
    root.run()
    result = FoldResult(values=dict(bound), bound=bound)
    for scope in root.walk():
        _write_value_info(scope.graph, {n: scope.types[n] for n in scope.resolved})
        folded = [n for n in scope.folded if scope.values.get(n) is not None]
        result.folded += folded
        result.values.update({n: scope.values[n] for n in folded})
        result.resolved += scope.resolved
    return result


def _write_value_info(graph: onnx.GraphProto, resolved: dict[str, onnx.TypeProto]) -> None:
    if not resolved:
        return
    kept = [v for v in graph.value_info if v.name not in resolved]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    for name, type_proto in resolved.items():
        value = graph.value_info.add()
        value.name = name
        value.type.CopyFrom(type_proto)


@dataclass
class _ModelContext:
    opsets: dict[str, int]  # domain ("" for onnx) -> version
    ir_version: int

    @property
    def opset_imports(self) -> list[onnx.OperatorSetIdProto]:
        return [onnx.helper.make_opsetid(d, v) for d, v in self.opsets.items()]


class _Scope:
    """One graph (the model's, or a body of an If / Loop / Scan): per-node shape inference over its
    nodes in order, with values folded on demand; names from enclosing graphs are the parent's."""

    def __init__(self, graph: onnx.GraphProto, context: _ModelContext, parent: _Scope | None = None,
                 input_types: dict[str, onnx.TypeProto] | None = None) -> None:
        self.graph, self.context, self.parent = graph, context, parent
        self.types = dict(parent.types) if parent else {}
        for name, type_proto in _declared_types(graph).items():
            if concrete_shape(self.types.get(name)) is None:
                self.types[name] = type_proto
        self.initializers = {t.name: t for t in graph.initializer}
        self.producer = {out: node for node in graph.node for out in node.output if out}
        self.local = set(self.producer) | set(self.initializers) | {v.name for v in graph.input}
        self.values: dict[str, Any] = {}  # name -> numpy value, None when not computable
        self.folded: list[str] = []  # evaluated node outputs, Constant nodes' excluded
        self.resolved: list[str] = []  # values whose shape this scope made concrete
        self.bodies: list[_Scope] = []  # scopes of the control-flow bodies completed
        for name, type_proto in (input_types or {}).items():
            self._accept({name: type_proto})

    def walk(self):
        yield self
        for body in self.bodies:
            yield from body.walk()

    def run(self) -> None:
        for attempt in range(MAX_PASSES):
            # a value found not computable may become so once an earlier shape resolved (unsorted files)
            self.values = {name: value for name, value in self.values.items() if value is not None}
            progress = False
            for node in self.graph.node:
                if _bodies(node):
                    progress |= attempt == 0 and self._infer_control_flow(node)
                elif any(out and concrete_shape(self.types.get(out)) is None for out in node.output):
                    progress |= self._infer(node)
            if not progress:
                return

    def _accept(self, inferred: dict[str, onnx.TypeProto]) -> bool:
        """Takes the concrete types among ``inferred`` for names still without one; True when any."""
        progress = False
        for name, type_proto in inferred.items():
            if concrete_shape(self.types.get(name)) is None and concrete_shape(type_proto) is not None:
                self.types[name] = type_proto
                self.resolved.append(name)
                progress = True
        return progress

    # ---- shapes ----

    def _infer(self, node: onnx.NodeProto, data: dict[str, Any] | None = None) -> bool:
        """Re-infer ``node``'s output types with onnx's per-node inference; True when one became concrete."""
        if any(name and name not in self.types for name in node.input):
            return False
        input_types = {name: self.types[name] for name in node.input if name}
        contrib_rule = CONTRIB_SHAPE_RULES.get((node.domain, node.op_type))
        if contrib_rule is not None:
            return self._accept(contrib_rule(node, [input_types.get(name) for name in node.input]))
        schema = self._schema(node)
        if schema is None:
            return False
        if data is None:
            data = {name: self.value_of(name) for name in node.input if name}
        tensors = {name: _tensor(value) for name, value in data.items()}
        input_data = {name: tensor for name, tensor in tensors.items() if tensor is not None}
        try:
            inferred = onnx.shape_inference.infer_node_outputs(
                schema, node, input_types, input_data, opset_imports=self.context.opset_imports,
                ir_version=self.context.ir_version)
        except Exception:  # an inconsistent or unsupported node keeps its unknown shape
            return False
        return self._accept(inferred)

    def _schema(self, node: onnx.NodeProto) -> Any:
        domain = "" if node.domain == "ai.onnx" else node.domain
        try:
            return onnx.defs.get_schema(node.op_type, self.context.opsets.get(domain, 1), domain)
        except onnx.defs.SchemaError:
            return None  # a custom-domain op or a model-local function

    def _infer_control_flow(self, node: onnx.NodeProto) -> bool:
        """If / Loop / Scan: each body completed as a scope of its own (its inputs typed from the node's),
        then the node's outputs from the bodies' outputs. The node's own inputs (a Loop's trip count,
        an If's condition) are folded when computable, for the counts."""
        rule = CONTROL_FLOW_RULES.get(node.op_type) if node.domain in DEFAULT_DOMAINS else None
        for name in node.input:
            if name:
                self.value_of(name)
        if rule is None:
            return False
        scopes = []
        for body in _bodies(node):
            scope = _Scope(body, self.context, self, rule.body_inputs(self, node, body))
            scope.run()
            scopes.append(scope)
        outputs = rule.outputs(self, node, scopes)
        if outputs is None:
            return False  # the bodies contradict their assumed inputs: keep nothing of them
        self.bodies += scopes
        return self._accept(outputs) or any(scope.resolved for scope in scopes)

    # ---- values ----

    def value_of(self, name: str, depth: int = 0) -> Any:
        """The value of tensor ``name`` when it is computable and small, else None (memoized)."""
        if name not in self.local and self.parent is not None:
            return self.parent.value_of(name, depth)
        if name not in self.values:
            self.values[name] = None  # also what a cycle through this name sees
            self.values[name] = self._compute(name, depth)
        return self.values[name]

    def _compute(self, name: str, depth: int) -> Any:
        if name in self.initializers:
            return _payload(self.initializers[name])
        node = self.producer.get(name)  # None for a graph input or a body's input: not computable
        if node is None or depth > MAX_DEPTH or node.domain not in DEFAULT_DOMAINS or _bodies(node):
            return None
        shape = concrete_shape(self.types.get(name))
        if shape is not None and math.prod(shape) > MAX_FOLDED_ELEMENTS:
            return None  # an activation or a weight: not worth walking back from
        reader = SHAPE_READERS.get(node.op_type)
        if reader is not None:
            source = concrete_shape(self.types.get(node.input[0])) if node.input else None
            if source is None:
                return None
            self.folded.append(name)
            return reader(node, source)
        if node.op_type not in FOLDABLE_OPS or (node.op_type == "Constant" and not _small_constant(node)):
            return None
        inputs = {n: self.value_of(n, depth + 1) for n in node.input if n}
        if any(value is None for value in inputs.values()):
            return None
        self._infer(node, inputs)  # outputs whose size depends on the values (Range, Expand, Reshape...)
        if not all(_small(self.types.get(out)) for out in node.output if out):
            return None
        return self._evaluate(node, inputs).get(name)

    def _evaluate(self, node: onnx.NodeProto, inputs: dict[str, Any]) -> dict[str, Any]:
        """Runs ``node`` with onnx's reference evaluator; stores and returns its outputs by name."""
        import numpy as np

        results = run_reference(node, inputs, self.context.opsets.get("", 1))
        if results is None:
            return {}
        outputs: dict[str, Any] = {}
        for name, result in zip(node.output, results):
            if not name:
                continue
            value = _as_inferred(np.asarray(result), self.types.get(name))
            if value is None:
                return {}  # the evaluator disagrees with shape inference: trust neither
            try:
                elem_type = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
            except Exception:  # an object array (strings): no shape value
                return {}
            self._accept({name: onnx.helper.make_tensor_type_proto(elem_type, list(value.shape))})
            self.values[name] = value
            if node.op_type != "Constant":
                self.folded.append(name)
            outputs[name] = value
        return outputs


# ---- control flow: the types a body's inputs take from its node, the node's outputs from its bodies ----


def _typed(type_proto: onnx.TypeProto, shape: list[int]) -> onnx.TypeProto:
    return onnx.helper.make_tensor_type_proto(type_proto.tensor_type.elem_type, shape)


def _agreed(types: list[onnx.TypeProto | None]) -> onnx.TypeProto | None:
    """The one concrete type all of ``types`` share, else None."""
    shapes = {concrete_shape(t) for t in types}
    return types[0] if len(shapes) == 1 and None not in shapes else None


def if_body_inputs(scope: _Scope, node: onnx.NodeProto, body: onnx.GraphProto) -> dict[str, onnx.TypeProto]:
    """If: a branch takes no inputs; it reads the enclosing graph's values."""
    return {}


def if_outputs(scope: _Scope, node: onnx.NodeProto, bodies: list[_Scope]) -> dict[str, onnx.TypeProto]:
    """If: output k has the shape of the branch taken when the condition is computable (a test on a
    shape, as torch exports ``if x.dim() == 3``), else of both branches' output k when they agree."""
    condition = scope.value_of(node.input[0]) if node.input else None
    if condition is not None and condition.size == 1:
        branches = [a.name for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
        taken = "then_branch" if bool(condition.reshape(-1)[0]) else "else_branch"
        if taken in branches and len(branches) == len(bodies):
            bodies = [bodies[branches.index(taken)]]
    outputs = {}
    for k, name in enumerate(node.output):
        agreed = _agreed([b.types.get(b.graph.output[k].name) if k < len(b.graph.output) else None for b in bodies])
        if name and agreed is not None:
            outputs[name] = agreed
    return outputs


def loop_body_inputs(scope: _Scope, node: onnx.NodeProto, body: onnx.GraphProto) -> dict[str, onnx.TypeProto]:
    """Loop: the body's inputs are (iteration number: int64 scalar, condition: bool scalar, carried values
    typed as the node's initial ones, assumed to keep their shape: checked by :func:`loop_outputs`)."""
    names = [v.name for v in body.input]
    types = {}
    if len(names) >= 2:
        types[names[0]] = onnx.helper.make_tensor_type_proto(onnx.TensorProto.INT64, [])
        types[names[1]] = onnx.helper.make_tensor_type_proto(onnx.TensorProto.BOOL, [])
    for name, initial in zip(names[2:], node.input[2:]):
        if initial and concrete_shape(scope.types.get(initial)) is not None:
            types[name] = scope.types[initial]
    return types


def loop_outputs(scope: _Scope, node: onnx.NodeProto, bodies: list[_Scope]) -> dict[str, onnx.TypeProto] | None:
    """Loop: final carried values as the body's (None when the body changes a carried shape: the
    assumption its inputs were typed on fails); scan outputs [trip count, *per-iteration shape] when the
    trip count is computable and the body cannot stop early."""
    body = bodies[0]
    carried = len(node.input) - 2
    outs = [body.types.get(v.name) for v in body.graph.output]
    ins = [body.types.get(v.name) for v in body.graph.input]
    outputs = {}
    for k in range(carried):
        before, after = concrete_shape(ins[2 + k]) if 2 + k < len(ins) else None, concrete_shape(outs[1 + k])
        if before is not None and after is not None and before != after:
            return None
        if after is not None and node.output[k]:
            outputs[node.output[k]] = outs[1 + k]
    trips = _trip_count(scope, node, body.graph)
    for j, name in enumerate(node.output[carried:]):
        per_iteration = concrete_shape(outs[1 + carried + j]) if 1 + carried + j < len(outs) else None
        if name and trips is not None and per_iteration is not None:
            outputs[name] = _typed(outs[1 + carried + j], [trips, *per_iteration])
    return outputs


def _trip_count(scope: _Scope, node: onnx.NodeProto, body: onnx.GraphProto) -> int | None:
    """The Loop's trip count M when computable and the body passes its condition through unchanged."""
    trips = scope.value_of(node.input[0]) if node.input and node.input[0] else None
    if trips is None or trips.size != 1 or len(body.input) < 2 or not body.output:
        return None
    condition, kept = body.input[1].name, body.output[0].name
    passes = kept == condition or any(n.op_type == "Identity" and list(n.input) == [condition]
                                      and list(n.output) == [kept] for n in body.node)
    return int(trips.reshape(-1)[0]) if passes else None


def _scan_layout(node: onnx.NodeProto) -> tuple[int, list[int], list[int]]:
    """(state count N, scan_input_axes, scan_output_axes) of a Scan (opset 9+)."""
    attrs = {a.name: a for a in node.attribute}
    scans = attrs["num_scan_inputs"].i if "num_scan_inputs" in attrs else 0
    states = len(node.input) - scans
    in_axes = list(attrs["scan_input_axes"].ints) if "scan_input_axes" in attrs else [0] * scans
    outputs = len(node.output) - states
    out_axes = list(attrs["scan_output_axes"].ints) if "scan_output_axes" in attrs else [0] * outputs
    return states, in_axes, out_axes


def scan_body_inputs(scope: _Scope, node: onnx.NodeProto, body: onnx.GraphProto) -> dict[str, onnx.TypeProto]:
    """Scan: state inputs typed as the node's; each scan input as one slice (its scan axis removed)."""
    states, in_axes, _ = _scan_layout(node)
    types = {}
    for k, (value, source) in enumerate(zip(body.input, node.input)):
        shape = concrete_shape(scope.types.get(source))
        if shape is None:
            continue
        if k >= states:
            axis = in_axes[k - states] % len(shape)
            shape = shape[:axis] + shape[axis + 1:]
        types[value.name] = _typed(scope.types[source], list(shape))
    return types


def scan_outputs(scope: _Scope, node: onnx.NodeProto, bodies: list[_Scope]) -> dict[str, onnx.TypeProto]:
    """Scan: final states as the body's; scan outputs with the sequence length inserted at their axis."""
    states, in_axes, out_axes = _scan_layout(node)
    body = bodies[0]
    first = concrete_shape(scope.types.get(node.input[states])) if len(node.input) > states else None
    length = first[in_axes[0] % len(first)] if first else None
    outputs = {}
    for k, (name, value) in enumerate(zip(node.output, body.graph.output)):
        shape = concrete_shape(body.types.get(value.name))
        if not name or shape is None:
            continue
        if k >= states:
            if length is None:
                continue
            axis = out_axes[k - states] % (len(shape) + 1)
            shape = shape[:axis] + (length,) + shape[axis:]
        outputs[name] = _typed(body.types[value.name], list(shape))
    return outputs


@dataclass(frozen=True)
class ControlFlowRule:
    body_inputs: Callable[[_Scope, onnx.NodeProto, onnx.GraphProto], dict[str, onnx.TypeProto]]
    outputs: Callable[[_Scope, onnx.NodeProto, list[_Scope]], dict[str, onnx.TypeProto] | None]


CONTROL_FLOW_RULES = {
    "If": ControlFlowRule(if_body_inputs, if_outputs),
    "Loop": ControlFlowRule(loop_body_inputs, loop_outputs),
    "Scan": ControlFlowRule(scan_body_inputs, scan_outputs),
}


# Ops whose reference implementation mishandles an attribute that later opsets made an input (onnx 1.23
# runs Unsqueeze-11's ``axes`` attribute through Unsqueeze-13's code): op -> (attribute, opset that
# takes it as the next input). The node is evaluated in that opset's form.
ATTRIBUTES_AS_INPUTS = {"Unsqueeze": ("axes", 13)}


def run_reference(node: onnx.NodeProto, inputs: dict[str, Any], opset: int) -> list[Any] | None:
    """``node``'s outputs computed by onnx's reference evaluator from ``inputs`` (name -> numpy), or None
    when the evaluator lacks or rejects the op."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    node = onnx.NodeProto.FromString(node.SerializeToString())
    node.domain = ""
    inputs = dict(inputs)
    moved = ATTRIBUTES_AS_INPUTS.get(node.op_type)
    attribute = next((a for a in node.attribute if moved and a.name == moved[0]), None)
    if attribute is not None:
        name = f"{node.output[0]}::{attribute.name}"
        inputs[name] = np.array(list(attribute.ints), dtype=np.int64)
        node.input.append(name)
        node.attribute.remove(attribute)
        opset = max(opset, moved[1])
    try:
        return ReferenceEvaluator(node, opsets={"": opset}).run(None, inputs)
    except Exception:  # the value stays unknown, as for any op without an evaluator
        return None


def _as_inferred(value: Any, type_proto: onnx.TypeProto | None) -> Any:
    """``value`` in the element type shape inference gave (the evaluator may widen it); None when the
    shapes disagree."""
    expected = concrete_shape(type_proto)
    if expected is not None and tuple(value.shape) != expected:
        return None
    elem_type = type_proto.tensor_type.elem_type if type_proto is not None and type_proto.HasField("tensor_type") else 0
    if elem_type:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem_type)
        if value.dtype != dtype:
            value = value.astype(dtype)
    return value


def _bodies(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The node's subgraphs (If branches, Loop and Scan bodies), in attribute order."""
    found: list[onnx.GraphProto] = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            found.append(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            found.extend(attr.graphs)
    return found


def _small(type_proto: onnx.TypeProto | None) -> bool:
    shape = concrete_shape(type_proto)
    return shape is not None and math.prod(shape) <= MAX_FOLDED_ELEMENTS


def _small_constant(node: onnx.NodeProto) -> bool:
    """A Constant whose tensor (if it has one) is small enough to be a shape value and still has its payload."""
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.TENSOR:
            return _payload(attr.t) is not None
        if attr.type == onnx.AttributeProto.SPARSE_TENSOR:
            return False
    return True


def _payload(tensor: onnx.TensorProto) -> Any:
    """The tensor's value when it is small and its payload is present; None for weights (stripped or big)."""
    from onnx import numpy_helper

    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return None
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        if math.prod(tensor.dims) * itemsize > MAX_CONSTANT_BYTES:
            return None
        return numpy_helper.to_array(tensor)
    except Exception:  # payload stripped by the loader or malformed
        return None


def _tensor(value: Any) -> onnx.TensorProto | None:
    """``value`` as a TensorProto for onnx's inference; None when unknown or not representable."""
    from onnx import numpy_helper

    if value is None:
        return None
    try:
        return numpy_helper.from_array(value)
    except Exception:  # an object array or a dtype onnx has no type for
        return None
