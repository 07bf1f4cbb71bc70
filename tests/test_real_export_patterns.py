"""Patterns of ONNX files exported by other tools, each reproduced by a small generated model: input dims
written as -1, 0, "?" or left empty (paddle2onnx, TF converters); initializers listed as graph inputs (IR 3,
old Caffe2 / TF exports); weights held in Constant nodes. Each is counted exactly (hand arithmetic), runs in
onnxruntime (whose real output shapes cross-check the analyzer's), and the rewrite passes work on it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import analyzer
import passes
from analyzer.cli import main
from analyzer.errors import OptionError
from analyzer.latency.runtime import create_session

FLOAT = onnx.TensorProto.FLOAT
LENET_SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "lenet5.onnx"


def _session(proto: onnx.ModelProto):
    return create_session(proto.SerializeToString()).session


def _input_with_dims(name: str, dims: list) -> onnx.ValueInfoProto:
    """A float input whose dims are written as given: an int is a dim_value (even -1 or 0), a str a
    dim_param, None an empty dim (neither field set)."""
    value = helper.make_tensor_value_info(name, FLOAT, [1] * len(dims))
    for d, written in zip(value.type.tensor_type.shape.dim, dims):
        d.Clear()
        if isinstance(written, int):
            d.dim_value = written
        elif isinstance(written, str):
            d.dim_param = written
    return value


# ---- input dims written as -1, 0, "?" or empty: a paddle2onnx-style classifier ----


def classifier(x_dims: list) -> onnx.ModelProto:
    """x → Conv 8@3x3 /2 pad 1 → Relu → GlobalAveragePool → Flatten → Gemm 8→10."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("conv.w", (8, 3, 3, 3)), ("conv.b", (8,)), ("fc.w", (10, 8)), ("fc.b", (10,)))]
    nodes = [helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"], name="conv", strides=[2, 2], pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "classifier", [_input_with_dims("x", x_dims)],
                              [helper.make_tensor_value_info("y", FLOAT, [-1, 10])], inits)
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


CLASSIFIER_PARAMS = 8 * 3 * 3 * 3 + 8 + 10 * 8 + 10


def classifier_macs(batch: int, h: int, w: int) -> int:
    """Conv: out_h * out_w * 8 * 3*3*3 per sample (stride 2, pad 1: ceil(h / 2)); Gemm: 8 * 10."""
    return batch * (8 * math.ceil(h / 2) * math.ceil(w / 2) * 3 * 3 * 3 + 8 * 10)


UNKNOWN_DIMS = {
    "minus-one": [-1, 3, -1, -1],
    "zero": [0, 3, 0, 0],
    "empty": [None, 3, None, None],
    "question-mark": ["?", 3, "?", "?"],
}


def _bound_copy(model: onnx.ModelProto, shape: list[int]) -> onnx.ModelProto:
    """The model with its input written at ``shape`` (the test's own rewrite, for onnxruntime)."""
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    dims = bound.graph.input[0].type.tensor_type.shape.dim
    for d, size in zip(dims, shape):
        d.Clear()
        d.dim_value = size
    return bound


@pytest.mark.parametrize("written", sorted(UNKNOWN_DIMS))
def test_unknown_input_dims_are_symbolic_and_assumed_not_a_batch_option(written, tmp_path, capsys):
    path = tmp_path / f"{written}.onnx"
    onnx.save(classifier(UNKNOWN_DIMS[written]), path)
    assert main(["inspect", str(path), "--format", "json"]) == 0  # once: exit 2, "--batch must be positive, got -1"
    data = json.loads(capsys.readouterr().out)
    assert data["assumed_dims"] == {"x.dim0": 1, "x.dim2": 1, "x.dim3": 1}
    assert data["model"]["inputs"][0]["shape"] == ["x.dim0", 3, "x.dim2", "x.dim3"]
    assert data["totals"]["macs"] == classifier_macs(1, 1, 1) and data["totals"]["params"] == CLASSIFIER_PARAMS
    assert data["complete"] is True
    assert any("x.dim0, x.dim2, x.dim3" in w for w in data["warnings"])


