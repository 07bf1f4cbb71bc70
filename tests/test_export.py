"""Exported zoo models: onnxruntime matches torch at batch 1 and 3 (one dynamic-batch export each),
one static-batch export, both exporters, readable node names with module paths, one self-contained file."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install '.[export]')")
onnx = pytest.importorskip("onnx")

from analyzer.errors import AnalyzerError  # noqa: E402
from analyzer.latency.runtime import create_session  # noqa: E402
from exporters import MODULE_KEY, ZOO, export  # noqa: E402
from exporters.onnx_export import RELATIVE_TOLERANCE, build_seeded  # noqa: E402

FAST_DYNAMO = ["lenet5", "mnist_cnn", "alexnet", "alexnet_grouped", "vgg16", "resnet18", "resnet50", "googlenet",
               "mobilenet_v1", "mobilenet_v2", "inception_naive", "inception_bottleneck"]
FAST_LEGACY = ["lenet5", "mnist_cnn", "resnet18", "inception_bottleneck"]
SLOW = sorted(set(ZOO) - set(FAST_DYNAMO))


def assert_matches_torch(path, name, batch, **options):
    """ORT output equals the seed-0 torch module's within RELATIVE_TOLERANCE of the output's max abs."""
    model = build_seeded(name, **options)
    shape = (batch, *ZOO[name].input_shape[1:])
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        expected = model(x).numpy()
    session = create_session(path).session
    actual = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= RELATIVE_TOLERANCE * np.max(np.abs(expected))


def check_file(path):
    """Loads without a sidecar, passes the full checker, IR version onnxruntime 1.31 loads, readable names."""
    assert not list(path.parent.glob(path.name + "*.data"))
    model = onnx.load(str(path), load_external_data=False)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version <= 13
    names = [n.name for n in model.graph.node]
    assert len(set(names)) == len(names)
    assert all(n.startswith("/") and not n.startswith("/node_") for n in names)
    assert all(MODULE_KEY in {p.key for p in n.metadata_props} for n in model.graph.node)
    return model


def _run_equivalence(zoo_onnx, name, exporter):
    path = zoo_onnx(name, exporter=exporter)
    model = check_file(path)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for batch in (1, 3):
        assert_matches_torch(path, name, batch)


@pytest.mark.parametrize("name", FAST_DYNAMO)
def test_dynamo_export_matches_torch(zoo_onnx, name):
    _run_equivalence(zoo_onnx, name, "dynamo")


@pytest.mark.parametrize("name", FAST_LEGACY)
def test_legacy_export_matches_torch(zoo_onnx, name):
    _run_equivalence(zoo_onnx, name, "legacy")


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_slow_dynamo_export_matches_torch(zoo_onnx, name):
    _run_equivalence(zoo_onnx, name, "dynamo")


def test_static_batch_export(tmp_path):
    path = tmp_path / "mnist_cnn.onnx"
    result = export("mnist_cnn", path, batch=2, num_classes=7)
    model = check_file(path)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 1, 28, 28]
    assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == [2, 7]
    assert result.rel_diff <= RELATIVE_TOLERANCE and result.input_shape == (2, 1, 28, 28)
    assert result.params == 29_034 - (1568 * 10 + 10) + (1568 * 7 + 7)
    assert_matches_torch(path, "mnist_cnn", 2, num_classes=7)


def test_model_options_reach_the_factory(tmp_path):
    """Factory options pass through export: LeNet-5 at 28x28 (fc1 sees 16·4·4), AlexNet without LRN."""
    result = export("lenet5", tmp_path / "lenet5_28.onnx", input_size=28, exporter="legacy")
    assert result.input_shape == (1, 1, 28, 28)
    assert result.params == 61_706 - 120 * 16 * (5 * 5 - 4 * 4)
    model = onnx.load(str(export("alexnet", tmp_path / "alexnet.onnx", lrn=False, exporter="legacy").path))
    assert "LRN" not in {n.op_type for n in model.graph.node}


def test_dynamo_names_follow_module_paths(zoo_onnx):
    """Renamed dynamo nodes read like the legacy exporter's: /<scopes>/<OpType>, module path in metadata."""
    dynamo = onnx.load(str(zoo_onnx("lenet5")))
    legacy = onnx.load(str(zoo_onnx("lenet5", exporter="legacy")))
    convs = {n.name: {p.key: p.value for p in n.metadata_props}[MODULE_KEY] for n in dynamo.graph.node if n.op_type == "Conv"}
    assert convs == {"/features/features.0/Conv": "features.0", "/features/features.3/Conv": "features.3"}
    assert {n.name for n in legacy.graph.node if n.op_type in ("Conv", "Gemm")} == {
        n.name for n in dynamo.graph.node if n.op_type in ("Conv", "Gemm")}


def test_repeated_module_gets_unique_suffixes(zoo_onnx):
    """A module called twice (ResNet's shared relu) yields /.../Relu and /.../Relu_1; scopes are full paths."""
    model = onnx.load(str(zoo_onnx("resnet18")), load_external_data=False)
    names = {n.name for n in model.graph.node}
    assert {"/layer1/layer1.0/layer1.0.relu/Relu", "/layer1/layer1.0/layer1.0.relu/Relu_1"} <= names


def test_user_factory_export(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        "import torch\n"
        "def tiny(num_classes=4):\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),\n"
        "                               torch.nn.Linear(8 * 6 * 6, num_classes))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = export("my_models:tiny", tmp_path / "tiny.onnx", input_shape=(1, 3, 8, 8), num_classes=5,
                    exporter="legacy", dynamic_batch=True)
    assert result.params == (3 * 9 * 8 + 8) + (8 * 6 * 6 * 5 + 5)
    assert result.rel_diff <= RELATIVE_TOLERANCE
    check_file(result.path)


def test_failed_check_leaves_no_file(tmp_path, monkeypatch):
    import exporters.onnx_export as onnx_export

    monkeypatch.setattr(onnx_export, "compare_with_torch", lambda *a, **k: (1.0, 0.5))
    with pytest.raises(AnalyzerError, match="differs from torch"):
        export("lenet5", tmp_path / "lenet5.onnx", exporter="legacy")
    assert list(tmp_path.iterdir()) == []


def test_missing_torch_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(AnalyzerError, match=r"torch is not installed; install the export extra"):
        export("lenet5", tmp_path / "lenet5.onnx")
    assert list(tmp_path.iterdir()) == []
