"""The zoo's catalogue: names, descriptions, default input shapes and where each factory lives.

Torch-free on purpose: ``analyzer zoo`` lists the catalogue without importing torch; a factory's module
is imported only when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_ARCH = "exporters.architectures"
# options every classifier takes; models whose BN is part of the design do not take batch_norm
_CLASSIFIER = ("num_classes", "dropout")
_PLAIN = ("num_classes", "batch_norm", "dropout")


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    input_shape: tuple[int, ...]  # default, batch first
    factory: str  # "module.path:function"
    options: tuple[str, ...] = field(default=_CLASSIFIER)  # keyword options the factory accepts

    @property
    def module(self) -> str:
        return self.factory.partition(":")[0]

    @property
    def function(self) -> str:
        return self.factory.partition(":")[2]


def _entries() -> list[ZooEntry]:
    e = ZooEntry
    img = (1, 3, 224, 224)
    entries = [
        e("lenet5", "LeNet-5 (course table): conv 6@5x5, avgpool, conv 16@5x5, avgpool, fc 120-84-10, tanh",
          (1, 1, 32, 32), f"{_ARCH}.lenet:lenet5", _PLAIN + ("input_size",)),
        e("mnist_cnn", "lecture MNIST CNN: 2x (conv 5x5 p2 + BN + ReLU + maxpool), 16/32 channels, fc 1568-10",
          (1, 1, 28, 28), f"{_ARCH}.lenet:mnist_cnn", _PLAIN + ("input_size",)),
        e("alexnet", "AlexNet, single stream, 96-256-384-384-256, LRN, fc 4096-4096 with dropout",
          (1, 3, 227, 227), f"{_ARCH}.alexnet:alexnet", _PLAIN + ("lrn", "input_size")),
        e("alexnet_grouped", "AlexNet with the original two-GPU grouping (groups=2 on conv2, conv4, conv5)",
          (1, 3, 227, 227), f"{_ARCH}.alexnet:alexnet_grouped", _PLAIN + ("lrn", "input_size")),
        e("zfnet", "ZFNet (course table): 96@7x7 s2, 256@5x5 s2, 512-1024-512 @3x3, fc 4096-4096",
          img, f"{_ARCH}.alexnet:zfnet", _PLAIN + ("input_size",)),
    ]
    for depth in (11, 13, 16, 19):
        entries.append(e(f"vgg{depth}", f"VGG-{depth} (torchvision layout, adaptive 7x7 pool, fc 25088-4096-4096)",
                         img, f"{_ARCH}.vgg:vgg{depth}", _PLAIN))
        entries.append(e(f"vgg{depth}_bn", f"VGG-{depth} with batch norm after every conv (torchvision layout)",
                         img, f"{_ARCH}.vgg:vgg{depth}_bn", _CLASSIFIER))
    entries += [
        e("cnn5x5", "CNN_5x5_Net: VGG-16 with every 3x3 conv a 5x5 (pad 2), 10 classes",
          img, f"{_ARCH}.vgg:cnn5x5", _PLAIN),
        e("inception_naive", "naive Inception module on 28x28x256: 1x1@128, 3x3@192, 5x5@96, 3x3 maxpool",
          (1, 256, 28, 28), f"{_ARCH}.inception:inception_naive", ()),
        e("inception_bottleneck", "Inception module with 1x1 reductions on 28x28x256 (output 480 channels)",
          (1, 256, 28, 28), f"{_ARCH}.inception:inception_bottleneck", ()),
        e("googlenet", "GoogLeNet / Inception v1 (torchvision layout, no aux heads)",
          img, f"{_ARCH}.inception:googlenet"),
    ]
    for depth in (18, 34, 50, 101, 152):
        entries.append(e(f"resnet{depth}", f"ResNet-{depth} (torchvision v1.5: stride on the 3x3)",
                         img, f"{_ARCH}.resnet:resnet{depth}"))
    entries += [
        e("plain34", "ResNet-34 without shortcuts (the paper's plain baseline)", img, f"{_ARCH}.resnet:plain34"),
        e("mobilenet_v1", "MobileNet v1 (width 1.0): 13 depthwise-separable blocks, fc 1024",
          img, f"{_ARCH}.mobilenet:mobilenet_v1"),
        e("mobilenet_v2", "MobileNet v2 (width 1.0, torchvision layout): inverted residuals, ReLU6",
          img, f"{_ARCH}.mobilenet:mobilenet_v2"),
        e("shufflenet_v2", "ShuffleNetV2 x1.0 (torchvision layout): channel split, 3x3 depthwise, channel shuffle",
          img, f"{_ARCH}.shufflenet:shufflenet_v2"),
    ]
    return entries


ZOO: dict[str, ZooEntry] = {entry.name: entry for entry in _entries()}
