"""A sparse initializer used as a weight is a weight (onnxruntime densifies and runs it); one declaring
dims no runtime could hold is refused at once."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import analyzer
from analyzer.cli import main
from analyzer.errors import ModelLoadError


def sparse_conv(dims: list[int], *, coordinates: bool = False) -> bytes:
    values = numpy_helper.from_array(np.array([1.0, 2.0, 3.0], np.float32), "w")
    if coordinates:
        indices = numpy_helper.from_array(np.array([[0, 0, 0, 0], [1, 1, 2, 2], [3, 0, 1, 0]], np.int64), "w_idx")
    else:
        indices = numpy_helper.from_array(np.array([0, 10, 71], np.int64), "w_idx")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              sparse_initializer=[helper.make_sparse_tensor(values, indices, dims)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()


@pytest.mark.parametrize("coordinates", [False, True])
def test_a_sparse_weight_counts_as_its_dense_size(coordinates):
    import onnxruntime as ort

    model = sparse_conv([4, 2, 3, 3], coordinates=coordinates)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.ones((1, 2, 8, 8), np.float32)})
    report = analyzer.inspect(model)
    # 4 x 2 x 3 x 3 = 72 params; output 4 x 6 x 6 (onnxruntime's), each 2 x 3 x 3 MACs: 2,592
    assert y.shape == (1, 4, 6, 6)
    assert report.totals.params == 72 and report.totals.macs == 4 * 6 * 6 * 18 == 2_592
    assert report.complete and any("sparse initializer(s) counted as dense" in w for w in report.warnings)
    assert not any("dangling" in w for w in report.warnings)


@pytest.mark.parametrize("dims, message", [
    ([1 << 30, 1 << 30, 3, 3], "more than any runtime can hold"),
    ([4, -2, 3, 3], "negative dim"),
])
def test_impossible_sparse_dims_are_refused_in_one_line(tmp_path, capsys, dims, message):
    path = tmp_path / "huge.onnx"
    path.write_bytes(sparse_conv(dims))
    with pytest.raises(ModelLoadError, match=message):
        analyzer.inspect(path)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
