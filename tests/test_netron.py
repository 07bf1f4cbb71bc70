"""Netron attachment (`inspect --netron`) and `analyzer annotate`: figures checked against hand arithmetic."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from analyzer.cli import main
from analyzer.pipeline import inspect
from analyzer.netron import SIGNATURE, attachment
from tests.model_builders import make_model, weight

REPO = Path(__file__).resolve().parent.parent

# Conv 3->8, 3x3, pad 1 on 1x3x8x8: output 1x8x8x8.
CONV_MACS = 8 * 8 * 8 * 3 * 3 * 3  # output elements x (in channels x kernel area) = 13,824
CONV_PARAMS = 8 * 3 * 3 * 3 + 8  # weight + bias = 224
CONV_OUT_BYTES = 8 * 8 * 8 * 4  # fp32 = 2,048
# Conv 8->4, 1x1 on 1x8x8x8: output 1x4x8x8.
POINTWISE_MACS = 4 * 8 * 8 * 8  # = 2,048


def _model(names: tuple[str, str, str, str] = ("conv", "", "pw", "relu2"), ir_version: int = 10) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name=names[0], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name=names[1]),
        helper.make_node("Conv", ["r", "w2"], ["p"], name=names[2]),
        helper.make_node("Relu", ["p"], ["y"], name=names[3]),
    ]
    model = make_model(nodes, [("x", [1, 3, 8, 8])], [("y", [1, 4, 8, 8])],
                       [weight("w", 8, 3, 3, 3), weight("b", 8, seed=1), weight("w2", 4, 8, 1, 1, seed=2)])
    model.ir_version = ir_version
    return model


def _node_metrics(document: dict, target: str) -> dict[str, object]:
    return {m["name"]: m["value"] for m in document["metrics"] if m["kind"] == "node" and m["target"] == target}


def test_attachment_has_the_hand_counted_figures_per_node_and_for_the_model():
    model = _model()
    made = attachment(inspect(model), list(model.graph.node))
    doc = made.document
    assert doc["signature"] == SIGNATURE and doc["metadata"] == []
    conv = _node_metrics(doc, "conv")
    assert conv["MACs"] == CONV_MACS
    assert conv["params"] == CONV_PARAMS
    assert conv["weight bytes"] == CONV_PARAMS * 4
    assert conv["activation bytes"] == CONV_OUT_BYTES
    assert conv["receptive field"] == "3x3 /1"
    assert _node_metrics(doc, "pw")["MACs"] == POINTWISE_MACS
    # the pointwise conv adds nothing to the field: still 3x3
    assert _node_metrics(doc, "pw")["receptive field"] == "3x3 /1"
    totals = {m["name"]: m["value"] for m in doc["metrics"] if m["kind"] == "model"}
    assert all(m["target"] == "" for m in doc["metrics"] if m["kind"] == "model")
    assert totals["MACs"] == CONV_MACS + POINTWISE_MACS
    assert totals["params"] == CONV_PARAMS + 4 * 8
    values = {m["target"]: m["value"] for m in doc["metrics"] if m["kind"] == "value"}
    assert values["c"] == CONV_OUT_BYTES and values["y"] == 4 * 8 * 8 * 4
    for entry in doc["metrics"]:
        assert set(entry) == {"kind", "target", "name", "value", "type"}
        assert entry["type"] in ("int64", "string")
        assert isinstance(entry["value"], int) == (entry["type"] == "int64")


def test_nameless_and_shared_names_are_left_out_not_given_a_neighbours_figures():
    model = _model(names=("same", "", "same", "relu2"))
    made = attachment(inspect(model), list(model.graph.node))
    targets = {m["target"] for m in made.document["metrics"] if m["kind"] == "node"}
    assert targets == {"relu2"}
    assert len(made.untargetable) == 3  # both "same" nodes and the nameless Relu


def test_inspect_netron_flag_writes_the_attachment_beside_the_report(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(_model(), path)
    code = main(["inspect", str(path), "--format", "json", "-o", str(tmp_path / "r.json"),
                 "--netron", str(tmp_path / "a.json")])
    assert code == 0
    doc = json.loads((tmp_path / "a.json").read_text())
    assert _node_metrics(doc, "conv")["MACs"] == CONV_MACS
    assert "1 node(s) have no name" in capsys.readouterr().err


def test_lenet5_sample_attachment_targets_every_node_by_its_own_name(tmp_path):
    sample = REPO / "samples" / "lenet5.onnx"
    assert main(["inspect", str(sample), "--format", "json", "-o", str(tmp_path / "r.json"),
                 "--netron", str(tmp_path / "a.json")]) == 0
    doc = json.loads((tmp_path / "a.json").read_text())
    names = {n.name for n in onnx.load(sample, load_external_data=False).graph.node}
    node_targets = {m["target"] for m in doc["metrics"] if m["kind"] == "node"}
    assert node_targets == names
    total = {m["name"]: m["value"] for m in doc["metrics"] if m["kind"] == "model"}
    # LeNet-5 (LeCun et al. 1998, with 10 outputs): 61,706 parameters
    assert total["params"] == 61_706


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_annotate_writes_the_figures_into_each_node_and_keeps_the_model_intact(tmp_path):
    source = tmp_path / "in.onnx"
    onnx.save(_model(ir_version=8), source)
    before = _digest(source)
    target = tmp_path / "out.onnx"
    assert main(["annotate", str(source), "-o", str(target)]) == 0
    assert _digest(source) == before
    out = onnx.load(target)
    assert out.ir_version == 10  # node metadata_props need IR 10
    props = {n.name or f"#{i}": {p.key: p.value for p in n.metadata_props} for i, n in enumerate(out.graph.node)}
    assert props["conv"]["analyzer.macs"] == str(CONV_MACS)
    assert props["conv"]["analyzer.params"] == str(CONV_PARAMS)
    assert props["pw"]["analyzer.macs"] == str(POINTWISE_MACS)
    assert props["#1"]["analyzer.activation_bytes"] == str(CONV_OUT_BYTES)  # the nameless Relu is annotated too
    model_props = {p.key: p.value for p in out.metadata_props}
    assert model_props["analyzer.total.macs"] == str(CONV_MACS + POINTWISE_MACS)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    run = lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]  # noqa: E731
    np.testing.assert_array_equal(run(source), run(target))


def test_annotate_keeps_the_exporters_metadata(tmp_path):
    sample = REPO / "samples" / "lenet5.onnx"
    target = tmp_path / "lenet5.annotated.onnx"
    assert main(["annotate", str(sample), "-o", str(target)]) == 0
    for original, annotated in zip(onnx.load(sample).graph.node, onnx.load(target).graph.node):
        old = {p.key: p.value for p in original.metadata_props}
        new = {p.key: p.value for p in annotated.metadata_props}
        assert {k: new[k] for k in old} == old
        assert "analyzer.macs" in new


@pytest.mark.parametrize("args, message", [
    (["{src}", "-o", "{src}"], "refusing to overwrite the input"),
    (["{tmp}/missing.onnx", "-o", "{tmp}/o.onnx"], "does not exist"),
    (["{tmp}/junk.onnx", "-o", "{tmp}/o.onnx"], "junk.onnx"),
])
def test_annotate_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    source = tmp_path / "in.onnx"
    onnx.save(_model(), source)
    (tmp_path / "junk.onnx").write_bytes(b"this is not a model")
    argv = [a.format(src=source, tmp=tmp_path) for a in args]
    done = subprocess.run([sys.executable, "-m", "analyzer.cli", "annotate", *argv], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert not (tmp_path / "o.onnx").exists()
