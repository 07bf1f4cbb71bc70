"""No command writes over its input: the model file, the external-data files its tensors name, or the
``<model>.data`` beside it, whatever the option (-o, --netron, --report), refused before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest

from analyzer.cli import main
from model_builders import make_model, weight

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "lenet5.onnx"
    shutil.copy(SAMPLES / "lenet5.onnx", path)
    return path


@pytest.fixture
def external(tmp_path) -> Path:
    """A Conv whose weight lives in ``weights.bin`` beside the model."""
    from onnx import helper

    nodes = [helper.make_node("Conv", ["x", "w"], ["y"])]
    proto = make_model(nodes, [("x", [1, 2, 8, 8])], [("y", [1, 4, 6, 6])], [weight("w", 4, 2, 3, 3)])
    path = tmp_path / "ext.onnx"
    onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
                    size_threshold=0)
    return path


@pytest.mark.parametrize("argv", [
    ["inspect", "{m}", "-o", "{m}"],
    ["inspect", "{m}", "--netron", "{m}"],
    ["inspect", "{m}", "--format", "json", "-o", "{m}.data"],
    ["bench", "{m}", "--time", "0.1", "-o", "{m}"],
    ["profile", "{m}", "--time", "0.1", "-o", "{m}"],
    ["compare", "{m}", "{m}", "--time", "0.1", "-o", "{m}"],
    ["table", "{m}", "-o", "{m}"],
    ["annotate", "{m}", "-o", "{m}"],
    ["optimize", "{m}", "-o", "{m}", "--pass", "cleanup"],
])
def test_every_writing_command_refuses_its_input(model, capsys, argv):
    before = model.read_bytes()
    assert main([a.format(m=model) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite" in err and len(err.strip().splitlines()) == 1
    assert model.read_bytes() == before


@pytest.mark.parametrize("option", ["-o", "--netron"])
def test_the_external_data_file_a_model_names_is_refused_too(external, capsys, option):
    data = external.parent / "weights.bin"
    before = data.read_bytes()
    assert main(["inspect", str(external), option, str(data)]) == 2
    assert "weights.bin, a file of the input model" in capsys.readouterr().err
    assert data.read_bytes() == before


def test_a_link_to_the_model_is_the_model(model, tmp_path, capsys):
    link = tmp_path / "alias.json"
    link.symlink_to(model)
    before = model.read_bytes()
    assert main(["inspect", str(model), "--format", "json", "-o", str(link)]) == 2
    assert model.read_bytes() == before and "refusing to overwrite" in capsys.readouterr().err


def test_report_and_netron_must_be_two_files(model, tmp_path, capsys):
    target = tmp_path / "out.json"
    assert main(["inspect", str(model), "--format", "json", "-o", str(target), "--netron", str(target)]) == 2
    assert "choose two files" in capsys.readouterr().err and not target.exists()
