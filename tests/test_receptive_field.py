"""Receptive fields against the Distill 2019 table and hand calculations written as the formulas.

Per axis: r' = r + (d·(k−1)+1 − 1)·S, P' = P + p·S, S' = S·s (docs/reference-figures.md, "Receptive field").
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer.receptive_field import (
    Field,
    compute_receptive_fields,
    merge_fields,
    same_left_pad,
    window_field,
)
from analyzer.views import NodeView, TensorView

# ---------------------------------------------------------------- graph helper (stand-in for analyzer.graph)


def _decode(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def graph_of(model: onnx.ModelProto) -> nx.DiGraph:
    """The G contract of analyzer/graph.py, built simply: shapes from onnx shape inference."""
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    g = model.graph
    shapes: dict[str, tuple[int, ...] | None] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        known = vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims)
        shapes[vi.name] = tuple(d.dim_value for d in dims) if known else None
    values = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    shapes.update({t.name: tuple(t.dims) for t in g.initializer})
    for node in g.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    opsets = {o.domain: o.version for o in model.opset_import}

    def tensor(name: str) -> TensorView | None:
        if not name:
            return None
        return TensorView(name, shapes.get(name), is_initializer=name in values, value=values.get(name))

    G = nx.DiGraph()
    producer: dict[str, int] = {}
    for i, node in enumerate(g.node):
        view = NodeView(
            name=node.name or f"{node.op_type}_{i}",
            op_type=node.op_type,
            domain=node.domain,
            attrs={a.name: _decode(helper.get_attribute_value(a)) for a in node.attribute},
            inputs=tuple(tensor(n) for n in node.input),
            outputs=tuple(tensor(n) for n in node.output),
            opset=opsets.get(node.domain, 0),
        )
        G.add_node(i, view=view)
        for name in node.input:
            if name in producer:
                u = producer[name]
                if G.has_edge(u, i):
                    G.edges[u, i]["tensors"].append(name)
                else:
                    G.add_edge(u, i, tensors=[name])
        producer.update({o: i for o in node.output})
    G.graph.update(
        inputs={vi.name: tensor(vi.name) for vi in g.input if vi.name not in values},
        order=list(range(len(g.node))),
        producer=producer,
    )
    return G


class Net:
    """A tiny sequential/DAG builder: each layer names its node and output after ``name``."""

    def __init__(self, shape: list[int], opset: int = 17) -> None:
        self.shape, self.opset = shape, opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.channels = shape[1]

    def _weight(self, name: str, shape: list[int]) -> str:
        self.inits.append(numpy_helper.from_array(np.zeros(shape, np.float32), name))
        return name

    def const(self, name: str, values: list[int]) -> str:
        self.inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, n_outputs: int = 1, **attrs) -> str:
        outputs = [name] + [f"{name}_out{i}" for i in range(1, n_outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name, **attrs))
        return name

    def conv(self, x: str, name: str, k: int | list[int], channels: int = 2, with_kernel_attr=True, **attrs) -> str:
        kernel = k if isinstance(k, list) else [k] * (len(self.shape) - 2)
        w = self._weight(f"{name}_w", [channels, self.channels, *kernel])
        self.channels = channels
        if with_kernel_attr:
            attrs["kernel_shape"] = kernel
        return self.op("Conv", [x, w], name, **attrs)

    def pool(self, x: str, name: str, k: int, s: int, op: str = "MaxPool", **attrs) -> str:
        n = len(self.shape) - 2
        return self.op(op, [x], name, kernel_shape=[k] * n, strides=[s] * n, **attrs)

    def gemm(self, x: str, name: str, features_in: int) -> str:
        return self.op("Gemm", [x, self._weight(f"{name}_w", [3, features_in])], name, transB=1)

    def fields(self, outputs: list[str]):
        out_info = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs]
        graph = helper.make_graph(
            self.nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, self.shape)], out_info, self.inits
        )
        model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", self.opset)])
        G = graph_of(model)
        by_vertex, warnings = compute_receptive_fields(G)
        return {G.nodes[v]["view"].name: f for v, f in by_vertex.items()}, warnings


def pads(p: int, n: int = 2) -> list[int]:
    return [p] * (2 * n)


# ---------------------------------------------------------------- published tables


def test_alexnet_torchvision_layout_matches_distill_table():
    net = Net([1, 3, 224, 224])
    x = net.op("Relu", [net.conv("x", "conv1", 11, strides=[4, 4], pads=pads(2))], "relu1")
    x = net.pool(x, "pool1", 3, 2)
    x = net.op("Relu", [net.conv(x, "conv2", 5, pads=pads(2))], "relu2")
    x = net.pool(x, "pool2", 3, 2)
    x = net.op("Relu", [net.conv(x, "conv3", 3, pads=pads(1))], "relu3")
    x = net.op("Relu", [net.conv(x, "conv4", 3, pads=pads(1))], "relu4")
    x = net.op("Relu", [net.conv(x, "conv5", 3, pads=pads(1))], "relu5")
    x = net.pool(x, "pool5", 3, 2)
    fields, warnings = net.fields([x])
    expected = {  # docs/reference-figures.md: r per stage, S 4 -> 32, pool5 P 66
        "conv1": (11, 4), "pool1": (19, 8), "conv2": (51, 8), "pool2": (67, 16),
        "conv3": (99, 16), "conv4": (131, 16), "conv5": (163, 16), "pool5": (195, 32),
    }  # fmt: skip
    for stage, (r, S) in expected.items():
        assert fields[stage].size == [r, r], stage
        assert fields[stage].stride == [S, S], stage
        assert fields[stage].aligned and not fields[stage].is_global
    assert fields["relu5"] == fields["conv5"]  # activations have k = 1
    assert fields["pool5"].padding == [66, 66]
    assert warnings == []


def test_vgg16_conv5_3_and_pool5_match_distill_table():
    net = Net([1, 1, 224, 224])
    x = "x"
    for block, convs in enumerate([2, 2, 3, 3, 3], start=1):
        for i in range(1, convs + 1):
            x = net.op("Relu", [net.conv(x, f"conv{block}_{i}", 3, channels=1, pads=pads(1))], f"relu{block}_{i}")
        x = net.pool(x, f"pool{block}", 2, 2)
    fields, _ = net.fields([x])
    assert fields["conv5_3"].size == [196, 196] and fields["conv5_3"].stride == [16, 16]
    assert fields["pool5"].size == [212, 212] and fields["pool5"].stride == [32, 32]
    assert fields["pool5"].padding == [90, 90]


# ---------------------------------------------------------------- hand calculations


def test_dilated_conv_uses_effective_kernel():
    net = Net([1, 1, 32, 32])
    x = net.conv("x", "c1", 3, dilations=[2, 3])
    x = net.conv(x, "c2", 3, strides=[2, 2])
    fields, _ = net.fields([x])
    # effective kernel d·(k−1)+1: 5 on H, 7 on W
    assert fields["c1"].size == [1 + (2 * (3 - 1) + 1 - 1), 1 + (3 * (3 - 1) + 1 - 1)]
    assert fields["c2"].size == [5 + (3 - 1) * 1, 7 + (3 - 1) * 1]
    assert fields["c2"].stride == [2, 2]


def test_stride_two_then_three_multiplies_strides():
    net = Net([1, 1, 64, 64])
    a = net.conv("x", "a", 3, strides=[2, 2], pads=pads(1))
    b = net.conv(a, "b", 3, strides=[3, 3], pads=pads(1))
    c = net.conv(b, "c", 3, pads=pads(1))
    fields, _ = net.fields([c])
    assert fields["b"].size == [1 + (3 - 1) * 1 + (3 - 1) * 2] * 2
    assert fields["b"].stride == [2 * 3] * 2
    assert fields["b"].padding == [1 * 1 + 1 * 2] * 2
    assert fields["c"].size == [1 + (3 - 1) * 1 + (3 - 1) * 2 + (3 - 1) * 2 * 3] * 2
    assert fields["c"].padding == [1 * 1 + 1 * 2 + 1 * 2 * 3] * 2


@pytest.mark.parametrize(
    "auto_pad, left",
    [
        # input 11, k 4, s 2: out ⌈11/2⌉ = 6, total pad (6−1)·2 + 4 − 11 = 3
        ("SAME_UPPER", 3 // 2),
        ("SAME_LOWER", 3 - 3 // 2),
        ("VALID", 0),
    ],
)
def test_auto_pad_left_pad_from_input_size(auto_pad, left):
    net = Net([1, 1, 11, 11])
    x = net.conv("x", "c", 4, strides=[2, 2], auto_pad=auto_pad)
    x = net.conv(x, "d", 3, pads=pads(1))
    fields, _ = net.fields([x])
    assert fields["c"].padding == [left, left]
    assert fields["d"].padding == [left + 1 * 2] * 2
    assert fields["d"].size == [4 + (3 - 1) * 2] * 2


@pytest.mark.parametrize(
    "size, kernel, stride, dilation, upper, expected",
    [
        (224, 3, 1, 1, True, 2 // 2),  # total (224−1)·1 + 3 − 224 = 2
        (224, 7, 2, 1, True, 5 // 2),  # total (112−1)·2 + 7 − 224 = 5
        (224, 7, 2, 1, False, 5 - 5 // 2),
        (10, 3, 1, 2, True, 4 // 2),  # total 9 + 5 − 10 = 4
        (5, 1, 2, 1, True, 0),  # total (3−1)·2 + 1 − 5 = 0
    ],
)
def test_same_left_pad(size, kernel, stride, dilation, upper, expected):
    assert same_left_pad(size, kernel, stride, dilation, upper) == expected


def test_pad_op_adds_to_effective_padding():
    net = Net([1, 1, 20, 20], opset=18)
    p = net.op("Pad", ["x", net.const("pads", [0, 0, 3, 1, 0, 0, 3, 1])], "pad")
    a = net.conv(p, "a", 3, strides=[2, 2], pads=pads(1))
    b = net.conv(a, "b", 3, pads=pads(1))
    fields, _ = net.fields([b])
    assert fields["pad"].size == [1, 1] and fields["pad"].padding == [3, 1]
    assert fields["b"].padding == [3 + 1 * 1 + 1 * 2, 1 + 1 * 1 + 1 * 2]
    assert fields["b"].size == [1 + (3 - 1) * 1 + (3 - 1) * 2] * 2


def test_pad_op_with_axes_input():
    net = Net([1, 1, 20, 20], opset=18)
    p = net.op("Pad", ["x", net.const("pads", [2, 0]), "", net.const("axes", [-1])], "pad")
    fields, _ = net.fields([p])
    assert fields["pad"].padding == [0, 2]


def test_conv1d_kernel_from_weight_shape():
    net = Net([1, 1, 100])
    x = net.conv("x", "c", [5], strides=[2], pads=[2, 2], with_kernel_attr=False)
    x = net.pool(x, "p", 3, 2)
    fields, _ = net.fields([x])
    assert fields["c"].size == [5] and fields["c"].stride == [2] and fields["c"].padding == [2]
    assert fields["p"].size == [1 + (5 - 1) * 1 + (3 - 1) * 2]
    assert fields["p"].stride == [2 * 2] and fields["p"].padding == [2]


def test_slice_crop_shifts_padding_and_step_multiplies_stride():
    net = Net([1, 1, 20, 20])
    c = net.conv("x", "c", 3, strides=[2, 2], pads=pads(1))
    s = net.op(
        "Slice", [c, net.const("starts", [1, 0]), net.const("ends", [9, 10]), net.const("axes", [2, 3]),
                  net.const("steps", [1, 2])], "crop",
    )  # fmt: skip
    fields, _ = net.fields([s])
    assert fields["crop"].padding == [1 - 1 * 2, 1 - 0 * 2]
    assert fields["crop"].stride == [2 * 1, 2 * 2]
    assert fields["crop"].size == [3, 3]


def test_window_field_rule_directly():
    start = Field(size=(1,), stride=(1,), padding=(0,), input_size=(50,))
    layer = window_field(start, kernel=[7], strides=[2], dilations=[1], left_pads=[3])
    assert (layer.size, layer.stride, layer.padding) == ((7,), (2,), (3,))
    layer = window_field(layer, kernel=[3], strides=[2], dilations=[2], left_pads=[1])
    assert (layer.size, layer.stride, layer.padding) == ((7 + (2 * 2 + 1 - 1) * 2,), (4,), (3 + 1 * 2,))


# ---------------------------------------------------------------- DAGs


def test_residual_block_takes_larger_field_and_is_aligned():
    net = Net([1, 2, 32, 32])
    stem = net.conv("x", "stem", 3, strides=[2, 2], pads=pads(1))
    a = net.op("Relu", [net.conv(stem, "a", 3, pads=pads(1))], "relu_a")
    b = net.conv(a, "b", 3, pads=pads(1))
    add = net.op("Add", [b, stem], "add")
    fields, warnings = net.fields([add])
    assert fields["add"].size == [3 + (3 - 1) * 2 + (3 - 1) * 2] * 2
    assert fields["add"].padding == [1 + 1 * 2 + 1 * 2] * 2
    assert fields["add"].stride == [2, 2]
    assert fields["add"].aligned
    assert warnings == []


def test_misaligned_merge_flags_node_and_downstream():
    net = Net([1, 2, 16, 16])
    a = net.conv("x", "a", 3, pads=[1, 1, 1, 1])
    b = net.conv("x", "b", 3, pads=[2, 2, 0, 0])  # same output size, field shifted by one pixel
    add = net.op("Add", [a, b], "add")
    after = net.op("Relu", [add], "after")
    fields, warnings = net.fields([after])
    # centers −P + (r−1)/2: a: −1 + 1 = 0, b: −2 + 1 = −1
    assert fields["a"].aligned and fields["b"].aligned
    assert not fields["add"].aligned and not fields["after"].aligned
    assert fields["add"].size == [3, 3]
    assert len(warnings) == 1 and "misaligned merge at node 'add'" in warnings[0]


def test_merge_with_different_strides_is_misaligned():
    net = Net([1, 2, 16, 16])
    a = net.pool("x", "a", 2, 2)
    b = net.pool("x", "b", 2, 2, op="AveragePool")
    c = net.conv("x", "c", 1, strides=[2, 2])
    cat = net.op("Concat", [a, b], "cat", axis=1)
    cat2 = net.op("Concat", [cat, c], "cat2", axis=1)
    fields, warnings = net.fields([cat2])
    assert fields["cat"].aligned
    # cat: r 2, P 0 → center 1/2; c: r 1 → center 0
    assert not fields["cat2"].aligned and fields["cat2"].size == [2, 2]
    assert [w for w in warnings if "'cat2'" in w] == warnings and len(warnings) == 1


# ---------------------------------------------------------------- global fields


def _conv_stem(net: Net) -> str:
    return net.op("Relu", [net.conv("x", "conv", 3, strides=[2, 2], pads=pads(1))], "relu")


def test_global_average_pool_is_global_downstream():
    net = Net([1, 1, 24, 20])
    g = net.op("GlobalAveragePool", [_conv_stem(net)], "gap")
    f = net.op("Flatten", [g], "flat")
    fc = net.gemm(f, "fc", 2)
    fields, warnings = net.fields([fc])
    for name in ("gap", "flat", "fc"):
        assert fields[name].is_global and fields[name].size == [24, 20], name
    assert not fields["conv"].is_global
    assert warnings == []


def test_reduce_mean_axes_attribute_opset17():
    net = Net([1, 1, 24, 20], opset=17)
    r = net.op("ReduceMean", [_conv_stem(net)], "mean", axes=[2, 3], keepdims=0)
    fields, _ = net.fields([r])
    assert fields["mean"].is_global and fields["mean"].size == [24, 20]


def test_reduce_mean_axes_input_opset18():
    net = Net([1, 1, 24, 20], opset=18)
    r = net.op("ReduceMean", [_conv_stem(net), net.const("axes", [-2, -1])], "mean", keepdims=1)
    fields, _ = net.fields([r])
    assert fields["mean"].is_global and fields["mean"].size == [24, 20]


def test_reduce_mean_over_channels_keeps_field():
    net = Net([1, 1, 24, 20], opset=18)
    r = net.op("ReduceMean", [_conv_stem(net), net.const("axes", [1])], "mean", keepdims=1)
    fields, _ = net.fields([r])
    assert not fields["mean"].is_global and fields["mean"].size == [3, 3]


def test_flatten_then_gemm_is_global_flatten_itself_none():
    net = Net([1, 1, 12, 10])
    f = net.op("Flatten", [_conv_stem(net)], "flat")
    fc = net.gemm(f, "fc", 2 * 6 * 5)  # stem: 2 channels of 6x5
    out = net.op("Relu", [fc], "fc_relu")
    fields, warnings = net.fields([out])
    assert fields["flat"] is None  # no spatial axes left to give a stride or padding to
    assert fields["fc"].is_global and fields["fc"].size == [12, 10]
    assert fields["fc"].stride == [2, 2]  # the stride the field had where it became global
    assert fields["fc_relu"].is_global
    assert warnings == []


def test_dynamo_style_reshape_with_shape_subgraph():
    net = Net([1, 1, 12, 10], opset=18)
    c = _conv_stem(net)
    shape = net.op("Shape", [c], "shape")
    batch = net.op("Gather", [shape, net.const("zero", [0])], "batch", axis=0)
    target = net.op("Concat", [batch, net.const("minus_one", [-1])], "target", axis=0)
    flat = net.op("Reshape", [c, target], "reshape")
    fc = net.gemm(flat, "fc", 2 * 6 * 5)
    fields, warnings = net.fields([fc])
    for name in ("shape", "batch", "target", "reshape"):
        assert fields[name] is None, name
    assert fields["fc"].is_global and fields["fc"].size == [12, 10]
    assert warnings == []


def test_channel_shuffle_reshape_transpose_keeps_field():
    net = Net([1, 4, 8, 8])
    c = net.conv("x", "c", 3, channels=4, pads=pads(1))
    r = net.op("Reshape", [c, net.const("split_shape", [1, 2, 2, 8, 8])], "split")
    t = net.op("Transpose", [r], "swap", perm=[0, 2, 1, 3, 4])
    m = net.op("Reshape", [t, net.const("merge_shape", [1, 4, 8, 8])], "merge")
    fields, warnings = net.fields([m])
    assert fields["merge"] == fields["c"] and fields["merge"].size == [3, 3]
    assert warnings == []


# ---------------------------------------------------------------- no field / unsupported


def test_constant_and_shape_nodes_have_no_field():
    net = Net([1, 1, 8, 8])
    k = net.op("Constant", [], "k", value=numpy_helper.from_array(np.array([2], np.int64)))
    shape = net.op("Shape", ["x"], "shape")
    net.op("Concat", [shape, k], "cat_ints", axis=0)
    fields, warnings = net.fields(["cat_ints"])
    assert fields == {"k": None, "shape": None, "cat_ints": None}
    assert warnings == []


def test_unknown_op_warns_once_and_stops_field():
    net = Net([1, 1, 8, 8])
    c = net.conv("x", "c", 3, pads=pads(1))
    scales = net.inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")) or "scales"
    up1 = net.op("Resize", [c, "", scales], "up1", mode="nearest")
    after = net.conv(up1, "after", 3, pads=pads(1))
    up2 = net.op("Resize", [after, "", scales], "up2", mode="nearest")
    fields, warnings = net.fields([up2])
    assert fields["c"].size == [3, 3]
    assert fields["up1"] is None and fields["after"] is None and fields["up2"] is None
    assert len(warnings) == 1 and "unsupported op Resize" in warnings[0] and "'up1'" in warnings[0]


def test_concat_along_spatial_axis_is_unsupported():
    net = Net([1, 1, 8, 8])
    c = net.conv("x", "c", 3, channels=1, pads=pads(1))
    cat = net.op("Concat", [c, "x"], "cat", axis=3)
    fields, warnings = net.fields([cat])
    assert fields["cat"] is None
    assert len(warnings) == 1 and "Concat" in warnings[0]


def test_merge_fields_reports_misalignment_reason():
    a = Field(size=(3,), stride=(1,), padding=(1,), input_size=(8,))
    b = Field(size=(5,), stride=(1,), padding=(2,), input_size=(8,))
    merged, reason = merge_fields([a, b])  # centers: −1 + 1 = 0 and −2 + 2 = 0
    assert reason is None and merged.size == (5,) and merged.padding == (2,)
    c = Field(size=(5,), stride=(1,), padding=(1,), input_size=(8,))  # center −1 + 2 = 1
    merged, reason = merge_fields([a, c])
    assert reason is not None and not merged.aligned and merged.size == (5,)
