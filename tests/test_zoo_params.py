"""Parameter counts of the zoo's torch modules (BN running stats not counted) against published figures
(docs/reference-figures.md) or hand counts written as arithmetic.

A k x k conv c_in -> c_out has k·k·c_in·c_out + c_out params (no "+ c_out" when bias-free); a linear
n_in -> n_out has n_in·n_out + n_out; a BN over c channels has 2·c.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install '.[export]')")

import exporters  # noqa: E402
from analyzer.errors import AnalyzerError  # noqa: E402


def count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


# published figures (reference table) and their per-layer sums
PUBLISHED = {
    ("lenet5", ()): 156 + 2_416 + 48_120 + 10_164 + 850,  # 61,706
    ("mnist_cnn", ()): 29_034,
    ("alexnet", ()): 34_944 + 614_656 + 885_120 + 1_327_488 + 884_992 + 37_752_832 + 16_781_312 + 4_097_000,
    ("alexnet_grouped", ()): 60_965_224,
    ("zfnet", ()): 107_627_624,
    ("vgg16", ()): 138_357_544,
    ("vgg16", (("num_classes", 10),)): 134_301_514,
    ("cnn5x5", ()): 160_453_450,
    ("resnet18", ()): 11_689_512,
    ("resnet34", ()): 21_797_672,
    ("resnet50", ()): 25_557_032,
    ("googlenet", ()): 6_624_904,
    ("mobilenet_v2", ()): 3_504_872,
}

# VGG-16's conv widths; the 3x3 convs removed to get VGG-11 / VGG-13, added for VGG-19
VGG16_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
# one bottleneck block of ResNet-50's stage 3 (256 planes) and stage 2 (128 planes), no projection
BOTTLENECK_256 = 1024 * 256 + 2 * 256 + 9 * 256 * 256 + 2 * 256 + 256 * 1024 + 2 * 1024
BOTTLENECK_128 = 512 * 128 + 2 * 128 + 9 * 128 * 128 + 2 * 128 + 128 * 512 + 2 * 512
# ResNet-34's three projection shortcuts (1x1 conv without bias + BN)
PROJECTIONS_34 = (64 * 128 + 2 * 128) + (128 * 256 + 2 * 256) + (256 * 512 + 2 * 512)

HAND = {
    ("lenet5", (("batch_norm", True),)): 61_706 + 2 * 6 + 2 * 16,
    ("mnist_cnn", (("batch_norm", False),)): 29_034 - 2 * 16 - 2 * 32,
    ("alexnet", (("num_classes", 10),)): 62_378_344 - (4096 * 1000 + 1000) + (4096 * 10 + 10),
    ("alexnet", (("batch_norm", True),)): 62_378_344 + 2 * (96 + 256 + 384 + 384 + 256),
    ("lenet5", (("input_size", 28),)): 61_706 - 120 * 16 * (25 - 16),  # fc1 sees 16·4·4 instead of 16·5·5
    ("vgg11", ()): 138_357_544 - conv(3, 64, 64) - conv(3, 128, 128) - conv(3, 256, 256) - 2 * conv(3, 512, 512),
    ("vgg13", ()): 138_357_544 - conv(3, 256, 256) - 2 * conv(3, 512, 512),
    ("vgg19", ()): 138_357_544 + conv(3, 256, 256) + 2 * conv(3, 512, 512),
    ("vgg16_bn", ()): 138_357_544 + 2 * sum(VGG16_WIDTHS),
    ("vgg16", (("batch_norm", True),)): 138_357_544 + 2 * sum(VGG16_WIDTHS),
    ("vgg11_bn", ()): 138_357_544 - conv(3, 64, 64) - conv(3, 128, 128) - conv(3, 256, 256) - 2 * conv(3, 512, 512)
    + 2 * (64 + 128 + 256 * 2 + 512 * 4),
    ("vgg13_bn", ()): 138_357_544 - conv(3, 256, 256) - 2 * conv(3, 512, 512) + 2 * (64 * 2 + 128 * 2 + 256 * 2 + 512 * 4),
    ("vgg19_bn", ()): 138_357_544 + conv(3, 256, 256) + 2 * conv(3, 512, 512) + 2 * (64 * 2 + 128 * 2 + 256 * 4 + 512 * 8),
    ("resnet101", ()): 25_557_032 + (23 - 6) * BOTTLENECK_256,
    ("resnet152", ()): 25_557_032 + (8 - 4) * BOTTLENECK_128 + (36 - 6) * BOTTLENECK_256,
    ("plain34", ()): 21_797_672 - PROJECTIONS_34,
    ("inception_naive", ()): conv(1, 256, 128) + conv(3, 256, 192) + conv(5, 256, 96),
    ("inception_bottleneck", ()): conv(1, 256, 128) + conv(1, 256, 64) + conv(3, 64, 192) + conv(1, 256, 64)
    + conv(5, 64, 96) + conv(1, 256, 64),
    # Howard et al. Table 1, bias-free convs + BN, fc with bias
    ("mobilenet_v1", ()): conv(3, 3, 32, bias=False) + 2 * 32
    + sum(9 * c_in + 2 * c_in + c_in * c_out + 2 * c_out for c_in, c_out in [
        (32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512),
        (512, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 1024), (1024, 1024)])
    + 1024 * 1000 + 1000,
}


CASES = {**PUBLISHED, **HAND}


@pytest.mark.parametrize(("name", "options"), list(CASES), ids=[n + "".join(f"-{k}={v}" for k, v in o) for n, o in CASES])
def test_param_count(name, options):
    assert count_params(exporters.build(name, **dict(options))) == CASES[name, options]


def test_mobilenet_v1_is_about_4_2_million():
    """MobileNet paper, Table 8: 4.2 million parameters."""
    assert round(count_params(exporters.build("mobilenet_v1")) / 1e6, 1) == 4.2


def test_zfnet_fc6_input_is_512_by_6_by_6():
    model = exporters.build("zfnet")
    assert model.classifier[1].in_features == 512 * 6 * 6  # 18432


@pytest.mark.parametrize("name", ["lenet5", "mnist_cnn", "inception_naive", "inception_bottleneck", "resnet18"])
def test_default_input_shape_runs(name):
    """The zoo's default input shape fits the model (the export tests cover the large ones)."""
    shape = exporters.ZOO[name].input_shape
    with torch.no_grad():
        out = exporters.build(name).eval()(torch.zeros(*shape))
    assert out.shape[0] == shape[0]


def test_inception_output_channels():
    x = torch.zeros(1, 256, 28, 28)
    with torch.no_grad():
        assert exporters.build("inception_naive")(x).shape == (1, 128 + 192 + 96 + 256, 28, 28)
        assert exporters.build("inception_bottleneck")(x).shape == (1, 128 + 192 + 96 + 64, 28, 28)


def test_zoo_import_does_not_load_torch():
    code = "import sys, exporters, analyzer.commands.zoo; exporters.ZOO['vgg16']; print('torch' in sys.modules)"
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "False"


def test_unknown_option_is_rejected():
    with pytest.raises(AnalyzerError, match="resnet18 has no option 'batch_norm'"):
        exporters.build("resnet18", batch_norm=True)


def test_factory_error_becomes_one_line():
    with pytest.raises(AnalyzerError, match="building lenet5 failed: RuntimeError: Calculated padded input size"):
        exporters.build("lenet5", input_size=8)
