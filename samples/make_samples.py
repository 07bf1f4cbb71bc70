"""Write the sample models: lenet5, mnist_cnn, inception_naive, inception_bottleneck (seed 0).

Usage: python samples/make_samples.py [--out DIR]   (default: this folder)

They use the dynamo exporter, the default of `analyzer export` and torch's maintained path (the legacy
TorchScript exporter is deprecated), so the samples show what users get: opset 18 and the torch module
path of every node in its metadata. Dynamo's per-node stack traces are dropped because they record this
machine's file paths; that keeps the files free of local paths and reproducible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = ("lenet5", "mnist_cnn", "inception_naive", "inception_bottleneck")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from analyzer.errors import AnalyzerError
    from exporters import export

    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in SAMPLES:
            result = export(name, args.out / f"{name}.onnx", exporter="dynamo", seed=0, keep_stack_traces=False)
            print(f"{result.path}: {result.size_bytes / 1e6:.2f} MB, {result.params:,} params, "
                  f"max abs diff vs torch {result.max_abs_diff:.2g}")
    except (AnalyzerError, OSError) as e:
        print(f"make_samples: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
