"""One op-family table for the counting rules and the receptive-field rules: every element-wise op has
both, and the ops the two used to disagree on (Tan, Sinh, Shrink, the bitwise ops, Swish, Hardmax,
LayerNormalization) behave like the rest of their family."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer import costs, receptive_field
from analyzer.costs import COST_RULES, Cost, node_cost
from analyzer.op_families import (
    ELEMENTWISE_FAMILIES,
    FAMILY_OF,
    MICROSOFT_OP_FAMILIES,
    MS_DOMAIN,
    OP_FAMILIES,
    family_of,
)
from analyzer.receptive_field import FIELD_RULES, compute_receptive_fields
from analyzer.views import NodeView, TensorView
from test_receptive_field import graph_of

ELEMENTWISE_OPS = [(family, op) for family in ELEMENTWISE_FAMILIES for op in OP_FAMILIES[family]]


def test_every_op_is_in_one_family():
    listed = [op for ops in OP_FAMILIES.values() for op in ops]
    assert len(listed) == len(set(listed))
    listed_ms = [op for ops in MICROSOFT_OP_FAMILIES.values() for op in ops]
    assert len(listed_ms) == len(set(listed_ms))


def test_family_lookup_treats_ai_onnx_as_the_default_domain():
    assert family_of("", "Tan") == family_of("ai.onnx", "Tan") == "unary"
    assert family_of(MS_DOMAIN, "FusedConv") == "conv"
    assert family_of("com.example", "Conv") is None and family_of("", "Einsum") is None


@pytest.mark.parametrize("family, op", ELEMENTWISE_OPS, ids=[op for _, op in ELEMENTWISE_OPS])
def test_elementwise_op_has_a_cost_rule_and_a_receptive_field_rule(family, op):
    assert ("", op) in COST_RULES
    assert op in FIELD_RULES


def test_every_op_of_the_table_has_a_cost_rule_and_no_rule_lacks_an_op():
    assert set(COST_RULES) == set(FAMILY_OF)
    assert set(costs.OP_RULES) <= set(FAMILY_OF)


def test_receptive_field_rules_name_only_ops_of_the_table():
    assert set(receptive_field.OP_RULES) <= {op for (domain, op) in FAMILY_OF if domain == ""}
    assert set(receptive_field.FAMILY_RULES) <= set(OP_FAMILIES)


# ---------------------------------------------------------------- ops whose behaviour changed


def _view(op, shape, **attrs):
    return NodeView(f"{op.lower()}_0", op, "", attrs, (TensorView("x", shape),), (TensorView("y", shape),), 24)


def test_swish_counts_one_flop_per_element_like_sigmoid():
    # x * sigmoid(x) counts one op per element, as Sigmoid, HardSwish and Gelu do: 2*8*5*5 = 400
    assert node_cost(_view("Swish", (2, 8, 5, 5))) == Cost(0, 400)
    assert node_cost(_view("Swish", (2, 8, 5, 5))) == node_cost(_view("Sigmoid", (2, 8, 5, 5)))


def test_fused_gemm_counts_the_gemm_its_bias_and_its_activation():
    a, b, c = TensorView("a", (4, 8)), TensorView("b", (8, 16)), TensorView("c", (16,))
    view = NodeView("fg", "FusedGemm", MS_DOMAIN, {"activation": "Relu"}, (a, b, c), (TensorView("y", (4, 16)),))
    # MACs 4*8*16 = 512; FLOPs 2*512 + 4*16 (bias) + 4*16 (Relu) = 1152
    assert node_cost(view) == Cost(512, 1152)
    no_activation = NodeView("fg", "FusedGemm", MS_DOMAIN, {}, (a, b), (TensorView("y", (4, 16)),))
    assert node_cost(no_activation) == Cost(512, 1024)


def _conv_op_conv(op_nodes, opset=20):
    """x 1x1x8x8 -> 3x3 conv (pad 1) -> ``op_nodes`` (reading "c1", writing "mid") -> 3x3 conv (pad 1)."""
    w = numpy_helper.from_array(np.zeros((1, 1, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1"], name="c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        *op_nodes,
        helper.make_node("Conv", ["mid", "w"], ["c2"], name="c2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("c2", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", opset)])
    G = graph_of(model)
    fields, warnings = compute_receptive_fields(G)
    return {G.nodes[v]["view"].name: f for v, f in fields.items()}, warnings


@pytest.mark.parametrize("op", ["Tan", "Sinh", "Atanh", "Shrink", "Swish"])
def test_elementwise_op_keeps_the_field_through_it(op):
    fields, warnings = _conv_op_conv([helper.make_node(op, ["c1"], ["mid"], name="op")], opset=24)
    # r = 1 + (3 - 1) = 3 after the first conv, unchanged by the op, 3 + (3 - 1) = 5 after the second
    assert fields["c1"].size == fields["op"].size == [3, 3]
    assert fields["c2"].size == [5, 5] and fields["c2"].padding == [2, 2]
    assert warnings == []


@pytest.mark.parametrize("op", ["BitwiseNot", "BitwiseAnd", "BitShift"])
def test_bitwise_op_keeps_the_field_through_it(op):
    inputs = ["q"] if op == "BitwiseNot" else ["q", "q"]
    attrs = {"direction": "LEFT"} if op == "BitShift" else {}
    to = TensorProto.UINT8 if op == "BitShift" else TensorProto.INT32
    nodes = [helper.make_node("Cast", ["c1"], ["q"], name="cast", to=to),
             helper.make_node(op, inputs, ["b"], name="op", **attrs),
             helper.make_node("Cast", ["b"], ["mid"], name="back", to=TensorProto.FLOAT)]
    fields, warnings = _conv_op_conv(nodes)
    assert fields["op"].size == [3, 3] and fields["c2"].size == [5, 5]
    assert warnings == []


def test_hardmax_over_channels_keeps_the_field_and_over_width_makes_it_global():
    channels, _ = _conv_op_conv([helper.make_node("Hardmax", ["c1"], ["mid"], name="op", axis=1)])
    assert channels["op"].size == [3, 3] and not channels["op"].is_global
    width, _ = _conv_op_conv([helper.make_node("Hardmax", ["c1"], ["mid"], name="op", axis=-1)])
    # global: the field reports the whole 8x8 input
    assert width["op"].is_global and width["op"].size == [8, 8] and width["c2"].is_global


def test_layer_normalization_is_global():
    scale = helper.make_node("Constant", [], ["scale"], name="scale",
                             value=numpy_helper.from_array(np.ones(8, np.float32)))
    norm = helper.make_node("LayerNormalization", ["c1", "scale"], ["mid"], name="op", axis=-1)
    fields, warnings = _conv_op_conv([scale, norm])
    assert fields["op"].is_global and fields["op"].size == [8, 8]
    assert warnings == []
