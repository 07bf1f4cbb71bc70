"""The shape engine: values computed from the input shapes where onnx shape inference stops.

Each pattern of issue 11 is exported from torch (the legacy exporter writes the shape arithmetic as
nodes; the dynamo exporter does too once H and W are dynamic), analyzed with the engine switched off
(some nodes are "cost unknown") and on (complete). Expected MACs are hand arithmetic written as
arithmetic; every value's shape is checked against the tensor onnxruntime really produces.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect as pyinspect
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import analyzer
from analyzer import shape_engine
from tests.model_builders import IR_VERSION, weight

REPO = Path(__file__).resolve().parents[1]
EXPORT_CACHE = REPO / ".cache" / "torch-patterns"
LINEAR_OPS = ("Conv", "Gemm", "MatMul")


# ---------------------------------------------------------------- helpers


def _linear_macs(report) -> int:
    return sum(n.macs for n in report.nodes if n.op_type in LINEAR_OPS)


def _cost_unknown(report) -> list[str]:
    return [w for w in report.warnings if w.startswith("cost unknown")]


def _inspect_without_engine(monkeypatch, path, **options):
    """The report as it was before the engine: nothing folded."""
    with monkeypatch.context() as patch:
        patch.setattr(shape_engine, "complete_shapes", lambda model, input_values=None: shape_engine.FoldResult())
        return analyzer.inspect(path, **options)


def _ort_shapes(path: Path | onnx.ModelProto, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Every node output's real shape: the model run once in onnxruntime with all values exposed as outputs."""
    import onnxruntime as ort

    model = onnx.load(str(path)) if isinstance(path, Path) else path
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    declared = {o.name for o in exposed.graph.output}
    for node in exposed.graph.node:
        exposed.graph.output.extend(onnx.ValueInfoProto(name=out) for out in node.output if out and out not in declared)
    session = ort.InferenceSession(exposed.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)}
    names = [o.name for o in session.get_outputs()]
    return {name: tuple(value.shape) for name, value in zip(names, session.run(names, feed))}


def _assert_shapes_match_onnxruntime(report, real: dict[str, tuple[int, ...]]) -> None:
    checked = 0
    for node in report.nodes:
        for out in node.outputs:
            if out.name in real:
                assert out.shape is not None and tuple(out.shape) == real[out.name], (node.name, out.name)
                checked += 1
    assert checked == len(real)


@pytest.fixture(scope="session")
def pattern_onnx() -> Callable[..., Path]:
    """``pattern_onnx(builder, exporter, dynamic) -> path``: a small torch module exported once and cached
    under ``.cache/torch-patterns/`` (keyed by torch version, the builder's source and the options; written
    atomically). ``dynamic``: None, "batch" or "all" (batch, H and W symbolic)."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (pip install '.[export]')")
    import torch

    def export(builder: Callable, exporter: str, dynamic: str | None) -> Path:
        key = f"{torch.__version__}|{pyinspect.getsource(builder)}|{exporter}|{dynamic}"
        path = EXPORT_CACHE / f"{builder.__name__.strip('_')}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            module, example = builder()
            _torch_export(torch, module, example, partial, exporter, dynamic)
            model = onnx.load(partial)
            model.ir_version = min(model.ir_version, IR_VERSION)  # onnxruntime 1.31 loads IR <= 13
            onnx.save(model, partial)
            os.replace(partial, path)
        return path

    return export


def _torch_export(torch, module, example, path: Path, exporter: str, dynamic: str | None) -> None:
    axes = {None: {}, "batch": {0: "batch"}, "all": {0: "batch", 2: "h", 3: "w"}}[dynamic]
    if exporter == "legacy":
        torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                          dynamic_axes={"x": axes} if axes else None)
        return
    dims = {axis: torch.export.Dim(name, min=2 if axis == 0 else 8, max=4096) for axis, name in axes.items()}
    torch.onnx.export(module, (example,), str(path), dynamo=True, opset_version=18,
                      dynamic_shapes=({**dims},) if dims else None)


# ---------------------------------------------------------------- the patterns, from torch


def _channel_split():
    """ShuffleNetV2's unit: conv, x.chunk(2, dim=1), 1x1 conv on one half, concat, channel shuffle, conv."""
    import torch
    from torch import nn

    class ChannelSplit(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, padding=1)
            self.branch = nn.Conv2d(8, 8, 1)
            self.head = nn.Conv2d(16, 8, 3)

        def forward(self, x):
            x = self.stem(x)
            kept, processed = x.chunk(2, dim=1)
            y = torch.cat((kept, self.branch(processed)), 1)
            n, c, h, w = y.size()
            y = y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
            return self.head(y)

    torch.manual_seed(0)
    return ChannelSplit().eval(), torch.randn(2, 3, 16, 16)


