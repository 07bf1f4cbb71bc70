"""A model that crashes onnx's C++ is rejected with one line and exit 2; the process survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from onnx import TensorProto, helper

import analyzer
from analyzer.errors import ModelLoadError
from analyzer.native import contained

REPO = Path(__file__).resolve().parent.parent


def regex_with_unnamed_input() -> bytes:
    """RegexFullMatch (opset 20) reading the empty name, no graph inputs: onnx shape inference segfaults."""
    graph = helper.make_graph([helper.make_node("RegexFullMatch", [""], ["y"], pattern="a")], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.BOOL, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=9).SerializeToString()


def dict_vectorizer_with_unnamed_input() -> bytes:
    graph = helper.make_graph([helper.make_node("DictVectorizer", [""], ["y"], domain="ai.onnx.ml",
                                                string_vocabulary=["a"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("ai.onnx.ml", 3)],
                             ir_version=9).SerializeToString()


@pytest.mark.parametrize("make", [regex_with_unnamed_input, dict_vectorizer_with_unnamed_input])
@pytest.mark.parametrize("argv", [["inspect"], ["optimize", "-o", "{out}", "--pass", "cleanup"],
                                  ["annotate", "-o", "{out}"]])
def test_the_cli_rejects_a_model_that_crashes_onnx(tmp_path, make, argv):
    model = tmp_path / "crash.onnx"
    model.write_bytes(make())
    out = tmp_path / "out.onnx"
    command, *rest = argv
    proc = subprocess.run([sys.executable, "-m", "analyzer.cli", command, str(model), *[a.format(out=out) for a in rest]],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.strip().endswith("onnx shape inference crashed on this model (SIGSEGV); the model was rejected")
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_the_python_api_raises_instead_of_dying():
    with pytest.raises(ModelLoadError, match="crashed on this model"):
        analyzer.inspect(regex_with_unnamed_input())


def test_contained_returns_raises_and_reports_signals():
    assert contained("adding", lambda: 2 + 2) == 4
    with pytest.raises(ZeroDivisionError):
        contained("dividing", lambda: 1 / 0)
    with pytest.raises(ModelLoadError, match=r"^aborting crashed on this model \(SIGABRT\); the model was rejected$"):
        contained("aborting", lambda: os.kill(os.getpid(), signal.SIGABRT))
    assert contained("a large result", lambda: b"x" * (5 << 20)) == b"x" * (5 << 20)  # more than a pipe buffer
