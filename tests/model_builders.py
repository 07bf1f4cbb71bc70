"""Small ONNX graphs built inline for tests (IR 10 so onnxruntime 1.31 loads them)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

IR_VERSION = 10
FLOAT = onnx.TensorProto.FLOAT


def weight(name: str, *shape: int, seed: int = 0, dtype=np.float32) -> onnx.TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)


def make_model(nodes, inputs, outputs, initializers=(), *, opset: int = 17, value_info=()) -> onnx.ModelProto:
    """``inputs``/``outputs``: (name, shape) pairs (shape may hold strings for symbolic dims)."""
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(n, FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, FLOAT, s) for n, s in outputs],
        list(initializers),
        value_info=list(value_info),
    )
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", opset)])