# 16x16 input: stem 3->16 3x3 pad 1, branch 8->8 1x1, head 16->8 3x3 without padding (14x14 out)
SPLIT_MACS = 16 * 16 * 16 * 3 * 9 + 8 * 16 * 16 * 8 + 8 * 14 * 14 * 16 * 9


def _anchor_grid():
    """YOLOv8-style head: anchor points from torch.arange over the feature map, boxes decoded around them,
    concatenated with the class scores, then mixed by a 1x1 conv."""
    import torch
    from torch import nn

    class AnchorHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.box = nn.Conv2d(8, 4, 1)
            self.cls = nn.Conv2d(8, 5, 1)
            self.mix = nn.Conv1d(9, 9, 1)

        def forward(self, x):
            f = self.stem(x)
            n, _, h, w = f.shape
            xs = torch.arange(w, dtype=torch.float32) + 0.5
            ys = torch.arange(h, dtype=torch.float32) + 0.5
            grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
            anchors = torch.stack((grid_x, grid_y), -1).view(-1, 2).transpose(0, 1).unsqueeze(0)
            left_top, right_bottom = self.box(f).view(n, 4, -1).chunk(2, 1)
            centres = (anchors + (right_bottom - left_top) / 2) * 2.0
            boxes = torch.cat((centres, right_bottom + left_top, self.cls(f).view(n, 5, -1).sigmoid()), 1)
            return self.mix(boxes)

    torch.manual_seed(0)
    return AnchorHead().eval(), torch.randn(2, 3, 32, 48)


# 32x48 input: stem 3->8 3x3 s2 -> 16x24 = 384 anchors; box 8->4 and cls 8->5 1x1; mix 9->9 over 384
ANCHOR_MACS = 8 * 16 * 24 * 3 * 9 + 4 * 384 * 8 + 5 * 384 * 8 + 9 * 384 * 9


