"""AlexNet (single stream and the original two-GPU grouping) and ZFNet as in the course table.

AlexNet at 227x227: conv 96@11x11 s4 -> [LRN] -> maxpool 3/2 -> conv 256@5x5 p2 -> [LRN] -> maxpool 3/2
-> conv 384, 384, 256 @3x3 p1 -> maxpool 3/2 -> 256·6·6 = 9216 -> fc 4096, 4096, classes (dropout in fc6/fc7).
The grouped variant splits conv2, conv4 and conv5 into 2 groups (each GPU saw half the channels),
which halves their weights: params 62,378,344 -> 60,965,224.

ZFNet at 224x224: conv 96@7x7 s2 p1 -> 110 -> maxpool 3/2 p1 -> 55 -> conv 256@5x5 s2 -> 26 -> maxpool 3/2 p1
-> 13 -> conv 512, 1024, 512 @3x3 p1 -> maxpool 3/2 -> 512·6·6 = 18432 -> fc 4096, 4096, classes.
"""

from __future__ import annotations

from torch import nn

from exporters.architectures._layers import conv_stage, flat_features


def _lrn() -> nn.Module:
    # Krizhevsky et al. 2012, section 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, batch_norm: bool = False, dropout: float = 0.5,
                 lrn: bool = True, grouped: bool = False, input_size: int = 227) -> None:
        super().__init__()
        groups = 2 if grouped else 1
        norm = [_lrn()] if lrn else []
        self.features = nn.Sequential(
            *conv_stage(3, 96, 11, stride=4, batch_norm=batch_norm), *norm, nn.MaxPool2d(3, 2),
            *conv_stage(96, 256, 5, padding=2, groups=groups, batch_norm=batch_norm), *norm, nn.MaxPool2d(3, 2),
            *conv_stage(256, 384, 3, padding=1, batch_norm=batch_norm),
            *conv_stage(384, 384, 3, padding=1, groups=groups, batch_norm=batch_norm),
            *conv_stage(384, 256, 3, padding=1, groups=groups, batch_norm=batch_norm),
            nn.MaxPool2d(3, 2),
        )
        flat = flat_features(self.features, (3, input_size, input_size))
        self.classifier = _alexnet_classifier(flat, num_classes, dropout)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def _alexnet_classifier(flat: int, num_classes: int, dropout: float) -> nn.Sequential:
    """fc6 and fc7 each preceded by dropout (Krizhevsky et al. 2012, section 4.2), then fc8."""
    drop = (lambda: [nn.Dropout(dropout)]) if dropout > 0 else (lambda: [])
    return nn.Sequential(
        *drop(), nn.Linear(flat, 4096), nn.ReLU(),
        *drop(), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, num_classes),
    )


class ZFNet(nn.Module):
    def __init__(self, num_classes: int = 1000, batch_norm: bool = False, dropout: float = 0.5,
                 input_size: int = 224) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *conv_stage(3, 96, 7, stride=2, padding=1, batch_norm=batch_norm), nn.MaxPool2d(3, 2, padding=1),
            *conv_stage(96, 256, 5, stride=2, batch_norm=batch_norm), nn.MaxPool2d(3, 2, padding=1),
            *conv_stage(256, 512, 3, padding=1, batch_norm=batch_norm),
            *conv_stage(512, 1024, 3, padding=1, batch_norm=batch_norm),
            *conv_stage(1024, 512, 3, padding=1, batch_norm=batch_norm),
            nn.MaxPool2d(3, 2),
        )
        flat = flat_features(self.features, (3, input_size, input_size))
        self.classifier = _alexnet_classifier(flat, num_classes, dropout)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def alexnet(**options) -> nn.Module:
    return AlexNet(**options)


def alexnet_grouped(**options) -> nn.Module:
    return AlexNet(grouped=True, **options)


def zfnet(**options) -> nn.Module:
    return ZFNet(**options)
