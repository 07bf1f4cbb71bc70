"""Small building blocks shared by the architecture factories."""

from __future__ import annotations

import torch
from torch import nn


def conv_stage(
    in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
    groups: int = 1, batch_norm: bool = False, activation: type[nn.Module] = nn.ReLU,
) -> list[nn.Module]:
    """Conv (with bias) [+ BatchNorm] + activation, as a flat list for an ``nn.Sequential``."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(activation())
    return layers


def flat_features(features: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Elements per image after ``features`` for a (C, H, W) input: sizes the first fully connected layer."""
    with torch.no_grad():
        out = features(torch.zeros(1, *input_shape))
    if out.numel() == 0:
        raise ValueError(f"input {'x'.join(map(str, input_shape))} is too small for this network")
    return out.numel()


def classifier_fc(sizes: list[int], *, dropout: float) -> nn.Sequential:
    """Linear layers ``sizes[0] -> sizes[1] -> ...`` with ReLU (+ Dropout when p > 0) between them."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
