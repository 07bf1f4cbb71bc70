"""The model as a networkx DiGraph of NodeViews.

One vertex per ONNX node (keyed by its index in ``graph.node``) with ``view`` (a NodeView), one edge
per producer→consumer pair with the tensor names on it. ``G.graph`` holds ``inputs`` (name ->
TensorView of the graph inputs), ``outputs`` (names), ``order`` (a topological execution order: the
file's order when it is valid), ``producer`` (tensor name -> vertex) and ``weights`` (constant name ->
TensorView: initializers and Constant node outputs, which count alike). Symbolic dims are kept in
``TensorView.symbolic_shape`` and evaluated as 1 in ``TensorView.shape`` unless bound; the ones evaluated
so are collected in ``G.graph["assumed_dims"]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import networkx as nx
import onnx
from onnx import numpy_helper

from analyzer.errors import AnalyzerError
from analyzer.views import NodeView, TensorView

# Constants up to this many elements keep their value (shape inputs, axes, pads); bigger ones are weights.
SMALL_CONSTANT_ELEMENTS = 64
MODULE_METADATA_KEYS = ("module", "pkg.torch.onnx.name_scopes", "namespace")
_GRAPH_ATTRS = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)

Symbolic = tuple[int | str | None, ...]


class DimResolver:
    """Turns inferred shapes into concrete ones; counts the values whose shapes stayed unknown."""

    def __init__(self) -> None:
        self.assumed: dict[str, int] = {}
        self.anonymous = 0

    def concrete(self, shape: Symbolic | None) -> tuple[int, ...] | None:
        if shape is None:
            return None
        if all(isinstance(d, int) for d in shape):
            return tuple(shape)
        # The graph inputs are concrete by now (bound by the user or assumed 1 before inference), so a
        # dim shape inference left symbolic ("unk__3") or blank is one it could not compute: the
        # shape is unknown, never silently 1.
        self.anonymous += 1
        return None


def _symbolic_shape(type_proto: onnx.TypeProto) -> tuple[int, Symbolic | None]:
    if not type_proto.HasField("tensor_type"):
        return 0, None
    tensor_type = type_proto.tensor_type
    if not tensor_type.HasField("shape"):
        return tensor_type.elem_type, None
    dims: list[int | str | None] = []
    for d in tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tensor_type.elem_type, tuple(dims)


_A = onnx.AttributeProto
# The common attribute types read directly: get_attribute_value is several times slower per call.
_FAST_DECODERS = {
    _A.INT: lambda a: a.i,
    _A.INTS: lambda a: list(a.ints),
    _A.FLOAT: lambda a: a.f,
    _A.FLOATS: lambda a: list(a.floats),
    _A.STRING: lambda a: a.s.decode("utf-8", "replace"),
}


def decode_attribute(attr: onnx.AttributeProto) -> Any:
    fast = _FAST_DECODERS.get(attr.type)
    if fast is not None:
        return fast(attr)
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", "replace") for v in value]
    return value


def _small_value(tensor: onnx.TensorProto) -> Any:
    """The tensor's value as numpy when it is small and its data is present, else None."""
    if tensor.data_location == onnx.TensorProto.EXTERNAL or math.prod(tensor.dims) > SMALL_CONSTANT_ELEMENTS:
        return None
    try:
        return numpy_helper.to_array(tensor)
    except Exception:  # payload stripped or malformed: the value is simply unknown
        return None


def _constant_value(node: onnx.NodeProto) -> Any:
    import numpy as np

    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            return _small_value(attr.t)
        if attr.name == "value_int":
            return np.array(attr.i, dtype=np.int64)
        if attr.name == "value_ints" and len(attr.ints) <= SMALL_CONSTANT_ELEMENTS:
            return np.array(list(attr.ints), dtype=np.int64)
        if attr.name == "value_float":
            return np.array(attr.f, dtype=np.float32)
    return None


# Constant attributes other than ``value``: (element type, rank) of the output
_CONSTANT_LIST_TYPES = {"value_int": (onnx.TensorProto.INT64, 0), "value_ints": (onnx.TensorProto.INT64, 1),
                        "value_float": (onnx.TensorProto.FLOAT, 0), "value_floats": (onnx.TensorProto.FLOAT, 1)}


def _constant_type(node: onnx.NodeProto) -> tuple[int, Symbolic] | None:
    """(element type, shape) of a Constant's output, read from its attribute (dims survive payload stripping)."""
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            return attr.t.data_type, tuple(attr.t.dims)
        if attr.name in _CONSTANT_LIST_TYPES:
            elem_type, rank = _CONSTANT_LIST_TYPES[attr.name]
            count = len(attr.ints) if attr.name == "value_ints" else len(attr.floats)
            return elem_type, (count,) if rank else ()
    return None