def _svtr_block():
    """SVTR-style global mixing: tokens from x.flatten(2).transpose(1, 2), multi-head attention whose
    Reshape targets come from x.shape (h * w, c // heads), reshaped back to (b, c, h, w)."""
    import torch
    from torch import nn

    class SVTRBlock(nn.Module):
        def __init__(self, channels: int = 16, heads: int = 2):
            super().__init__()
            self.heads = heads
            self.stem = nn.Conv2d(3, channels, 3, padding=1)
            self.qkv = nn.Linear(channels, 3 * channels)
            self.proj = nn.Linear(channels, channels)
            self.head = nn.Conv2d(channels, 8, 3, padding=1)

        def forward(self, x):
            x = self.stem(x)
            b, c, h, w = x.shape
            tokens = x.flatten(2).transpose(1, 2)
            qkv = self.qkv(tokens).reshape(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            attention = (q @ k.transpose(-2, -1)).softmax(-1)
            tokens = self.proj((attention @ v).transpose(1, 2).reshape(b, h * w, c))
            return self.head(tokens.transpose(1, 2).reshape(b, c, h, w))

    torch.manual_seed(0)
    return SVTRBlock().eval(), torch.randn(2, 3, 8, 32)


# per image, 8x32 input = 256 tokens of 16 channels, 2 heads of 8: stem, qkv, q·kᵀ, attention·v, proj, head
SVTR_MACS = (16 * 256 * 3 * 9 + 256 * 16 * 48 + 2 * 256 * 256 * 8 + 2 * 256 * 256 * 8 + 256 * 16 * 16
             + 8 * 256 * 16 * 9)

PATTERNS = {
    "channel_split": (_channel_split, (3, 16, 16), SPLIT_MACS),
    "anchor_grid": (_anchor_grid, (3, 32, 48), ANCHOR_MACS),
    "svtr_block": (_svtr_block, (3, 8, 32), SVTR_MACS),
}

# (pattern, exporter, dynamic dims) where onnx shape inference alone leaves nodes uncounted
OPEN_CASES = [
    ("channel_split", "legacy", None),
    ("channel_split", "legacy", "batch"),
    ("anchor_grid", "legacy", None),
    ("anchor_grid", "legacy", "batch"),
    ("anchor_grid", "dynamo", "all"),
    ("svtr_block", "legacy", "batch"),
    ("svtr_block", "legacy", "all"),
    ("svtr_block", "dynamo", "all"),
]


@pytest.mark.parametrize("pattern, exporter, dynamic", OPEN_CASES)
def test_pattern_is_complete_with_the_input_shape_bound(pattern_onnx, monkeypatch, pattern, exporter, dynamic):
    builder, image, macs_per_image = PATTERNS[pattern]
    path = pattern_onnx(builder, exporter, dynamic)
    shape = (2, *image)
    options = {"input_shapes": {"x": list(shape)}} if dynamic else {}

    before = _inspect_without_engine(monkeypatch, path, **options)
    assert not before.complete and _cost_unknown(before)

    report = analyzer.inspect(path, **options)
    assert report.complete, report.warnings
    assert not _cost_unknown(report)
    assert _linear_macs(report) == 2 * macs_per_image
    assert report.folded_values
    assert report.to_dict()["folded_values"] == report.folded_values
    assert any("computed from the input shapes" in w for w in report.warnings)
    _assert_shapes_match_onnxruntime(report, _ort_shapes(path, shape))


@pytest.mark.parametrize("pattern", ["channel_split", "anchor_grid", "svtr_block"])
def test_dynamic_batch_assumed_one_counts_one_image(pattern_onnx, pattern):
    builder, _, macs_per_image = PATTERNS[pattern]
    report = analyzer.inspect(pattern_onnx(builder, "legacy", "batch"))
    assert report.assumed_dims == {"batch": 1}
    assert report.complete, report.warnings
    assert _linear_macs(report) == macs_per_image

    bound = analyzer.inspect(pattern_onnx(builder, "legacy", "batch"), dims={"batch": 3})
    assert bound.complete and _linear_macs(bound) == 3 * macs_per_image


def test_channel_split_folds_the_slice_bounds(pattern_onnx):
    """The legacy exporter's chunk: Shape -> Gather -> Add -> Div -> Mul gives the Slice bounds (8, 16)."""
    path = pattern_onnx(_channel_split, "legacy", None)
    model = onnx.load(str(path))
    divs = [n.output[0] for n in model.graph.node if n.op_type == "Div"]
    report = analyzer.inspect(path)
    assert set(divs) <= set(report.folded_values)
    slices = [n for n in report.nodes if n.op_type == "Slice"]
    assert sorted(tuple(n.outputs[0].shape) for n in slices) == [(2, 8, 16, 16)] * 2
    assert not any(w.startswith("receptive field stops") for w in report.warnings)


def test_dynamo_static_export_needs_no_folding(pattern_onnx):
    """torch.export folds static shape arithmetic itself: nothing is left open, nothing is folded."""
    report = analyzer.inspect(pattern_onnx(_svtr_block, "dynamo", None))
    assert report.complete and report.folded_values == []
    assert _linear_macs(report) == 2 * SVTR_MACS


# ---------------------------------------------------------------- hand-built graphs


def _model(nodes, inputs, outputs, initializers=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", opset)])


def _ints(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _tokens_model(channels: int = 12, heads: int = 3) -> onnx.ModelProto:
    """x [N, C, H, W] reshaped to [N, heads, C / heads, H·W] with the target computed by
    Shape -> Gather -> Div / Mul -> Unsqueeze -> Concat (Div: onnx's data propagation stops there),
    then MatMul by a [H·W, 5] weight."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "i0"], ["n"], axis=0),
        helper.make_node("Gather", ["shape", "i1"], ["c"], axis=0),
        helper.make_node("Gather", ["shape", "i2"], ["h"], axis=0),
        helper.make_node("Gather", ["shape", "i3"], ["w"], axis=0),
        helper.make_node("Div", ["c", "heads"], ["per_head"]),
        helper.make_node("Mul", ["h", "w"], ["hw"]),
        *[helper.make_node("Unsqueeze", [d, "axis0"], [f"{d}_1"]) for d in ("n", "per_head", "hw")],
        helper.make_node("Concat", ["n_1", "heads_1", "per_head_1", "hw_1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["tokens"]),
        helper.make_node("MatMul", ["tokens", "w_out"], ["y"]),
    ]
    inits = [_ints("i0", 0), _ints("i1", 1), _ints("i2", 2), _ints("i3", 3), _ints("heads", heads),
             _ints("heads_1", [heads]), _ints("axis0", [0]), weight("w_out", 6 * 7, 5)]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, 6, 7])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)


def test_reshape_target_from_shape_arithmetic():
    model = _tokens_model()
    report = analyzer.inspect(model, dims={"N": 2})
    assert report.complete, report.warnings
    matmul = next(n for n in report.nodes if n.op_type == "MatMul")
    # [2, 3, 4, 42] @ [42, 5]: 2·3·4 rows of 42 MACs per output column
    assert matmul.macs == 2 * 3 * 4 * 42 * 5
    assert {"shape", "per_head", "hw", "target"} <= set(report.folded_values)
    _assert_shapes_match_onnxruntime(report, _ort_shapes(model, (2, 12, 6, 7)))


def test_assumed_batch_folds_at_one():
    report = analyzer.inspect(_tokens_model())
    assert report.assumed_dims == {"N": 1}
    assert report.complete
    assert next(n for n in report.nodes if n.op_type == "MatMul").macs == 1 * 3 * 4 * 42 * 5


def test_range_over_a_computed_limit():
    """An anchor grid: Range(0, H·W) from the feature map's shape, Cast to float, added to x. The grid's
    shape follows from the folded Range; its value is not needed, so it is not computed."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], start=2),
        helper.make_node("ReduceProd", ["shape"], ["cells"], keepdims=0),
        helper.make_node("Range", ["zero", "cells", "one"], ["index"]),
        helper.make_node("Cast", ["index"], ["grid"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["x", "flat"], ["flat_x"]),
        helper.make_node("Add", ["flat_x", "grid"], ["shifted"]),
        helper.make_node("MatMul", ["shifted", "w"], ["y"]),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 6])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                   [_ints("zero", 0), _ints("one", 1), _ints("flat", [1, 4, -1]), weight("w", 30, 3)])
    report = analyzer.inspect(model)
    assert report.complete, report.warnings
    assert next(n for n in report.nodes if n.op_type == "MatMul").macs == 4 * 30 * 3
    assert {"shape", "cells", "index"} == set(report.folded_values)
    assert next(n for n in report.nodes if n.op_type == "Cast").outputs[0].shape == [30]
    _assert_shapes_match_onnxruntime(report, _ort_shapes(model, (1, 4, 5, 6)))


def test_large_values_keep_their_shape_but_are_not_computed():
    """A Range longer than MAX_FOLDED_ELEMENTS: its shape is inferred from the folded limit, its value is
    never materialized."""
    big = shape_engine.MAX_FOLDED_ELEMENTS + 1
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "i1"], ["length"], axis=0),
        helper.make_node("Div", ["length", "two"], ["half"]),
        helper.make_node("Range", ["zero", "half", "one"], ["index"]),
        helper.make_node("Cast", ["index"], ["y"], to=TensorProto.FLOAT),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2 * big])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                   [_ints("i1", 1), _ints("two", 2), _ints("zero", 0), _ints("one", 1)])
    report = analyzer.inspect(model)
    assert report.complete
    assert "half" in report.folded_values and "index" not in report.folded_values
    assert next(n for n in report.nodes if n.op_type == "Cast").outputs[0].shape == [big]


