"""Speed of the factorizing passes on all 13 convs of VGG-16 (issue 4's target: under 60 s each, 2 cores).

    python benchmarks/bench_passes.py [--passes bottleneck separable] [--samples 2] [--repeat 1]

Each pass runs as ``analyzer optimize`` runs it: clone, rewrite every conv, shape inference, verification
(full checker, onnxruntime load, outputs of the input and the rewritten model on ``--samples`` random
inputs) and the analyzer's cost report before and after. The time of each stage is printed; "total" is
what the 60 s target applies to. VGG-16 is exported once with the legacy exporter into .cache/bench/.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CACHE = REPO / ".cache" / "bench"
TARGET_SECONDS = 60.0

CONFIGS = {
    "bottleneck": ("bottleneck:rank_ratio=0.5 (HOSVD + 2 HOOI steps)", lambda: {"rank_ratio": 0.5}),
    "bottleneck-energy": ("bottleneck:energy=0.9", lambda: {"energy": 0.9}),
    "separable": ("separable:m=1", lambda: {"m": 1}),
    "asymmetric": ("asymmetric:rank_ratio=0.5", lambda: {"rank_ratio": 0.5}),
}


def export_vgg16() -> Path:
    import exporters

    return exporters.export_cached("vgg16", CACHE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", nargs="+", default=["bottleneck", "separable"], choices=sorted(CONFIGS))
    parser.add_argument("--samples", type=int, default=2, help="random inputs for the verification (default 2)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import onnx
    import onnx_ir as ir

    import passes

    path = export_vgg16()
    model = ir.serde.deserialize_model(onnx.load(str(path)))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores visible, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"model: {path.name} ({path.stat().st_size / 2**20:.0f} MiB), verification samples: {args.samples}")
    failed = False
    for name in args.passes:
        label, options = CONFIGS[name]
        cls = passes.PASSES[name.split("-")[0]]
        for _ in range(args.repeat):
            p = cls(**options(), verify=passes.VerifyOptions(samples=args.samples))
            start = time.perf_counter()
            result = p(model)
            total = time.perf_counter() - start
            stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
            comparison = result.comparison
            ok = total < TARGET_SECONDS and len(result.rewritten) == 13
            failed |= not ok
            print(f"{label:52} {len(result.rewritten):2d} convs  total {total:6.1f}s  ({stages})  "
                  f"MACs {result.report_before.totals.macs / 1e9:.2f}G → {result.report_after.totals.macs / 1e9:.2f}G  "
                  f"out rel L2 {comparison.relative_l2_error:.3g}  {'ok' if ok else 'OVER TARGET'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
