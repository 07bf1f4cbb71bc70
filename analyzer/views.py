"""What a counting or receptive-field rule sees: one node with its tensors resolved to concrete shapes.

Symbolic dims are already bound (``dims``, ``batch``) or assumed (1) by the time a rule runs, so a rule never
deals with strings in shapes. ``shape is None`` means the shape is unknown (shape inference failed
for that value); a rule that needs it raises :class:`ShapeUnknown`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ShapeUnknown(Exception):
    """A rule needed a shape that shape inference could not provide."""


# ONNX TensorProto.DataType -> (name, bytes per element); 0 bytes where not a whole byte or unknown.
DTYPES: dict[int, tuple[str, int]] = {
    0: ("undefined", 0),
    1: ("float32", 4),
    2: ("uint8", 1),
    3: ("int8", 1),
    4: ("uint16", 2),
    5: ("int16", 2),
    6: ("int32", 4),
    7: ("int64", 8),
    8: ("string", 0),
    9: ("bool", 1),
    10: ("float16", 2),
    11: ("float64", 8),
    12: ("uint32", 4),
    13: ("uint64", 8),
    14: ("complex64", 8),
    15: ("complex128", 16),
    16: ("bfloat16", 2),
    17: ("float8e4m3fn", 1),
    18: ("float8e4m3fnuz", 1),
    19: ("float8e5m2", 1),
    20: ("float8e5m2fnuz", 1),
    21: ("uint4", 0),
    22: ("int4", 0),
    23: ("float4e2m1", 0),
    24: ("float8e8m0", 1),
    25: ("uint2", 0),
    26: ("int2", 0),
}

# Sub-byte types: bits per element, for byte counts (packed, rounded up per tensor).
SUBBYTE_BITS: dict[int, int] = {21: 4, 22: 4, 23: 4, 25: 2, 26: 2}


def dtype_name(elem_type: int) -> str:
    return DTYPES.get(elem_type, ("unknown", 0))[0]


def tensor_nbytes(elem_type: int, numel: int) -> int:
    """Bytes of ``numel`` elements of ONNX type ``elem_type`` (sub-byte types packed)."""
    if elem_type in SUBBYTE_BITS:
        return (numel * SUBBYTE_BITS[elem_type] + 7) // 8
    return numel * DTYPES.get(elem_type, ("unknown", 0))[1]


@dataclass(frozen=True)
class TensorView:
    name: str
    shape: tuple[int, ...] | None  # concrete; None = unknown rank/shape
    elem_type: int = 1  # onnx.TensorProto.DataType
    symbolic_shape: tuple[int | str | None, ...] | None = None  # as in the graph, for reports
    is_initializer: bool = False
    value: Any = None  # numpy array when the tensor is a small known constant, else None
    source: str | None = None  # for an Identity of a weight: the initializer it forwards

    @property
    def dtype(self) -> str:
        return dtype_name(self.elem_type)

    @property
    def numel(self) -> int | None:
        return None if self.shape is None else math.prod(self.shape)

    @property
    def nbytes(self) -> int | None:
        n = self.numel
        return None if n is None else tensor_nbytes(self.elem_type, n)

    def require_shape(self) -> tuple[int, ...]:
        if self.shape is None:
            raise ShapeUnknown(f"shape of {self.name!r} is unknown")
        return self.shape


@dataclass(frozen=True)
class NodeView:
    name: str
    op_type: str
    domain: str = ""  # "" for the default ONNX domain
    attrs: Mapping[str, Any] = field(default_factory=dict)  # decoded: int, float, str, list, ...
    inputs: tuple[TensorView | None, ...] = ()  # None where an optional input is omitted
    outputs: tuple[TensorView | None, ...] = ()
    opset: int = 0  # opset version of the node's domain

    def input(self, i: int) -> TensorView | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def output(self, i: int = 0) -> TensorView | None:
        return self.outputs[i] if i < len(self.outputs) else None

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)
