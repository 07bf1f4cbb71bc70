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
from analyzer.latency.runtime import create_session
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
    import importlib

    module = importlib.import_module("passes.stack3x3")  # ``passes.stack3x3`` itself is the pass class

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


def test_kernel_and_stride_keywords_filter_as_on_the_command_line():
    from passes.options import parse_pass

    model = conv_model(stride=2, hw=12)  # one 5x5 conv, stride 2
    assert bottleneck(kernel=5, stride=2, rank=2)(model).modified
    assert bottleneck(kernel=[5, 5], rank=2)(model).modified
    with pytest.raises(AnalyzerError, match="no node matches kernel_shape=3"):
        bottleneck(kernel=3)(model)
    with pytest.raises(AnalyzerError, match="no node matches strides=1"):
        separable(stride=1)(model)
    with pytest.raises(AnalyzerError, match="not both"):
        bottleneck(kernel=5, attrs={"kernel_shape": 5})
    assert parse_pass("asymmetric:kernel=5,stride=2").filter.attrs == {"kernel_shape": 5, "strides": 2}
    assert asymmetric(kernel=5, stride=2).filter.attrs == {"kernel_shape": 5, "strides": 2}


def test_sequential_leaves_its_passes_as_they_were():
    p = bottleneck(rank=2)
    own = p.verify_options
    result = Sequential(p, verify=passes.VerifyOptions(samples=3, seed=1))(conv_model())
    assert p.verify_options is own and own.samples == 2
    assert result.steps[0].comparison.samples == 3 and result.comparison.samples == 3
    assert p(conv_model()).comparison.samples == 2  # alone, the pass verifies with its own options


def dead_conv_model() -> ir.Model:
    """``conv_proto()`` (5x5, 4 -> 6 on 11x11, bias) plus a 1x1 conv 4 -> 3 on the input whose output nobody reads."""
    proto = conv_proto()
    proto.graph.initializer.append(numpy_helper.from_array(np.ones((3, 4, 1, 1), np.float32), "W_dead"))
    proto.graph.node.append(helper.make_node("Conv", ["x", "W_dead"], ["dead"], name="dead_conv"))
    return ir.serde.deserialize_model(proto)


def test_sequential_runs_onnx_ir_passes_as_steps():
    import onnx_ir.passes.common as common_passes

    model = dead_conv_model()
    result = Sequential(common_passes.RemoveUnusedNodesPass(), bottleneck(rank=2))(model)  # an in-place pass first
    assert len(list(model.graph)) == 2 and "W_dead" in model.graph.initializers  # the input is untouched
    removal, rewrite = result.steps
    assert removal.pass_name == "RemoveUnusedNodesPass" and removal.modified and removal.verification is None
    # main conv 11·11·6·4·25 = 72,600 MACs; the dead 1x1: 11·11·3·4 = 1,452 MACs and 12 params
    assert removal.report_before.totals.macs == 72_600 + 1_452 and removal.report_after.totals.macs == 72_600
    assert removal.report_before.totals.params - removal.report_after.totals.params == 12
    assert rewrite.report_before is removal.report_after and rewrite.run_before is not None
    # the removal changed no output, so the whole run compares with the input as the rewrite did with its input
    assert result.comparison.relative_l2_error == pytest.approx(rewrite.comparison.relative_l2_error)
    alone = Sequential(common_passes.RemoveUnusedNodesPass())(model)
    assert alone.modified and alone.comparison.max_abs_error == 0.0 and alone.comparison.samples == 2


def test_optimize_from_a_path_then_save(tmp_path):
    from analyzer.errors import OptionError

    source = tmp_path / "in.onnx"
    onnx.save(conv_proto(), str(source))
    before = source.read_bytes()
    result = passes.optimize(source, ["fold-bn", "bottleneck:rank=2,kernel=5"], verify=passes.VerifyOptions(samples=1))
    assert not result.written and result.source == str(source)
    assert [s.pass_name for s in result.steps] == ["fold-bn", "bottleneck"] and len(result.rewritten) == 1
    # 11x11 output: 1x1 4 -> 2, 5x5 2 -> 2, 1x1 2 -> 6
    assert result.report_after.totals.macs == 121 * 4 * 2 + 121 * 2 * 2 * 25 + 121 * 2 * 6
    target = result.save(tmp_path / "out.onnx")
    assert result.written and result.to_dict()["output"] == str(target) and result.to_dict()["written"]
    saved = onnx.load(str(target))
    onnx.checker.check_model(saved, full_check=True)
    assert [n.op_type for n in saved.graph.node] == ["Conv", "Conv", "Conv"]
    with pytest.raises(OptionError, match="a file of the input model"):
        result.save(source)
    assert source.read_bytes() == before


