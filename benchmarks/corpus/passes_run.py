"""Every rewrite pass on every corpus model it can apply to: a markdown table of outcomes.

    python benchmarks/corpus/passes_run.py [--only NAME ...] [--skip-large] [--passes fold-bn cleanup ...]

Each pass runs alone on each model through ``passes.optimize`` (verified as ``analyzer optimize``
verifies: full checker, shapes of the new values, onnxruntime, outputs against the input on one random
input at the shapes models.py binds). A cell reads ``ok`` with the number of nodes rewritten and, for a
lossy pass, the output's relative L2 error; ``-`` when the model has nothing the pass applies to; or
``FAILED`` with the reason. fold-bn and cleanup claim exactness and must pass their own checks. Models
that need an input fed a constant (Silero's sample rate) are left out. Exits 1 when any cell failed;
run fetch.py first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import onnx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.corpus.fetch import model_path, selected  # noqa: E402

PASSES = ("fold-bn", "cleanup", "bottleneck:energy=0.9", "separable:energy=0.9", "asymmetric:energy=0.9", "stack3x3")
APPLIES = {"fold-bn": {"BatchNormalization"}, "cleanup": {"Identity", "Dropout"}, "bottleneck": {"Conv"},
           "separable": {"Conv"}, "asymmetric": {"Conv"}, "stack3x3": {"Conv"}}


def cell(path: Path, spec: str, shapes: dict[str, list[int]]) -> str:
    import passes
    from analyzer.errors import AnalyzerError

    try:
        result = passes.optimize(path, [spec], verify=passes.VerifyOptions(samples=1, input_shapes=shapes))
    except passes.PassFailed as e:
        return f"FAILED: {e}"
    except AnalyzerError as e:
        return f"FAILED: {e}"
    except Exception as e:  # noqa: BLE001 - a bug: the table says so and the run exits 1
        return f"FAILED (internal): {type(e).__name__}: {e}"
    rewritten = len(result.rewritten)
    if not rewritten:
        return "- (nothing rewritten)"
    error = "" if result.comparison is None else f", rel L2 {result.comparison.relative_l2_error:.2g}"
    return f"ok ({rewritten}{error})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--passes", nargs="+", default=list(PASSES), metavar="SPEC")
    args = parser.parse_args(argv)
    rows, failed = [], 0
    for model in selected(args.only, args.skip_large):
        path = model_path(model)
        if model.fill or not path.is_file():
            continue
        ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
        specs = [s for s in args.passes if APPLIES[s.split(":")[0]] & ops]
        if not specs:
            continue
        start = time.perf_counter()
        cells = {s: cell(path, s, model.shapes) for s in specs}
        failed += sum(c.startswith("FAILED") for c in cells.values())
        rows.append((model.name, cells, time.perf_counter() - start))
        print(f"{model.name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    print("| model | " + " | ".join(args.passes) + " |")
    print("|---|" + "---|" * len(args.passes))
    for name, cells, _ in rows:
        print(f"| {name} | " + " | ".join(cells.get(s, "n/a").replace("|", "/") for s in args.passes) + " |")
    print(f"\n{len(rows)} models, {failed} failed cell(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
