"""The passes on patterns found in real exports (paddle2onnx's OCR models): a model that amplifies float32
rounding (fold-bn is exact, the outputs still move), values whose shape onnx cannot infer (a rewrite
there cannot give its new values one), and a graph output that loses its declared shape when the
Identity before it goes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

import passes
from model_builders import IR_VERSION, make_model, weight


def _bn(name, x, out, channels, seed):
    rng = np.random.default_rng(seed)
    params = [numpy_helper.from_array(rng.uniform(0.5, 1.5, channels).astype(np.float32), f"{name}.scale"),
              numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), f"{name}.bias"),
              numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), f"{name}.mean"),
              numpy_helper.from_array(rng.uniform(0.5, 2.0, channels).astype(np.float32), f"{name}.var")]
    node = helper.make_node("BatchNormalization", [x] + [p.name for p in params], [out], name=name)
    return node, params


def test_fold_bn_on_a_model_that_amplifies_rounding_passes_and_says_why(tmp_path):
    # Sin(30000 · y): one float32 rounding step of y (about 1e-7 relative) moves the argument by about 3e-3,
    # so the exact fold's rounding shows at the outputs far above the 1e-4 exact tolerance
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    bn, params = _bn("bn", "c", "b", 8, 1)
    big = numpy_helper.from_array(np.array(30000.0, np.float32), "big")
    mul = helper.make_node("Mul", ["b", "big"], ["m"], name="mul")
    sin = helper.make_node("Sin", ["m"], ["y"], name="sin")
    model = make_model([conv, bn, mul, sin], [("x", [1, 4, 12, 12])], [("y", [1, 8, 12, 12])],
                       [weight("w", 8, 4, 3, 3)] + params + [big])
    path = tmp_path / "amplifier.onnx"
    onnx.save(model, str(path))
    result = passes.optimize(path, ["fold-bn"], verify=passes.VerifyOptions(samples=2))
    verification = result.steps[0].verification
    assert result.rewritten and verification.passed
    measured = verification.comparison.relative_l2_error
    assert measured > passes.EXACT_OUTPUT_TOLERANCE
    assert verification.rounding_sensitivity is not None and measured <= 10 * verification.rounding_sensitivity
    assert "rounding_sensitivity" in result.steps[0].to_dict()["verification"]


def test_fold_bn_on_a_plain_model_measures_no_sensitivity(tmp_path):
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    bn, params = _bn("bn", "c", "y", 8, 1)
    path = tmp_path / "plain.onnx"
    onnx.save(make_model([conv, bn], [("x", [1, 4, 12, 12])], [("y", [1, 8, 12, 12])], [weight("w", 8, 4, 3, 3)] + params),
              str(path))
    verification = passes.optimize(path, ["fold-bn"], verify=passes.VerifyOptions(samples=1)).steps[0].verification
    assert verification.passed and verification.rounding_sensitivity is None
    assert verification.comparison.relative_l2_error <= passes.EXACT_OUTPUT_TOLERANCE


def _unknown_shape_model(tail, outputs, initializers):
    """x reshaped by the run-time shape ``s`` (of unknown length): onnx cannot infer anything after it."""
    reshape = helper.make_node("Reshape", ["x", "s"], ["r"], name="reshape")
    graph = helper.make_graph(
        [reshape] + tail, "unknown-shape",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4 * 8 * 8]),
         helper.make_tensor_value_info("s", onnx.TensorProto.INT64, ["k"])],
        outputs, initializers)
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", 17)])


def _inputs(tmp_path, s):
    path = tmp_path / "inputs.npz"
    np.savez(path, x=np.random.default_rng(0).standard_normal((1, 256)).astype(np.float32), s=np.array(s, np.int64))
    return str(path)


def test_factorizing_after_a_value_of_unknown_shape(tmp_path):
    conv = helper.make_node("Conv", ["r", "w"], ["y"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    model = _unknown_shape_model([conv], [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 8, "h", "w"])],
                                 [weight("w", 8, 4, 3, 3)])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    verify = passes.VerifyOptions(inputs=_inputs(tmp_path, [1, 4, 8, 8]))
    for spec in ("bottleneck:rank=2", "separable:m=2", "asymmetric:rank=3"):
        result = passes.optimize(path, [spec], verify=verify)
        step = result.steps[0]
        assert step.rewritten and step.verification.passed and not step.verification.missing_shapes, spec


def test_a_lost_shape_after_known_inputs_is_still_a_failure():
    import onnx_ir as ir

    from passes._verify import _shape_lost

    x = ir.Value(name="x", shape=ir.Shape([1, 4]), type=ir.TensorType(ir.DataType.FLOAT))
    y = ir.Value(name="y")
    ir.node("Relu", [x], outputs=[y])
    assert _shape_lost(y)
    z = ir.Value(name="z")
    ir.node("Relu", [y], outputs=[z])
    assert not _shape_lost(z)  # its input has no shape either: nothing to infer from


def test_cleanup_keeps_the_declared_output_shape(tmp_path):
    softmax = helper.make_node("Softmax", ["r"], ["p"], name="softmax")
    identity = helper.make_node("Identity", ["p"], ["out"], name="identity")
    model = _unknown_shape_model([softmax, identity],
                                 [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, ["n", 256])], [])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "clean.onnx"
    result = passes.optimize(path, ["cleanup"], verify=passes.VerifyOptions(inputs=_inputs(tmp_path, [1, 256])), output=out)
    assert result.steps[0].verification.passed and [r.node for r in result.rewritten] == ["identity"]
    written = onnx.load(str(out))
    onnx.checker.check_model(written, full_check=True)
    (declared,) = written.graph.output
    assert declared.name == "out" and [d.dim_param or d.dim_value for d in declared.type.tensor_type.shape.dim] == ["n", 256]


def test_constant_of_shape_weights_are_rewritable(tmp_path):
    # onnx's "light" zoo files: every weight is ConstantOfShape(Constant shape) with a fill value
    shape = helper.make_node("Constant", [], ["w_shape"], name="w_shape",
                             value=numpy_helper.from_array(np.array([8, 4, 5, 5], np.int64)))
    fill = helper.make_node("ConstantOfShape", ["w_shape"], ["w"], name="fill",
                            value=numpy_helper.from_array(np.array([0.01], np.float32)))
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[5, 5], pads=[2, 2, 2, 2])
    path = tmp_path / "light.onnx"
    onnx.save(make_model([shape, fill, conv], [("x", [1, 4, 10, 10])], [("y", [1, 8, 10, 10])]), str(path))
    out = tmp_path / "out.onnx"
    result = passes.optimize(path, ["bottleneck:rank=1"], verify=passes.VerifyOptions(samples=1), output=out)
    assert [r.node for r in result.rewritten] == ["conv"]
    # a constant kernel has rank 1 on both channel modes: the rank-1 bottleneck is exact
    assert result.rewritten[0].weight_error < 1e-6 and result.comparison.relative_l2_error < 1e-5
    assert "ConstantOfShape" not in {n.op_type for n in onnx.load(str(out)).graph.node}
