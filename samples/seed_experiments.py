"""Seed experiments for BENCHMARKS.md: does latency follow parameters or MACs?

1. AlexNet, VGG-16 and CNN_5x5 (VGG-16 with 5x5 convs), all with 10 classes, side by side as
   ``analyzer table --latency`` shows them (``analyzer.side_by_side``: params, MACs, memory, depth,
   receptive field, and every model timed in turn in one run, median with its CI) at batch 1 and 8;
   then each with BatchNorm and with Dropout (p=0.5) added. Exported in eval mode: Dropout is a no-op at inference and
   onnxruntime folds BatchNorm into the Conv before it, so neither should change latency.
2. The naive Inception module against the one with 1x1 bottlenecks (28x28x256 input).
3. With ``--passes`` (when the ``passes`` package imports): each rewrite pass applied to VGG-16,
   measured speedup (``analyzer compare``) beside the MAC-ratio limit.

Figures: ``docs/seed_latency_vs_params.png`` and ``docs/seed_latency_vs_macs.png`` (log-log, batch 1),
labelled with the machine and the load average seen during the run. Which quantity explains latency
better is decided by R² of a least-squares line in log-log space.

Run time is bounded by ``--time`` per model and batch (at least one timed iteration each) plus the
one-off exports, cached under ``.cache/seed/``. Needs the ``export`` and ``bench`` extras (torch,
matplotlib). Usage: ``python samples/seed_experiments.py [--time 2] [--passes] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


from analyzer.latency.options import BenchOptions  # noqa: E402
from analyzer.render.side_by_side import render  # noqa: E402
from analyzer.side_by_side import log_r2, side_by_side  # noqa: E402

CACHE = REPO / ".cache" / "seed"
DOCS = REPO / "docs"
ARCHS = ("alexnet", "vgg16", "cnn5x5")
VARIANTS = {"plain": {}, "+BN": {"batch_norm": True}, "+dropout": {"dropout": 0.5}}
INCEPTION = ("inception_naive", "inception_bottleneck")
BATCHES = (1, 8)


def exported(name: str, **options) -> tuple[Path, int | None]:
    """The zoo model exported once (dynamo exporter, dynamic batch), cached by name and options, and
    its torch module's parameter count (BN running statistics not counted)."""
    import exporters

    tag = "-".join(f"{k}={v}" for k, v in sorted(options.items()))
    path = CACHE / f"{name}{'-' + tag if tag else ''}.onnx"
    sidecar = path.with_suffix(".torch-params.json")
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"exporting {path.name} ...", file=sys.stderr, flush=True)
        result = exporters.export(name, path, dynamic_batch=True, **options)
        sidecar.write_text(json.dumps({"params": result.params}))
    if not sidecar.is_file():
        model = exporters.build(name, **options)
        sidecar.write_text(json.dumps({"params": sum(p.numel() for p in model.parameters())}))
    return path, json.loads(sidecar.read_text())["params"]


def side_by_side_at(batch: int, labels: list[str], exports: list[tuple[Path, int | None]], args: argparse.Namespace):
    """The models side by side at ``batch``, timed in turn (``analyzer table --latency --batch N``)."""
    print(f"timing {len(labels)} models in turn at batch {batch} ...", file=sys.stderr, flush=True)
    return side_by_side([path for path, _ in exports], names=labels, batch=batch, latency=True,
                        time_per_model=args.time, provider=args.provider)


def rows_of(tables: dict[int, object], exports: list[tuple[Path, int | None]]) -> list[dict]:
    """One dict per model: the batch-1 table's figures, the torch parameter count and both batches' latency."""
    rows = []
    for i, (path, torch_params) in enumerate(exports):
        first = tables[BATCHES[0]].rows[i]
        row = {"model": first.name, "file": path.name, "params": first.params, "torch_params": torch_params,
               "macs": first.macs, "depth": first.depth, "receptive_field": first.receptive_field,
               "provider": first.latency.provider}
        for batch, table in tables.items():
            latency = table.rows[i].latency
            row[f"latency_b{batch}_s"] = latency.median_s
            row[f"latency_b{batch}_ci_s"] = list(latency.ci_s)
            row[f"iterations_b{batch}"] = latency.iterations
            row[f"throughput_b{batch}"] = batch / latency.median_s
        rows.append(row)
    return rows


