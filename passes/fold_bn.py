r"""``fold-bn``: an inference BatchNormalization folded into the Conv or Gemm before it. Exact.

``y = γ (x − μ) / √(σ² + ε) + β`` after a Conv or Gemm is a per-channel affine map with scale
``s = γ / √(σ² + ε)``, so it folds into the producer:

    Conv:  W'[o] = s[o] · W[o],                     b' = s · (b − μ) + β      (b = 0 when absent)
    Gemm:  B' = B · s (each output column n; rows when transB = 1),   C' = s · (β_gemm · C − μ) + β,  beta' = 1
           (alpha stays; BatchNormalization on a 2-D tensor normalizes axis 1, Gemm's output features)

The BatchNormalization's statistics and the producer's old weights are dropped when nothing else reads them.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from passes._base import RewritePass
from passes._graph import Builder, constant_initializer
from passes._records import Skip, TargetRecord


def _constant(value: ir.Value | None) -> np.ndarray | None:
    if value is None or value.const_value is None:
        return None
    return value.const_value.numpy().astype(np.float64)


def _remove_if_unused(graph: ir.Graph, values: list[ir.Value | None]) -> None:
    for value in values:
        if value is not None and value.name in graph.initializers and not value.uses() and not value.is_graph_output():
            del graph.initializers[value.name]


class FoldBatchNormPass(RewritePass):
    """Folds BatchNormalization (inference form) into the Conv or Gemm producing its input.

    Declines: input not from a Conv/Gemm, producer output used elsewhere or a graph output, BN statistics
    or producer weights not constant initializers, shared producer weights, BN in training mode."""

    name = "fold-bn"
    op_types = ("BatchNormalization",)

    @property
    def exact(self) -> bool:
        return True

    def _try_rewrite(self, graph: ir.Graph, node: ir.Node) -> TargetRecord | Skip:
        x = node.inputs[0]
        producer = x.producer() if x is not None else None
        if producer is None or producer.op_type not in ("Conv", "Gemm"):
            return Skip(f"input comes from {producer.op_type if producer else 'a graph input'}, not a Conv or Gemm")
        if len(x.uses()) > 1 or x.is_graph_output():
            return Skip(f"{producer.name} output is also used elsewhere")
        if len([o for o in node.outputs if o.name]) > 1 or node.attributes.get_int("training_mode", 0):
            return Skip("BatchNormalization is in training mode")
        stats = [_constant(v) for v in node.inputs[1:5]]
        if any(s is None for s in stats):
            return Skip("BatchNormalization parameters are not constants")
        gamma, beta, mean, var = stats
        scale = gamma / np.sqrt(var + node.attributes.get_float("epsilon", 1e-5))
        weight = constant_initializer(producer.inputs[1])
        if isinstance(weight, Skip):
            return weight
        b = Builder(graph, producer, self.name, weight.dtype)
        bias_value = producer.inputs[2] if len(producer.inputs) > 2 else None
        bias = _constant(bias_value)
        attrs = dict(producer.attributes)
        if producer.op_type == "Conv":
            new_weight = weight.astype(np.float64) * scale.reshape(-1, *[1] * (weight.ndim - 1))
            new_bias = scale * ((0.0 if bias is None else bias) - mean) + beta
        else:
            trans_b = producer.attributes.get_int("transB", 0)
            new_weight = weight.astype(np.float64) * (scale[:, None] if trans_b else scale[None, :])
            c = 0.0 if bias is None else producer.attributes.get_float("beta", 1.0) * bias
            new_bias = scale * (c - mean) + beta
            attrs["beta"] = ir.AttrFloat32("beta", 1.0)
        inputs = [producer.inputs[0], b.initializer("weight", new_weight), b.initializer("bias", np.broadcast_to(new_bias, scale.shape))]
        y = b.node(producer.op_type, producer.op_type.lower(), inputs, attrs)
        old_inputs = list(producer.inputs[1:]) + list(node.inputs[1:])
        ir.convenience.replace_nodes_and_values(graph, node, [producer, node], b.nodes, [node.outputs[0]], [y])
        y.shape = None
        _remove_if_unused(graph, old_inputs)
        detail = f"folded into {producer.op_type} {producer.name}"
        return TargetRecord(node.name, node.op_type, True, detail, [n.name for n in b.nodes],
                            old_nodes=[producer.name, node.name])
