"""The inspection pipeline on hand-built graphs: params, totals, binding, memory, control flow."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from onnx import helper

import analyzer
from analyzer.errors import AnalyzerError, OptionError, StrictModeError
from tests.model_builders import make_model, weight


def conv_relu_fc(batch="N"):
    """x[N,3,32,32] → Conv 8@3x3 p1 (+bias) → Relu → MaxPool 2 → Flatten → Gemm 10."""
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu1"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "FW", "FB"], ["y"], name="fc", transB=1),
    ]
    inits = [weight("W", 8, 3, 3, 3), weight("B", 8), weight("FW", 10, 8 * 16 * 16), weight("FB", 10)]
    return make_model(nodes, [("x", [batch, 3, 32, 32])], [("y", [batch, 10])], inits)


def by_name(report):
    return {n.name: n for n in report.nodes}


def test_counts_of_a_small_cnn_match_hand_arithmetic():
    report = analyzer.inspect(conv_relu_fc())
    nodes = by_name(report)
    assert nodes["conv1"].params == 8 * 3 * 3 * 3 + 8
    assert nodes["conv1"].macs == 8 * 32 * 32 * (3 * 3 * 3)
    assert nodes["fc"].params == 10 * 2048 + 10
    assert nodes["fc"].macs == 2048 * 10
    assert report.totals.params == (8 * 27 + 8) + (10 * 2048 + 10)
    assert report.totals.weight_bytes == 4 * report.totals.params
    assert report.totals.macs == 8 * 32 * 32 * 27 + 2048 * 10
    assert nodes["conv1"].activation_bytes == 4 * 8 * 32 * 32
    assert nodes["pool1"].activation_bytes == 4 * 8 * 16 * 16
    assert report.totals.nodes == 5
    assert report.assumed_dims == {"N": 1}
    assert report.complete
    assert [n.category for n in report.nodes] == ["conv", "other", "other", "other", "fc"]


def test_liveness_peak_and_live_after_each_node():
    report = analyzer.inspect(conv_relu_fc())
    x, c, r, p, f, y = 4 * 3 * 32 * 32, 4 * 8 * 32 * 32, 4 * 8 * 32 * 32, 4 * 8 * 16 * 16, 4 * 2048, 4 * 10
    # after each node: its outputs plus whatever a later node still reads; the graph output stays
    assert [n.live_bytes for n in report.nodes] == [c, r, p, f, y]
    # while relu runs both c and r are held: the largest simultaneous set
    assert report.totals.peak_memory_bytes == max(x + c, c + r, r + p, p + f, f + y) == c + r
    assert report.totals.peak_memory_node == "relu1"


def test_symbolic_batch_is_bound_by_dim_and_batch_and_scales_activations():
    one = analyzer.inspect(conv_relu_fc())
    eight = analyzer.inspect(conv_relu_fc(), dims={"N": 8})
    assert eight.assumed_dims == {}
    assert eight.totals.macs == 8 * one.totals.macs
    assert eight.totals.params == one.totals.params
    assert eight.totals.activation_bytes == 8 * one.totals.activation_bytes
    via_batch = analyzer.inspect(conv_relu_fc(), batch=8)
    assert via_batch.totals.macs == eight.totals.macs
    assert via_batch.model.inputs[0].shape == [8, 3, 32, 32]


def test_input_shape_override_changes_spatial_size():
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="conv", pads=[1, 1, 1, 1])]
    model = make_model(nodes, [("x", ["N", 3, 32, 32])], [("y", ["N", 8, 32, 32])], [weight("W", 8, 3, 3, 3)])
    report = analyzer.inspect(model, input_shapes={"x": [2, 3, 64, 64]})
    conv = by_name(report)["conv"]
    assert conv.macs == 2 * 8 * 64 * 64 * 27
    assert conv.outputs[0].shape == [2, 8, 64, 64]


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"dims": {"batch": 2}}, "no such symbolic dim"),
        ({"input_shapes": {"nope": [1, 3, 32, 32]}}, "not an input"),
        ({"input_shapes": {"x": [1, 3, 32]}}, "rank 3 given"),
        ({"batch": 0}, "must be positive"),
        ({"optimizer": "rmsprop"}, "'rmsprop' is unknown"),
    ],
)
def test_bad_binding_requests_are_one_line_errors(options, fragment):
    with pytest.raises(AnalyzerError, match=fragment):
        analyzer.inspect(conv_relu_fc(), **options)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"dims": {"batch": 2}}, "dims batch: no such symbolic dim (the inputs have: N)"),
        ({"input_shapes": {"nope": [1, 3, 32, 32]}}, "input_shapes names 'nope', which is not an input (inputs: x)"),
        ({"input_shapes": {"x": [1, 3, 32]}}, "input_shapes x: rank 3 given, the model's input has rank 4"),
        ({"batch": 0}, "batch must be positive, got 0"),
    ],
)
def test_bad_binding_errors_name_the_python_parameter(options, message):
    with pytest.raises(OptionError) as caught:
        analyzer.inspect(conv_relu_fc(), **options)
    assert str(caught.value) == message
    assert caught.value.option == next(iter(options))


def test_dim_option_text_names_the_parameter():
    from analyzer.shapes import parse_dim_options

    with pytest.raises(OptionError) as caught:
        parse_dim_options(["batch=0"])
    assert caught.value.option == "dims"
    assert str(caught.value) == "dims 'batch=0': expected NAME=POSITIVE_INT, e.g. batch=8"


def test_timings_name_each_stage_and_hold_one_run():
    timings: dict[str, float] = {}
    analyzer.inspect(conv_relu_fc(), timings=timings)
    assert list(timings) == ["load", "shape_inference", "graph", "report"]
    started = time.perf_counter()
    analyzer.inspect(conv_relu_fc(), timings=timings)
    elapsed = time.perf_counter() - started
    # a dict reused over runs holds the last run's laps, not their sum: they fit inside that run
    assert 0 <= sum(timings.values()) <= elapsed


@pytest.mark.parametrize("optimizer, buffers", [("sgd", 0), ("momentum", 1), ("adam", 2)])
def test_training_memory_breakdown(optimizer, buffers):
    report = analyzer.inspect(conv_relu_fc(), batch=4, optimizer=optimizer)
    params_bytes = 4 * ((8 * 27 + 8) + (10 * 2048 + 10))
    per_image_outputs = 4 * (8 * 32 * 32 * 2 + 8 * 16 * 16 * 2 + 10)
    tm = report.training
    assert (tm.weights, tm.gradients, tm.optimizer_state) == (params_bytes, params_bytes, buffers * params_bytes)
    assert tm.activations == 4 * per_image_outputs
    assert report.totals.training_memory_bytes == params_bytes * (2 + buffers) + 4 * per_image_outputs


def test_fixed_batch_model_scales_training_activations_with_a_warning():
    report = analyzer.inspect(conv_relu_fc(batch=1), batch=4)
    assert report.training.activations == 4 * report.totals.activation_bytes
    assert any("fixed batch of 1" in w for w in report.warnings)


def test_shared_initializer_counts_per_node_and_once_in_totals():
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["a"], name="mm1"),
        helper.make_node("MatMul", ["a", "W"], ["b"], name="mm2"),
        helper.make_node("Add", ["b", "W"], ["y"], name="add_same_w"),
    ]
    model = make_model(nodes, [("x", [4, 16])], [("y", [4, 16])], [weight("W", 16, 16)])
    report = analyzer.inspect(model)
    assert [n.params for n in report.nodes] == [256, 256, 256]
    assert report.totals.params == 16 * 16
    assert report.totals.weight_bytes == 16 * 16 * 4
    assert report.totals.macs == 2 * (4 * 16 * 16)


def test_batchnorm_running_stats_are_weights_but_not_params():
    c = 4
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")]
    inits = [weight("s", c), weight("b", c), weight("m", c), weight("v", c)]
    report = analyzer.inspect(make_model(nodes, [("x", [1, c, 8, 8])], [("y", [1, c, 8, 8])], inits))
    assert report.totals.params == 2 * c  # scale and bias, as torch counts BatchNorm2d
    assert report.totals.weight_bytes == 4 * 4 * c  # all four tensors are stored
    assert report.training.gradients == 4 * 2 * c


def test_unsupported_op_is_listed_never_silently_zero():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Mystery", ["r"], ["y"], name="hm", domain="custom.ops")]
    model = make_model(nodes, [("x", [2, 5])], [("y", [2, 5])])
    model.opset_import.append(helper.make_opsetid("custom.ops", 1))
    report = analyzer.inspect(model)
    assert [(u.op_type, u.count, u.nodes) for u in report.unsupported_ops] == [("Mystery", 1, ["hm"])]
    assert not report.complete
    assert report.to_dict()["complete"] is False
    with pytest.raises(StrictModeError, match="Mystery"):
        analyzer.inspect(model, strict=True)


def test_if_node_counts_the_more_expensive_branch():
    then_branch = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["t"], name="then_mm")], "then", [],
        [helper.make_tensor_value_info("t", onnx.TensorProto.FLOAT, [2, 8])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["e"], name="else_relu")], "else", [],
        [helper.make_tensor_value_info("e", onnx.TensorProto.FLOAT, [2, 8])],
    )
    nodes = [helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_branch, else_branch=else_branch)]
    graph = helper.make_graph(
        nodes, "if_test",
        [helper.make_tensor_value_info("cond", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 8])],
        [weight("W", 8, 8)],
    )
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    report = analyzer.inspect(model)
    assert report.totals.macs == 2 * 8 * 8
    assert any("more expensive branch" in w for w in report.warnings)


def test_loop_with_constant_trip_count_multiplies_the_body():
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("MatMul", ["acc_in", "W"], ["acc_out"], name="body_mm")],
        "body",
        [helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", onnx.TensorProto.FLOAT, [1, 4])],
    )
    trips = onnx.numpy_helper.from_array(np.array(5, dtype=np.int64), "trips")
    cond = onnx.numpy_helper.from_array(np.array(True), "cond")
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], name="loop", body=body)], "loop_test",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [trips, cond, weight("W", 4, 4)],
    )
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    report = analyzer.inspect(model)
    assert report.totals.macs == 5 * (1 * 4 * 4)


def test_cycle_is_a_clear_error():
    nodes = [helper.make_node("Relu", ["x", "b"], ["a"], name="n1"), helper.make_node("Relu", ["a"], ["b"], name="n2")]
    model = make_model(nodes, [("x", [1])], [("b", [1])])
    with pytest.raises(AnalyzerError, match="cycle"):
        analyzer.inspect(model)


def test_dangling_tensor_is_a_warning_and_analysis_goes_on():
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="add")]
    report = analyzer.inspect(make_model(nodes, [("x", [2, 2])], [("y", [2, 2])]))
    assert any("dangling" in w and "ghost" in w for w in report.warnings)


def test_caller_model_proto_is_not_modified():
    model = conv_relu_fc()
    before = model.SerializeToString()
    analyzer.inspect(model, dims={"N": 4})
    assert model.SerializeToString() == before


def test_json_contract_keys():
    d = analyzer.inspect(conv_relu_fc()).to_dict()
    assert d["schema"] == "analyzer.report/1"
    assert set(d) >= {"schema", "model", "assumed_dims", "totals", "by_op_type", "nodes", "unsupported_ops", "warnings"}
    assert set(d["model"]) >= {"path", "ir_version", "opsets", "producer", "inputs", "outputs"}
    assert set(d["totals"]) >= {"params", "macs", "flops", "weight_bytes", "activation_bytes", "peak_memory_bytes",
                                "peak_memory_node", "training_memory_bytes", "nodes"}
    node = d["nodes"][0]
    assert set(node) >= {"name", "op_type", "module", "inputs", "outputs", "params", "macs", "flops", "weight_bytes",
                         "activation_bytes", "live_bytes", "receptive_field"}
    assert set(node["receptive_field"]) == {"size", "stride", "padding", "global", "aligned"}
    assert set(d["by_op_type"]["Conv"]) == {"count", "params", "macs", "flops"}


def test_inconsistent_node_costs_its_count_not_the_report():
    # Gemm whose inner dims disagree: shape inference cannot check it, the rule refuses it
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "W"], ["y"], name="bad_fc", transB=1)]
    model = make_model(nodes, [("x", [2, 8])], [("y", [2, 4])], [weight("W", 4, 6)])
    report = analyzer.inspect(model)
    assert report.totals.flops == 2 * 8  # the Relu still counts
    assert any(w.startswith("cost unknown") and "bad_fc" in w for w in report.warnings)
    assert not report.complete


def test_identity_of_a_weight_is_an_alias_counted_once():
    # the legacy exporter shares equal initializers through Identity nodes
    nodes = [
        helper.make_node("Identity", ["B"], ["B_alias"], name="share"),
        helper.make_node("Conv", ["x", "W1", "B"], ["c1"], name="conv1"),
        helper.make_node("Conv", ["c1", "W2", "B_alias"], ["y"], name="conv2"),
    ]
    inits = [weight("W1", 4, 4, 1, 1), weight("W2", 4, 4, 1, 1, seed=1), weight("B", 4)]
    report = analyzer.inspect(make_model(nodes, [("x", [1, 4, 8, 8])], [("y", [1, 4, 8, 8])], inits))
    nodes = by_name(report)
    assert nodes["share"].params == 0
    assert nodes["conv1"].params == nodes["conv2"].params == 4 * 4 + 4
    assert report.totals.params == 2 * 16 + 4
    assert report.totals.weight_bytes == 4 * (2 * 16 + 4)
    # the alias is a weight, not a live activation: the peak is two 4x8x8 float maps
    assert report.totals.peak_memory_bytes == 2 * (4 * 8 * 8 * 4)


def test_constant_weights_count_like_initializers_and_shared_through_identity_once():
    # the weights of test_identity_of_a_weight_is_an_alias_counted_once, held in Constant nodes
    constants = [helper.make_node("Constant", [], [t.name], value=t, name=f"const_{t.name}")
                 for t in (weight("W1", 4, 4, 1, 1), weight("W2", 4, 4, 1, 1, seed=1), weight("B", 4))]
    nodes = constants + [
        helper.make_node("Identity", ["B"], ["B_alias"], name="share"),
        helper.make_node("Conv", ["x", "W1", "B"], ["c1"], name="conv1"),
        helper.make_node("Conv", ["c1", "W2", "B_alias"], ["y"], name="conv2"),
    ]
    report = analyzer.inspect(make_model(nodes, [("x", [1, 4, 8, 8])], [("y", [1, 4, 8, 8])]))
    nodes = by_name(report)
    assert nodes["conv1"].params == nodes["conv2"].params == 4 * 4 + 4
    assert nodes["conv1"].weight_bytes == 4 * (4 * 4 + 4)
    assert (report.totals.params, report.totals.weight_bytes) == (2 * 16 + 4, 4 * (2 * 16 + 4))
    # constants are no activations: only the two 4x8x8 float conv outputs count
    assert report.totals.activation_bytes == 2 * (4 * 8 * 8 * 4)
    assert all(nodes[n].activation_bytes == 0 for n in ("const_W1", "const_W2", "const_B", "share"))
    assert report.totals.peak_memory_bytes == 2 * (4 * 8 * 8 * 4)


def test_shape_and_scalar_constants_are_neither_weights_nor_activations():
    nodes = [
        helper.make_node("Constant", [], ["target"], value=onnx.numpy_helper.from_array(np.array([1, -1], np.int64)),
                         name="target_const"),
        helper.make_node("Constant", [], ["two"], value_float=2.0, name="two_const"),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="flatten"),
        helper.make_node("Mul", ["r", "two"], ["y"], name="double"),
    ]
    report = analyzer.inspect(make_model(nodes, [("x", [1, 2, 3, 4])], [("y", [1, 24])]))
    assert (report.totals.params, report.totals.weight_bytes) == (0, 0)
    assert report.totals.activation_bytes == 2 * (24 * 4)  # the Reshape's and the Mul's float outputs
    assert report.totals.flops == 24  # the Mul; the shape constant was read by Reshape
