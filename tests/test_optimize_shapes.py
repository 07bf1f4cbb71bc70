"""``optimize`` at the user's input shapes: ``--input-shape``/``--dim``/``--batch`` reach the verification
inputs and the before/after figures; a model that cannot run at the shapes is one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import helper

import passes
from analyzer.cli import main
from model_builders import make_model, weight


def unpadded_conv_model(tmp_path):
    """x: N x 4 x H x W (symbolic) -> 5x5 conv without padding, 4 -> 8: at the default 1x1 it cannot run."""
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[5, 5])
    model = make_model([conv], [("x", ["N", 4, "H", "W"])], [("y", ["N", 8, "Ho", "Wo"])], [weight("w", 8, 4, 5, 5)])
    path = tmp_path / "unpadded.onnx"
    onnx.save(model, str(path))
    return path


def test_optimize_without_shapes_that_fit_is_one_line_and_exit_2(tmp_path, capsys):
    path = unpadded_conv_model(tmp_path)
    out = tmp_path / "out.onnx"
    code = main(["optimize", str(path), "-o", str(out), "--pass", "bottleneck:rank=2", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "--input-shape" in err and "x 1x4x1x1" in err
    assert "Traceback" not in err and "internal error" not in err


def test_optimize_input_shape_sets_figures_and_verification(tmp_path, capsys):
    path = unpadded_conv_model(tmp_path)
    out = tmp_path / "out.onnx"
    code = main(["optimize", str(path), "-o", str(out), "--pass", "bottleneck:rank=2", "-q", "-f", "json",
                 "--input-shape", "x:2x4x20x24", "--samples", "1"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    # output 16 x 20 per image, batch 2: 2·16·20·8·4·25 MACs before
    assert doc["before"]["macs"] == 2 * 16 * 20 * 8 * 4 * 25
    # after: 1x1 4->2 at 20x24, 5x5 2->2 at 16x20, 1x1 2->8 at 16x20; times the batch of 2
    assert doc["after"]["macs"] == 2 * (20 * 24 * 4 * 2 + 16 * 20 * 2 * 2 * 25 + 16 * 20 * 2 * 8)
    assert doc["passes"][0]["verification"]["passed"]


def test_optimize_dims_and_batch_bind_symbols(tmp_path, capsys):
    path = unpadded_conv_model(tmp_path)
    out = tmp_path / "out.onnx"
    code = main(["optimize", str(path), "-o", str(out), "--pass", "bottleneck:rank=2", "-q", "-f", "json",
                 "--dim", "H=9", "--dim", "W=7", "--batch", "3", "--samples", "1"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["before"]["macs"] == 3 * 5 * 3 * 8 * 4 * 25


def test_python_verify_options_carry_shapes(tmp_path):
    path = unpadded_conv_model(tmp_path)
    verify = passes.VerifyOptions(samples=1, input_shapes={"": [1, 4, 6, 6]})
    result = passes.optimize(path, ["bottleneck:rank=2"], verify=verify)
    assert result.report_before.totals.macs == 2 * 2 * 8 * 4 * 25
    feed = result.steps[0].run_before.feeds[0]["x"]
    assert feed.shape == (1, 4, 6, 6)


def test_inputs_file_shapes_are_the_figures_shapes(tmp_path):
    path = unpadded_conv_model(tmp_path)
    inputs = tmp_path / "x.npy"
    np.save(inputs, np.ones((1, 4, 7, 5), np.float32))
    result = passes.optimize(path, ["bottleneck:rank=2"], verify=passes.VerifyOptions(inputs=str(inputs)))
    assert result.report_before.totals.macs == 3 * 1 * 8 * 4 * 25


@pytest.mark.parametrize("shape, message", [("x:1x4x6", "rank 3 given"), ("y:1x4x6x6", "not an input"),
                                            ("x:1x3x6x6", "dim 1 is fixed at 4")])
def test_bad_input_shape_is_named(tmp_path, capsys, shape, message):
    path = unpadded_conv_model(tmp_path)
    code = main(["optimize", str(path), "-o", str(tmp_path / "o.onnx"), "--pass", "bottleneck:rank=2", "-q",
                 "--input-shape", shape])
    err = capsys.readouterr().err
    assert code == 2 and "--input-shape" in err and message in err


def test_bench_takes_input_shape(tmp_path, capsys):
    path = unpadded_conv_model(tmp_path)
    code = main(["bench", str(path), "--input-shape", "1x4x12x12", "--iters", "3", "--warmup", "1", "-f", "json",
                 "--provider", "cpu"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["input_shapes"] == {"x": [1, 4, 12, 12]}