def test_weight_payloads_are_never_evaluated():
    """A weight reshaped to a computed target: the Reshape's shape is resolved, its value never computed
    (the loader stripped the payload: 256·16 floats are over 4096 bytes)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "i1"], ["c"], axis=0),
        helper.make_node("Div", ["c", "two"], ["half"]),
        helper.make_node("Mul", ["half", "two"], ["rows"]),
        helper.make_node("Unsqueeze", ["rows", "axis0"], ["rows_1"]),
        helper.make_node("Concat", ["rows_1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["w", "target"], ["w2"]),
        helper.make_node("MatMul", ["x", "w2"], ["y"]),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 128])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                   [_ints("i1", 1), _ints("two", 2), _ints("axis0", [0]), _ints("minus_one", [-1]),
                    weight("w", 256, 16)])
    report = analyzer.inspect(model)
    assert report.complete, report.warnings
    assert "target" in report.folded_values and "w2" not in report.folded_values
    # [3, 128] @ [128, 32]
    assert next(n for n in report.nodes if n.op_type == "MatMul").macs == 3 * 128 * 32
    assert report.totals.params == 256 * 16


def test_ops_without_an_evaluator_leave_the_value_unknown():
    """A custom-domain op in the shape chain: nothing to fold, the downstream cost stays unknown (no crash)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("ShapeMath", ["shape"], ["target"], domain="custom"),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
        helper.make_node("MatMul", ["y", "w"], ["z"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [weight("w", 3, 3)])
    model = helper.make_model(graph, ir_version=IR_VERSION,
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)])
    report = analyzer.inspect(model)
    assert not report.complete
    assert report.folded_values == []


