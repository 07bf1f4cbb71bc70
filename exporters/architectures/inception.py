"""Inception modules (on a 28x28x256 input) and GoogLeNet (Inception v1) in torchvision's layout.

Naive module: concat(1x1@128, 3x3@192, 5x5@96, maxpool 3x3 s1 p1) -> 128+192+96+256 = 672 channels.
MACs at 28x28x256 = 28·28·256·(128·1 + 192·9 + 96·25) = 854,196,224 (CS231n's "854M ops").
Bottleneck module: concat(1x1@128, 1x1@64 -> 3x3@192, 1x1@64 -> 5x5@96, maxpool -> 1x1@64) -> 480 channels.

GoogLeNet follows torchvision (no aux heads, conv without bias + BN eps 1e-3 + ReLU, ceil-mode pools);
like torchvision, the "5x5" branch uses a 3x3 kernel, which gives its published 6,624,904 params.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_relu(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.ReLU())


class InceptionNaive(nn.Module):
    def __init__(self, in_channels: int = 256) -> None:
        super().__init__()
        self.branch1 = _conv_relu(in_channels, 128, 1)
        self.branch3 = _conv_relu(in_channels, 192, 3)
        self.branch5 = _conv_relu(in_channels, 96, 5)
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.pool(x)], 1)


class InceptionBottleneck(nn.Module):
    def __init__(self, in_channels: int = 256) -> None:
        super().__init__()
        self.branch1 = _conv_relu(in_channels, 128, 1)
        self.branch3 = nn.Sequential(_conv_relu(in_channels, 64, 1), _conv_relu(64, 192, 3))
        self.branch5 = nn.Sequential(_conv_relu(in_channels, 64, 1), _conv_relu(64, 96, 5))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _conv_relu(in_channels, 64, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], 1)


class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, c_in: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(c_in, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(c_in, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        # torchvision's kernel: 3x3 where the paper has 5x5
        self.branch3 = nn.Sequential(BasicConv2d(c_in, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(c_in, pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for block in (self.inception4a, self.inception4b, self.inception4c, self.inception4d, self.inception4e):
            x = block(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))


def inception_naive(**options) -> nn.Module:
    return InceptionNaive(**options)


def inception_bottleneck(**options) -> nn.Module:
    return InceptionBottleneck(**options)


def googlenet(**options) -> nn.Module:
    return GoogLeNet(**options)
