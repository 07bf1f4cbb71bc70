"""``analyzer zoo`` and ``analyzer export``: the success path, and every bad input -> exit 2, one line, no file."""

from __future__ import annotations

import sys

import pytest

from analyzer.cli import main
from exporters import ZOO


def test_zoo_lists_every_model_with_its_shape(capsys):
    assert main(["zoo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(ZOO)
    by_name = {line.split()[0]: line.split()[1] for line in lines}
    assert by_name["lenet5"] == "1x1x32x32"
    assert by_name["inception_naive"] == "1x256x28x28"
    assert by_name["alexnet"] == "1x3x227x227"


def test_export_success(tmp_path, capsys):
    pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "lenet5.onnx"
    rc = main(["export", "lenet5", "-o", str(out), "--exporter", "legacy", "--dynamic-batch", "--batch", "2",
               "--num-classes", "5", "--opset", "17"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "max abs diff" in captured.out and f"{61_706 - (84 * 10 + 10) + (84 * 5 + 5):,} params" in captured.out
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 17
    assert model.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.onnx"]


def _bad(args, tmp_path, capsys, match):
    rc = main(["export", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert match in err
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir() if p.is_file() and p.suffix in (".onnx", ".tmp", ".data")] == []


def test_unknown_name(tmp_path, capsys):
    _bad(["nosuchnet", "-o", str(tmp_path / "m.onnx")], tmp_path, capsys, "unknown model 'nosuchnet'")


@pytest.mark.parametrize("shape", ["1x3xfoo", "1x0x32x32", "", "-1x1x32x32"])
def test_bad_shape_string(tmp_path, capsys, shape):
    _bad(["lenet5", "-o", str(tmp_path / "m.onnx"), f"--input-shape={shape}"], tmp_path, capsys, "bad input shape")


def test_shape_the_model_cannot_take(tmp_path, capsys):
    pytest.importorskip("torch")
    _bad(["lenet5", "-o", str(tmp_path / "m.onnx"), "--input-shape", "1x3x32x32"], tmp_path, capsys,
         "lenet5 cannot run on an input of shape 1x3x32x32")


def test_factory_that_raises(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    (tmp_path / "broken_models.py").write_text("def net(**kw):\n    raise ValueError('no weights here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _bad(["broken_models:net", "-o", str(tmp_path / "m.onnx"), "--input-shape", "1x3x8x8"], tmp_path, capsys,
         "building broken_models:net failed: ValueError: no weights here")


def test_factory_module_missing(tmp_path, capsys):
    pytest.importorskip("torch")
    _bad(["no_such_module_xyz:net", "-o", str(tmp_path / "m.onnx"), "--input-shape", "1x3x8x8"], tmp_path, capsys,
         "cannot import 'no_such_module_xyz'")


def test_option_the_model_lacks(tmp_path, capsys):
    pytest.importorskip("torch")
    _bad(["mobilenet_v2", "-o", str(tmp_path / "m.onnx"), "--batch-norm"], tmp_path, capsys,
         "mobilenet_v2 has no option 'batch_norm'")


def test_unwritable_path(tmp_path, capsys):
    _bad(["lenet5", "-o", str(tmp_path / "missing" / "m.onnx")], tmp_path, capsys, "does not exist")
    (tmp_path / "adir.onnx").mkdir()
    _bad(["lenet5", "-o", str(tmp_path / "adir.onnx")], tmp_path, capsys, "it is a directory")


def test_torch_not_installed(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    _bad(["lenet5", "-o", str(tmp_path / "m.onnx")], tmp_path, capsys,
         "torch is not installed; install the export extra: pip install 'cnn-onnx-analyzer[export]'")
