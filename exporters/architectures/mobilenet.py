"""MobileNet v1 (Howard et al. 2017, Table 1) and MobileNet v2 (torchvision's layout), width 1.0.

v1: conv 32@3x3 s2, then 13 depthwise-separable blocks (3x3 depthwise + BN + ReLU, 1x1 pointwise + BN + ReLU),
global average pool, fc 1024 -> classes. Convs have no bias. A depthwise 3x3 on c channels has 9·c
weights, a pointwise c_in -> c_out has c_in·c_out; each BN adds 2·c.
v2: inverted residual blocks (1x1 expand by t, 3x3 depthwise, 1x1 linear projection) with ReLU6,
settings (t, c, n, s) as in the paper's Table 2; last conv 1x1 to 1280; dropout 0.2; fc 1280 -> classes.
"""

from __future__ import annotations

from torch import nn

# (output channels of the pointwise conv, stride of the depthwise conv), Table 1
V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
# (expansion t, channels c, repeats n, first stride s), Table 2
V2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def conv_bn_act(c_in: int, c_out: int, kernel_size: int, stride: int = 1, groups: int = 1,
                activation: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class MobileNetV1(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.0) -> None:
        super().__init__()
        layers = [conv_bn_act(3, 32, 3, stride=2)]
        channels = 32
        for c_out, stride in V1_BLOCKS:
            layers.append(nn.Sequential(
                conv_bn_act(channels, channels, 3, stride=stride, groups=channels),
                conv_bn_act(channels, c_out, 1),
            ))
            channels = c_out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.fc(self.dropout(self.avgpool(self.features(x)).flatten(1)))


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = c_in * expand_ratio
        self.use_residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_act(c_in, hidden, 1, activation=nn.ReLU6))
        layers.append(conv_bn_act(hidden, hidden, 3, stride=stride, groups=hidden, activation=nn.ReLU6))
        layers.append(conv_bn_act(hidden, c_out, 1, activation=None))  # linear bottleneck
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, 32, 3, stride=2, activation=nn.ReLU6)]
        channels = 32
        for t, c, n, s in V2_SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        layers.append(conv_bn_act(channels, 1280, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def mobilenet_v1(**options) -> nn.Module:
    return MobileNetV1(**options)


def mobilenet_v2(**options) -> nn.Module:
    return MobileNetV2(**options)
