"""Counting rules, each called on a hand-built NodeView.

Expected values are arithmetic that mirrors the formula, or published per-layer figures from
docs/reference-figures.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from analyzer.costs import COST_RULES, Cost, node_cost, op_category
from analyzer.errors import AnalyzerError
from analyzer.views import NodeView, ShapeUnknown, TensorView


def t(shape, name="t", value=None):
    return TensorView(name, None if shape is None else tuple(shape), value=value)


def node(op, inputs, outputs=(None,), domain="", opset=18, **attrs):
    """A NodeView; shapes (tuples) become TensorViews, None stays an omitted optional input,
    and an output given as None is a tensor of unknown shape."""
    def wrap(x, i):
        return x if isinstance(x, TensorView) or x is None else t(x, f"in{i}")

    ins = tuple(wrap(x, i) for i, x in enumerate(inputs))
    outs = tuple(o if isinstance(o, TensorView) else t(o, f"out{i}") for i, o in enumerate(outputs))
    return NodeView(f"{op.lower()}_0", op, domain, attrs, ins, outs, opset)


def conv(x, w, out=None, bias=False, **attrs):
    inputs = [x, w] + ([(w[0],)] if bias else [])
    return node("Conv", inputs, [out], **attrs)


# --- Conv ---------------------------------------------------------------------------------------

CONV_CASES = {
    # 1x3x32x32, 16 filters 3x3, pad 1, stride 2 -> 16x16
    "stride2_pad1": (conv((1, 3, 32, 32), (16, 3, 3, 3), pads=[1, 1, 1, 1], strides=[2, 2]),
                     16 * 16 * 16 * 3 * 3 * 3),
    "no_pad": (conv((1, 3, 32, 32), (16, 3, 3, 3)), 16 * 30 * 30 * 3 * 3 * 3),
    "batch4": (conv((4, 8, 10, 10), (5, 8, 1, 1)), 4 * 5 * 10 * 10 * 8),
    # groups 4: each filter sees 16 / 4 = 4 channels
    "groups4": (conv((1, 16, 8, 8), (32, 4, 3, 3), pads=[1, 1, 1, 1], group=4), 32 * 8 * 8 * 4 * 3 * 3),
    "depthwise": (conv((1, 32, 14, 14), (32, 1, 3, 3), pads=[1, 1, 1, 1], group=32), 32 * 14 * 14 * 1 * 3 * 3),
    # dilation 2: effective kernel 5 -> 20 - 5 + 1 = 16
    "dilation2": (conv((1, 4, 20, 20), (8, 4, 3, 3), dilations=[2, 2]), 8 * 16 * 16 * 4 * 3 * 3),
    # asymmetric pads: H 10 + 1 + 0 - 3 + 1 = 9, W 10 + 2 + 2 - 3 + 1 = 12
    "asymmetric_pads": (conv((1, 2, 10, 10), (3, 2, 3, 3), pads=[1, 2, 0, 2]), 3 * 9 * 12 * 2 * 3 * 3),
    # SAME_UPPER stride 2: ceil(15 / 2) = 8, ceil(9 / 2) = 5
    "same_upper": (conv((1, 3, 15, 9), (4, 3, 3, 3), auto_pad="SAME_UPPER", strides=[2, 2]), 4 * 8 * 5 * 3 * 3 * 3),
    "same_lower": (conv((1, 3, 15, 9), (4, 3, 5, 5), auto_pad="SAME_LOWER", strides=[2, 2]), 4 * 8 * 5 * 3 * 5 * 5),
    # VALID stride 2: ceil((15 - 3 + 1) / 2) = 7, ceil((9 - 3 + 1) / 2) = 4
    "valid": (conv((1, 3, 15, 9), (4, 3, 3, 3), auto_pad="VALID", strides=[2, 2]), 4 * 7 * 4 * 3 * 3 * 3),
    # 1D: length 100, kernel 7, stride 3: (100 - 7) // 3 + 1 = 32
    "conv1d": (conv((2, 6, 100), (12, 6, 7), strides=[3]), 2 * 12 * 32 * 6 * 7),
    # 3D: 8x16x16 volume, 3x3x3 kernel, pad 1 -> same size
    "conv3d": (conv((1, 3, 8, 16, 16), (10, 3, 3, 3, 3), pads=[1] * 6), 10 * 8 * 16 * 16 * 3 * 3 * 3 * 3),
    # output shape taken from the node when known (a 7x7 output, as if cropped)
    "output_shape_from_node": (conv((1, 3, 32, 32), (16, 3, 3, 3), out=(1, 16, 7, 7)), 16 * 7 * 7 * 3 * 3 * 3),
}


@pytest.mark.parametrize("view, expected_macs", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv_macs_and_flops_without_bias(view, expected_macs):
    assert node_cost(view) == Cost(expected_macs, 2 * expected_macs)


@pytest.mark.parametrize("op, x, w, attrs", [
    ("Conv", (1, 3, 15, 9), (4, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ("Conv", (1, 3, 15, 9), (4, 3, 4, 4), {"auto_pad": "SAME_LOWER", "strides": [3, 2]}),
    ("Conv", (1, 3, 15, 9), (4, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
    ("Conv", (1, 2, 10, 11), (3, 2, 3, 3), {"pads": [1, 2, 0, 2], "dilations": [2, 1], "strides": [1, 3]}),
    ("MaxPool", (1, 4, 14, 13), None, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("MaxPool", (1, 4, 15, 15), None, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                       "ceil_mode": 1}),
    # ceil_mode's last window would start in the end padding: ceil((5 + 2 - 2) / 2) + 1 = 4 drops to 3
    ("MaxPool", (1, 4, 5, 5), None, {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                     "ceil_mode": 1}),
    ("AveragePool", (1, 4, 9, 10), None, {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
])
def test_window_output_sizes_agree_with_onnx_shape_inference(op, x, w, attrs):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x)]
    if w is not None:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, w))
    graph = helper.make_graph([helper.make_node(op, [i.name for i in inputs], ["y"], **attrs)], "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    # opset 22: earlier opsets' shape inference keeps a ceil_mode window that starts in the end
    # padding, which onnxruntime and torch drop (the spec was corrected in opset 22)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)], ir_version=10)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph.output[0]
    out_shape = tuple(d.dim_value for d in inferred.type.tensor_type.shape.dim)
    per_output = (w[1] * w[2] * w[3]) if w is not None else attrs["kernel_shape"][0] * attrs["kernel_shape"][1]
    view = node(op, [x] + ([w] if w is not None else []), **attrs)  # output shape unknown: the rule computes it
    cost = node_cost(view)
    assert (cost.macs if w is not None else cost.flops) == np.prod(out_shape) * per_output


def test_conv_bias_adds_one_flop_per_output_element():
    view = conv((1, 3, 32, 32), (16, 3, 3, 3), bias=True, pads=[1, 1, 1, 1], strides=[2, 2])
    macs = 16 * 16 * 16 * 3 * 3 * 3
    assert node_cost(view) == Cost(macs, 2 * macs + 16 * 16 * 16)


def test_conv_needs_only_output_and_weight_shapes_when_output_known():
    view = node("Conv", [t(None, "x"), (16, 3, 3, 3)], [(1, 16, 30, 30)])
    assert node_cost(view).macs == 16 * 30 * 30 * 3 * 3 * 3


# --- published per-layer figures ------------------------------------------------------------------


def test_lenet5_conv_layers_match_course_table():
    conv1 = conv((1, 1, 32, 32), (6, 1, 5, 5), bias=True)
    conv2 = conv((1, 6, 14, 14), (16, 6, 5, 5), bias=True)
    assert node_cost(conv1).macs == 117_600
    assert node_cost(conv2).macs == 240_000


def test_vgg16_first_block_matches_course_table():
    conv1_1 = conv((1, 3, 224, 224), (64, 3, 3, 3), bias=True, pads=[1, 1, 1, 1])
    conv1_2 = conv((1, 64, 224, 224), (64, 64, 3, 3), bias=True, pads=[1, 1, 1, 1])
    assert node_cost(conv1_1).macs == 86_704_128
    assert node_cost(conv1_2).macs == 1_849_688_064


def test_grouped_alexnet_per_layer_macs_match_tutorial():
    # 227 input; conv1 96@11x11 s4 -> 55; maxpool 3 s2 -> 27; conv2 256@5x5 p2 g2; pool -> 13;
    # conv3 384@3x3 p1; conv4 384@3x3 p1 g2; conv5 256@3x3 p1 g2; pool -> 6; fc 9216-4096-4096-1000.
    pool1 = node("MaxPool", [(1, 96, 55, 55)], kernel_shape=[3, 3], strides=[2, 2])
    pool2 = node("MaxPool", [(1, 256, 27, 27)], kernel_shape=[3, 3], strides=[2, 2])
    pool5 = node("MaxPool", [(1, 256, 13, 13)], kernel_shape=[3, 3], strides=[2, 2])
    # the pools' spatial sizes as the rule computes them: FLOPs / (C * 3 * 3) = side**2
    assert node_cost(pool1).flops == 96 * 27 * 27 * 3 * 3
    assert node_cost(pool2).flops == 256 * 13 * 13 * 3 * 3
    assert node_cost(pool5).flops == 256 * 6 * 6 * 3 * 3
    layers = [
        conv((1, 3, 227, 227), (96, 3, 11, 11), bias=True, strides=[4, 4]),
        conv((1, 96, 27, 27), (256, 48, 5, 5), bias=True, pads=[2, 2, 2, 2], group=2),
        conv((1, 256, 13, 13), (384, 256, 3, 3), bias=True, pads=[1, 1, 1, 1]),
        conv((1, 384, 13, 13), (384, 192, 3, 3), bias=True, pads=[1, 1, 1, 1], group=2),
        conv((1, 384, 13, 13), (256, 192, 3, 3), bias=True, pads=[1, 1, 1, 1], group=2),
        node("Gemm", [(1, 9216), (4096, 9216), (4096,)], transB=1),
        node("Gemm", [(1, 4096), (4096, 4096), (4096,)], transB=1),
        node("Gemm", [(1, 4096), (1000, 4096), (1000,)], transB=1),
    ]
    macs = [node_cost(layer).macs for layer in layers]
    assert macs == [105_415_200, 223_948_800, 149_520_384, 112_140_288, 74_760_192,
                    37_748_736, 16_777_216, 4_096_000]
    assert sum(macs) == 724_406_816


def test_naive_inception_module_matches_cs231n():
    x = (1, 256, 28, 28)
    branches = [
        conv(x, (128, 256, 1, 1)),
        conv(x, (192, 256, 3, 3), pads=[1, 1, 1, 1]),
        conv(x, (96, 256, 5, 5), pads=[2, 2, 2, 2]),
    ]
    assert sum(node_cost(b).macs for b in branches) == 854_196_224


# --- ConvTranspose ------------------------------------------------------------------------------


CONV_TRANSPOSE_CASES = {
    # W is (Cin, Cout / groups, k...): every input element meets Cout/groups * prod(k) weights
    "stride2": (node("ConvTranspose", [(1, 8, 7, 7), (8, 4, 3, 3)], strides=[2, 2]), 8 * 7 * 7 * 4 * 3 * 3),
    "groups2": (node("ConvTranspose", [(2, 8, 5, 5), (8, 3, 4, 4)], strides=[2, 2], group=2),
                2 * 8 * 5 * 5 * 3 * 4 * 4),
    "conv1d": (node("ConvTranspose", [(1, 4, 10), (4, 2, 5)]), 4 * 10 * 2 * 5),
}


@pytest.mark.parametrize("view, expected_macs", CONV_TRANSPOSE_CASES.values(), ids=CONV_TRANSPOSE_CASES.keys())
def test_conv_transpose_macs(view, expected_macs):
    assert node_cost(view) == Cost(expected_macs, 2 * expected_macs)


@pytest.mark.parametrize("attrs, out_side", [
    # out = s * (in - 1) + output_padding + d * (k - 1) + 1 - pads
    ({"strides": [2, 2]}, 2 * (7 - 1) + 3),
    ({"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, 2 * (7 - 1) + 1 + 3 - 2),
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, 7 * 2),
    ({"strides": [2, 2], "output_shape": [15, 15]}, 15),
])
def test_conv_transpose_bias_adds_per_computed_output_element(attrs, out_side):
    view = node("ConvTranspose", [(1, 8, 7, 7), (8, 4, 3, 3), (4,)], **attrs)
    macs = 8 * 7 * 7 * 4 * 3 * 3
    assert node_cost(view) == Cost(macs, 2 * macs + 4 * out_side * out_side)


# --- Gemm and MatMul ----------------------------------------------------------------------------

GEMM_CASES = {
    "plain": (node("Gemm", [(8, 32), (32, 10)]), 8 * 32 * 10, 0),
    "transA": (node("Gemm", [(32, 8), (32, 10)], transA=1), 8 * 32 * 10, 0),
    "transB": (node("Gemm", [(8, 32), (10, 32)], transB=1), 8 * 32 * 10, 0),
    "both": (node("Gemm", [(32, 8), (10, 32)], transA=1, transB=1), 8 * 32 * 10, 0),
    "with_C_vector": (node("Gemm", [(8, 32), (10, 32), (10,)], transB=1), 8 * 32 * 10, 8 * 10),
    "with_C_scalar": (node("Gemm", [(8, 32), (32, 10), (1,)]), 8 * 32 * 10, 8 * 10),
    "C_omitted": (node("Gemm", [(8, 32), (32, 10), None]), 8 * 32 * 10, 0),
}


@pytest.mark.parametrize("view, macs, bias_adds", GEMM_CASES.values(), ids=GEMM_CASES.keys())
def test_gemm(view, macs, bias_adds):
    assert node_cost(view) == Cost(macs, 2 * macs + bias_adds)


MATMUL_CASES = {
    "2d": ((4, 6), (6, 5), 4 * 6 * 5),
    "batched": ((3, 4, 6), (3, 6, 5), 3 * 4 * 6 * 5),
    "broadcast_b": ((2, 3, 4, 6), (6, 5), 2 * 3 * 4 * 6 * 5),
    "broadcast_both": ((2, 1, 4, 6), (1, 7, 6, 5), 2 * 7 * 4 * 6 * 5),
    "vector_vector": ((6,), (6,), 6),
    "vector_matrix": ((6,), (6, 5), 6 * 5),
    "matrix_vector": ((4, 6), (6,), 4 * 6),
    "vector_batched": ((6,), (3, 6, 5), 3 * 6 * 5),
    "batched_vector": ((3, 4, 6), (6,), 3 * 4 * 6),
}


@pytest.mark.parametrize("a, b, macs", MATMUL_CASES.values(), ids=MATMUL_CASES.keys())
def test_matmul_numpy_rules(a, b, macs):
    assert node_cost(node("MatMul", [a, b])) == Cost(macs, 2 * macs)
    # the rule agrees with numpy's own result shape: MACs = output elements * K
    assert macs == np.matmul(np.zeros(a), np.zeros(b)).size * a[-1]


def test_matmul_mismatched_inner_dimension_is_a_bad_input():
    with pytest.raises(AnalyzerError, match="inner dimensions"):
        node_cost(node("MatMul", [(4, 6), (5, 3)]))


def test_matmul_incompatible_batch_is_a_bad_input():
    with pytest.raises(AnalyzerError, match="broadcast"):
        node_cost(node("MatMul", [(2, 4, 6), (3, 6, 5)]))


# --- quantized and fused forms ------------------------------------------------------------------

S = (1,)  # a scale or zero point


QUANTIZED_CASES = {
    # QLinearConv: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp[, B]; B adds one per output element
    "qlinear_conv": (node("QLinearConv", [(1, 3, 32, 32), S, S, (16, 3, 3, 3), S, S, S, S], pads=[1] * 4),
                     16 * 32 * 32 * 3 * 3 * 3, 0),
    "qlinear_conv_bias": (node("QLinearConv", [(1, 3, 32, 32), S, S, (16, 3, 3, 3), S, S, S, S, (16,)],
                               pads=[1] * 4, strides=[2, 2]),
                          16 * 16 * 16 * 3 * 3 * 3, 16 * 16 * 16),
    "conv_integer_depthwise": (node("ConvInteger", [(1, 8, 10, 10), (8, 1, 3, 3), S, S], group=8),
                               8 * 8 * 8 * 1 * 3 * 3, 0),
    "matmul_integer": (node("MatMulInteger", [(2, 4, 6), (6, 5), S, S]), 2 * 4 * 6 * 5, 0),
    # QLinearMatMul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp
    "qlinear_matmul": (node("QLinearMatMul", [(4, 6), S, S, (6, 5), S, S, S, S]), 4 * 6 * 5, 0),
    "ms_qgemm_with_C": (node("QGemm", [(8, 32), S, S, (10, 32), S, S, (10,), S, S], domain="com.microsoft",
                             transB=1), 8 * 32 * 10, 8 * 10),
    "ms_fused_matmul_transposed": (node("FusedMatMul", [(3, 6, 4), (5, 6)], domain="com.microsoft",
                                        transA=1, transB=1), 3 * 4 * 6 * 5, 0),
    "ms_matmul_integer_to_float_bias": (node("MatMulIntegerToFloat", [(4, 6), (6, 5), S, S, S, S, (5,)],
                                             [(4, 5)], domain="com.microsoft"), 4 * 6 * 5, 4 * 5),
    # FusedConv: conv + bias + activation (1 per output element)
    "ms_fused_conv_relu": (node("FusedConv", [(1, 3, 8, 8), (4, 3, 3, 3), (4,)], domain="com.microsoft",
                                activation="Relu"), 4 * 6 * 6 * 3 * 3 * 3, 2 * 4 * 6 * 6),
}


@pytest.mark.parametrize("view, macs, extra_flops", QUANTIZED_CASES.values(), ids=QUANTIZED_CASES.keys())
def test_quantized_and_fused_forms(view, macs, extra_flops):
    assert node_cost(view) == Cost(macs, 2 * macs + extra_flops)


# --- element-wise, pooling, normalisation -----------------------------------------------------------

ELEMENTWISE_OPS = ["Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "Tanh", "Clip",
                   "HardSwish", "Softplus", "Gelu", "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal",
                   "Pow", "Add", "Sub", "Mul", "Div", "Where", "Equal", "Less", "Greater", "Not", "And",
                   "QuantizeLinear", "DequantizeLinear"]


@pytest.mark.parametrize("op", ELEMENTWISE_OPS)
def test_elementwise_one_flop_per_output_element(op):
    assert node_cost(node(op, [(2, 3, 4, 5)], [(2, 3, 4, 5)])) == Cost(0, 2 * 3 * 4 * 5)


def test_elementwise_broadcast_counts_output_elements_when_output_unknown():
    assert node_cost(node("Add", [(8, 1, 5), (4, 1)])) == Cost(0, 8 * 4 * 5)
    assert node_cost(node("Where", [(3, 1), (1, 7), (1,)])) == Cost(0, 3 * 7)


def test_clip_counts_the_same_with_attribute_or_inputs():
    old = node("Clip", [(2, 10)], opset=6, min=0.0, max=6.0)
    new = node("Clip", [(2, 10), (), ()], opset=13)
    assert node_cost(old) == node_cost(new) == Cost(0, 2 * 10)


@pytest.mark.parametrize("op, inputs, per_element", [
    ("Sum", 2, 2 - 1),
    ("Sum", 4, 4 - 1),
    ("Max", 3, 3 - 1),
    ("Min", 2, 2 - 1),
    ("Mean", 3, (3 - 1) + 1),  # adds, then one divide
    ("Sum", 1, 0),
])
def test_variadic_ops_count_pairwise_combines(op, inputs, per_element):
    view = node(op, [(4, 5)] * inputs, [(4, 5)])
    assert node_cost(view) == Cost(0, per_element * 4 * 5)


POOL_CASES = {
    # (2 * 16 channels... ) output elements * prod(kernel)
    "max_2x2_s2": (node("MaxPool", [(1, 16, 32, 32)], kernel_shape=[2, 2], strides=[2, 2]), 16 * 16 * 16 * 2 * 2),
    "max_3x3_s2_pad1": (node("MaxPool", [(1, 8, 112, 112)], kernel_shape=[3, 3], strides=[2, 2],
                             pads=[1, 1, 1, 1]), 8 * 56 * 56 * 3 * 3),
    # ceil_mode: ceil((13 - 3) / 2) + 1 = 6 (same as floor here); 14: ceil(11 / 2) + 1 = 7 vs floor 6
    "max_ceil_mode": (node("MaxPool", [(1, 4, 14, 14)], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
                      4 * 7 * 7 * 3 * 3),
    "avg_5x5_s3": (node("AveragePool", [(2, 6, 14, 14)], kernel_shape=[5, 5], strides=[3, 3]),
                   2 * 6 * 4 * 4 * 5 * 5),
    "avg_same_upper": (node("AveragePool", [(1, 3, 9, 9)], kernel_shape=[3, 3], strides=[2, 2],
                            auto_pad="SAME_UPPER"), 3 * 5 * 5 * 3 * 3),
    "lp_1d": (node("LpPool", [(1, 2, 10)], kernel_shape=[4]), 2 * 7 * 4),
    "max_output_known": (node("MaxPool", [(1, 16, 32, 32)], [(1, 16, 10, 10), (1, 16, 10, 10)],
                              kernel_shape=[3, 3]), 16 * 10 * 10 * 3 * 3),
    "global_avg": (node("GlobalAveragePool", [(2, 512, 7, 7)]), 2 * 512 * 7 * 7),
    "global_max": (node("GlobalMaxPool", [(1, 64, 5, 6)]), 64 * 5 * 6),
}


@pytest.mark.parametrize("view, flops", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_pooling(view, flops):
    assert node_cost(view) == Cost(0, flops)


X = (2, 16, 8, 8)
C = (16,)
NORM_CASES = {
    "batch_norm": (node("BatchNormalization", [X, C, C, C, C]), 2 * 2 * 16 * 8 * 8),
    # LRN (size + 5) per element: square, size window adds, scale, bias, pow, divide
    "lrn_size5": (node("LRN", [X], size=5), (1 + 5 + 1 + 1 + 1 + 1) * 2 * 16 * 8 * 8),
    "softmax": (node("Softmax", [(4, 1000)], axis=-1), 3 * 4 * 1000),
    "log_softmax": (node("LogSoftmax", [(4, 1000)]), 3 * 4 * 1000),
    # statistics 5 per element + scale 1 + bias 1
    "layer_norm": (node("LayerNormalization", [(4, 10, 64), (64,), (64,)], axis=-1), (5 + 1 + 1) * 4 * 10 * 64),
    "layer_norm_no_bias": (node("LayerNormalization", [(4, 10, 64), (64,)]), (5 + 1) * 4 * 10 * 64),
    "instance_norm": (node("InstanceNormalization", [X, C, C]), (5 + 1 + 1) * 2 * 16 * 8 * 8),
    "group_norm": (node("GroupNormalization", [X, C, C], num_groups=4), (5 + 1 + 1) * 2 * 16 * 8 * 8),
}


@pytest.mark.parametrize("view, flops", NORM_CASES.values(), ids=NORM_CASES.keys())
def test_normalisation_and_softmax(view, flops):
    assert node_cost(view) == Cost(0, flops)


# --- reductions -----------------------------------------------------------------------------------

R = (2, 3, 4, 5)
N_R = 2 * 3 * 4 * 5
REDUCE_CASES = {
    "sum_axes_input": (node("ReduceSum", [R, t((2,), value=np.array([2, 3]))], opset=13), N_R),
    "max_attr": (node("ReduceMax", [R], opset=13, axes=[1]), N_R),
    "min_all": (node("ReduceMin", [R]), N_R),
    "prod": (node("ReduceProd", [R], axes=[0]), N_R),
    # no divide counted (as AveragePool): one add per input element whatever the axes
    "mean_attr_opset13": (node("ReduceMean", [R], opset=13, axes=[2, 3], keepdims=1), N_R),
    "mean_axes_input_opset18": (node("ReduceMean", [R, t((2,), value=np.array([-1, -2]))], opset=18, keepdims=0), N_R),
    "mean_output_known": (node("ReduceMean", [R, t((1,))], [(2, 1, 4, 5)], opset=18), N_R),
    "mean_all_axes": (node("ReduceMean", [R], opset=18), N_R),
    "l2_axes_input_opset18": (node("ReduceL2", [R, t((2,), value=np.array([-1, -2]))], opset=18, keepdims=0),
                              2 * N_R + 2 * 3),  # square + add per input; sqrt per output
    "l2_all_axes": (node("ReduceL2", [R], opset=18), 2 * N_R + 1),
    "sum_square": (node("ReduceSumSquare", [R], axes=[1]), 2 * N_R),  # square + add
    "l1": (node("ReduceL1", [R], axes=[1]), 2 * N_R),  # abs + add
    "l2": (node("ReduceL2", [R], axes=[1]), 2 * N_R + 2 * 4 * 5),  # square + add; sqrt
    "log_sum": (node("ReduceLogSum", [R], axes=[0]), N_R + 3 * 4 * 5),  # add; log
    "log_sum_exp": (node("ReduceLogSumExp", [R], axes=[3]), 2 * N_R + 2 * 3 * 4),  # exp + add; log
    "argmax": (node("ArgMax", [R], axis=1), N_R),
}


@pytest.mark.parametrize("view, flops", REDUCE_CASES.values(), ids=REDUCE_CASES.keys())
def test_reductions(view, flops):
    assert node_cost(view) == Cost(0, flops)


def test_reduce_with_a_per_output_term_and_unknown_axes_input_raises_shape_unknown():
    with pytest.raises(ShapeUnknown):
        node_cost(node("ReduceL2", [R, t((2,))], opset=18))


# --- resize ---------------------------------------------------------------------------------------

RESIZE_CASES = {
    "nearest": (node("Resize", [(1, 3, 8, 8), None, None, None], [(1, 3, 16, 16)], mode="nearest"), 0),
    # 2 axes resized: 2 * 2**2 per output element
    "linear_2d": (node("Resize", [(1, 3, 8, 8), None, None, None], [(1, 3, 16, 16)], mode="linear"),
                  2 * 2**2 * 3 * 16 * 16),
    "cubic_2d": (node("Resize", [(1, 3, 8, 8), None, None, None], [(1, 3, 16, 16)], mode="cubic"),
                 2 * 4**2 * 3 * 16 * 16),
    "linear_from_scales_input": (node("Resize", [(1, 3, 8, 8), None, t((4,), value=np.array([1, 1, 2, 3.0]))],
                                      mode="linear", opset=13), 2 * 2**2 * 3 * 16 * 24),
    "linear_from_sizes_input": (node("Resize", [(1, 3, 8, 8), None, None, t((4,), value=np.array([1, 3, 8, 20]))],
                                     mode="linear", opset=13), 2 * 2**1 * 3 * 8 * 20),
    "resize10_scales": (node("Resize", [(1, 3, 8, 8), t((4,), value=np.array([1, 1, 2, 2.0]))],
                             mode="linear", opset=10), 2 * 2**2 * 3 * 16 * 16),
    "upsample7_attr": (node("Upsample", [(1, 3, 8, 8)], opset=7, mode="nearest", scales=[1.0, 1.0, 2.0, 2.0]), 0),
}


@pytest.mark.parametrize("view, flops", RESIZE_CASES.values(), ids=RESIZE_CASES.keys())
def test_resize(view, flops):
    assert node_cost(view) == Cost(0, flops)


def test_resize_with_unknown_scales_raises_shape_unknown():
    with pytest.raises(ShapeUnknown):
        node_cost(node("Resize", [(1, 3, 8, 8), None, t((4,))], mode="linear"))


# --- recurrent ops ----------------------------------------------------------------------------------
# MACs = directions * steps * batch * gates * hidden * (input + hidden); FLOPs = 2 * MACs + per cell run
# (direction, step, batch element): 2 bias adds per gate unit with B, the cell's element-wise work per
# hidden unit (LSTM 9, +6 with peepholes; GRU 8; RNN 1), 1 per gate unit with clip.


def lstm(x, hidden, directions=1, bias=True, peepholes=False, **attrs):
    """LSTM over X (layout 0 [seq, batch, input] unless layout=1 is given)."""
    inputs = [x, (directions, 4 * hidden, x[2]), (directions, 4 * hidden, hidden), (directions, 8 * hidden) if bias else None]
    if peepholes:
        inputs += [None, None, None, (directions, 3 * hidden)]
    direction = {1: "forward", 2: "bidirectional"}[directions]
    return node("LSTM", inputs, [None], hidden_size=hidden, direction=attrs.pop("direction", direction), **attrs)


RECURRENT_CASES = {
    # X 5 steps x batch 3 x 8 features, hidden 16
    "lstm_forward": (lstm((5, 3, 8), 16),
                     5 * 3 * 4 * 16 * (8 + 16), 5 * 3 * (2 * 4 * 16 + 9 * 16)),
    "lstm_reverse_no_bias": (lstm((5, 3, 8), 16, bias=False, direction="reverse"),
                             5 * 3 * 4 * 16 * (8 + 16), 5 * 3 * 9 * 16),
    "lstm_bidirectional": (lstm((5, 3, 8), 16, directions=2),
                           2 * 5 * 3 * 4 * 16 * (8 + 16), 2 * 5 * 3 * (2 * 4 * 16 + 9 * 16)),
    # layout 1: X is [batch 3, seq 5, input 8] -- the same work as layout 0's [5, 3, 8]
    "lstm_layout1": (lstm((3, 5, 8), 16, directions=2, layout=1),
                     2 * 5 * 3 * 4 * 16 * (8 + 16), 2 * 5 * 3 * (2 * 4 * 16 + 9 * 16)),
    "lstm_peepholes_clip": (lstm((5, 3, 8), 16, peepholes=True, clip=3.0),
                            5 * 3 * 4 * 16 * (8 + 16), 5 * 3 * (2 * 4 * 16 + (9 + 6) * 16 + 4 * 16)),
    # GRU: X 7 x 2 x 10, hidden 6
    "gru_forward": (node("GRU", [(7, 2, 10), (1, 18, 10), (1, 18, 6), (1, 36)], [None], hidden_size=6),
                    7 * 2 * 3 * 6 * (10 + 6), 7 * 2 * (2 * 3 * 6 + 8 * 6)),
    # linear_before_reset moves the reset multiply after Rh·H' + Rbh: the same count
    "gru_linear_before_reset": (node("GRU", [(7, 2, 10), (1, 18, 10), (1, 18, 6), (1, 36)], [None], hidden_size=6,
                                     linear_before_reset=1),
                                7 * 2 * 3 * 6 * (10 + 6), 7 * 2 * (2 * 3 * 6 + 8 * 6)),
    "gru_bidirectional_clip": (node("GRU", [(7, 2, 10), (2, 18, 10), (2, 18, 6)], [None], hidden_size=6,
                                    direction="bidirectional", clip=1.0),
                               2 * 7 * 2 * 3 * 6 * (10 + 6), 2 * 7 * 2 * (8 * 6 + 3 * 6)),
    # RNN: X 4 x 1 x 3, hidden 5, hidden_size taken from W when the attribute is absent
    "rnn_reverse": (node("RNN", [(4, 1, 3), (1, 5, 3), (1, 5, 5), (1, 10)], [None], direction="reverse"),
                    4 * 1 * 5 * (3 + 5), 4 * 1 * (2 * 5 + 5)),
    "rnn_bidirectional_layout1": (node("RNN", [(2, 4, 3), (2, 5, 3), (2, 5, 5)], [None], hidden_size=5,
                                       direction="bidirectional", layout=1),
                                  2 * 4 * 2 * 5 * (3 + 5), 2 * 4 * 2 * 5),
}


@pytest.mark.parametrize("view, macs, extra_flops", RECURRENT_CASES.values(), ids=RECURRENT_CASES.keys())
def test_recurrent_ops(view, macs, extra_flops):
    assert node_cost(view) == Cost(macs, 2 * macs + extra_flops)


def test_recurrent_weights_that_do_not_fit_are_a_bad_input_naming_the_node():
    with pytest.raises(AnalyzerError, match="lstm_0"):  # W says 3 gates' worth of rows
        node_cost(node("LSTM", [(5, 3, 8), (1, 48, 8), (1, 48, 16)], [None], hidden_size=16))
    with pytest.raises(AnalyzerError, match="gru_0"):  # bidirectional needs two directions of weights
        node_cost(node("GRU", [(7, 2, 10), (1, 18, 10), (1, 18, 6)], [None], direction="bidirectional"))
    with pytest.raises(ShapeUnknown):
        node_cost(node("RNN", [U, (1, 5, 3), (1, 5, 5)], [None]))


# --- attention --------------------------------------------------------------------------------------
# MACs = batch * heads * q_seq * total_seq * (head_size + v_head_size) (+ the packed input projection of
# com.microsoft Attention); FLOPs = 2 * MACs + per score (batch * heads * q_seq * total_seq): 1 scale,
# 3 softmax, 1 per mask or bias added (+3 for a softcap); + the projection's bias adds.
MS = "com.microsoft"

ATTENTION_CASES = {
    # ONNX Attention, 4-D: batch 2, 4 heads, 6 queries, 10 keys, head 8, v_head 12
    "onnx_4d": (node("Attention", [(2, 4, 6, 8), (2, 4, 10, 8), (2, 4, 10, 12)], [None], opset=23),
                2 * 4 * 6 * 10 * (8 + 12), 2 * 4 * 6 * 10 * (1 + 3)),
    # 3-D grouped-query: 8 query heads of 32 / 8 = 4, 2 K/V heads (V 12 / 2 = 6 each), causal, 5 past + 10 new keys
    "onnx_3d_gqa_causal_past": (node("Attention", [(2, 6, 32), (2, 10, 8), (2, 10, 12), None, (2, 2, 5, 4), (2, 2, 5, 6)],
                                     [None], opset=23, q_num_heads=8, kv_num_heads=2, is_causal=1),
                                2 * 8 * 6 * (5 + 10) * (4 + 6), 2 * 8 * 6 * 15 * (1 + 3 + 1)),
    "onnx_mask_softcap": (node("Attention", [(1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4), (3, 5)], [None], opset=23,
                               softcap=30.0),
                          1 * 2 * 3 * 5 * (4 + 4), 1 * 2 * 3 * 5 * (1 + 3 + 1 + 3)),
    # com.microsoft Attention: input 2 x 5 x 16, packed weights 16 x 48, bias 48, 4 heads of 16 / 4 = 4
    "ms_attention": (node("Attention", [(2, 5, 16), (16, 48), (48,)], [None], domain=MS, opset=1, num_heads=4),
                     2 * 5 * 16 * 48 + 2 * 4 * 5 * 5 * (4 + 4), 2 * 5 * 48 + 2 * 4 * 5 * 5 * (1 + 3)),
    # V narrower: qkv_hidden_sizes 16, 16, 8 gives v_head 8 / 4 = 2
    "ms_attention_narrow_v": (node("Attention", [(2, 5, 16), (16, 40), (40,)], [None], domain=MS, opset=1,
                                   num_heads=4, qkv_hidden_sizes=[16, 16, 8]),
                              2 * 5 * 16 * 40 + 2 * 4 * 5 * 5 * (4 + 2), 2 * 5 * 40 + 2 * 4 * 5 * 5 * (1 + 3)),
    # 3 past positions, mask, unidirectional, no bias
    "ms_attention_past_mask": (node("Attention", [(2, 5, 16), (16, 48), None, (2, 8), (2, 2, 4, 3, 4)], [None],
                                    domain=MS, opset=1, num_heads=4, unidirectional=1),
                               2 * 5 * 16 * 48 + 2 * 4 * 5 * (3 + 5) * (4 + 4), 2 * 4 * 5 * 8 * (1 + 3 + 1)),
    # shared past/present buffer of 32 positions, 3 of them used (past_sequence_length), attention_bias
    "ms_attention_shared_buffer": (node("Attention", [(2, 5, 16), (16, 48), None, None, (2, 2, 4, 32, 4),
                                                      (1, 4, 5, 8), t((1,), value=np.array([3], dtype=np.int32))],
                                        [None], domain=MS, opset=1, num_heads=4, past_present_share_buffer=1),
                                   2 * 5 * 16 * 48 + 2 * 4 * 5 * (3 + 5) * (4 + 4), 2 * 4 * 5 * 8 * (1 + 3 + 1)),
    # MultiHeadAttention: query 2 x 5 x 16, key 2 x 7 x 16, value 2 x 7 x 8, 4 heads; bias 16 + 16 + 8
    "mha_3d_bias": (node("MultiHeadAttention", [(2, 5, 16), (2, 7, 16), (2, 7, 8), (40,)], [None], domain=MS,
                         opset=1, num_heads=4),
                    2 * 4 * 5 * 7 * (4 + 2), 2 * (5 * 16 + 7 * (16 + 8)) + 2 * 4 * 5 * 7 * (1 + 3)),
    "mha_packed_qkv": (node("MultiHeadAttention", [(2, 5, 4, 3, 4)], [None], domain=MS, opset=1, num_heads=4),
                       2 * 4 * 5 * 5 * (4 + 4), 2 * 4 * 5 * 5 * (1 + 3)),
    "mha_packed_kv_mask": (node("MultiHeadAttention", [(2, 5, 16), (2, 7, 4, 2, 4), None, None, (2, 7)], [None],
                                domain=MS, opset=1, num_heads=4),
                           2 * 4 * 5 * 7 * (4 + 4), 2 * 4 * 5 * 7 * (1 + 3 + 1)),
    "mha_bnsh_key_value": (node("MultiHeadAttention", [(2, 5, 16), (2, 4, 9, 4), (2, 4, 9, 4)], [None], domain=MS,
                                opset=1, num_heads=4),
                           2 * 4 * 5 * 9 * (4 + 4), 2 * 4 * 5 * 9 * (1 + 3)),
    # one new token over 6 past ones, attention_bias, causal
    "mha_past_bias": (node("MultiHeadAttention", [(2, 1, 16), (2, 1, 16), (2, 1, 16), None, None, (1, 4, 1, 7),
                                                  (2, 4, 6, 4), (2, 4, 6, 4)], [None], domain=MS, opset=1,
                           num_heads=4, unidirectional=1),
                      2 * 4 * 1 * (6 + 1) * (4 + 4), 2 * 4 * 1 * 7 * (1 + 3 + 1 + 1)),
}


@pytest.mark.parametrize("view, macs, extra_flops", ATTENTION_CASES.values(), ids=ATTENTION_CASES.keys())
def test_attention_ops(view, macs, extra_flops):
    assert node_cost(view) == Cost(macs, 2 * macs + extra_flops)


def test_attention_without_what_it_needs_is_a_bad_input_or_unknown():
    with pytest.raises(AnalyzerError, match="q_num_heads"):  # 3-D Q needs the head count
        node_cost(node("Attention", [(2, 6, 32), (2, 10, 32), (2, 10, 32)], [None], opset=23))
    with pytest.raises(AnalyzerError, match="num_heads"):
        node_cost(node("MultiHeadAttention", [(2, 5, 16), (2, 7, 16), (2, 7, 16)], [None], domain=MS, opset=1))
    with pytest.raises(AnalyzerError, match="not a multiple"):
        node_cost(node("Attention", [(2, 5, 18), (18, 54)], [None], domain=MS, opset=1, num_heads=4))
    with pytest.raises(ShapeUnknown):  # shared buffer, past length only known at run time
        node_cost(node("Attention", [(2, 5, 16), (16, 48), None, None, (2, 2, 4, 32, 4), None, t((1,))],
                       [None], domain=MS, opset=1, num_heads=4, past_present_share_buffer=1))
    with pytest.raises(ShapeUnknown):
        node_cost(node("Attention", [(2, 4, 6, 8), U, (2, 4, 10, 8)], [None], opset=23))


# --- zero-cost, unsupported, unknown ----------------------------------------------------------------

SHAPE_ONLY = ["Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice",
              "Identity", "Dropout", "Constant", "ConstantOfShape", "Shape", "Size", "Gather", "Cast", "Pad",
              "Expand", "Tile", "Range"]


@pytest.mark.parametrize("op", SHAPE_ONLY)
def test_shape_only_ops_are_supported_and_free(op):
    # unknown shapes do not matter: nothing is computed
    assert node_cost(node(op, [t(None, "x")], [None])) == Cost(0, 0)
    assert ("", op) in COST_RULES


@pytest.mark.parametrize("op, domain", [("Einsum", ""), ("STFT", ""), ("NonMaxSuppression", ""),
                                        ("GroupQueryAttention", "com.microsoft"), ("Conv", "com.example")])
def test_op_without_rule_returns_none(op, domain):
    assert node_cost(node(op, [(2, 3)], [(2, 3)], domain=domain)) is None


def test_ai_onnx_domain_is_the_default_domain():
    view = node("Relu", [(3, 4)], [(3, 4)], domain="ai.onnx")
    assert node_cost(view) == Cost(0, 3 * 4)
    assert op_category(node("Conv", [(1, 1, 3, 3), (1, 1, 1, 1)], domain="ai.onnx")) == "conv"


U = t(None, "unknown")


@pytest.mark.parametrize("view", [
    node("Conv", [U, (16, 3, 3, 3)], [None]),
    node("Conv", [(1, 3, 8, 8), U], [(1, 16, 6, 6)]),
    node("Gemm", [U, (32, 10)]),
    node("MatMul", [(4, 6), U]),
    node("Relu", [U], [None]),
    node("MaxPool", [U], [None], kernel_shape=[2, 2]),
    node("BatchNormalization", [U, C, C, C, C]),
    node("ReduceMean", [U], axes=[1]),
    node("Softmax", [U]),
], ids=["conv_x", "conv_w", "gemm", "matmul", "relu", "maxpool", "bn", "reduce", "softmax"])
def test_unknown_needed_shape_raises_shape_unknown(view):
    with pytest.raises(ShapeUnknown):
        node_cost(view)


def test_inconsistent_attributes_are_a_bad_input_naming_the_node():
    with pytest.raises(AnalyzerError, match="maxpool_0"):
        node_cost(node("MaxPool", [(1, 3, 8, 8)]))  # no kernel_shape
    with pytest.raises(AnalyzerError, match="conv_0"):
        node_cost(conv((1, 3, 2, 2), (4, 3, 5, 5)))  # kernel larger than the input
    with pytest.raises(AnalyzerError, match="gemm_0"):
        node_cost(node("Gemm", [(8, 32), (10, 32)]))  # needs transB


# --- categories -----------------------------------------------------------------------------------

@pytest.mark.parametrize("op, domain, category", [
    ("Conv", "", "conv"), ("ConvTranspose", "", "conv"), ("QLinearConv", "", "conv"), ("ConvInteger", "", "conv"),
    ("Gemm", "", "fc"), ("MatMul", "", "fc"), ("MatMulInteger", "", "fc"), ("QLinearMatMul", "", "fc"),
    ("FusedConv", "com.microsoft", "conv"), ("FusedMatMul", "com.microsoft", "fc"),
    ("Relu", "", "other"), ("MaxPool", "", "other"), ("Einsum", "", "other"), ("Conv", "com.example", "other"),
])
def test_op_category(op, domain, category):
    assert op_category(NodeView("n", op, domain)) == category


def test_every_rule_has_a_docstring_with_its_convention():
    for key, rule in COST_RULES.items():
        assert rule.__doc__ and "FLOPs" in rule.__doc__, key