@pytest.mark.parametrize("written", sorted(UNKNOWN_DIMS))
def test_unknown_input_dims_are_bound_by_every_option(written):
    model = classifier(UNKNOWN_DIMS[written])
    by_shape = analyzer.inspect(model, input_shapes={"x": [2, 3, 32, 48]})
    by_dims = analyzer.inspect(model, dims={"x.dim0": 2, "x.dim2": 32, "x.dim3": 48})
    by_batch = analyzer.inspect(model, batch=2, dims={"x.dim2": 32, "x.dim3": 48})
    for report in (by_shape, by_dims, by_batch):
        assert report.totals.macs == classifier_macs(2, 32, 48)
        assert report.assumed_dims == {}
    # onnxruntime on the model written at the bound shape: its real conv output shape gives the same count
    session = _session(_bound_copy(model, [2, 3, 32, 48]))
    x = np.zeros((2, 3, 32, 48), np.float32)
    conv_out = _session(_with_output(_bound_copy(model, [2, 3, 32, 48]), "c")).run(["c"], {"x": x})[0].shape
    assert conv_out == (2, 8, 16, 24)
    assert math.prod(conv_out) * 3 * 3 * 3 + 2 * 8 * 10 == by_shape.totals.macs
    assert session.run(None, {"x": x})[0].shape == (2, 10)


def test_minus_one_dims_load_in_onnxruntime_as_they_are():
    """onnxruntime reads -1 as a free dim too (the file runs at any batch and size)."""
    session = _session(classifier([-1, 3, -1, -1]))
    assert session.run(None, {"x": np.zeros((3, 3, 20, 20), np.float32)})[0].shape == (3, 10)