def plot(rows: list[dict], key: str, xlabel: str, target: Path, caption: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    markers = {"plain": "o", "+BN": "s", "+dropout": "^"}
    for row in rows:
        family, _, variant = row["model"].partition(" ")
        ax.scatter(row[key], row["latency_b1_s"] * 1e3, marker=markers.get(variant, "D"),
                   label=row["model"], alpha=0.75, s=40)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("median latency, batch 1 (ms)")
    r2 = log_r2([r[key] for r in rows], [r["latency_b1_s"] for r in rows])
    ax.set_title(f"latency vs {xlabel.split(' ')[0]} (log-log R² = {r2:.2f})")
    fig.text(0.01, 0.01, caption, fontsize=6, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(target, dpi=120)
    plt.close(fig)


def passes_experiment(args: argparse.Namespace) -> list[dict] | str:
    """Each pass on VGG-16: measured speedup vs MAC-ratio limit; a string says why it was not done."""
    try:
        import onnx_ir as ir

        from passes import PASSES
    except Exception as e:  # noqa: BLE001 - the package may be half-written; report and go on
        return f"not done: passes not importable ({type(e).__name__}: {e})"
    from analyzer.latency.compare import compare
    from analyzer.latency.options import CompareOptions

    base, _ = exported("vgg16", num_classes=10)
    rows = []
    for name, cls in PASSES.items():
        if name in ("fold-bn", "cleanup"):
            continue
        out = CACHE / f"vgg16-{name}.onnx"
        try:
            model = ir.load(str(base))
            result = cls()(model)
            ir.save(result.model, str(out))
            cmp = compare(base, out, CompareOptions(bench=BenchOptions(provider=args.provider, warmup=1,
                                                                    time_budget=4 * args.time)))
        except Exception as e:  # noqa: BLE001
            rows.append({"pass": name, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})
            continue
        delta = cmp.analyzer_delta or {}
        rows.append({"pass": name, "ratio": cmp.ratio, "ci": list(cmp.ci), "verdict": cmp.verdict,
                     "measured_speedup": cmp.measured_speedup, "mac_ratio_limit": delta.get("ideal_speedup"),
                     "outputs_match": cmp.outputs_match})
        print(f"  pass {name}: measured {cmp.measured_speedup:.2f}x, MAC limit {delta.get('ideal_speedup')}",
              file=sys.stderr, flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description="Seed experiments: latency against params and MACs.")
    parser.add_argument("--time", type=float, default=2.0, help="seconds per model and batch (default 2)")
    parser.add_argument("--provider", default="auto")
    parser.add_argument("--passes", action="store_true", help="also time each pass of the passes package on VGG-16")
    parser.add_argument("--json", help="write all figures here")
    parser.add_argument("--skip-plots", action="store_true")
    parser.add_argument("--passes-only", action="store_true", help="run only the passes experiment")
    args = parser.parse_args()
    if args.passes_only:
        rows = passes_experiment(args)
        print(json.dumps(rows, indent=2, default=str))
        if args.json:
            from analyzer.atomic import write_text_atomic

            write_text_atomic(args.json, json.dumps({"passes_on_vgg16": rows}, indent=2, default=str) + "\n")
        return 0
    start = time.perf_counter()
    loads = [os.getloadavg()]
    labels, exports = [], []
    for arch in ARCHS:
        for variant, options in VARIANTS.items():
            labels.append(f"{arch} {variant}")
            exports.append(exported(arch, num_classes=10, **options))
    for name in INCEPTION:
        labels.append(name)
        exports.append(exported(name))
    tables = {}
    for batch in BATCHES:
        tables[batch] = side_by_side_at(batch, labels, exports, args)
        loads.append(os.getloadavg())
    everything = rows_of(tables, exports)
    fits = tables[1].fits()
    r2_params, r2_macs = fits["params"], fits["macs"]
    load_range = (min(l[0] for l in loads), max(l[0] for l in loads))
    from analyzer.latency.machine import machine_info

    machine = machine_info()
    caption = (f"{machine['cpu']}, {machine['logical_cores']} cores shared with other jobs; 1-min load average "
               f"{load_range[0]:.1f}-{load_range[1]:.1f} during the run; onnxruntime {machine['onnxruntime']}, "
               f"median of >= 1 iteration per point, --time {args.time:g} s")
    if not args.skip_plots:
        DOCS.mkdir(exist_ok=True)
        plot(everything, "params", "params (count)", DOCS / "seed_latency_vs_params.png", caption)
        plot(everything, "macs", "MACs (conv + fc, batch 1)", DOCS / "seed_latency_vs_macs.png", caption)
    passes_rows = passes_experiment(args) if args.passes else "not run (use --passes)"
    summary = {
        "rows": everything,
        "r2_loglog_params": r2_params,
        "r2_loglog_macs": r2_macs,
        "better_predictor": "MACs" if r2_macs > r2_params else "params",
        "load_average_1min_range": load_range,
        "machine": machine,
        "passes_on_vgg16": passes_rows,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    for batch, table in tables.items():
        print(f"### Batch {batch}\n")
        print(render(table.to_dict(), "markdown"))
    print("params (torch) beside params (ONNX): " + ", ".join(
        f"{r['model']} {r['torch_params']:,} / {r['params']:,}" for r in everything if r["torch_params"] is not None))
    print(f"\nlog-log R²: params {r2_params:.3f}, MACs {r2_macs:.3f} -> {summary['better_predictor']} explain latency "
          f"better; load average {load_range[0]:.1f}-{load_range[1]:.1f}; {summary['wall_s']} s")
    if args.json:
        from analyzer.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(summary, indent=2, default=str) + "\n")
    return 0 if all(math.isfinite(r["latency_b1_s"]) for r in everything) else 1


if __name__ == "__main__":
    sys.exit(main())
