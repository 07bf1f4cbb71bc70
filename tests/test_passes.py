"""The rewrite passes on hand-built single-conv models: exactness at full rank, MACs by hand, the reported
error against the measured one, skips, ``modified`` both ways, roll-back on failure."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import helper, numpy_helper

import passes
from analyzer.errors import AnalyzerError
from analyzer.runtime import create_session
from passes import PassFailed, Sequential, asymmetric, bottleneck, cleanup, fold_bn, separable, stack3x3

FLOAT = onnx.TensorProto.FLOAT


def conv_proto(cin=4, cout=6, k=5, stride=1, pad=2, dilation=1, bias=True, hw=11, group=1, seed=0, shared=False):
    """One Conv (optionally a second one sharing its weight) on a fixed-size input, IR 10 / opset 18."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.standard_normal((cout, cin // group, k, k)).astype(np.float32), "W")]
    inputs = ["x", "W"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "B"))
        inputs.append("B")
    attrs = dict(kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4, dilations=[dilation] * 2, group=group)
    nodes = [helper.make_node("Conv", inputs, ["y"], name="conv", **attrs)]
    outputs = [helper.make_tensor_value_info("y", FLOAT, None)]
    if shared:
        nodes.append(helper.make_node("Conv", inputs, ["y2"], name="conv_twin", **attrs))
        outputs.append(helper.make_tensor_value_info("y2", FLOAT, None))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", FLOAT, [1, cin, hw, hw])], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def conv_model(**options) -> ir.Model:
    return ir.serde.deserialize_model(conv_proto(**options))


def reference_conv(x, w, b, stride, pad, dilation):
    """Direct cross-correlation in float64, independent of the code under test."""
    cout, cin, k, _ = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    span = dilation * (k - 1) + 1
    out = (xp.shape[2] - span) // stride + 1
    y = np.zeros((x.shape[0], cout, out, out))
    for i in range(k):
        for j in range(k):
            patch = xp[:, :, i * dilation:i * dilation + stride * (out - 1) + 1:stride,
                       j * dilation:j * dilation + stride * (out - 1) + 1:stride]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return y + (0 if b is None else b.reshape(1, -1, 1, 1))


def run(model: ir.Model, x: np.ndarray) -> np.ndarray:
    session = create_session(ir.serde.serialize_model(model).SerializeToString()).session
    return session.run(None, {"x": x})[0]