def module_path(node: onnx.NodeProto) -> str | None:
    """The torch module path an exporter recorded for this node, if any."""
    meta = {p.key: p.value for p in node.metadata_props}
    for key in MODULE_METADATA_KEYS:
        if meta.get(key):
            value = meta[key]
            # name_scopes is a list rendered as text, e.g. "['', 'features', 'features.0']": keep the innermost
            scopes = re.findall(r"'([^']*)'", value) if value.startswith("[") else [value]
            scopes = [s for s in scopes if s]
            if scopes:
                return scopes[-1]
    # The legacy exporter names nodes /scope/sub.scope/Op: the innermost scope is the module path.
    if node.name.startswith("/"):
        parts = node.name.strip("/").split("/")
        if len(parts) >= 2:
            return parts[-2]
    return None


def _outer_references(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes (for edges and liveness)."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(n for n in node.input if n)
        for attr in node.attribute:
            if attr.type in _GRAPH_ATTRS:
                for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                    used |= _outer_references(g)
        defined.update(node.output)
    return used - defined


def subgraphs(node: onnx.NodeProto) -> list[tuple[str, onnx.GraphProto]]:
    found = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            found.append((attr.name, attr.g))
        elif attr.type == onnx.AttributeProto.GRAPHS:
            found.extend((attr.name, g) for g in attr.graphs)
    return found


class ViewFactory:
    """Builds TensorViews and NodeViews from one scope's known value types (nested scopes inherit)."""

    def __init__(self, resolver: DimResolver, opsets: dict[str, int], parent: ViewFactory | None = None) -> None:
        self.resolver = resolver
        self.opsets = opsets
        self.types: dict[str, tuple[int, Symbolic | None]] = dict(parent.types) if parent else {}
        # shapes to show when they differ from the ones counted with (symbolic run vs concrete run)
        self.display: dict[str, Symbolic | None] = dict(parent.display) if parent else {}
        self.weights: set[str] = set(parent.weights) if parent else set()
        self.values: dict[str, Any] = dict(parent.values) if parent else {}
        # Identity outputs that forward a weight (the legacy exporter shares equal initializers so)
        self.aliases: dict[str, str] = dict(parent.aliases) if parent else {}
        self._tensors: dict[str, TensorView] = {}

    def add_graph(self, graph: onnx.GraphProto) -> None:
        for value in list(graph.input) + list(graph.output) + list(graph.value_info):
            elem_type, shape = _symbolic_shape(value.type)
            if shape is not None or value.name not in self.types:
                self.types[value.name] = (elem_type, shape)
        for tensor in graph.initializer:
            self.types[tensor.name] = (tensor.data_type, tuple(tensor.dims))
            self.weights.add(tensor.name)
            small = _small_value(tensor)
            if small is not None:
                self.values[tensor.name] = small
        for node in graph.node:
            if node.op_type == "Identity" and node.domain in ("", "ai.onnx") and node.input and node.output:
                origin = self.aliases.get(node.input[0], node.input[0])
                if origin in self.weights:
                    self.aliases[node.output[0]] = origin
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                self._add_constant(node)
            if node.op_type == "ConstantOfShape" and node.domain in ("", "ai.onnx") and node.output \
                    and node.input and node.input[0] in self.weights:
                # a tensor made from a constant shape is a constant too: some exporters write weights as
                # ConstantOfShape (onnx's "light" model-zoo files); counted where it is read, like a Constant
                self.weights.add(node.output[0])

    def _add_constant(self, node: onnx.NodeProto) -> None:
        """A Constant is an initializer baked into the graph: its output is a constant like one (a weight when
        the pipeline's weight test says so, never an activation), typed from its attribute when inference
        left it untyped."""
        name = node.output[0]
        self.weights.add(name)
        if self.types.get(name, (0, None))[1] is None:
            declared = _constant_type(node)
            if declared is not None:
                self.types[name] = declared
        value = _constant_value(node)
        if value is not None:
            self.values[name] = value

    def tensor(self, name: str) -> TensorView:
        view = self._tensors.get(name)
        if view is None:
            elem_type, symbolic = self.types.get(name, (0, None))
            view = TensorView(
                name=name,
                shape=self.resolver.concrete(symbolic),
                elem_type=elem_type,
                symbolic_shape=self.display.get(name, symbolic),
                is_initializer=name in self.weights or name in self.aliases,
                value=self.values.get(name),
                source=self.aliases.get(name),
            )
            self._tensors[name] = view
        return view

    def node(self, node: onnx.NodeProto, display_name: str) -> NodeView:
        domain = "" if node.domain == "ai.onnx" else node.domain
        return NodeView(
            name=display_name,
            op_type=node.op_type,
            domain=domain,
            attrs={a.name: decode_attribute(a) for a in node.attribute if a.type not in _GRAPH_ATTRS},
            inputs=tuple(self.tensor(n) if n else None for n in node.input),
            outputs=tuple(self.tensor(n) if n else None for n in node.output),
            opset=self.opsets.get(domain, 0),
        )


def unique_names(nodes: Iterable[onnx.NodeProto]) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        base = node.name or f"{node.op_type}_{i}"
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(base if count == 0 else f"{base}__{count}")
    return names


def opset_map(model: onnx.ModelProto) -> dict[str, int]:
    return {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}


def _display_shapes(graph: onnx.GraphProto) -> dict[str, Symbolic | None]:
    shapes = {}
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        _, shape = _symbolic_shape(value.type)
        if shape is not None:
            shapes[value.name] = shape
    return shapes


def build_graph(model: onnx.ModelProto, display: onnx.ModelProto | None = None,
                values: dict[str, Any] | None = None) -> nx.DiGraph:
    """The networkx graph of ``model`` (shapes already inferred). Raises AnalyzerError on a cycle.

    ``display``: the same model inferred with symbolic input dims; its shapes are the ones reported.
    ``values``: node outputs the shape engine folded (name -> numpy value), known to the rules like constants.
    """
    graph = model.graph
    resolver = DimResolver()
    factory = ViewFactory(resolver, opset_map(model))
    if display is not None:
        factory.display = _display_shapes(display.graph)
    factory.values.update({n: v for n, v in (values or {}).items() if v.size <= SMALL_CONSTANT_ELEMENTS})
    factory.add_graph(graph)
    warnings: list[str] = []

    G = nx.DiGraph()
    names = unique_names(graph.node)
    producer = _producers(graph.node, names)
    graph_inputs = {v.name for v in graph.input} - factory.weights
    known = set(producer) | graph_inputs | factory.weights
    dangling = _add_nodes(G, graph.node, names, factory, producer, known)
    if dangling:
        shown = ", ".join(dangling[:5]) + (f" and {len(dangling) - 5} more" if len(dangling) > 5 else "")
        warnings.append(f"dangling tensor names, produced by no node and not inputs or initializers: {shown}")

    G.graph.update(
        inputs={n: factory.tensor(n) for n in (v.name for v in graph.input) if n in graph_inputs},
        outputs=[v.name for v in graph.output],
        order=_execution_order(G, names),
        producer=producer,
        weights={n: factory.tensor(n) for n in factory.weights},
        factory=factory,
        resolver=resolver,
        warnings=warnings,
    )
    return G


def _producers(nodes, names: list[str]) -> dict[str, int]:
    """Tensor name -> index of the node that writes it; a tensor written twice is an AnalyzerError."""
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for out in node.output:
            if out:
                if out in producer:
                    raise AnalyzerError(
                        f"tensor {out!r} is produced twice (by {names[producer[out]]!r} and {names[i]!r}): not a valid graph"
                    )
                producer[out] = i
    return producer


def _add_nodes(G: nx.DiGraph, nodes, names: list[str], factory: ViewFactory, producer: dict[str, int],
               known: set[str]) -> list[str]:
    """One vertex per node, one edge per producer -> consumer pair (with the tensors it carries, names
    read inside subgraphs included); returns the names read that nothing provides."""
    dangling: list[str] = []
    for i, node in enumerate(nodes):
        G.add_node(i, view=factory.node(node, names[i]), module=module_path(node), proto=node)
        consumed = [n for n in node.input if n]
        for _, body in subgraphs(node):
            consumed.extend(sorted(_outer_references(body)))
        for name in consumed:
            if name in producer:
                u = producer[name]
                if G.has_edge(u, i):
                    if name not in G.edges[u, i]["tensors"]:
                        G.edges[u, i]["tensors"].append(name)
                else:
                    G.add_edge(u, i, tensors=[name])
            elif name not in known:
                dangling.append(f"{name!r} (read by {names[i]!r})")
    return dangling


def _execution_order(G: nx.DiGraph, names: list[str]) -> list[int]:
    try:
        # The file's own order when it is a valid topological order (ONNX requires it), else a stable sort.
        return list(nx.lexicographical_topological_sort(G))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(G)
        path = " -> ".join(names[u] for u, _ in cycle) + f" -> {names[cycle[0][0]]}"
        raise AnalyzerError(f"the graph has a cycle: {path}") from None
