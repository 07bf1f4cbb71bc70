"""Bound input values: an ``If`` on the value of a small input counts the branch the value selects.

The model is Silero VAD's pattern made small: ``If(Equal(c, 1))`` picks one of two convolutions of
different widths, so the branches differ in MACs and in their output's shape.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import analyzer
from analyzer.cli import main
from analyzer.errors import OptionError

THEN_CHANNELS, ELSE_CHANNELS = 4, 8
# 3x3 convolutions, padding 1, of a 1x3x8x8 input: out channels x 8 x 8 positions x 3 in channels x 3 x 3
THEN_MACS = THEN_CHANNELS * 8 * 8 * 3 * 3 * 3
ELSE_MACS = ELSE_CHANNELS * 8 * 8 * 3 * 3 * 3


def _branch(name: str, weight: str) -> onnx.GraphProto:
    """A branch reading ``x`` and its weight from the enclosing graph."""
    conv = helper.make_node("Conv", ["x", weight], [f"{name}_y"], pads=[1, 1, 1, 1], name=f"{name}_conv")
    return helper.make_graph([conv], name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)])


def if_on_input_value() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((c, 3, 3, 3)).astype(np.float32), name)
               for name, c in (("w_then", THEN_CHANNELS), ("w_else", ELSE_CHANNELS))]
    one = numpy_helper.from_array(np.array(1, dtype=np.int64), "one")
    nodes = [
        helper.make_node("Equal", ["c", "one"], ["is_one"], name="test"),
        helper.make_node("If", ["is_one"], ["y"], name="branch", then_branch=_branch("then", "w_then"),
                         else_branch=_branch("else", "w_else")),
        helper.make_node("Relu", ["y"], ["z"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes, "if_on_input_value",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
         helper.make_tensor_value_info("c", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [*weights, one],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("input_values") / "if_on_c.onnx"
    onnx.save(if_on_input_value(), path)
    return path


def _branch_warnings(report) -> list[str]:
    return [w for w in report.warnings if "more expensive branch" in w]


def _ort_output_shape(path, c: int) -> tuple[int, ...]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"x": np.zeros((1, 3, 8, 8), np.float32), "c": np.array(c, np.int64)}
    return session.run(["z"], feeds)[0].shape


def test_unbound_counts_the_more_expensive_branch_and_says_so(model_path):
    report = analyzer.inspect(model_path)
    assert report.totals.macs == ELSE_MACS
    assert len(_branch_warnings(report)) == 1
    assert report.model.input_values == {}


@pytest.mark.parametrize("c, macs, channels", [(1, THEN_MACS, THEN_CHANNELS), (2, ELSE_MACS, ELSE_CHANNELS)])
def test_bound_value_counts_the_branch_it_selects(model_path, c, macs, channels):
    report = analyzer.inspect(model_path, input_values={"c": c})
    assert report.totals.macs == macs
    assert not _branch_warnings(report)
    assert report.complete
    assert report.model.input_values == {"c": c}
    by_name = {n.name: n for n in report.nodes}
    expected = _ort_output_shape(model_path, c)
    assert expected == (1, channels, 8, 8)
    assert tuple(by_name["branch"].outputs[0].shape) == expected
    assert tuple(by_name["relu"].outputs[0].shape) == expected
    assert "is_one" in report.folded_values


def test_a_list_binds_a_one_element_input(model_path):
    assert analyzer.inspect(model_path, input_values={"c": [1]}).totals.macs == THEN_MACS


@pytest.mark.parametrize("values, fragment", [
    ({"sr": 1}, "'sr', which is not an input"),
    ({"c": [1, 2]}, "2 value(s) given"),
    ({"c": 1.5}, "does not fit its element type int64"),
    ({"c": "one"}, "does not fit its element type"),
])
def test_bad_bindings_are_option_errors(model_path, values, fragment):
    with pytest.raises(OptionError) as error:
        analyzer.inspect(model_path, input_values=values)
    assert error.value.option == "input_values" and fragment in str(error.value)


def test_cli_binds_the_value(model_path, capsys):
    assert main(["inspect", str(model_path), "--format", "json", "--input-value", "c=1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["macs"] == THEN_MACS
    assert data["model"]["input_values"] == {"c": 1}
    assert main(["inspect", str(model_path), "--input-value", "c=1"]) == 0
    out = capsys.readouterr().out
    assert "c=1" in out and f"{THEN_MACS:,}" in out
    assert main(["inspect", str(model_path), "--format", "csv", "--input-value", "c=1"]) == 0
    assert capsys.readouterr().out.startswith("# input values: c=1\n")


@pytest.mark.parametrize("value", ["c", "c=", "=1", "c=one"])
def test_cli_bad_value_is_one_line(model_path, capsys, value):
    assert main(["inspect", str(model_path), "--input-value", value]) == 2
    err = capsys.readouterr().err
    assert "--input-value" in err and len(err.strip().splitlines()) == 1


def same_shape_branches(condition: onnx.NodeProto | None) -> onnx.ModelProto:
    """``If(flag)``: a 3x3 convolution or a 1x1 one, both 4 channels out, so shape inference resolves every
    shape and only the condition tells the branches apart. ``condition`` makes ``flag``; None: an input."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((4, 3, k, k)).astype(np.float32), f"w{k}") for k in (3, 1)]
    branches = {
        "then_branch": helper.make_graph(
            [helper.make_node("Conv", ["x", "w3"], ["y3"], pads=[1, 1, 1, 1])], "then", [],
            [helper.make_tensor_value_info("y3", TensorProto.FLOAT, [1, 4, 8, 8])]),
        "else_branch": helper.make_graph(
            [helper.make_node("Conv", ["x", "w1"], ["y1"])], "else", [],
            [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [1, 4, 8, 8])]),
    }
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])]
    if condition is None:
        inputs.append(helper.make_tensor_value_info("flag", TensorProto.BOOL, []))
    nodes = ([condition] if condition else []) + [helper.make_node("If", ["flag"], ["y"], name="branch", **branches)]
    graph = helper.make_graph(nodes, "same_shape_branches", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


CONV3_MACS = 4 * 8 * 8 * 3 * 3 * 3
CONV1_MACS = 4 * 8 * 8 * 3 * 1 * 1


def test_a_constant_condition_selects_its_branch_without_binding():
    false = helper.make_node("Constant", [], ["flag"], value=numpy_helper.from_array(np.array(False)))
    report = analyzer.inspect(same_shape_branches(false))
    assert report.totals.macs == CONV1_MACS
    assert not _branch_warnings(report)


@pytest.mark.parametrize("flag, macs", [(None, CONV3_MACS), (1, CONV3_MACS), (0, CONV1_MACS)])
def test_an_input_used_as_the_condition_is_bound_directly(flag, macs):
    values = {} if flag is None else {"flag": flag}
    report = analyzer.inspect(same_shape_branches(None), input_values=values)
    assert report.totals.macs == macs
    assert bool(_branch_warnings(report)) == (flag is None)
