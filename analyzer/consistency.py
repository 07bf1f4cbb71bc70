"""Shapes and attributes no runtime would run: a node that has one is not counted as work.

onnx shape inference computes what the formulas give: a 30x30 kernel on an 8x8 input gives an output
of [1, 8, -21, -21], whose "MACs" are a positive product of two negatives; a huge dilation gives 1e27.
onnxruntime refuses such models. :func:`inconsistency` names what is wrong with one node, or returns
None; the pipeline then counts the node as unknown (0, the report incomplete, ``--strict`` fails).

One registry maps an op to a small check (the generic one, a negative output dim, applies to all);
adding an op means adding one function.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from analyzer.views import NodeView

SPATIAL_OPS = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "ConvInteger", "QLinearConv")


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def negative_dim(view: NodeView) -> str | None:
    """Any output with a negative dim (no tensor has one)."""
    for out in view.outputs:
        if out is not None and out.shape is not None and any(d < 0 for d in out.shape):
            return f"output {out.name!r} has the impossible shape {_shape_text(out.shape)}"
    return None


def spatial(view: NodeView) -> str | None:
    """A conv or pool whose output is empty (the kernel, with its dilation, larger than the padded input),
    or a conv whose group does not divide its channels."""
    out = view.output(0)
    if out is not None and out.shape is not None and len(out.shape) > 2 and any(d == 0 for d in out.shape[2:]):
        return (f"output {out.name!r} has an empty spatial shape {_shape_text(out.shape)}: the kernel (with its "
                "dilation) is larger than the padded input")
    if view.op_type in ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv"):
        group = view.attr("group", 1)
        if not isinstance(group, int) or group < 1:
            return f"group={group!r} (must be a positive integer)"
        x = view.input(0)
        if x is not None and x.shape is not None and len(x.shape) > 1 and x.shape[1] % group:
            return f"group={group} does not divide the input's {x.shape[1]} channels"
    return None


def reshape(view: NodeView) -> str | None:
    """A Reshape whose input and output element counts differ."""
    x, out = view.input(0), view.output(0)
    if x is None or out is None or x.shape is None or out.shape is None:
        return None
    if math.prod(x.shape) != math.prod(out.shape):
        return (f"reshapes {math.prod(x.shape):,} elements {_shape_text(x.shape)} into "
                f"{math.prod(out.shape):,} {_shape_text(out.shape)}")
    return None


def slice_steps(view: NodeView) -> str | None:
    """A Slice with a step of 0 (opset 10+: the steps input)."""
    steps = view.input(4)
    if steps is not None and steps.value is not None and any(int(s) == 0 for s in steps.value.reshape(-1)):
        return "a slice step of 0"
    return None


CHECKS: dict[str, Callable[[NodeView], str | None]] = {
    **{op: spatial for op in SPATIAL_OPS},
    "Reshape": reshape,
    "Slice": slice_steps,
}


def attribute_types(proto, opset: int) -> str | None:
    """An attribute whose type is not the one the op's schema declares (``perm`` as floats, ...)."""
    import onnx.defs

    try:
        schema = onnx.defs.get_schema(proto.op_type, opset, "")
    except onnx.defs.SchemaError:
        return None
    for attr in proto.attribute:
        declared = schema.attributes.get(attr.name)
        if declared is not None and attr.type != int(declared.type) and attr.ref_attr_name == "":
            return (f"attribute {attr.name!r} is {onnx.AttributeProto.AttributeType.Name(attr.type)} where "
                    f"{proto.op_type} takes {onnx.AttributeProto.AttributeType.Name(int(declared.type))}")
    return None


def inconsistency(view: NodeView, proto=None, opset: int | None = None) -> str | None:
    """What no runtime would accept in this node, or None; ``proto`` and ``opset``: also check its
    attribute types against the schema (default domain)."""
    found = negative_dim(view)
    if found or view.domain not in ("", "ai.onnx"):
        return found
    if proto is not None and opset is not None:
        found = attribute_types(proto, opset)
    check = CHECKS.get(view.op_type)
    return found or (check(view) if check is not None else None)