def test_paddle_style_classifier_with_both_quirks_counts_at_the_bound_shape(tmp_path, capsys):
    """-1 dims and the initializers listed as inputs (IR 3, opset 8) in one file, bound on the command line."""
    model = classifier([-1, 3, -1, -1])
    listed = [helper.make_tensor_value_info(t.name, FLOAT, list(t.dims)) for t in model.graph.initializer]
    model.graph.input.extend(listed)
    model.ir_version = 3
    model.opset_import[0].version = 8
    path = tmp_path / "paddle_style.onnx"
    onnx.save(model, path)
    assert main(["inspect", str(path), "--format", "json", "--input-shape", "x:1x3x224x224"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["macs"] == classifier_macs(1, 224, 224) == 8 * 112 * 112 * 27 + 80
    assert data["totals"]["params"] == CLASSIFIER_PARAMS and data["assumed_dims"] == {}
    assert any(w.startswith("4 initializer(s) are also listed as graph inputs") for w in data["warnings"])
    session = _session(model)  # onnxruntime runs the file as written, feeding x only
    assert session.run(None, {"x": np.zeros((1, 3, 224, 224), np.float32)})[0].shape == (1, 10)


def _with_output(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    model.graph.output.append(helper.make_tensor_value_info(name, FLOAT, None))
    return model


# ---- initializers listed as graph inputs (IR 3) ----


def conv_bn_conv(ir_version: int = 3, opset: int = 8, *, initializers_as_inputs: bool = True,
                 constants: bool = False) -> onnx.ModelProto:
    """x[1,3,8,8] → Conv 4@3x3 pad 1 → BatchNormalization → Relu → Conv 6@5x5 pad 2 → Identity → y.

    IR 3 requires every initializer among the graph inputs (opset 8 belongs to IR 3); ``constants`` moves
    each weight into a Constant node instead."""
    rng = np.random.default_rng(1)
    arrays = {"w1": rng.standard_normal((4, 3, 3, 3)), "b1": rng.standard_normal(4), "gamma": rng.standard_normal(4),
              "beta": rng.standard_normal(4), "mean": rng.standard_normal(4), "var": rng.random(4) + 0.5,
              "w2": rng.standard_normal((6, 4, 5, 5)), "b2": rng.standard_normal(6)}
    tensors = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["bn"], name="bn"),
             helper.make_node("Relu", ["bn"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[5, 5], pads=[2] * 4),
             helper.make_node("Identity", ["c2"], ["y"], name="ident")]
    inputs = [helper.make_tensor_value_info("x", FLOAT, [1, 3, 8, 8])]
    if constants:
        nodes = [helper.make_node("Constant", [], [t.name], name=f"const.{t.name}", value=t) for t in tensors] + nodes
        tensors = []
    elif initializers_as_inputs:
        inputs += [helper.make_tensor_value_info(t.name, FLOAT, list(t.dims)) for t in tensors]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", FLOAT, [1, 6, 8, 8])], tensors)
    return helper.make_model(graph, ir_version=ir_version, opset_imports=[helper.make_opsetid("", opset)])


# params: conv1 4*3*3*3 + 4, BN scale and bias 4 + 4 (running mean and var are buffers), conv2 6*4*5*5 + 6
CONV_BN_CONV_PARAMS = (4 * 3 * 3 * 3 + 4) + (4 + 4) + (6 * 4 * 5 * 5 + 6)
CONV_BN_CONV_WEIGHT_BYTES = 4 * (CONV_BN_CONV_PARAMS + 4 + 4)  # float32, the BN buffers included
CONV_BN_CONV_MACS = 4 * 8 * 8 * 3 * 3 * 3 + 6 * 8 * 8 * 4 * 5 * 5


def test_initializers_listed_as_inputs_are_constants_in_the_counts():
    model = conv_bn_conv()
    onnx.checker.check_model(model)  # a valid IR 3 file
    report = analyzer.inspect(model)
    assert report.totals.params == CONV_BN_CONV_PARAMS
    assert report.totals.weight_bytes == CONV_BN_CONV_WEIGHT_BYTES
    assert report.totals.macs == CONV_BN_CONV_MACS
    assert [i.name for i in report.model.inputs] == ["x"]
    assert report.assumed_dims == {}
    # activations: the five node outputs, float32 (conv1, bn, relu: 4x8x8; conv2, ident: 6x8x8), no weight
    assert report.totals.activation_bytes == 4 * (3 * 4 * 8 * 8 + 2 * 6 * 8 * 8)
    assert any(w.startswith("8 initializer(s) are also listed as graph inputs (IR 3 style)") for w in report.warnings)
    # the same model written without the inputs counts the same, without the warning
    plain = analyzer.inspect(conv_bn_conv(10, 17, initializers_as_inputs=False))
    assert (plain.totals.params, plain.totals.weight_bytes, plain.totals.activation_bytes) == (
        report.totals.params, report.totals.weight_bytes, report.totals.activation_bytes)
    assert not any("initializer(s) are also listed" in w for w in plain.warnings)


def test_initializers_listed_as_inputs_run_in_onnxruntime_as_constants():
    session = _session(conv_bn_conv())
    assert [i.name for i in session.get_inputs()] == ["x"]  # IR 3: the listed initializers are not feeds
    assert session.run(None, {"x": np.ones((1, 3, 8, 8), np.float32)})[0].shape == (1, 6, 8, 8)


def test_binding_a_listed_initializer_is_an_error_naming_it():
    with pytest.raises(OptionError, match="'w1', an initializer") as caught:
        analyzer.inspect(conv_bn_conv(), input_shapes={"w1": [4, 3, 3, 3]})
    assert caught.value.option == "input_shapes"


def test_binding_a_listed_initializer_on_the_command_line_exits_2(tmp_path, capsys):
    path = tmp_path / "ir3.onnx"
    onnx.save(conv_bn_conv(), path)
    assert main(["inspect", str(path), "--input-shape", "w2:6x4x5x5"]) == 2
    err = capsys.readouterr().err
    assert "'w2', an initializer" in err and "Traceback" not in err


# ---- weights in Constant nodes ----


def lenet_with_constants() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(the LeNet-5 sample, the same model with every initializer moved into a Constant node before its use)."""
    original = onnx.load(str(LENET_SAMPLE))
    moved = onnx.ModelProto()
    moved.CopyFrom(original)
    constants = [helper.make_node("Constant", [], [t.name], name=f"const.{t.name}", value=t)
                 for t in moved.graph.initializer]
    nodes = constants + list(moved.graph.node)
    del moved.graph.initializer[:]
    del moved.graph.node[:]
    moved.graph.node.extend(nodes)
    return original, moved


# LeNet-5's params: conv1 6*1*5*5 + 6, conv2 16*6*5*5 + 16, fc 400*120 + 120, 120*84 + 84, 84*10 + 10
LENET_PARAMS = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)


def test_lenet_weights_in_constants_count_as_params_and_weight_bytes():
    original, moved = lenet_with_constants()
    assert LENET_PARAMS == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706
    report = analyzer.inspect(moved)
    assert report.totals.params == LENET_PARAMS  # once 61,674: the biases of 6, 16 and 10 were dropped
    assert report.totals.weight_bytes == 4 * LENET_PARAMS  # float32; the int64 Reshape target is no weight
    reference = analyzer.inspect(original)
    assert report.totals.activation_bytes == reference.totals.activation_bytes
    assert report.totals.peak_memory_bytes == reference.totals.peak_memory_bytes
    assert report.totals.macs == reference.totals.macs
    by_name = {n.name: n for n in report.nodes}
    conv1 = by_name["/features/features.0/Conv"]
    assert (conv1.params, conv1.weight_bytes) == (6 * 25 + 6, 4 * (6 * 25 + 6))
    constants = [n for n in report.nodes if n.op_type == "Constant"]
    assert len(constants) == 11 and all((n.params, n.activation_bytes) == (0, 0) for n in constants)
    assert not any("initializer" in w for w in report.warnings)


def test_lenet_with_constants_runs_in_onnxruntime_like_the_original():
    original, moved = lenet_with_constants()
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(_session(moved).run(None, {"input": x})[0],
                               _session(original).run(None, {"input": x})[0], rtol=1e-5, atol=1e-6)


def test_table_hides_constant_rows_unless_asked_json_keeps_every_node(tmp_path, capsys):
    _, moved = lenet_with_constants()
    path = tmp_path / "lenet_constants.onnx"
    onnx.save(moved, path)
    assert main(["inspect", str(path)]) == 0
    table = capsys.readouterr().out
    assert "const.features.0.weight" not in table and "11 Constant nodes not shown" in table
    assert "/features/features.0/Conv" in table
    assert main(["inspect", str(path), "--show-constants"]) == 0
    assert "const.features.0.weight" in capsys.readouterr().out
    assert main(["inspect", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["nodes"]) == 11 + 12 and data["nodes"][0]["op_type"] == "Constant"


def test_small_float_constant_read_by_a_node_is_a_weight():
    """A Mul by a per-channel Constant scale [1,4,1,1]: 4 params, like the same initializer."""
    scale = numpy_helper.from_array(np.full((1, 4, 1, 1), 0.5, np.float32), "s")
    nodes = [helper.make_node("Constant", [], ["s"], value=scale, name="scale"),
             helper.make_node("Mul", ["x", "s"], ["y"], name="mul")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", FLOAT, [1, 4, 2, 2])],
                              [helper.make_tensor_value_info("y", FLOAT, None)])
    report = analyzer.inspect(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)]))
    assert (report.totals.params, report.totals.weight_bytes) == (4, 4 * 4)
    assert report.totals.activation_bytes == 4 * 4 * 2 * 2  # the Mul's output only


# ---- the rewrite passes on these patterns ----


PATTERNS = {
    "initializers-as-inputs-ir3": lambda: conv_bn_conv(),
    "weights-in-constants": lambda: conv_bn_conv(10, 17, constants=True),
}


def _passes_outputs(model, x):
    import onnx_ir as ir

    return _session(ir.serde.serialize_model(model)).run(None, {"x": x})[0]


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("name, make, target", [
    ("fold-bn", lambda: passes.fold_bn(), "bn"),
    ("bottleneck", lambda: passes.bottleneck(rank_ratio=1.0, kernel=5), "conv2"),
    ("separable", lambda: passes.separable(m=25, kernel=5), "conv2"),  # m >= min(Cout, k^2): exact
    ("cleanup", lambda: passes.cleanup(), "ident"),
])
def test_each_pass_rewrites_these_patterns_exactly(pattern, name, make, target, tmp_path):
    proto = PATTERNS[pattern]()
    path = tmp_path / f"{pattern}.onnx"
    onnx.save(proto, path)
    result = passes.optimize(path, [make()], verify=passes.VerifyOptions(samples=1))
    step = result.steps[0]
    assert result.modified and target in [r.node for r in step.rewritten], [r.detail for r in step.records]
    assert step.verification is not None and step.verification.comparison.relative_l2_error < 1e-4
    # onnxruntime on the file as written, against the rewrite: the same outputs
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    expected = _session(proto).run(None, {"x": x})[0]
    got = _passes_outputs(result.model, x)
    assert float(np.linalg.norm(expected - got) / np.linalg.norm(expected)) < 1e-4
    assert [v.name for v in result.model.graph.inputs] == ["x"] and result.model.ir_version >= 4
    saved = result.save(tmp_path / "out.onnx")
    onnx.checker.check_model(onnx.load(str(saved)), full_check=True)


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_passes_take_these_patterns_as_a_model_proto_too(pattern):
    proto = PATTERNS[pattern]()
    before = proto.SerializeToString()
    result = passes.Sequential(passes.fold_bn(), passes.cleanup())(proto)
    assert [r.node for r in result.steps[0].rewritten] == ["bn"]
    assert result.comparison.relative_l2_error < 1e-4
    assert proto.SerializeToString() == before  # the caller's proto is untouched


def test_weights_made_by_constant_of_shape_are_params_not_activations():
    """onnx's "light" model-zoo files write every weight as ConstantOfShape(constant shape)."""
    from onnx import TensorProto, helper

    def shape_constant(name: str, dims: list[int]) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [len(dims)], dims))

    def filled(name: str, shape_name: str) -> onnx.NodeProto:
        return helper.make_node("ConstantOfShape", [shape_name], [name],
                                value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.1]))

    nodes = [shape_constant("w_shape", [8, 3, 3, 3]), filled("w", "w_shape"),
             shape_constant("b_shape", [8]), filled("b", "b_shape"),
             helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3])]
    graph = helper.make_graph(nodes, "light", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13)])
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.ones((1, 3, 10, 10), np.float32)})
    assert y.shape == (1, 8, 8, 8)
    report = analyzer.inspect(model)
    assert report.complete, report.warnings
    assert report.totals.params == 8 * 3 * 3 * 3 + 8
    assert report.totals.weight_bytes == 4 * (8 * 3 * 3 * 3 + 8)
    assert report.totals.macs == 8 * 8 * 8 * 3 * 3 * 3
    # the ConstantOfShape outputs are weights: the conv's output is the only activation
    assert report.totals.activation_bytes == 4 * 8 * 8 * 8


