"""Every rewritten zoo model passes the full checker and loads in onnxruntime, with the interface unchanged.

AlexNet, ResNet-18 and MobileNet v2 run in normal CI with a fast configuration (few targets, one sample);
the full rewrites of VGG-16, cnn5x5, GoogLeNet and the Inception module are ``slow``.
"""

from __future__ import annotations

import onnx
import onnx_ir as ir
import pytest

from analyzer.latency.runtime import create_session
from passes import (
    Sequential,
    VerifyOptions,
    asymmetric,
    bottleneck,
    cleanup,
    fold_bn,
    separable,
    stack3x3,
)

ONE_SAMPLE = VerifyOptions(samples=1)


def rewrite_and_check(path, pipeline: Sequential):
    model = ir.serde.deserialize_model(onnx.load(str(path)))
    interface = ([v.name for v in model.graph.inputs], [v.name for v in model.graph.outputs])
    result = pipeline(model)
    proto = ir.serde.serialize_model(result.model)
    onnx.checker.check_model(proto, full_check=True)
    create_session(proto.SerializeToString())
    assert ([v.name for v in result.model.graph.inputs], [v.name for v in result.model.graph.outputs]) == interface
    for step in result.steps:
        assert step.verification is None or step.verification.passed, step.pass_name
    return result


def test_alexnet(zoo_onnx):
    result = rewrite_and_check(zoo_onnx("alexnet"), Sequential(
        separable(m=2, attrs={"kernel_shape": 5}),
        bottleneck(rank_ratio=0.25, nodes=r"/features/features\.8/Conv"),
        cleanup(),
        verify=ONE_SAMPLE,
    ))
    sep, tucker = result.steps[0].rewritten[0], result.steps[1].rewritten[0]
    # conv2: 27x27 output, 96 -> 256, 5x5; separable m=2
    assert sep.old_macs == 27 * 27 * 256 * 96 * 25
    assert sep.new_macs == 27 * 27 * 96 * 2 * 25 + 27 * 27 * 96 * 2 * 256
    # conv3: 13x13, 256 -> 384, 3x3; R_in = 64, R_out = 96
    assert tucker.new_macs == 13 * 13 * 256 * 64 + 13 * 13 * 64 * 96 * 9 + 13 * 13 * 96 * 384
    assert result.report_after.totals.macs == result.report_before.totals.macs - (sep.old_macs - sep.new_macs) - (
        tucker.old_macs - tucker.new_macs)


def test_resnet18(zoo_onnx):
    result = rewrite_and_check(zoo_onnx("resnet18"), Sequential(
        fold_bn(),  # the exporter already folded every BatchNormalization
        stack3x3(mode="exact", nodes="/bn1/Conv"),
        bottleneck(energy=0.9, nodes=r"/layer4/layer4\.1/.*", iters=0),
        verify=ONE_SAMPLE,
    ))
    assert not result.steps[0].modified and result.steps[0].verification is None
    assert result.steps[1].verification.comparison.relative_l2_error < 1e-4
    assert len(result.steps[2].rewritten) == 2


def test_mobilenet_v2(zoo_onnx):
    result = rewrite_and_check(zoo_onnx("mobilenet_v2"), Sequential(
        asymmetric(rank_ratio=1.0, nodes="/features/features.0/features.0.1/Conv"),
        separable(m=2),  # only the 3x1 and 1x3 convs from the step before fit: the rest are depthwise or 1x1
        bottleneck(rank_ratio=0.5, min_macs=20_000_000, iters=0),
        verify=ONE_SAMPLE,
    ))
    assert result.steps[0].verification.comparison.relative_l2_error < 1e-4
    skipped = result.steps[1].skipped
    assert any("depthwise conv (group=32)" in r.detail for r in skipped)
    assert any("1x1 conv has no spatial part" in r.detail for r in skipped)
    assert len(result.steps[1].rewritten) == 2
    assert result.steps[2].rewritten


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "cnn5x5"])
def test_vgg_family_full_rewrites(zoo_onnx, name):
    path = zoo_onnx(name)
    for p in (bottleneck(energy=0.8), separable(m=2), asymmetric(rank_ratio=0.5)):
        result = rewrite_and_check(path, Sequential(p, verify=ONE_SAMPLE))
        assert len(result.steps[0].rewritten) == 13
        assert result.report_after.totals.macs < result.report_before.totals.macs


@pytest.mark.slow
def test_cnn5x5_to_stacked_3x3(zoo_onnx):
    result = rewrite_and_check(zoo_onnx("cnn5x5"), Sequential(stack3x3(iters=1), verify=ONE_SAMPLE))
    assert len(result.steps[0].rewritten) == 13
    assert all(r.weight_error < 1 for r in result.steps[0].rewritten)


@pytest.mark.slow
def test_googlenet_and_inception(zoo_onnx):
    rewrite_and_check(zoo_onnx("googlenet"), Sequential(
        fold_bn(), bottleneck(rank_ratio=0.5, attrs={"kernel_shape": 3}, iters=0), asymmetric(energy=0.9), cleanup(),
        verify=ONE_SAMPLE))
    result = rewrite_and_check(zoo_onnx("inception_naive"), Sequential(
        bottleneck(form="reduce", rank_ratio=0.5, min_macs=1), verify=ONE_SAMPLE))
    assert result.report_after.totals.macs < result.report_before.totals.macs
