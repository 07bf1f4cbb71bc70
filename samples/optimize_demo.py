"""The course's efficiency lessons applied to trained-shape models, with the analyzer's deltas.

    python samples/optimize_demo.py            # inception_naive → bottleneck form; cnn5x5 through every pass
    python samples/optimize_demo.py --big      # also VGG-16 through every pass (slow: minutes on 2 cores)

1. The naive Inception module (28x28x256 in; 1x1@128, 3x3@192, 5x5@96) gets GoogLeNet's 1x1 reductions in
   front of its 3x3 (96 channels) and 5x5 (16 channels): ``bottleneck`` in its two-stage ``reduce`` form.
2. cnn5x5 (VGG-16 with 5x5 convs) through each pass on its own: ``stack3x3`` (VGG's two 3x3 for a 5x5,
   fitted by ALS), ``bottleneck`` (Tucker-2), ``separable`` (MobileNet), ``asymmetric`` (Inception v3).
3. With ``--big``: VGG-16 the same way (``stack3x3`` has no 5x5 to work on there and says so).

Every rewrite is verified (checker, onnxruntime, outputs vs the input model on random inputs); the table
shows params, MACs and peak activation memory from the analyzer before → after, the worst weight-fit
error of the pass and the measured relative L2 error of the outputs. The weights are the exporter's
random initialisation (no downloads), so the output error is the factorization's, not a trained model's.
Models are exported once into .cache/demo/. cnn5x5's ``stack3x3`` fit takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CACHE = REPO / ".cache" / "demo"


def export(name: str) -> Path:
    import exporters

    if not (CACHE / f"{name}.onnx").exists():
        print(f"exporting {name} ...", flush=True)
    return exporters.export_cached(name, CACHE)


def show(title: str, path: Path, pipelines: list[tuple[str, object]]) -> None:
    import onnx
    import onnx_ir as ir

    from analyzer import units
    from passes import PassFailed

    model = ir.serde.deserialize_model(onnx.load(str(path)))
    print(f"\n{title}")
    print(f"  {'pass':34}{'rewritten':>10}{'params':>22}{'MACs':>22}{'peak memory':>26}{'weight err':>12}{'out rel L2':>12}{'time':>8}")
    for label, pipeline in pipelines:
        start = time.perf_counter()
        try:
            result = pipeline(model)
        except PassFailed as e:
            print(f"  {label:34} failed and rolled back: {e}")
            continue
        seconds = time.perf_counter() - start
        before, after = result.report_before.totals, result.report_after.totals
        errors = [r.weight_error for r in result.rewritten if r.weight_error is not None]
        comparison = result.comparison
        print(f"  {label:34}{len(result.rewritten):>10}"
              f"{units.count(before.params) + ' → ' + units.count(after.params):>22}"
              f"{units.count(before.macs) + ' → ' + units.count(after.macs):>22}"
              f"{units.nbytes(before.peak_memory_bytes) + ' → ' + units.nbytes(after.peak_memory_bytes):>26}"
              f"{(f'{max(errors):.3f}' if errors else '-'):>12}"
              f"{(f'{comparison.relative_l2_error:.3g}' if comparison else '-'):>12}{seconds:>7.0f}s")
        skipped = {r.detail for r in result.skipped}
        for reason in sorted(skipped)[:2]:
            print(f"  {'':34}skipped: {reason}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Factorize zoo models with the verified passes.")
    parser.add_argument("--big", action="store_true", help="also run VGG-16 (slow)")
    parser.add_argument("--samples", type=int, default=1, help="random inputs per verification (default 1)")
    args = parser.parse_args()

    from passes import Sequential, VerifyOptions, asymmetric, bottleneck, separable, stack3x3

    verify = VerifyOptions(samples=args.samples)

    def each_pass() -> list[tuple[str, object]]:
        return [
            ("stack3x3 (fit, 1 ALS step)", Sequential(stack3x3(iters=1), verify=verify)),
            ("bottleneck energy=0.9", Sequential(bottleneck(energy=0.9), verify=verify)),
            ("separable m=2", Sequential(separable(m=2), verify=verify)),
            ("asymmetric rank_ratio=0.5", Sequential(asymmetric(rank_ratio=0.5), verify=verify)),
        ]

    show("inception_naive → GoogLeNet's reductions (3x3: 96, 5x5: 16)", export("inception_naive"), [
        ("bottleneck reduce", Sequential(
            bottleneck(form="reduce", rank=96, attrs={"kernel_shape": 3}),
            bottleneck(form="reduce", rank=16, attrs={"kernel_shape": 5}),
            verify=verify,
        )),
    ])
    show("cnn5x5 (VGG-16 with 5x5 convs), each pass alone", export("cnn5x5"), each_pass())
    if args.big:
        show("VGG-16, each pass alone", export("vgg16"), each_pass())
    return 0


if __name__ == "__main__":
    sys.exit(main())
