"""Recurrent and attention ops end to end: layers exported from torch and contrib-op graphs run in
onnxruntime, inspected whole. Expected MACs are hand arithmetic, params torch's own count, shapes
onnxruntime's."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect as pyinspect
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import analyzer
from tests.model_builders import IR_VERSION, weight

REPO = Path(__file__).resolve().parents[1]
EXPORT_CACHE = REPO / ".cache" / "torch-layers"

# bidirectional, input 8, hidden 16, 5 steps of batch 3 (torch's default layout: [seq, batch, features])
SEQ, BATCH, INPUT, HIDDEN = 5, 3, 8, 16
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _recurrent_layer(kind: str):
    import torch

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(input_size=INPUT, hidden_size=HIDDEN, num_layers=1, bidirectional=True)

        def forward(self, x):
            return self.rnn(x)[0]

    torch.manual_seed(0)
    return Layer().eval(), (torch.randn(SEQ, BATCH, INPUT),)


def _sdpa():
    import torch

    class Sdpa(torch.nn.Module):
        def forward(self, q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    # batch 2, 4 heads, 6 queries over 10 keys, head 8, value head 12
    return Sdpa(), (torch.randn(2, 4, 6, 8), torch.randn(2, 4, 10, 8), torch.randn(2, 4, 10, 12))


def _multihead_attention():
    import torch

    class SelfAttention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = torch.nn.MultiheadAttention(16, 4, batch_first=True)

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    torch.manual_seed(0)
    module = SelfAttention().eval()
    with torch.no_grad():  # torch starts the projection biases at 0, which the exporter's optimizer folds away
        for p in module.parameters():
            p.normal_()
    return module, (torch.randn(2, 6, 16),)


@pytest.fixture(scope="session")
def torch_export() -> Callable[..., tuple[Path, object]]:
    """``torch_export(builder, *args, dynamo=..., opset=..., **export_options) -> (path, module)``.

    Files are cached under ``.cache/torch-layers/``, keyed by the torch version, the builder's source and
    the export options, and written atomically (parallel workers may race on one safely).
    """
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (pip install '.[export]')")
    import torch

    def export(builder, *args, dynamo: bool, opset: int, **options):
        module, example = builder(*args)
        key = f"{torch.__version__}|{pyinspect.getsource(builder)}|{args}|{dynamo}|{opset}|{sorted(options.items())}"
        path = EXPORT_CACHE / f"{builder.__name__.strip('_')}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            torch.onnx.export(module, example, str(partial), dynamo=dynamo, opset_version=opset, **options)
            model = onnx.load(partial)
            model.ir_version = min(model.ir_version, IR_VERSION)  # onnxruntime 1.31 loads IR <= 13
            onnx.save(model, partial)
            os.replace(partial, path)
        return path, module

    return export


def _run_shapes(model: Path | onnx.ModelProto, *shapes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """onnxruntime's output shapes for zero inputs of ``shapes``, in the model's input order."""
    import onnxruntime as ort

    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros(shape, np.float32) for i, shape in zip(session.get_inputs(), shapes, strict=True)}
    return [tuple(out.shape) for out in session.run(None, feeds)]


def _torch_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- recurrent layers from torch


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_torch_bidirectional_recurrent_layer_counts_match_hand_arithmetic(torch_export, kind):
    path, module = torch_export(_recurrent_layer, kind, dynamo=False, opset=17)
    report = analyzer.inspect(path)
    assert report.complete, report.warnings
    # every step, both directions, every batch element: gates * hidden * (W·x + R·h)
    assert report.totals.macs == GATES[kind] * (INPUT * HIDDEN + HIDDEN * HIDDEN) * SEQ * BATCH * 2
    (node,) = [n for n in report.nodes if n.op_type == kind]
    assert node.macs == report.totals.macs
    assert node.params == _torch_params(module)  # W, R and both bias vectors, as torch keeps them
    # the output the report shows is the one onnxruntime computes: [seq, directions, batch, hidden]
    assert tuple(node.outputs[0].shape) == (SEQ, 2, BATCH, HIDDEN)
    assert _run_shapes(path, (SEQ, BATCH, INPUT)) == [(SEQ, BATCH, 2 * HIDDEN)]  # after torch's Transpose/Reshape


def test_lstm_with_symbolic_sequence_and_batch_counts_what_it_is_bound_to(torch_export):
    path, module = torch_export(_recurrent_layer, "LSTM", dynamo=False, opset=17, input_names=["x"],
                                dynamic_axes={"x": {0: "seq", 1: "batch"}})
    report = analyzer.inspect(path, dims={"seq": 7, "batch": 2})
    assert report.complete, report.warnings
    assert report.totals.macs == 4 * (INPUT * HIDDEN + HIDDEN * HIDDEN) * 7 * 2 * 2
    assert next(n for n in report.nodes if n.op_type == "LSTM").params == _torch_params(module)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_dynamo_export_zero_initial_state_initializer_is_not_a_parameter(torch_export, kind):
    path, module = torch_export(_recurrent_layer, kind, dynamo=True, opset=18)
    model = onnx.load(path, load_external_data=False)
    recurrent = next(n for n in model.graph.node if n.op_type == kind)
    initializers = {t.name: tuple(t.dims) for t in model.graph.initializer}
    assert initializers.get(recurrent.input[5]) == (2, BATCH, HIDDEN)  # the exporter's zeros, stored as a constant
    report = analyzer.inspect(path)
    assert report.complete, report.warnings
    assert report.totals.macs == GATES[kind] * (INPUT * HIDDEN + HIDDEN * HIDDEN) * SEQ * BATCH * 2
    assert report.totals.params == _torch_params(module)


# ---------------------------------------------------------------- ONNX Attention from torch (opset 23)


def test_scaled_dot_product_attention_exports_to_attention_and_counts_both_products(torch_export):
    path, _ = torch_export(_sdpa, dynamo=True, opset=23)
    report = analyzer.inspect(path)
    assert [n.op_type for n in report.nodes] == ["Attention"]
    assert report.complete, report.warnings
    assert report.totals.macs == 2 * 4 * 6 * 10 * 8 + 2 * 4 * 6 * 10 * 12  # Q·Kᵀ, then softmax·V
    assert [tuple(report.nodes[0].outputs[0].shape)] == _run_shapes(path, (2, 4, 6, 8), (2, 4, 10, 8), (2, 4, 10, 12))
    assert report.nodes[0].receptive_field.is_global  # each query reads every key


def test_torch_multihead_attention_counts_projections_attention_and_params(torch_export):
    path, module = torch_export(_multihead_attention, dynamo=True, opset=23)
    report = analyzer.inspect(path)
    assert "Attention" in [n.op_type for n in report.nodes]
    assert report.complete, report.warnings
    tokens, embed, heads, head = 2 * 6, 16, 4, 16 // 4
    in_projection, out_projection = tokens * embed * 3 * embed, tokens * embed * embed
    attention = 2 * heads * 6 * 6 * (head + head)
    assert report.totals.macs == in_projection + attention + out_projection
    assert report.totals.params == _torch_params(module)


# ---------------------------------------------------------------- com.microsoft contrib ops


def _contrib_model(op: str, inputs: list[tuple[str, tuple[int, ...]] | None], attrs: dict,
                   initializers=(), outputs: int = 1) -> onnx.ModelProto:
    names = [i[0] if i else "" for i in inputs]
    given = {t.name for t in initializers}
    graph = helper.make_graph(
        [helper.make_node(op, names, [f"out{k}" for k in range(outputs)], domain="com.microsoft", **attrs)],
        "contrib",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in filter(None, inputs) if n not in given],
        [helper.make_tensor_value_info(f"out{k}", TensorProto.FLOAT, None) for k in range(outputs)],
        list(initializers),
    )
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", 17),
                                                                          helper.make_opsetid("com.microsoft", 1)])


def test_contrib_attention_counts_its_packed_projection_and_weights_as_params():
    # batch 2, 5 tokens of 16, packed Q/K/V weights 16 x 48 with bias, 4 heads of 4
    model = _contrib_model("Attention", [("x", (2, 5, 16)), ("w", (16, 48)), ("b", (48,))], {"num_heads": 4},
                           [weight("w", 16, 48), weight("b", 48)])
    assert _run_shapes(model, (2, 5, 16)) == [(2, 5, 16)]
    report = analyzer.inspect(model)
    assert report.complete, report.warnings
    assert report.totals.macs == 2 * 5 * 16 * 48 + 2 * 4 * 5 * 5 * (4 + 4)
    assert report.totals.params == 16 * 48 + 48
    assert report.nodes[0].receptive_field.is_global


def test_contrib_multi_head_attention_with_past_counts_the_whole_key_length():
    # one new token attends to 6 past positions and itself; 4 heads of 4
    shapes = {"q": (2, 1, 16), "k": (2, 1, 16), "v": (2, 1, 16), "past_k": (2, 4, 6, 4), "past_v": (2, 4, 6, 4)}
    model = _contrib_model("MultiHeadAttention", [("q", shapes["q"]), ("k", shapes["k"]), ("v", shapes["v"]), None,
                                                  None, None, ("past_k", shapes["past_k"]), ("past_v", shapes["past_v"])],
                           {"num_heads": 4}, outputs=3)
    out, present_key, _ = _run_shapes(model, *shapes.values())
    assert out == (2, 1, 16) and present_key == (2, 4, 7, 4)  # 6 past + 1 new positions
    report = analyzer.inspect(model)
    assert report.totals.macs == 2 * 4 * 1 * present_key[2] * (4 + 4)


# ---------------------------------------------------------------- receptive field


def test_recurrent_layer_over_a_conv_map_has_a_global_receptive_field():
    # CRNN-style: conv features [1, 4, 4, 6] -> [1, 16, 6] -> sequence over the width [6, 1, 16] -> LSTM
    nodes = [
        helper.make_node("Conv", ["x", "wc"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["c", "to_seq"], ["f"]),
        helper.make_node("Transpose", ["f"], ["s"], perm=[2, 0, 1]),
        helper.make_node("LSTM", ["s", "w", "r"], ["y"], hidden_size=8),
    ]
    initializers = [weight("wc", 4, 1, 3, 3), onnx.numpy_helper.from_array(np.array([1, 16, 6], np.int64), "to_seq"),
                    weight("w", 1, 32, 16), weight("r", 1, 32, 8)]
    graph = helper.make_graph(nodes, "crnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 1, 4, 6))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", 17)])
    assert _run_shapes(model, (1, 1, 4, 6)) == [(6, 1, 1, 8)]
    report = analyzer.inspect(model)
    assert report.complete, report.warnings
    assert report.totals.macs == 4 * 4 * 6 * 9 + 6 * 1 * 4 * 8 * (16 + 8)
    field = report.nodes[-1].receptive_field
    assert field is not None and field.is_global and field.size == [4, 6]
    assert not [w for w in report.warnings if "receptive field stops" in w]


def test_contrib_dynamic_quantize_lstm_counts_as_an_lstm_with_transposed_int8_weights():
    # 7 steps, batch 2, input 8, hidden 16; W [1, 8, 64] and R [1, 16, 64] int8, stored transposed
    rng = np.random.default_rng(0)
    int8 = [helper.make_tensor(name, TensorProto.INT8, shape, rng.integers(-8, 8, shape).flatten().tolist())
            for name, shape in (("w", (1, 8, 64)), ("r", (1, 16, 64)))]
    scales = [helper.make_tensor(name, TensorProto.FLOAT, (1,), [0.01]) for name in ("w_scale", "r_scale")]
    zeros = [helper.make_tensor(name, TensorProto.INT8, (1,), [0]) for name in ("w_zero", "r_zero")]
    bias = weight("b", 1, 128)
    names = ["x", "w", "r", "b", "", "", "", "", "w_scale", "w_zero", "r_scale", "r_zero"]
    model = _contrib_model("DynamicQuantizeLSTM", [(n, (7, 2, 8)) if n == "x" else ((n, ()) if n else None)
                                                   for n in names],
                           {"hidden_size": 16}, [*int8, *scales, *zeros, bias], outputs=3)
    assert _run_shapes(model, (7, 2, 8)) == [(7, 1, 2, 16), (1, 2, 16), (1, 2, 16)]
    report = analyzer.inspect(model)
    assert report.complete, report.warnings
    assert report.totals.macs == 7 * 2 * 4 * 16 * (8 + 16)
    # the int8 weights and the bias are params; scales and zero points are not
    assert report.totals.params == 8 * 64 + 16 * 64 + 128
    assert [o.shape for o in report.nodes[0].outputs] == [[7, 1, 2, 16], [1, 2, 16], [1, 2, 16]]