def relative(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


CONVS = [
    dict(),  # 5x5, stride 1, pad 2, bias
    dict(stride=2, hw=12),  # stride 2, even size
    dict(dilation=2, pad=3, hw=13),  # dilation, odd size, pad != "same"
    dict(bias=False, k=7, pad=3, hw=9, cin=3, cout=2),  # 7x7, no bias, Cin > Cout
]
FULL_RANK = [
    ("stack3x3", lambda: stack3x3(mode="exact")),
    ("bottleneck", lambda: bottleneck(rank_ratio=1.0)),
    ("bottleneck-reduce", lambda: bottleneck(rank_ratio=1.0, form="reduce")),
    ("separable", lambda: separable(m=49)),  # m >= min(Cout, k^2) for every conv above
    ("asymmetric", lambda: asymmetric(rank_ratio=1.0)),
]


@pytest.mark.parametrize("conv", CONVS, ids=["5x5", "stride2", "dilation2", "7x7-nobias"])
@pytest.mark.parametrize("name,make", FULL_RANK, ids=[n for n, _ in FULL_RANK])
def test_full_rank_is_exact(name, make, conv):
    model = conv_model(**conv)
    result = make()(model)
    assert result.modified and len(result.rewritten) == 1
    record = result.rewritten[0]
    assert record.weight_error < 1e-9  # computed in float64
    proto = conv_proto(**conv)
    w = numpy_helper.to_array(proto.graph.initializer[0]).astype(np.float64)
    b = numpy_helper.to_array(proto.graph.initializer[1]) if conv.get("bias", True) else None
    x = np.random.default_rng(7).standard_normal((1, w.shape[1], conv.get("hw", 11), conv.get("hw", 11))).astype(np.float32)
    expected = reference_conv(x, w, b, conv.get("stride", 1), conv.get("pad", 2), conv.get("dilation", 1))
    got = run(result.model, x)
    assert got.shape == expected.shape
    assert relative(expected, got) < 1e-5
    assert result.verification.passed and result.verification.comparison.relative_l2_error < 1e-5
    # the graph interface is unchanged and the old weight is gone
    assert [v.name for v in result.model.graph.outputs] == ["y"]
    assert "W" not in result.model.graph.initializers
    assert all(n.name.startswith(f"conv/{result.pass_name}/") for n in result.model.graph)


# Ho = Wo = 12 for a 5x5 conv with pad 2 on 12x12; Cin = 8, Cout = 16.
H, CIN, COUT, K = 12, 8, 16, 5
LOW_RANK_MACS = [
    ("bottleneck rank=4", lambda: bottleneck(rank=4), H * H * CIN * 4 + H * H * 4 * 4 * K * K + H * H * 4 * COUT),
    ("bottleneck reduce rank=4", lambda: bottleneck(rank=4, form="reduce"), H * H * CIN * 4 + H * H * 4 * COUT * K * K),
    ("separable m=2", lambda: separable(m=2), H * H * CIN * 2 * K * K + H * H * CIN * 2 * COUT),
    # vertical 5x1 (pads top/bottom) keeps the width: 12 x 12 outputs; then 1x5
    ("asymmetric rank=6", lambda: asymmetric(rank=6), H * H * 6 * CIN * K + H * H * COUT * 6 * K),
    # first 3x3 takes all the padding: 12 + 4 - 2 = 14 wide, then 3x3 valid back to 12
    ("stack3x3 mid=8", lambda: stack3x3(mid=8, iters=2), 14 * 14 * 8 * CIN * 9 + H * H * COUT * 8 * 9),
]


@pytest.mark.parametrize("label,make,expected_macs", LOW_RANK_MACS, ids=[x[0] for x in LOW_RANK_MACS])
def test_low_rank_macs_match_hand_count(label, make, expected_macs):
    result = make()(conv_model(cin=CIN, cout=COUT, k=K, pad=2, hw=H))
    record = result.rewritten[0]
    assert record.old_macs == H * H * COUT * CIN * K * K
    assert record.new_macs == expected_macs
    assert result.report_after.totals.macs == expected_macs
    assert 0 < record.weight_error < 1


ERROR_RELATION = [
    ("bottleneck", lambda: bottleneck(rank=3)),
    ("separable", lambda: separable(m=2)),
    ("asymmetric", lambda: asymmetric(rank=4)),
    ("stack3x3", lambda: stack3x3(mid=6, iters=3)),
]


@pytest.mark.parametrize("name,make", ERROR_RELATION, ids=[n for n, _ in ERROR_RELATION])
def test_reported_weight_error_predicts_output_error(name, make):
    """Without bias or padding each output is <w_o, patch>; for white-noise input E||ΔW * x||² / E||W * x||²
    = ||ΔW||² / ||W||², so the measured relative L2 output error is the reported weight error within
    sampling noise (10% here, 4 samples of 32x32)."""
    model = conv_model(cin=8, cout=12, k=5, pad=0, bias=False, hw=32)
    p = make()
    p.verify_options = passes.VerifyOptions(samples=4, seed=3)
    result = p(model)
    reported = result.rewritten[0].weight_error
    measured = result.verification.comparison.relative_l2_error
    assert 0.05 < reported < 0.99
    assert measured == pytest.approx(reported, rel=0.10)


def test_energy_and_max_error_choose_ranks():
    # 32x32x3x3: random kernels have flat spectra, so 0.9 energy keeps most ranks yet still shrinks the layer
    model = conv_model(cin=32, cout=32, k=3, pad=1, hw=8)
    loose, tight = bottleneck(energy=0.5)(model), bottleneck(energy=0.9)(model)
    assert loose.rewritten[0].new_params < tight.rewritten[0].new_params
    result = asymmetric(max_error=0.5)(model)
    assert result.rewritten[0].weight_error <= 0.5
    with pytest.raises(PassFailed, match="max_error"):
        separable(m=1, max_error=0.01)(model)


def test_fold_bn_is_exact_and_cleanup_removes_passthroughs():
    rng = np.random.default_rng(0)
    c = 4
    arr = lambda name, *shape, low=0.0: numpy_helper.from_array((rng.standard_normal(shape) + low).astype(np.float32), name)  # noqa: E731
    inits = [arr("W", c, 3, 3, 3), arr("g", c), arr("b", c), arr("mu", c),
             numpy_helper.from_array(rng.random(c).astype(np.float32) + 0.5, "var"), arr("unused", 3)]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1] * 4),
             helper.make_node("BatchNormalization", ["c", "g", "b", "mu", "var"], ["bn"], name="bn", epsilon=1e-3),
             helper.make_node("Identity", ["bn"], ["i"], name="ident"),
             helper.make_node("Dropout", ["i"], ["y"], name="drop")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", FLOAT, None)], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    model = ir.serde.deserialize_model(proto)
    result = Sequential(fold_bn(), cleanup())(model)
    assert [n.op_type for n in result.model.graph] == ["Conv"]
    assert [v.name for v in result.model.graph.outputs] == ["y"]
    assert "unused" not in result.model.graph.initializers
    fold = result.steps[0].rewritten[0]
    assert fold.old_nodes == ["conv", "bn"] and fold.old_params == 3 * 3 * 3 * c + 2 * c  # BN stats not params
    assert fold.new_params == 3 * 3 * 3 * c + c
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    expected = create_session(proto.SerializeToString()).session.run(None, {"x": x})[0]
    assert relative(expected, run(result.model, x)) < 1e-5
    assert result.comparison.relative_l2_error < 1e-5
    # nothing left to do: modified=False and the input model is untouched
    again = Sequential(fold_bn(), cleanup())(result.model)
    assert not again.modified and again.records == []
    assert len(list(model.graph)) == 4


