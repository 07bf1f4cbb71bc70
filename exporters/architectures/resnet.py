"""ResNet-18/34/50/101/152 in torchvision's v1.5 layout (stride on the 3x3) and plain-34 (no shortcuts).

Stem: conv 64@7x7 s2 p3 + BN + ReLU + maxpool 3/2 p1; four stages of 64, 128, 256, 512 planes (stride 1,
2, 2, 2); adaptive average pool; fc (512·expansion) -> classes. Convs have no bias (BN follows).
Basic block: 3x3, 3x3 (expansion 1). Bottleneck: 1x1, 3x3 (stride here: v1.5), 1x1 (expansion 4).
A shortcut projection (1x1 conv + BN) is used where stride or width changes; plain-34 has no shortcut at all.
"""

from __future__ import annotations

from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = shortcut
        self.downsample = _projection(inplanes, planes, stride) if shortcut else None

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.shortcut:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.shortcut = shortcut
        self.downsample = _projection(inplanes, planes * self.expansion, stride) if shortcut else None

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


def _projection(inplanes: int, outplanes: int, stride: int) -> nn.Module | None:
    """1x1 conv + BN on the shortcut where the block changes stride or width, else identity (None)."""
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride=stride, bias=False), nn.BatchNorm2d(outplanes))


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], *, num_classes: int = 1000,
                 dropout: float = 0.0, shortcut: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        stages = []
        for planes, blocks, stride in zip((64, 128, 256, 512), layers, (1, 2, 2, 2)):
            stage = []
            for i in range(blocks):
                stage.append(block(inplanes, planes, stride if i == 0 else 1, shortcut=shortcut))
                inplanes = planes * block.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))


def resnet18(**options) -> nn.Module:
    return ResNet(BasicBlock, [2, 2, 2, 2], **options)


def resnet34(**options) -> nn.Module:
    return ResNet(BasicBlock, [3, 4, 6, 3], **options)


def resnet50(**options) -> nn.Module:
    return ResNet(Bottleneck, [3, 4, 6, 3], **options)


def resnet101(**options) -> nn.Module:
    return ResNet(Bottleneck, [3, 4, 23, 3], **options)


def resnet152(**options) -> nn.Module:
    return ResNet(Bottleneck, [3, 8, 36, 3], **options)


def plain34(**options) -> nn.Module:
    """ResNet-34's layers without any shortcut (He et al. 2016, the "plain" baseline)."""
    return ResNet(BasicBlock, [3, 4, 6, 3], shortcut=False, **options)
