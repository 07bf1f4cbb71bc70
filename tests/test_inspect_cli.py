"""`analyzer inspect` as a user runs it: formats, output files, bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from analyzer.cli import main
from tests.test_pipeline import conv_relu_fc

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.onnx"
    onnx.save(conv_relu_fc(), path)
    return path


def test_table_shows_nodes_totals_and_summaries(tiny, capsys):
    assert main(["inspect", str(tiny)]) == 0
    out = capsys.readouterr().out
    for fragment in ("conv1", "Top 10 by macs", "By op type", "Conv vs fully connected", f"{8 * 32 * 32 * 27 + 2048 * 10:,}"):
        assert fragment in out


def test_json_to_stdout_is_the_report(tiny, capsys):
    assert main(["inspect", str(tiny), "--format", "json", "--dim", "N=2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "analyzer.report/1"
    assert data["totals"]["macs"] == 2 * (8 * 32 * 32 * 27 + 2048 * 10)
    assert data["model"]["path"] == str(tiny)


def test_csv_has_one_row_per_node(tiny, capsys):
    assert main(["inspect", str(tiny), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in rows] == ["conv1", "relu1", "pool1", "flat", "fc"]
    assert int(rows[0]["macs"]) == 8 * 32 * 32 * 27


@pytest.mark.parametrize("fmt, marker", [("markdown", "| params |"), ("html", 'id="analyzer-data"')])
def test_markdown_and_html_written_atomically_to_a_file(tiny, tmp_path, fmt, marker):
    out = tmp_path / f"report.{fmt}"
    assert main(["inspect", str(tiny), "--format", fmt, "-o", str(out)]) == 0
    assert marker in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tiny.onnx", out.name])  # no temp file left


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "random.onnx").write_bytes(os.urandom(4096))
    good = conv_relu_fc().SerializeToString()
    (tmp_path / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (tmp_path / "a_directory.onnx").mkdir()
    return {
        "missing": tmp_path / "missing.onnx",
        "directory": tmp_path / "a_directory.onnx",
        "empty": tmp_path / "empty.onnx",
        "random bytes": tmp_path / "random.onnx",
        "truncated": tmp_path / "truncated.onnx",
    }


def test_bad_inputs_give_one_line_and_exit_2_without_touching_the_file(tmp_path):
    for label, path in _bad_inputs(tmp_path).items():
        before = path.read_bytes() if path.is_file() else None
        proc = subprocess.run([sys.executable, "-m", "analyzer.cli", "inspect", str(path)], capture_output=True,
                              text=True, cwd=REPO)
        assert proc.returncode == 2, (label, proc.stderr)
        assert "Traceback" not in proc.stderr, label
        assert len(proc.stderr.strip().splitlines()) == 1, (label, proc.stderr)
        assert proc.stdout == "", label
        if before is not None:
            assert path.read_bytes() == before, label


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--dim", "N"], "--dim 'N': expected NAME=POSITIVE_INT"),
        (["--input-shape", "x:1x3xfoo"], "bad shape"),
        (["--format", "json", "-o", "/nonexistent-dir/report.json"], "does not exist"),
    ],
)
def test_bad_options_are_one_line_errors(tiny, capsys, args, fragment):
    assert main(["inspect", str(tiny), *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_help_and_inspect_do_not_import_torch_or_onnxruntime(tiny):
    """Start-up is import-bound: a JSON inspect imports onnx and networkx (it builds the graph) but not
    rich (tables only), onnxruntime (latency only), onnx-ir (passes) or torch; the parser imports none."""
    code = (
        "import sys; from analyzer.cli import build_parser, main; build_parser(); "
        "early = [m for m in ('onnx', 'numpy', 'networkx', 'rich', 'onnxruntime', 'fastapi') if m in sys.modules]; "
        f"main(['inspect', {str(tiny)!r}, '--format', 'json', '-o', {str(tiny.with_suffix('.json'))!r}]); "
        "bad = early + [m for m in ('torch', 'onnxruntime', 'onnx_ir', 'rich', 'exporters', 'passes', 'PIL', 'fastapi') "
        "if m in sys.modules]; "
        "print(','.join(bad)); sys.exit(1 if bad or 'networkx' not in sys.modules else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_model_newer_than_onnx_knows_is_one_line(tmp_path, capsys):
    model = conv_relu_fc()
    model.ir_version = onnx.IR_VERSION + 5
    path = tmp_path / "future.onnx"
    path.write_bytes(model.SerializeToString())
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "IR version" in err and len(err.strip().splitlines()) == 1


def test_missing_external_data_still_gives_a_report_with_a_warning(tmp_path, capsys):
    model = conv_relu_fc()
    path = tmp_path / "external.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    (tmp_path / "weights.bin").unlink()
    assert main(["inspect", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["params"] == (8 * 27 + 8) + (10 * 2048 + 10)  # from dims, no data needed
    assert any("weights.bin" in w for w in data["warnings"])


def test_node_whose_shape_cannot_be_inferred_is_a_warning(tmp_path, capsys):
    from onnx import helper

    # a custom-domain op: onnx cannot infer its output, the Relu after it has no shape either
    nodes = [helper.make_node("Mystery", ["x"], ["m"], name="mystery", domain="custom.ops"),
             helper.make_node("Relu", ["m"], ["y"], name="after")]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)]),
        ir_version=10, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom.ops", 1)])
    path = tmp_path / "partial.onnx"
    onnx.save(model, path)
    assert main(["inspect", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["complete"] is False
    assert any(w.startswith("cost unknown") and "after" in w for w in data["warnings"])
    assert [u["op_type"] for u in data["unsupported_ops"]] == ["Mystery"]


# ---- the input shape the figures were counted at ----

def _conv_over(x_shape) -> onnx.ModelProto:
    """x[x_shape] → Conv 8@3x3 pad 1: MACs = 8 * H * W * 3 * 3 * 3."""
    from onnx import helper

    from tests.model_builders import make_model, weight

    return make_model([helper.make_node("Conv", ["x", "W"], ["y"], name="conv", pads=[1, 1, 1, 1])],
                      [("x", x_shape)], [("y", None)], [weight("W", 8, 3, 3, 3)])


FORMATS = ("table", "markdown", "csv", "html", "json")


def _inspect_all_formats(path: Path, capsys, *args: str) -> dict[str, str]:
    outputs = {}
    for fmt in FORMATS:
        assert main(["inspect", str(path), "--format", fmt, *args]) == 0
        outputs[fmt] = capsys.readouterr().out
    return outputs


def test_assumed_spatial_dims_put_the_shape_used_beside_the_macs_in_every_format(tmp_path, capsys):
    path = tmp_path / "symbolic.onnx"
    onnx.save(_conv_over(["N", 3, "H", "W"]), path)
    out = _inspect_all_formats(path, capsys)
    note = "at x: 1x3x1x1 (N, H, W assumed; bind with --input-shape)"  # every symbolic dim evaluated as 1
    macs = 8 * 1 * 1 * 3 * 3 * 3
    assert next(line for line in out["table"].splitlines() if line.startswith("MACs")).split() == [
        "MACs", f"{macs:,}", f"({macs})", *note.split()]
    assert f"| MACs | {macs:,} ({macs}) {note} |" in out["markdown"]
    assert out["csv"].splitlines()[0] == f"# MACs {macs:,} {note}"
    rows = list(csv.DictReader(io.StringIO(out["csv"].split("\n", 1)[1])))  # the header and rows follow the comment
    assert [(r["name"], int(r["macs"])) for r in rows] == [("conv", macs)]
    assert f"<tr><th>MACs</th><td>{macs:,} ({macs}) {note}</td></tr>" in out["html"]
    data = json.loads(out["json"])
    assert data["model"]["analyzed_inputs"] == {"x": [1, 3, 1, 1]}
    assert data["model"]["inputs"][0]["shape"] == ["N", 3, "H", "W"]  # the model's own shape stays as it was
    assert data["totals"]["macs"] == macs and data["complete"] is True  # complete: every node counted


@pytest.mark.parametrize("args, analyzed", [
    (["--input-shape", "x:1x3x32x32"], [1, 3, 32, 32]),
    (["--dim", "H=32", "--dim", "W=32"], [1, 3, 32, 32]),  # only the batch left to assume: per-sample figures
])
def test_bound_spatial_dims_leave_the_headline_as_it_was(tmp_path, capsys, args, analyzed):
    path = tmp_path / "symbolic.onnx"
    onnx.save(_conv_over(["N", 3, "H", "W"]), path)
    out = _inspect_all_formats(path, capsys, *args)
    macs = 8 * 32 * 32 * 3 * 3 * 3
    for fmt in FORMATS:
        assert "bind with --input-shape" not in out[fmt], fmt
    assert f"| MACs | {macs:,} (221.18K) |" in out["markdown"]
    assert out["csv"].startswith("index,name,")
    assert json.loads(out["json"])["model"]["analyzed_inputs"] == {"x": analyzed}


def test_static_model_reports_its_own_shape_as_the_one_analyzed(tiny, capsys):
    assert main(["inspect", str(tiny), "--format", "json", "--dim", "N=2"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["analyzed_inputs"] == {"x": [2, 3, 32, 32]}


def test_dims_without_a_name_show_the_shape_used_too(tmp_path, capsys):
    path = tmp_path / "unnamed.onnx"
    onnx.save(_conv_over([1, 3, None, None]), path)
    assert main(["inspect", str(path), "--format", "markdown"]) == 0
    macs_row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| MACs |"))
    assert "at x: 1x3x1x1 (" in macs_row and "assumed; bind with --input-shape)" in macs_row
