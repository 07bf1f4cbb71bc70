"""LeNet-5 as in the course table and the lecture's MNIST CNN.

LeNet-5 (32x32x1): conv 6@5x5 -> avgpool 2 -> conv 16@5x5 -> avgpool 2 -> fc 120, 84, classes; tanh.
Params = (1·25+1)·6 + (6·25+1)·16 + (400+1)·120 + (120+1)·84 + (84+1)·10 = 61,706.

MNIST CNN (28x28x1): [conv 5x5 p2 + BN + ReLU + maxpool 2] x (16, 32 channels) -> fc 32·7·7 = 1568 -> classes.
"""

from __future__ import annotations

from torch import nn

from exporters.architectures._layers import conv_stage, flat_features


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, batch_norm: bool = False, dropout: float = 0.0,
                 input_size: int = 32, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *conv_stage(in_channels, 6, 5, batch_norm=batch_norm, activation=nn.Tanh),
            nn.AvgPool2d(2),
            *conv_stage(6, 16, 5, batch_norm=batch_norm, activation=nn.Tanh),
            nn.AvgPool2d(2),
        )
        flat = flat_features(self.features, (in_channels, input_size, input_size))
        self.classifier = nn.Sequential(
            nn.Linear(flat, 120), nn.Tanh(),
            *([nn.Dropout(dropout)] if dropout > 0 else []),
            nn.Linear(120, 84), nn.Tanh(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class MnistCNN(nn.Module):
    def __init__(self, num_classes: int = 10, batch_norm: bool = True, dropout: float = 0.0,
                 input_size: int = 28) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *conv_stage(1, 16, 5, padding=2, batch_norm=batch_norm), nn.MaxPool2d(2),
            *conv_stage(16, 32, 5, padding=2, batch_norm=batch_norm), nn.MaxPool2d(2),
        )
        flat = flat_features(self.features, (1, input_size, input_size))
        self.classifier = nn.Sequential(
            *([nn.Dropout(dropout)] if dropout > 0 else []), nn.Linear(flat, num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def lenet5(**options) -> nn.Module:
    return LeNet5(**options)


def mnist_cnn(**options) -> nn.Module:
    return MnistCNN(**options)