def test_optimize_takes_pass_objects_and_writes_its_output(tmp_path):
    out = tmp_path / "o.onnx"
    stages = []
    result = passes.optimize(conv_proto(), [separable(m=2), "cleanup"], output=out, on_stage=stages.append)
    assert stages == ["loading", "passes", "saving"]
    doc = result.to_dict()
    assert doc["schema"] == "analyzer.optimize/1" and doc["input"] == "(in memory)" and doc["output"] == str(out)
    assert [p["pass"] for p in doc["passes"]] == ["separable", "cleanup"] and out.is_file()


def test_optimize_failure_carries_the_run_and_writes_nothing(tmp_path):
    out = tmp_path / "o.onnx"
    with pytest.raises(PassFailed) as caught:
        passes.optimize(conv_proto(), ["bottleneck:rank=4", "separable:m=1,max_error=0.01"], output=out)
    run = caught.value.run
    assert [s.pass_name for s in run.steps] == ["bottleneck", "separable"]
    assert run.failure == str(caught.value) and not run.written and run.to_dict()["after"] is None
    assert not out.exists()
    with pytest.raises(AnalyzerError, match="nothing to save"):
        run.save(out)


def test_library_errors_name_python_parameters():
    from analyzer.errors import OptionError
    from passes.options import parse_pass

    with pytest.raises(OptionError) as caught:
        parse_pass("bottleneck:rank=two")
    assert caught.value.option == "passes" and str(caught.value) == "passes bottleneck: rank must be an integer, got 'two'"
    for make, option in ((lambda: passes.VerifyOptions(samples=0), "samples"),
                         (lambda: passes.VerifyOptions(inputs="no-such-file.npy"), "inputs"),
                         (lambda: passes.optimize(conv_proto(), []), "passes")):
        with pytest.raises(OptionError) as caught:
            make()
        assert caught.value.option == option and "--" not in str(caught.value)


def test_normalise_for_rewrite_makes_listed_and_constant_weights_initializers():
    from analyzer.model_files import normalise_for_rewrite

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((2, 3, 1, 1)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "B")
    target = numpy_helper.from_array(np.array([1, -1], np.int64), "target")
    nodes = [helper.make_node("Constant", [], ["B"], value=b, name="bias_const"),
             helper.make_node("Constant", [], ["target"], value=target, name="target_const"),
             helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv"),
             helper.make_node("Reshape", ["c", "target"], ["y"], name="flatten")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", FLOAT, [1, 3, 4, 4]),
                                           helper.make_tensor_value_info("W", FLOAT, [2, 3, 1, 1])],
                              [helper.make_tensor_value_info("y", FLOAT, [1, 32])], [w])
    proto = helper.make_model(graph, ir_version=3, opset_imports=[helper.make_opsetid("", 8)])
    model = ir.serde.deserialize_model(proto)
    notes = normalise_for_rewrite(model)
    assert notes == ["1 initializer(s) dropped from the graph inputs", "IR version 3 raised to 4",
                     "1 Constant weight(s) made initializers"]
    assert [v.name for v in model.graph.inputs] == ["x"] and model.ir_version == 4
    assert sorted(model.graph.initializers) == ["B", "W"]
    assert [n.name for n in model.graph] == ["target_const", "conv", "flatten"]  # the shape constant stays a node
    conv = next(n for n in model.graph if n.name == "conv")
    assert conv.inputs[2].is_initializer()
    np.testing.assert_array_equal(conv.inputs[2].const_value.numpy(), numpy_helper.to_array(b))
    assert normalise_for_rewrite(model) == []  # idempotent
