"""Shapes and attributes no runtime would run are not counted as work: a warning naming the node, the
report incomplete, ``--strict`` exit 2. onnxruntime's refusal of each model is the independent check."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import analyzer
from analyzer.cli import main
from model_builders import make_model, weight


def conv(**attrs) -> onnx.ModelProto:
    kernel = attrs.pop("kernel", 3)
    channels_in = attrs.pop("cin", 4)
    group = attrs.get("group", 1) or 1
    return make_model([helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], [("x", [1, 4, 8, 8])], [("y", None)],
                      [weight("w", 8, channels_in // group if channels_in % group == 0 else 1, kernel, kernel)])


def constants(**arrays) -> list:
    return [numpy_helper.from_array(np.array(v, np.int64), name) for name, v in arrays.items()]


CASES = {
    # 30x30 kernel on 8x8: shape inference gives [1, 8, -21, -21], 9,525,600 "MACs" before this check
    "kernel larger than the input": (conv(kernel=30), "impossible shape [1, 8, -21, -21]"),
    "huge dilation": (conv(dilations=[10**9, 10**9]), "impossible shape"),
    "group 0": (conv(group=0), "group=0"),
    "group not dividing the channels": (conv(group=3, cin=4), "group=3 does not divide the input's 4 channels"),
    "reshape of the wrong size": (make_model([helper.make_node("Reshape", ["x", "s"], ["y"])], [("x", [1, 4, 2, 2])],
                                             [("y", None)], constants(s=[1, 7])), "reshapes 16 elements"),
    "slice step 0": (make_model([helper.make_node("Slice", ["x", "b", "e", "a", "st"], ["y"])], [("x", [1, 4, 2, 2])],
                                [("y", None)], constants(b=[0], e=[4], a=[1], st=[0])), "a slice step of 0"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_impossible_node_is_not_counted_and_onnxruntime_agrees(case, tmp_path, capsys):
    import onnxruntime as ort

    model, message = CASES[case]
    with pytest.raises(Exception):  # noqa: B017 - any refusal: the independent evidence the model is impossible
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
                 for i in session.get_inputs()}
        session.run(None, feeds)
    report = analyzer.inspect(model)
    assert report.totals.macs == 0 and report.complete is False
    assert any(w.startswith("inconsistent node, not counted") and message in w for w in report.warnings), report.warnings
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    capsys.readouterr()
    assert main(["inspect", str(path), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "inconsistent" in err and len(err.strip().splitlines()) == 1


def test_a_consistent_conv_still_counts():
    report = analyzer.inspect(conv())
    # 8 out channels x 6x6 outputs x (4 x 3 x 3) = 10,368 MACs
    assert report.totals.macs == 10_368 and report.complete
