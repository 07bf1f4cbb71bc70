"""VGG-11/13/16/19 in torchvision's layout, and the assignment's CNN_5x5_Net (VGG-16 with 5x5 convs).

Features: stages of k x k convs (pad k // 2, bias, [BN], ReLU) separated by 2x2 max pools; then an
adaptive 7x7 average pool and the classifier 512·7·7 = 25088 -> 4096 -> 4096 -> classes (ReLU, dropout).
A k x k conv from c_in to c_out has k·k·c_in·c_out + c_out params; BN adds 2·c_out.
"""

from __future__ import annotations

from torch import nn

from exporters.architectures._layers import classifier_fc, conv_stage

# torchvision's configurations A, B, D, E: conv widths, "M" = 2x2 max pool
CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, config: list[int | str], *, num_classes: int = 1000, batch_norm: bool = False,
                 dropout: float = 0.5, kernel_size: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in config:
            if width == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += conv_stage(channels, int(width), kernel_size, padding=kernel_size // 2, batch_norm=batch_norm)
                channels = int(width)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = classifier_fc([channels * 7 * 7, 4096, 4096, num_classes], dropout=dropout)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def _vgg(name: str):
    def factory(**options) -> nn.Module:
        return VGG(CONFIGS[name], **options)

    factory.__name__ = name
    return factory


vgg11 = _vgg("vgg11")
vgg13 = _vgg("vgg13")
vgg16 = _vgg("vgg16")
vgg19 = _vgg("vgg19")


def vgg11_bn(**options) -> nn.Module:
    return VGG(CONFIGS["vgg11"], batch_norm=True, **options)


def vgg13_bn(**options) -> nn.Module:
    return VGG(CONFIGS["vgg13"], batch_norm=True, **options)


def vgg16_bn(**options) -> nn.Module:
    return VGG(CONFIGS["vgg16"], batch_norm=True, **options)


def vgg19_bn(**options) -> nn.Module:
    return VGG(CONFIGS["vgg19"], batch_norm=True, **options)


def cnn5x5(num_classes: int = 10, **options) -> nn.Module:
    """The assignment's CNN_5x5_Net: VGG-16 with every 3x3 conv replaced by a 5x5 (pad 2), 10 classes."""
    return VGG(CONFIGS["vgg16"], num_classes=num_classes, kernel_size=5, **options)
