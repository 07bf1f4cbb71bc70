"""ShuffleNetV2 x1.0 (Ma et al. 2018, Table 5) in torchvision's layout.

conv1 24@3x3 s2 + BN + ReLU, maxpool 3x3 s2, three stages of [4, 8, 4] units with [116, 232, 464] output
channels, conv5 1024@1x1 + BN + ReLU, global average pool, fc 1024 -> classes. Convs have no bias.
A stride-1 unit splits its input in two halves along the channels (``x.chunk(2, dim=1)``), sends one
half through 1x1 conv, 3x3 depthwise conv, 1x1 conv and concatenates it with the other; a stride-2
unit feeds the whole input to both branches. Every unit ends with a channel shuffle of 2 groups
(view, transpose, view). Exported by torch's legacy exporter, the split's Slice bounds are computed
from the input's shape (Shape -> Gather -> Add -> Div -> Mul), which onnx shape inference alone does
not resolve.
"""

from __future__ import annotations

import torch
from torch import nn

STAGE_REPEATS = (4, 8, 4)
STAGE_CHANNELS = (24, 116, 232, 464, 1024)  # conv1, stage2, stage3, stage4, conv5 (width x1.0)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batch, channels, height, width)


def _conv_bn(c_in: int, c_out: int, kernel_size: int, stride: int = 1, groups: int = 1,
             relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = c_out // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                *_conv_bn(c_in, c_in, 3, stride=stride, groups=c_in, relu=False),
                *_conv_bn(c_in, half, 1),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            *_conv_bn(c_in if stride > 1 else half, half, 1),
            *_conv_bn(half, half, 3, stride=stride, groups=half, relu=False),
            *_conv_bn(half, half, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(*_conv_bn(3, STAGE_CHANNELS[0], 3, stride=2))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = STAGE_CHANNELS[0]
        stages = []
        for repeats, c_out in zip(STAGE_REPEATS, STAGE_CHANNELS[1:-1]):
            units = [InvertedResidual(channels, c_out, 2)]
            units += [InvertedResidual(c_out, c_out, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            channels = c_out
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = nn.Sequential(*_conv_bn(channels, STAGE_CHANNELS[-1], 1))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(STAGE_CHANNELS[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(self.dropout(x.mean([2, 3])))  # global average pool, as torchvision


def shufflenet_v2(**options) -> nn.Module:
    return ShuffleNetV2(**options)