def test_complete_shapes_leaves_a_resolved_model_alone():
    model = _model([helper.make_node("Relu", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    inferred = onnx.shape_inference.infer_shapes(model)
    before = inferred.SerializeToString()
    assert shape_engine.complete_shapes(inferred) == shape_engine.FoldResult()
    assert inferred.SerializeToString() == before


def test_static_model_imports_no_evaluator(tmp_path):
    """A model inference resolves whole costs nothing: the reference evaluator is never imported."""
    path = tmp_path / "conv.onnx"
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight("w", 4, 3, 3, 3)])
    onnx.save(model, path)
    code = (f"import sys, analyzer; r = analyzer.inspect({str(path)!r}); "
            "print(r.complete, r.folded_values, 'onnx.reference' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["True", "[]", "False"]


# ---------------------------------------------------------------- ShuffleNetV2 x1.0 from the zoo


def _torch_linear_macs(module, input_shape: tuple[int, ...]) -> int:
    """Independent count: forward hooks on every Conv2d (Cout·Hout·Wout·Cin/groups·kh·kw per image) and
    Linear (in·out per row)."""
    import torch

    total = 0

    def conv_hook(layer, inputs, output):
        nonlocal total
        kh, kw = layer.kernel_size
        total += output.numel() * (layer.in_channels // layer.groups) * kh * kw

    def linear_hook(layer, inputs, output):
        nonlocal total
        total += output.numel() * layer.in_features

    hooks = [m.register_forward_hook(conv_hook) for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks += [m.register_forward_hook(linear_hook) for m in module.modules() if isinstance(m, torch.nn.Linear)]
    try:
        with torch.no_grad():
            module.eval()(torch.zeros(*input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return total


# the figure issue 11 gives for ShuffleNetV2 x1.0 at 224x224 (conv + linear MACs)
SHUFFLENET_V2_MACS = 144_907_992
# torchvision's published parameter count of shufflenet_v2_x1_0
SHUFFLENET_V2_PARAMS = 2_278_604


@pytest.mark.parametrize("dynamic_batch", [False, True])
def test_shufflenet_v2_legacy_export(zoo_onnx, dynamic_batch):
    import torch

    import exporters

    report = analyzer.inspect(zoo_onnx("shufflenet_v2", exporter="legacy", dynamic_batch=dynamic_batch))
    assert report.complete, report.warnings
    assert _linear_macs(report) == SHUFFLENET_V2_MACS
    module = exporters.build("shufflenet_v2")
    assert _torch_linear_macs(module, (1, 3, 224, 224)) == SHUFFLENET_V2_MACS
    assert sum(p.numel() for p in module.parameters()) == SHUFFLENET_V2_PARAMS
    # the legacy exporter folds each BN (2·c params) into the conv before it, which gains a bias (c params)
    folded_bn = sum(m.num_features for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert report.totals.params == SHUFFLENET_V2_PARAMS - folded_bn
    assert report.folded_values


@pytest.mark.slow
def test_shufflenet_v2_dynamo_export(zoo_onnx):
    report = analyzer.inspect(zoo_onnx("shufflenet_v2"))
    assert report.complete and _linear_macs(report) == SHUFFLENET_V2_MACS


# ---------------------------------------------------------------- control flow, old opsets, contrib ops


def _shape_dim(node_prefix: str, source: str, index: int) -> list[onnx.NodeProto]:
    """``{node_prefix}`` = Shape(source)[index] as an int64 scalar."""
    return [helper.make_node("Shape", [source], [f"{node_prefix}_shape"]),
            helper.make_node("Gather", [f"{node_prefix}_shape", f"{node_prefix}_index"], [node_prefix], axis=0)]


def test_if_on_a_shape_takes_the_branch_the_condition_selects():
    """torch's ``if x.shape[1] == 6: x = x.reshape(N, 2, 3 * W)``: the branches give different shapes; the
    condition is computable, so the output has the taken branch's shape."""
    then_branch = helper.make_graph(
        [helper.make_node("Reshape", ["x", "regrouped"], ["then_out"])], "then", [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, None)], [_ints("regrouped", [0, 2, -1])])
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["else_out"])], "else", [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, None)])
    nodes = [
        *_shape_dim("channels", "x", 1),
        helper.make_node("Div", ["channels", "one"], ["channels_again"]),  # beyond data propagation
        helper.make_node("Equal", ["channels_again", "six"], ["is_six"]),
        helper.make_node("If", ["is_six"], ["grouped"], then_branch=then_branch, else_branch=else_branch),
        helper.make_node("MatMul", ["grouped", "w"], ["y"]),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6, 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                   [_ints("channels_index", 1), _ints("one", 1), _ints("six", 6), weight("w", 12, 5)])
    report = analyzer.inspect(model, dims={"N": 2})
    assert report.complete, report.warnings
    assert "is_six" in report.folded_values
    # [2, 2, 12] @ [12, 5]
    assert next(n for n in report.nodes if n.op_type == "MatMul").macs == 2 * 2 * 12 * 5
    _assert_shapes_match_onnxruntime(report, _ort_shapes(model, (2, 6, 4)))


def _loop_model() -> onnx.ModelProto:
    """A Loop over the rows of x (trip count H / 1 from the shape), each iteration a [W] @ [W, 3] MatMul
    collected as a scan output, then a [H, 3] @ [3, 2] MatMul after it."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]),
         helper.make_node("Gather", ["x", "i"], ["row"], axis=1),
         helper.make_node("Squeeze", ["row", "axis0"], ["row_1"]),
         helper.make_node("MatMul", ["row_1", "w_row"], ["projected"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("projected", TensorProto.FLOAT, None)])
    nodes = [
        *_shape_dim("rows", "x", 1),
        helper.make_node("Div", ["rows", "one"], ["trips"]),
        helper.make_node("Loop", ["trips", "true", "start"], ["final", "stacked"], body=body),
        helper.make_node("MatMul", ["stacked", "w_out"], ["y"]),
    ]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "H", 8])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                  [_ints("rows_index", 1), _ints("one", 1), _ints("axis0", [0]),
                   numpy_helper.from_array(np.array(True), "true"), weight("start", 1), weight("w_row", 8, 3),
                   weight("w_out", 3, 2)])


def test_loop_trip_count_and_scan_output_from_the_shape():
    model = _loop_model()
    report = analyzer.inspect(model, dims={"H": 5})
    assert report.complete, report.warnings
    assert "trips" in report.folded_values
    loop = next(n for n in report.nodes if n.op_type == "Loop")
    assert loop.macs == 5 * 8 * 3  # 5 iterations of [8] @ [8, 3]
    assert next(n for n in report.nodes if n.op_type == "MatMul").macs == 5 * 3 * 2
    _assert_shapes_match_onnxruntime(report, _ort_shapes(model, (1, 5, 8)))


def test_unsqueeze_with_axes_attribute_folds():
    """Opset 11: Unsqueeze takes axes as an attribute (onnx's reference evaluator runs it as opset 13's)."""
    nodes = [
        *_shape_dim("n", "x", 0),
        helper.make_node("Unsqueeze", ["n"], ["n_1"], axes=[0]),
        helper.make_node("Concat", ["n_1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("Div", ["n", "one"], ["n_again"]),
        helper.make_node("Unsqueeze", ["n_again"], ["n_again_1"], axes=[0]),
        helper.make_node("Concat", ["n_again_1", "minus_one"], ["target_again"], axis=0),
        helper.make_node("Reshape", ["flat", "target_again"], ["flat_again"]),
        helper.make_node("Gemm", ["flat_again", "w"], ["y"]),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                   [_ints("n_index", 0), _ints("minus_one", [-1]), _ints("one", 1), weight("w", 12, 7)], opset=11)
    report = analyzer.inspect(model)
    assert report.complete, report.warnings
    assert {"n_again_1", "target_again"} <= set(report.folded_values)
    assert next(n for n in report.nodes if n.op_type == "Gemm").macs == 2 * 12 * 7
    _assert_shapes_match_onnxruntime(report, _ort_shapes(model, (2, 3, 4)))


def test_dynamic_quantize_lstm_output_shape():
    """onnxruntime's DynamicQuantizeLSTM has no onnx schema: its outputs are shaped as LSTM's, so the Gemm
    reading its last hidden state is counted."""
    seq, batch, features, hidden = 7, 2, 6, 5
    rng = np.random.default_rng(0)
    quantized = [numpy_helper.from_array(rng.integers(-8, 8, (1, size, 4 * hidden)).astype(np.int8), name)
                 for name, size in (("w_q", features), ("r_q", hidden))]
    scales = [numpy_helper.from_array(np.full([1], 0.05, np.float32), n) for n in ("w_scale", "r_scale")]
    zeros = [numpy_helper.from_array(np.zeros([1], np.int8), n) for n in ("w_zero", "r_zero")]
    nodes = [
        helper.make_node("DynamicQuantizeLSTM", ["x", "w_q", "r_q", "", "", "", "", "", "w_scale", "w_zero",
                                                 "r_scale", "r_zero"], ["y", "y_h"], domain="com.microsoft",
                         hidden_size=hidden),
        helper.make_node("Reshape", ["y_h", "flat"], ["h"]),
        helper.make_node("Gemm", ["h", "w_out"], ["out"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, batch, features])
    graph = helper.make_graph(nodes, "g", [x],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              [*quantized, *scales, *zeros, _ints("flat", [batch, hidden]), weight("w_out", hidden, 3)])
    model = helper.make_model(graph, ir_version=IR_VERSION,
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    report = analyzer.inspect(model)
    lstm = next(n for n in report.nodes if n.op_type == "DynamicQuantizeLSTM")
    assert [o.shape for o in lstm.outputs] == [[seq, 1, batch, hidden], [1, batch, hidden]]
    assert next(n for n in report.nodes if n.op_type == "Gemm").macs == batch * hidden * 3
    assert not _cost_unknown(report)
    _assert_shapes_match_onnxruntime(report, _ort_shapes(model, (seq, batch, features)))
