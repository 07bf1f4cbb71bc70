"""Time ``analyzer.loader.load_model`` against ``onnx.load`` on a VGG-16-sized model.

The model has VGG-16's initializer shapes (torchvision layout, 1000 classes: 138,357,544 parameters,
about 553 MB of float32) filled with random numbers, written once to a temporary directory. Usage::

    .venv/bin/python benchmarks/bench_loader.py [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

VGG16_CONV_WIDTHS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
VGG16_FC = [(512 * 7 * 7, 4096), (4096, 4096), (4096, 1000)]
VGG16_PARAMS = 138_357_544  # torchvision weights meta (docs/reference-figures.md)


def build_vgg16_sized(path: pathlib.Path) -> int:
    """Write a Conv/Relu/MaxPool/Gemm VGG-16 with random weights to ``path``; return its parameter count."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, initializers = [], []
    x, channels, index = "input", 3, 0

    def add(name: str, shape: tuple[int, ...]) -> str:
        initializers.append(numpy_helper.from_array(rng.standard_normal(shape, dtype=np.float32), name))
        return name

    for width in VGG16_CONV_WIDTHS:
        index += 1
        if width == "M":
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{index}"], kernel_shape=[2, 2], strides=[2, 2]))
            x = f"pool{index}"
            continue
        w, b = add(f"conv{index}.weight", (width, channels, 3, 3)), add(f"conv{index}.bias", (width,))
        nodes.append(helper.make_node("Conv", [x, w, b], [f"conv{index}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"conv{index}"], [f"relu{index}"]))
        x, channels = f"relu{index}", width
    nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    x = "flat"
    for i, (fan_in, fan_out) in enumerate(VGG16_FC):
        w, b = add(f"fc{i}.weight", (fan_out, fan_in)), add(f"fc{i}.bias", (fan_out,))
        nodes.append(helper.make_node("Gemm", [x, w, b], [f"fc{i}"], transB=1))
        x = f"fc{i}"
    graph = helper.make_graph(
        nodes, "vgg16_sized",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", 1000])],
        initializers,
    )  # fmt: skip
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(path))
    return sum(math.prod(t.dims) for t in initializers)


def best_of(repeat: int, fn) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=pathlib.Path, help="directory to keep the generated model in")
    args = parser.parse_args(argv)

    import onnx

    from analyzer.loader import load_model

    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or pathlib.Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "vgg16_sized.onnx"
        if not path.exists():
            params = build_vgg16_sized(path)
            if params != VGG16_PARAMS:
                raise SystemExit(f"generated {params:,} parameters, expected {VGG16_PARAMS:,}")
        size_mb = path.stat().st_size / 1e6
        loaded = load_model(path)
        kept = len(loaded.proto.SerializeToString())
        fast_min, fast_median = best_of(args.repeat, lambda: load_model(path))
        full_min, full_median = best_of(args.repeat, lambda: onnx.load(str(path)))
    print(f"model: VGG-16-sized, {size_mb:.1f} MB on disk, {len(loaded.stripped)} payloads skipped, "
          f"{kept:,} bytes parsed")  # fmt: skip
    print(f"load_model: best {fast_min * 1e3:8.2f} ms, median {fast_median * 1e3:8.2f} ms (of {args.repeat})")
    print(f"onnx.load : best {full_min * 1e3:8.2f} ms, median {full_median * 1e3:8.2f} ms (of {args.repeat})")
    print(f"ratio onnx.load / load_model (best): {full_min / fast_min:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
