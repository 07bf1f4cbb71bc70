"""Graph plumbing shared by the rewrites: reading a Conv's weights, building the replacement nodes with
readable unique names, and splicing them in so that the original output keeps its name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from passes._records import Skip


@dataclass(frozen=True)
class ConvSpec:
    """A 2-D Conv with constant weights; ``weight`` is float64 (the math runs in double precision)."""

    node: ir.Node
    weight: np.ndarray  # (Cout, Cin / group, kh, kw)
    bias: ir.Value | None
    dtype: np.dtype  # the model's weight dtype, restored on the new initializers
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    dilations: tuple[int, int]
    group: int

    @property
    def cout(self) -> int:
        return self.weight.shape[0]

    @property
    def cin(self) -> int:
        return self.weight.shape[1] * self.group

    @property
    def kernel(self) -> tuple[int, int]:
        return self.weight.shape[2], self.weight.shape[3]


def constant_initializer(value: ir.Value | None) -> np.ndarray | Skip:
    if value is None or value.const_value is None or not value.is_initializer():
        name = "missing" if value is None else value.name
        return Skip(f"weight {name} is not a constant initializer", unsupported=True)
    if value.is_graph_input():
        return Skip(f"weight {value.name} is also a graph input (it may be overridden at run time)")
    if len(value.uses()) > 1:
        return Skip(f"weight {value.name} is shared with {len(value.uses()) - 1} other use(s)")
    return value.const_value.numpy()


def _ints(node: ir.Node, name: str, default: list[int]) -> list[int]:
    attr = node.attributes.get(name)
    return list(attr.as_ints()) if attr is not None else default


def read_plain_conv(node: ir.Node, pass_name: str) -> ConvSpec | Skip:
    """:func:`read_conv` for the passes that factor a whole (group 1) kernel."""
    spec = read_conv(node)
    if isinstance(spec, Skip) or spec.group == 1:
        return spec
    kind = "depthwise" if spec.group == spec.cin and spec.weight.shape[1] == 1 else "grouped"
    return Skip(f"{kind} conv (group={spec.group}) is not supported by {pass_name}", unsupported=True)


def read_conv(node: ir.Node) -> ConvSpec | Skip:
    """The conv's weights and attributes, or why it cannot be rewritten."""
    if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
        return Skip(f"{node.op_type} is not a Conv", unsupported=True)
    weight = constant_initializer(node.inputs[1] if len(node.inputs) > 1 else None)
    if isinstance(weight, Skip):
        return weight
    if weight.ndim != 4:
        return Skip(f"only 2-D convs are rewritten; this one is {weight.ndim - 2}-D", unsupported=True)
    if not np.issubdtype(weight.dtype, np.floating):
        return Skip(f"weight dtype {weight.dtype} is not floating point", unsupported=True)
    auto_pad = node.attributes.get("auto_pad")
    auto_pad = auto_pad.as_string() if auto_pad is not None else "NOTSET"
    if auto_pad not in ("NOTSET", "VALID"):
        return Skip(f"auto_pad={auto_pad} is not supported; export with explicit pads", unsupported=True)
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    pads = _ints(node, "pads", [0, 0, 0, 0]) if auto_pad == "NOTSET" else [0, 0, 0, 0]
    return ConvSpec(
        node=node,
        weight=weight.astype(np.float64),
        bias=bias,
        dtype=weight.dtype,
        strides=tuple(_ints(node, "strides", [1, 1])),
        pads=(pads[0], pads[1], pads[2], pads[3]),
        dilations=tuple(_ints(node, "dilations", [1, 1])),
        group=node.attributes.get_int("group", 1),
    )


def relative_error(original: np.ndarray, approximation: np.ndarray) -> float:
    """``||W - W_hat||_F / ||W||_F`` (absolute when ``W`` is zero)."""
    norm = float(np.linalg.norm(original))
    diff = float(np.linalg.norm(original - approximation))
    return diff / norm if norm > 0 else diff


class Builder:
    """Creates the nodes that replace ``origin``: names are ``<origin name>/<tag>/<part>``, made unique."""

    def __init__(self, graph: ir.Graph, origin: ir.Node, tag: str, dtype: np.dtype):
        self.graph = graph
        self.origin = origin
        self.dtype = dtype
        self.base = f"{origin.name or origin.op_type}/{tag}"
        self.nodes: list[ir.Node] = []
        self._taken = {n.name for n in graph} | set(graph.initializers)
        self._taken |= {v.name for n in graph for v in n.outputs} | {v.name for v in graph.inputs}

    def unique(self, name: str) -> str:
        candidate, i = name, 1
        while candidate in self._taken:
            i += 1
            candidate = f"{name}_{i}"
        self._taken.add(candidate)
        return candidate

    def initializer(self, part: str, array: np.ndarray) -> ir.Value:
        name = self.unique(f"{self.base}/{part}")
        value = ir.Value(name=name, const_value=ir.tensor(np.ascontiguousarray(array.astype(self.dtype)), name=name))
        value.type = ir.TensorType(value.const_value.dtype)
        value.shape = ir.Shape(array.shape)
        self.graph.register_initializer(value)
        return value

    def conv(
        self,
        part: str,
        x: ir.Value,
        weight: np.ndarray,
        bias: ir.Value | None = None,
        *,
        strides: tuple[int, int] = (1, 1),
        pads: tuple[int, int, int, int] = (0, 0, 0, 0),
        dilations: tuple[int, int] = (1, 1),
        group: int = 1,
    ) -> ir.Value:
        w = self.initializer(f"{part}.weight", weight)
        attrs = {"kernel_shape": list(weight.shape[2:]), "strides": list(strides), "pads": list(pads)}
        attrs |= {"dilations": list(dilations), "group": group}
        return self.node("Conv", part, [x, w] + ([bias] if bias is not None else []), attrs)

    def relu(self, part: str, x: ir.Value) -> ir.Value:
        return self.node("Relu", part, [x], {})

    def node(self, op: str, part: str, inputs: list[ir.Value], attrs: dict) -> ir.Value:
        name = self.unique(f"{self.base}/{part}")
        out = ir.Value(name=self.unique(f"{name}_output"))
        node = ir.node(op, inputs, attributes=attrs, name=name, outputs=[out])
        node.metadata_props.update(self.origin.metadata_props)  # keep the torch module path for reports
        self.nodes.append(node)
        return out

    def splice(self, final: ir.Value) -> list[str]:
        """Replace ``origin`` by the built nodes; ``final`` takes over the origin's output name."""
        old_out = self.origin.outputs[0]
        old_weight = self.origin.inputs[1]
        ir.convenience.replace_nodes_and_values(
            self.graph, self.origin, [self.origin], self.nodes, [old_out], [final]
        )
        final.shape = None  # the shape is re-inferred; a stale one would hide a wrong rewrite
        if old_weight is not None and not old_weight.uses() and old_weight.name in self.graph.initializers:
            del self.graph.initializers[old_weight.name]
        return [n.name for n in self.nodes]

    def new_values(self) -> list[ir.Value]:
        return [v for n in self.nodes for v in n.outputs]
