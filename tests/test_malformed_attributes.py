"""Attributes that contradict the shapes are bad input: a warning naming the node, never exit 3."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

import analyzer
from analyzer.cli import main
from model_builders import make_model


def transpose(perm) -> object:
    node = helper.make_node("Transpose", ["x"], ["y"], name="t")
    node.attribute.append(helper.make_attribute("perm", perm))
    conv_after = helper.make_node("Relu", ["y"], ["z"], name="after")
    return make_model([node, conv_after], [("x", [1, 4, 6, 6])], [("z", None)])


def scan_with_axes(axes: list[int]) -> object:
    body = helper.make_graph([helper.make_node("Add", ["s", "xi"], ["s2"])], "body",
                             [helper.make_tensor_value_info("s", TensorProto.FLOAT, [2]),
                              helper.make_tensor_value_info("xi", TensorProto.FLOAT, [2])],
                             [helper.make_tensor_value_info("s2", TensorProto.FLOAT, [2])])
    scan = helper.make_node("Scan", ["init", "xs"], ["final"], name="scan", body=body, num_scan_inputs=1,
                            scan_input_axes=axes)
    return make_model([scan], [("init", [2]), ("xs", [3, 2])], [("final", None)])


CASES = {
    "perm shorter than the rank": (transpose([1, 0]), "malformed node 't' (Transpose)"),
    "perm as floats": (transpose([1.0, 0.0, 2.0, 3.0]), "t: attribute 'perm' is FLOATS where Transpose takes INTS"),
    "scan axis out of range": (scan_with_axes([5]), "scan (malformed Scan"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_attributes_are_a_warning_naming_the_node(case, tmp_path, capsys):
    model, named = CASES[case]
    report = analyzer.inspect(model)
    assert any(named in w for w in report.warnings), report.warnings
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    assert main(["inspect", str(path), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    capsys.readouterr()
    code = main(["inspect", str(path), "--strict"])
    err = capsys.readouterr().err
    assert code in (0, 2) and "internal error" not in err  # strict refuses only what is incomplete
