"""False-positive rate and power of ``analyzer compare`` on this machine.

- False positives: compare a model with a byte-identical copy, ``--trials`` times; any verdict other
  than "no significant difference" is a false positive (target: at most 5% at the 95% level), and
  so is a failed ``--fail-if-slower 5%`` gate.
- Power: compare the model with a copy that does about 10% more work (an elementwise Mul/Add chain
  appended to the output, its length calibrated until the measured slowdown is near 10%), ``--trials``
  times; power = share of "slower" verdicts. The slowdown actually measured is reported with it.

Usage: ``python benchmarks/bench_compare_power.py [--trials 30] [--time 1.5] [--json out.json]``.
The run is bounded: each compare takes about ``--time`` seconds plus warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analyzer.latency.compare import compare  # noqa: E402
from analyzer.latency.options import BenchOptions, CompareOptions  # noqa: E402

CHANNELS, SIZE, CONVS = 16, 32, 3


def model_with_extra_work(path: Path, extra_ops: int) -> Path:
    """CONVS 3x3 Convs (16 -> 16 channels, 32x32) then `extra_ops` elementwise ops (Mul, Add alternating)."""
    rng = np.random.default_rng(0)
    inits, nodes, current = [], [], "x"
    for i in range(CONVS):
        w = (rng.standard_normal((CHANNELS, CHANNELS, 3, 3)) * 0.1).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [current, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]))
        current = f"c{i}"
    inits += [numpy_helper.from_array(np.array([1.0001], np.float32), "scale"),
              numpy_helper.from_array(np.array([1e-4], np.float32), "shift")]
    for k in range(extra_ops):
        op, const = ("Mul", "scale") if k % 2 == 0 else ("Add", "shift")
        nodes.append(helper.make_node(op, [current, const], [f"e{k}"], name=f"extra{k}"))
        current = f"e{k}"
    nodes.append(helper.make_node("Identity", [current], ["y"], name="out"))
    graph = helper.make_graph(
        nodes, "power",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, SIZE, SIZE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CHANNELS, SIZE, SIZE])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    return path


def options(time_s: float, **kw) -> CompareOptions:
    return CompareOptions(bench=BenchOptions(provider="cpu", time_budget=time_s), analyze=False, **kw)


def calibrate(base: Path, workdir: Path, target: float, time_s: float) -> tuple[Path, float, int]:
    """Grow the elementwise chain until compare measures a slowdown of about `target` (ratio 1 + target)."""
    extra, best = 2, None
    for _ in range(8):
        candidate = model_with_extra_work(workdir / f"slow{extra}.onnx", extra)
        ratio = compare(base, candidate, options(max(time_s, 3.0), check_outputs=False), seed=99).ratio
        best = (candidate, ratio, extra)
        if abs(ratio - (1 + target)) < target * 0.25:
            break
        # the extra cost is roughly linear in the chain length
        extra = max(1, round(extra * target / max(ratio - 1, 0.005)))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--time", type=float, default=1.5, help="seconds per compare")
    parser.add_argument("--slowdown", type=float, default=0.10)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = model_with_extra_work(work / "base.onnx", 0)
        copy = work / "copy.onnx"
        shutil.copy(base, copy)
        slow, calibrated_ratio, extra = calibrate(base, work, args.slowdown, args.time)
        print(f"slow model: {extra} extra elementwise ops, calibration ratio {calibrated_ratio:.3f}", flush=True)
        false_positive, gate_failures, fp_ratios = 0, 0, []
        slower, power_ratios = 0, []
        for trial in range(args.trials):
            # alternate the two experiments so that load changes hit both alike
            same = compare(base, copy, options(args.time, fail_if_slower=0.05), seed=trial)
            false_positive += same.verdict != "no significant difference"
            gate_failures += not same.passed
            fp_ratios.append(same.ratio)
            diff = compare(base, slow, options(args.time, check_outputs=False), seed=1000 + trial)
            slower += diff.verdict == "slower"
            power_ratios.append(diff.ratio)
            print(f"trial {trial}: identical {same.verdict} ({same.ratio:.3f}, p={same.p_value:.2g}); "
                  f"slow {diff.verdict} ({diff.ratio:.3f}, p={diff.p_value:.2g})", flush=True)
    figures = {
        "trials": args.trials,
        "time_per_compare_s": args.time,
        "false_positive_rate": false_positive / args.trials,
        "gate_false_failure_rate": gate_failures / args.trials,
        "identical_ratio_median": float(np.median(fp_ratios)),
        "identical_ratio_range": [float(min(fp_ratios)), float(max(fp_ratios))],
        "power": slower / args.trials,
        "slow_model_extra_ops": extra,
        "slow_ratio_measured_median": float(np.median(power_ratios)),
        "slow_ratio_range": [float(min(power_ratios)), float(max(power_ratios))],
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        from analyzer.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