# ---- a constant that only reaches a recurrent op's initial state: torch's legacy LSTM export ----


def lstm_with_expanded_zero_state(also_added_to_output: bool = False) -> onnx.ModelProto:
    """x [seq 5, batch 3, input 8] → LSTM hidden 16, whose initial_h and initial_c are Expand(Constant zeros
    [1, 1, 16], [1, batch, 16]) with the batch read from Shape(x), as torch's legacy exporter writes them.
    ``also_added_to_output``: the same constant is also added to the LSTM's Y_h (then it is a parameter)."""
    rng = np.random.default_rng(0)
    hidden, inputs = 16, 8

    def const(name, array):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))

    nodes = [const("zeros", np.zeros((1, 1, hidden), np.float32)),
             const("W", rng.standard_normal((1, 4 * hidden, inputs)).astype(np.float32)),
             const("R", rng.standard_normal((1, 4 * hidden, hidden)).astype(np.float32)),
             const("B", rng.standard_normal((1, 8 * hidden)).astype(np.float32)),
             helper.make_node("Shape", ["x"], ["x_shape"]),
             const("batch_axis", np.array([1], np.int64)),
             helper.make_node("Gather", ["x_shape", "batch_axis"], ["batch"]),
             const("one", np.array([1], np.int64)), const("width", np.array([hidden], np.int64)),
             helper.make_node("Concat", ["one", "batch", "width"], ["state_shape"], axis=0),
             helper.make_node("Expand", ["zeros", "state_shape"], ["h0"]),
             helper.make_node("Expand", ["zeros", "state_shape"], ["c0"]),
             helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["Y", "Y_h", "Y_c"], hidden_size=hidden)]
    outputs = ["Y", "Y_h"]
    if also_added_to_output:
        nodes.append(helper.make_node("Add", ["Y_h", "zeros"], ["Y_h_plus"]))
        outputs = ["Y", "Y_h_plus"]
    graph = helper.make_graph(nodes, "legacy_lstm", [helper.make_tensor_value_info("x", FLOAT, [5, 3, inputs])],
                              [helper.make_tensor_value_info(n, FLOAT, None) for n in outputs])
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 14)])


