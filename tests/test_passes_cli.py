"""``analyzer optimize``: output written atomically and verified, the input never touched, bad requests
exit 2 with one line, a failing pass exits 1 and writes nothing."""

from __future__ import annotations

import json

import onnx
import pytest

from analyzer.cli import main
from passes.options import parse_pass
from test_passes import conv_proto


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "in.onnx"
    onnx.save(conv_proto(cin=4, cout=8, k=5, hw=10), str(path))
    return path


def test_optimize_writes_a_checked_model_and_a_table(model_path, tmp_path, capsys):
    before = model_path.read_bytes()
    out = tmp_path / "out.onnx"
    code = main(["optimize", str(model_path), "-o", str(out), "--pass", "fold-bn", "--pass", "bottleneck:rank=2",
                 "--pass", "cleanup", "-q"])
    assert code == 0
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    assert model_path.read_bytes() == before
    text = capsys.readouterr().out
    assert "bottleneck: 1 rewritten, 0 skipped" in text
    # 10x10 output, Cin 4, Cout 8, 5x5 -> R_in = R_out = 2: 1x1 + 5x5 core + 1x1
    assert "MACs 80.00K → " in text and "verification: passed" in text
    assert "fold-bn: 0 rewritten" in text
    assert not list(tmp_path.glob(".out.onnx*"))  # no temporary left behind


def test_optimize_json(model_path, tmp_path, capsys):
    out = tmp_path / "out.onnx"
    code = main(["optimize", str(model_path), "-o", str(out), "--pass", "separable:m=2,nodes=conv", "-f", "json", "-q",
                 "--samples", "3", "--seed", "5"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    step = doc["passes"][0]
    assert doc["written"] and step["pass"] == "separable" and step["modified"]
    record = step["records"][0]
    assert record["old_macs"] == 10 * 10 * 8 * 4 * 25
    assert record["new_macs"] == 10 * 10 * 4 * 2 * 25 + 10 * 10 * 4 * 2 * 8
    assert step["verification"]["comparison"]["samples"] == 3
    assert doc["after"]["macs"] == record["new_macs"]


def test_inputs_from_npy(model_path, tmp_path, capsys):
    import numpy as np

    npy = tmp_path / "x.npy"
    np.save(npy, np.ones((1, 4, 10, 10), np.float32))
    code = main(["optimize", str(model_path), "-o", str(tmp_path / "o.onnx"), "--pass", "asymmetric:rank_ratio=1.0",
                 "--inputs", str(npy), "-f", "json", "-q"])
    assert code == 0
    comparison = json.loads(capsys.readouterr().out)["comparison"]
    assert comparison["samples"] == 1 and comparison["relative_l2_error"] < 1e-5


@pytest.mark.parametrize("args,message", [
    (["--pass", "nope"], "unknown pass 'nope'"),
    (["--pass", "bottleneck:rank=two"], "rank must be an integer"),
    (["--pass", "bottleneck:colour=red"], "unknown option 'colour'"),
    (["--pass", "bottleneck:rank"], "is not key=value"),
    (["--pass", "separable:nodes=conv7"], "no node matches nodes=conv7"),
    (["--pass", "stack3x3:mode=exact,mid=3"], "mid does not apply"),
    (["--pass", "bottleneck:rank=2,energy=0.5"], "give one of rank, rank_ratio, energy"),
    (["--pass", "bottleneck:kernel=3"], "no node matches kernel_shape=3"),
    (["--pass", "cleanup", "--samples", "0"], "--samples must be at least 1"),
    (["--pass", "cleanup", "--inputs", "no-such-file.npy"], "--inputs file no-such-file.npy does not exist"),
])
def test_bad_requests_exit_2_with_one_line(model_path, tmp_path, capsys, args, message):
    out = tmp_path / "out.onnx"
    assert main(["optimize", str(model_path), "-o", str(out), "-q", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_grouped_conv_named_explicitly_exits_2(tmp_path, capsys):
    path = tmp_path / "g.onnx"
    onnx.save(conv_proto(cin=4, cout=4, group=2), str(path))
    assert main(["optimize", str(path), "-o", str(tmp_path / "o.onnx"), "-q", "--pass", "bottleneck:nodes=conv"]) == 2
    assert "grouped conv (group=2) is not supported by bottleneck" in capsys.readouterr().err


def test_refuses_to_overwrite_the_input(model_path, capsys):
    before = model_path.read_bytes()
    assert main(["optimize", str(model_path), "-o", str(model_path), "--pass", "cleanup"]) == 2
    assert "refusing to overwrite the input" in capsys.readouterr().err
    assert model_path.read_bytes() == before


def test_failed_pass_exits_1_and_writes_nothing(model_path, tmp_path, capsys):
    out = tmp_path / "out.onnx"
    code = main(["optimize", str(model_path), "-o", str(out), "-q", "--pass", "bottleneck:rank=4",
                 "--pass", "separable:m=1,max_error=0.01"])
    assert code == 1
    captured = capsys.readouterr()
    assert "separable" in captured.err and "exceeds max_error=0.01" in captured.err and "no output written" in captured.err
    assert "(not written)" in captured.out
    assert not out.exists()


def test_parse_pass_types_options():
    p = parse_pass("stack3x3:mode=init,relu=true,mid=4,kernel=5")
    assert (p.mode, p.relu, p.mid, p.filter.attrs) == ("init", True, 4, {"kernel_shape": 5})
    assert parse_pass("fold_bn").name == "fold-bn"


def test_external_data_goes_beside_the_output(tmp_path, monkeypatch, capsys):
    """Above the size limit the weights go to ``<output>.data``, never to the input's external-data location."""
    import analyzer.model_files

    source_dir, out_dir = tmp_path / "in", tmp_path / "out"
    source_dir.mkdir()
    out_dir.mkdir()
    source = source_dir / "m.onnx"
    onnx.save(conv_proto(cin=4, cout=8, k=5, hw=10), str(source), save_as_external_data=True,
              location="weights.bin", size_threshold=0)
    weights_before = (source_dir / "weights.bin").read_bytes()
    monkeypatch.setattr(analyzer.model_files, "EXTERNAL_DATA_BYTES", 0)  # force the external-data path
    out = out_dir / "m.onnx"
    assert main(["optimize", str(source), "-o", str(out), "-q", "--pass", "bottleneck:rank_ratio=1.0"]) == 0
    assert (out_dir / "m.onnx.data").is_file()
    locations = {entry.value for t in onnx.load(str(out), load_external_data=False).graph.initializer
                 for entry in t.external_data if entry.key == "location"}
    assert locations == {"m.onnx.data"}
    assert (source_dir / "weights.bin").read_bytes() == weights_before
    onnx.checker.check_model(str(out), full_check=True)
    assert "verification: passed" in capsys.readouterr().out


def test_refuses_an_output_over_the_inputs_external_data(tmp_path, capsys):
    source = tmp_path / "m.onnx"
    onnx.save(conv_proto(), str(source), save_as_external_data=True, location="w.onnx.data", size_threshold=0)
    before = (tmp_path / "w.onnx.data").read_bytes()
    assert main(["optimize", str(source), "-o", str(tmp_path / "w.onnx"), "-q", "--pass", "bottleneck:rank=2"]) == 2
    assert "a file of the input model" in capsys.readouterr().err
    assert (tmp_path / "w.onnx.data").read_bytes() == before
