"""The analyzer on exported zoo models against published figures (docs/reference-figures.md).

MACs: multiply-accumulates of Conv/Gemm/MatMul, bias excluded (torchvision `_ops`, the papers, the
course). Params: trainable elements; BatchNorm running stats are buffers, as torch counts them.
"""

from __future__ import annotations

import pytest

import analyzer

EXPORTERS = ("dynamo", "legacy")


def ops(report, *types):
    return [n for n in report.nodes if n.op_type in types]


@pytest.fixture(scope="module")
def reports(zoo_onnx):
    cache = {}

    def get(name, exporter="dynamo", **options):
        key = (name, exporter, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = analyzer.inspect(zoo_onnx(name, exporter=exporter, **options))
        return cache[key]

    return get


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_lenet5_layer_macs_and_params(reports, exporter):
    report = reports("lenet5", exporter)
    convs = ops(report, "Conv")
    assert [c.macs for c in convs] == [117_600, 240_000]  # 28·28·6·25, 10·10·16·6·25
    assert report.totals.params == 61_706


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_grouped_alexnet_per_layer_macs(reports, exporter):
    report = reports("alexnet_grouped", exporter)
    layers = [n.macs for n in report.nodes if n.category in ("conv", "fc")]
    assert layers == [105_415_200, 223_948_800, 149_520_384, 112_140_288, 74_760_192, 37_748_736, 16_777_216, 4_096_000]
    assert report.totals.macs == 724_406_816
    assert report.totals.params == 60_965_224


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_vgg16_total_macs_params_and_activations(reports, exporter):
    report = reports("vgg16", exporter)
    assert report.totals.macs == 15_470_264_320
    conv_macs = sum(n.macs for n in report.nodes if n.category == "conv")
    assert conv_macs == 15_346_630_656
    assert report.totals.macs - conv_macs == 123_633_664
    assert report.totals.params == 138_357_544
    convs = ops(report, "Conv")
    assert convs[0].macs == 86_704_128 and convs[1].macs == 1_849_688_064
    # elements per image after each conv (the course's VGG memory table), 4 bytes each
    per_stage = [224 * 224 * 64] * 2 + [112 * 112 * 128] * 2 + [56 * 56 * 256] * 3 + [28 * 28 * 512] * 3 + [14 * 14 * 512] * 3
    assert per_stage[0] == 3_211_264
    assert [c.activation_bytes for c in convs] == [4 * e for e in per_stage]
    pools = ops(report, "MaxPool")
    assert [p.activation_bytes // 4 for p in pools] == [802_816, 401_408, 200_704, 100_352, 25_088]
    # the course's lesson: FC layers hold most parameters, convs do most compute
    fc_params = sum(n.params for n in report.nodes if n.category == "fc")
    assert fc_params == 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000


def test_vgg16_with_10_classes_and_cnn5x5_params(reports):
    assert reports("vgg16", num_classes=10).totals.params == 134_301_514
    assert reports("cnn5x5").totals.params == 160_453_450


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_naive_inception_module_macs(reports, exporter):
    report = reports("inception_naive", exporter)
    # 28·28 outputs × (128·256 + 192·256·9 + 96·256·25)
    assert report.totals.macs == 28 * 28 * (128 * 256 + 192 * 256 * 9 + 96 * 256 * 25) == 854_196_224


@pytest.mark.parametrize(
    "name, macs",
    [("resnet18", 1_814_073_344), ("resnet34", 3_663_761_408), ("resnet50", 4_089_184_256)],
)
def test_resnet_macs_match_torchvision_ops(reports, name, macs):
    assert reports(name).totals.macs == macs


@pytest.mark.parametrize("name, approx_macs", [("googlenet", 1.498e9), ("mobilenet_v2", 0.301e9), ("mobilenet_v1", 569e6)])
def test_published_macs_to_their_stated_precision(reports, name, approx_macs):
    assert reports(name).totals.macs == pytest.approx(approx_macs, rel=0.005)


# BatchNorm folding: an exporter that folds BN into the preceding conv removes BN's scale and bias
# (2·C) and gives a bias-free conv a bias (C). Channel sums written out per model.
MNIST_BN_CHANNELS = 16 + 32  # convs have biases: folding removes 2·C
RESNET18_BN_CHANNELS = 64 + 4 * 64 + (4 * 128 + 128) + (4 * 256 + 256) + (4 * 512 + 512)  # convs bias-free: −C
RESNET50_BN_CHANNELS = 64 + sum(
    blocks * (w + w + 4 * w) + 4 * w for w, blocks in ((64, 3), (128, 4), (256, 6), (512, 3))
)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize(
    "name, torch_params, folded_params",
    [
        ("mnist_cnn", 29_034, 29_034 - 2 * MNIST_BN_CHANNELS),
        ("resnet18", 11_689_512, 11_689_512 - RESNET18_BN_CHANNELS),
        ("resnet50", 25_557_032, 25_557_032 - RESNET50_BN_CHANNELS),
    ],
)
def test_params_of_batchnorm_models_with_folding_understood(reports, exporter, name, torch_params, folded_params):
    report = reports(name, exporter)
    kept_bn = any(n.op_type == "BatchNormalization" for n in report.nodes)
    assert report.totals.params == (torch_params if kept_bn else folded_params)


# AlexNet without LRN: the legacy exporter writes LRN as a pad computation (ConstantOfShape, Slice,
# Transpose, Cast) feeding Pad, then an If, and the pooling, powers and divisions around it; the dynamo
# exporter writes one LRN node, whose rule counts its FLOPs differently
# (test_legacy_lrn_pads_are_folded_and_the_pooling_counted).
@pytest.mark.parametrize(
    "name, options",
    [("alexnet", {"lrn": False}), ("vgg16", {}), ("inception_naive", {}), ("inception_bottleneck", {}), ("lenet5", {})],
)
def test_both_exporters_give_the_same_totals(reports, name, options):
    dynamo, legacy = reports(name, "dynamo", **options), reports(name, "legacy", **options)
    for key in ("params", "macs", "flops", "weight_bytes"):
        assert getattr(dynamo.totals, key) == getattr(legacy.totals, key), key


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "mobilenet_v2"])
def test_both_exporters_give_the_same_macs_on_batchnorm_models(reports, name):
    assert reports(name, "dynamo").totals.macs == reports(name, "legacy").totals.macs