LSTM_PARAMS = 4 * 16 * 8 + 4 * 16 * 16 + 8 * 16  # W, R and both bias vectors: torch's nn.LSTM(8, 16) count


def test_constant_reaching_only_initial_states_is_not_a_parameter():
    model = lstm_with_expanded_zero_state()
    y, y_h = _session(model).run(None, {"x": np.ones((5, 3, 8), np.float32)})
    assert (y.shape, y_h.shape) == ((5, 1, 3, 16), (1, 3, 16))
    report = analyzer.inspect(model)
    assert report.complete, report.warnings
    assert report.totals.params == LSTM_PARAMS
    # the zero state is still stored with the weights, as torch's buffers are
    assert report.totals.weight_bytes == 4 * (LSTM_PARAMS + 16)
    assert [n.params for n in report.nodes if n.op_type == "Expand"] == [0, 0]
    assert report.totals.macs == 4 * (8 * 16 + 16 * 16) * 5 * 3


def test_the_same_constant_also_read_as_an_operand_stays_a_parameter():
    model = lstm_with_expanded_zero_state(also_added_to_output=True)
    _session(model).run(None, {"x": np.ones((5, 3, 8), np.float32)})
    report = analyzer.inspect(model)
    assert report.totals.params == LSTM_PARAMS + 16