def test_shared_weights_are_skipped_with_a_reason():
    result = bottleneck(rank=2)(conv_model(shared=True))
    assert not result.modified and result.verification is None
    assert [r.rewritten for r in result.records] == [False, False]
    assert all("shared with 1 other use" in r.detail for r in result.records)


def test_filters_and_unsupported_nodes():
    grouped = conv_model(cin=4, cout=4, group=2)
    result = separable(m=1)(grouped)  # no filter: skipped, not an error
    assert not result.modified and "grouped conv (group=2)" in result.records[0].detail
    with pytest.raises(AnalyzerError, match="no selected node can be rewritten"):
        separable(m=1, nodes="conv")(grouped)
    with pytest.raises(AnalyzerError, match="no node matches nodes=conv9"):
        bottleneck(nodes="conv9")(conv_model())
    assert bottleneck(nodes=r"co.v", rank=2)(conv_model()).modified  # regex, full match
    assert not bottleneck(min_macs=10**9)(conv_model()).modified
    assert bottleneck(attrs={"kernel_shape": 5}, rank=2)(conv_model()).modified
    with pytest.raises(AnalyzerError):
        bottleneck(attrs={"kernel_shape": 3})(conv_model())
    skipped = stack3x3()(conv_model(k=3, pad=1))
    assert not skipped.modified and "needs a square odd kernel" in skipped.records[0].detail


def test_bad_options_are_one_line_errors():
    for make in (lambda: bottleneck(rank=2, energy=0.9), lambda: bottleneck(energy=1.5), lambda: separable(m=0),
                 lambda: stack3x3(mode="magic"), lambda: stack3x3(mode="exact", mid=4), lambda: bottleneck(form="x"),
                 lambda: stack3x3(relu=True), lambda: stack3x3(mode="init", max_error=0.1)):
        with pytest.raises(AnalyzerError) as e:
            make()
        assert "\n" not in str(e.value)


def test_failing_exact_pass_is_rolled_back(monkeypatch):
    import passes.stacking as module

    real = module.exact_stack
    monkeypatch.setattr(module, "exact_stack", lambda w: [k * 1.01 if i == 0 else k for i, k in enumerate(real(w))])
    model = conv_model()
    before = ir.serde.serialize_model(model).SerializeToString()
    with pytest.raises(PassFailed, match="exact rewrite of conv/bottleneck/conv has weight error") as e:
        Sequential(bottleneck(rank_ratio=1.0), stack3x3(mode="exact"))(model)
    assert [s.pass_name for s in e.value.completed] == ["bottleneck"]
    assert e.value.result.verification.failure
    assert ir.serde.serialize_model(model).SerializeToString() == before  # input untouched


def test_init_mode_is_structure_only():
    result = stack3x3(mode="init", relu=True, mid=3)(conv_model())
    record = result.rewritten[0]
    assert not record.weight_preserving and record.weight_error is None
    assert [n.op_type for n in result.model.graph] == ["Conv", "Relu", "Conv"]
    assert result.verification.passed  # structurally sound; the outputs differ, as reported


def test_sequential_chains_results_and_compares_to_input():
    model = conv_model(cin=8, cout=8, k=5, hw=10)
    result = Sequential(stack3x3(mode="exact"), bottleneck(rank_ratio=1.0, nodes=r".*conv2"))(model)
    assert [s.pass_name for s in result.steps] == ["stack3x3", "bottleneck"]
    assert len(result.records) == 2 and result.modified
    assert result.comparison.relative_l2_error < 1e-5
    assert result.steps[1].run_before is result.steps[0].run_after  # outputs reused, not recomputed


def test_accepts_a_model_proto_and_keeps_it():
    proto = conv_proto()
    before = proto.SerializeToString()
    result = Sequential(bottleneck(rank=2))(proto)
    assert result.modified and proto.SerializeToString() == before


def test_bottleneck_skips_a_factorization_that_would_not_shrink_the_layer():
    from onnx import helper

    from tests.model_builders import make_model, weight

    # a 1x1 conv 8 -> 4: default rank_ratio 0.5 gives factors 8·4 + 4·4 = 48 weights >= 8·4 = 32
    model = make_model([helper.make_node("Conv", ["x", "W"], ["y"], name="pointwise")],
                       [("x", [1, 8, 6, 6])], [("y", [1, 4, 6, 6])], [weight("W", 4, 8, 1, 1)])
    result = bottleneck(form="reduce")(model)
    assert not result.modified
    assert "would not be smaller" in result.records[0].detail
    forced = bottleneck(form="reduce", rank_ratio=0.5)(model)
    assert forced.modified