def _stage_fields(report, types):
    return [(n.receptive_field.size[0], n.receptive_field.stride[0]) for n in ops(report, *types)]


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_alexnet_receptive_field_at_every_stage(reports, exporter):
    report = reports("alexnet", exporter, lrn=exporter == "dynamo")  # see test_both_exporters_give_the_same_totals
    convs = _stage_fields(report, ("Conv",))
    pools = _stage_fields(report, ("MaxPool",))
    assert convs == [(11, 4), (51, 8), (99, 16), (131, 16), (163, 16)]
    assert pools == [(19, 8), (67, 16), (195, 32)]
    pool5 = ops(report, "MaxPool")[-1].receptive_field
    # P = Σ p_l·∏_{i<l} s_i: conv2 pad 2 after strides 4·2, convs 3-5 pad 1 after 4·2·2; conv1 and pools unpadded.
    # (The Distill table's 66 is torchvision's layout, whose conv1 adds pad 2 × stride 1.)
    assert pool5.padding == [2 * (4 * 2) + 3 * 1 * (4 * 2 * 2)] * 2
    fc = ops(report, "Gemm", "MatMul")[0].receptive_field
    assert fc.is_global and fc.size == [227, 227]


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_vgg16_receptive_field(reports, exporter):
    report = reports("vgg16", exporter)
    conv5_3 = ops(report, "Conv")[-1].receptive_field
    pool5 = ops(report, "MaxPool")[-1].receptive_field
    assert (conv5_3.size, conv5_3.stride) == ([196, 196], [16, 16])
    assert (pool5.size, pool5.stride, pool5.padding) == ([212, 212], [32, 32], [90, 90])
    assert all(n.receptive_field.aligned for n in report.nodes if n.receptive_field)


def test_legacy_lrn_pads_are_folded_and_the_pooling_counted(reports):
    """Dynamic batch: the LRN pads come out of shape arithmetic and an If node on the input's rank, which
    onnx shape inference does not follow; the shape engine folds them (the batch assumed 1). Unknown
    shapes that stay unknown are reported, not counted as 1 (test_inspect_cli, test_pipeline)."""
    report = reports("alexnet", "legacy")
    pools = [n for n in report.nodes if n.op_type == "AveragePool"]
    # LRN size 5 as a 5x1x1 average over [N, 1, C, H, W]: 5 FLOPs per output element
    assert [n.flops for n in pools] == [5 * 96 * 55 * 55, 5 * 256 * 27 * 27]
    assert report.complete
    assert report.folded_values
