"""A/B latency comparison of two models, with a verdict and gates a CI job can act on.

Measurement: both models get the same inputs and the same warm-up; then rounds alternate them in a
random order (seeded), each model running a short block of iterations per round (about 2 ms of work,
at least one iteration), so drift in machine load falls on both alike. The statistical unit is a
block's median (iterations inside one block are not independent):

- ratio = median over rounds of B's block medians / the same for A  (< 1: B is faster); with one
  iteration per block this is the plain ratio of medians
- ci = percentile bootstrap CI of that ratio over the block medians (2000 resamples, 95%)
- p_value = two-sided Mann–Whitney U on the block medians (normal approximation, tie-corrected;
  :mod:`analyzer.latency.stats`)

Verdict: "slower" when p_value < alpha, the CI lies entirely above 1 and ratio > 1 + min_effect;
"faster" when p_value < alpha, the CI lies entirely below 1 and ratio < 1 - min_effect; otherwise
"no significant difference". ``min_effect`` (default 2%) keeps session-to-session noise of identical
models (memory placement, thread scheduling) from being called a difference.

Gates (combined with AND; no gate given: passed):

- ``fail_if_slower=X`` fails when verdict == "slower" and ratio > 1 + X.
- ``require_faster=Y`` fails unless verdict == "faster" and ratio <= 1 - Y.
- outputs that do not match (relative L2 error above ``output_tolerance`` or a different top-1) fail
  the gate unless ``allow_output_mismatch``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analyzer import units
from analyzer.errors import AnalyzerError
from analyzer.latency import runtime
from analyzer.latency.bench import (
    BenchResult,
    Runner,
    aligned_rows,
    markdown_rows,
    prepare,
    result_from_samples,
    warm_up,
)
from analyzer.latency.options import CompareOptions
from analyzer.latency.stats import MannWhitney, bootstrap_median_ratio_ci, mann_whitney_u

BLOCK_SECONDS = 0.002  # work per model per round
VERDICTS = ("faster", "slower", "no significant difference")
DELTA_METRICS = ("params", "macs", "flops", "peak_memory_bytes", "weight_bytes")


@dataclass
class CompareResult:
    model_a: str
    model_b: str
    a: BenchResult
    b: BenchResult
    ratio: float
    ci: tuple[float, float]
    p_value: float
    prob_b_slower: float  # P(a B iteration takes longer than an A iteration), from U
    verdict: str
    rounds: int
    order_seed: int
    outputs_match: bool | None  # None: not checked
    outputs: dict[str, Any] | None
    analyzer_delta: dict[str, Any] | None
    gates: list[dict[str, Any]]
    options: CompareOptions = field(repr=False, default_factory=CompareOptions)
    notes: list[str] = field(default_factory=list)
    block_medians_a: list[float] = field(repr=False, default_factory=list)  # the statistics' units, seconds
    block_medians_b: list[float] = field(repr=False, default_factory=list)
    reports: tuple[Any, Any] | None = field(repr=False, default=None)  # the analyzer's reports of A and B, if analyzed

    @property
    def passed(self) -> bool:
        return all(g["passed"] for g in self.gates)

    @property
    def measured_speedup(self) -> float:
        return 1.0 / self.ratio if self.ratio > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "analyzer.latency.compare/1",
            "a_model": self.model_a,
            "b_model": self.model_b,
            "verdict": self.verdict,
            "ratio": self.ratio,
            "ci": list(self.ci),
            "ci_method": f"percentile bootstrap, {self.options.bootstrap_resamples} resamples, 95%",
            "p_value": self.p_value,
            "test": "Mann-Whitney U, two-sided, normal approximation with tie correction",
            "prob_b_slower": self.prob_b_slower,
            "alpha": self.options.alpha,
            "min_effect": self.options.min_effect,
            "measured_speedup": self.measured_speedup,
            "rounds": self.rounds,
            "order_seed": self.order_seed,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "outputs_match": self.outputs_match,
            "outputs": self.outputs,
            "analyzer_delta": self.analyzer_delta,
            "gates": self.gates,
            "passed": self.passed,
            "notes": self.notes,
        }


def decide_verdict(ratio: float, ci: tuple[float, float], p_value: float, alpha: float, min_effect: float) -> str:
    """faster / slower / no significant difference, as defined in the module docstring."""
    significant = p_value < alpha
    if significant and ci[0] > 1.0 and ratio > 1.0 + min_effect:
        return "slower"
    if significant and ci[1] < 1.0 and ratio < 1.0 - min_effect:
        return "faster"
    return "no significant difference"


def evaluate_gates(
    verdict: str,
    ratio: float,
    *,
    fail_if_slower: float | None,
    require_faster: float | None,
    outputs_match: bool | None,
    allow_output_mismatch: bool,
) -> list[dict[str, Any]]:
    """Each gate with whether it passed and why; the run passes when all do."""
    gates = []
    if fail_if_slower is not None:
        failed = verdict == "slower" and ratio > 1.0 + fail_if_slower
        gates.append({
            "gate": f"fail-if-slower {fail_if_slower:.1%}",
            "passed": not failed,
            "reason": f"verdict {verdict}, ratio {ratio:.3f} vs limit {1.0 + fail_if_slower:.3f}",
        })
    if require_faster is not None:
        ok = verdict == "faster" and ratio <= 1.0 - require_faster
        gates.append({
            "gate": f"require-faster {require_faster:.1%}",
            "passed": ok,
            "reason": f"verdict {verdict}, ratio {ratio:.3f} vs required at most {1.0 - require_faster:.3f}",
        })
    if outputs_match is False and not allow_output_mismatch:
        gates.append({"gate": "outputs match", "passed": False, "reason": "the models' outputs differ"})
    return gates


def _same_inputs(runner_a: Runner, runner_b: Runner) -> None:
    spec_a = {arg.name: arg.type for arg in runner_a.info.session.get_inputs()}
    spec_b = {arg.name: arg.type for arg in runner_b.info.session.get_inputs()}
    if spec_a != spec_b:
        raise AnalyzerError(
            f"{runner_a.model_label} and {runner_b.model_label} take different inputs "
            f"({', '.join(f'{k}: {v}' for k, v in spec_a.items())} vs {', '.join(f'{k}: {v}' for k, v in spec_b.items())})"
        )


def _interleave(
    runner_a: Runner, runner_b: Runner, options: CompareOptions, per_iteration: float, seed: int, progress: Progress
) -> tuple[list[list[float]], list[list[float]]]:
    """Alternate A and B in random order per round; returns each model's blocks of samples, one per round."""
    rng = np.random.default_rng(seed)
    budget = options.time_budget
    bench = options.bench
    target = bench.iters if bench.iters is not None else bench.max_iters
    # Short blocks (about BLOCK_SECONDS of work) so that load drift hits A and B alike; with --iters, at
    # least `rounds` rounds. Under --time, rounds go on until the budget is spent.
    block = max(1, min(math.ceil(target / options.rounds), round(BLOCK_SECONDS / max(per_iteration / 2, 1e-9))))
    blocks: dict[str, list[list[float]]] = {"a": [], "b": []}
    taken = {"a": 0, "b": 0}
    runners = {"a": runner_a, "b": runner_b}
    start = time.perf_counter()
    deadline = None if budget is None else start + budget
    while min(taken.values()) < target:
        for key in rng.permutation(["a", "b"]):
            count = max(1, min(block, target - taken[key]))
            blocks[key].append([runners[key].run_once() for _ in range(count)])
            taken[key] += count
        done = min(taken.values()) / target
        if budget is not None:
            done = max(done, (time.perf_counter() - start) / budget)
        progress("measuring", min(done, 1.0), len(blocks["a"]))
        if deadline is not None and time.perf_counter() >= deadline:
            break
    return blocks["a"], blocks["b"]


def _outputs_check(runner_a: Runner, runner_b: Runner, tolerance: float) -> tuple[bool, dict[str, Any]]:
    from analyzer.latency.numerics import compare_outputs

    outputs_a = runner_a.outputs()
    outputs_b = runner_b.outputs()
    names_a = [o.name for o in runner_a.info.session.get_outputs()]
    names_b = [o.name for o in runner_b.info.session.get_outputs()]
    if len(outputs_a) != len(outputs_b):
        return False, {"reason": f"{len(outputs_a)} outputs vs {len(outputs_b)}"}
    # outputs are paired by position: a rewrite may rename them
    shapes = [(list(x.shape), list(y.shape)) for x, y in zip(outputs_a, outputs_b)]
    if any(sa != sb for sa, sb in shapes):
        return False, {"reason": "output shapes differ: " + "; ".join(f"{sa} vs {sb}" for sa, sb in shapes if sa != sb)}
    comparison = compare_outputs([dict(zip(names_a, outputs_a))], [dict(zip(names_a, outputs_b))])
    top1_ok = comparison.top1_agreement is None or comparison.top1_agreement == 1.0
    match = comparison.relative_l2_error <= tolerance and top1_ok
    detail = comparison.to_dict()
    detail["tolerance_relative_l2"] = tolerance
    if names_a != names_b:
        detail["output_names"] = {"a": names_a, "b": names_b}
    return match, detail


def _mismatch_note(detail: dict[str, Any]) -> str:
    reason = detail["reason"] if "reason" in detail else f"relative L2 error {detail['relative_l2_error']:.3g}"
    return "outputs differ: " + reason


def analyzer_delta(report_a: Any, report_b: Any, ratio: float) -> dict[str, Any]:
    """The analyzer's totals for A and B, B - A, B / A, and the MAC-ratio speedup limit beside the measured one."""
    a, b = ({m: int(getattr(r.totals, m)) for m in DELTA_METRICS} for r in (report_a, report_b))
    return {
        "a": a,
        "b": b,
        "delta": {m: b[m] - a[m] for m in DELTA_METRICS},
        "ratio": {m: (b[m] / a[m] if a[m] else None) for m in DELTA_METRICS},
        "ideal_speedup": a["macs"] / b["macs"] if b["macs"] else None,
        "measured_speedup": 1.0 / ratio if ratio > 0 else None,
    }


SPINNING_KEY = "session.intra_op.allow_spinning"
FEW_ROUNDS = 20  # fewer rounds than this earn a note that the test has little power
# progress(phase, fraction of that phase done, rounds done): phases "sessions", "warm-up", "measuring",
# "outputs", "analyzer"; "measuring" is reported after every round
Progress = Callable[[str, float, int], None]


def _no_progress(phase: str, fraction: float, rounds: int) -> None:
    """The progress callback of a caller that gave none."""


def _open_both(model_a: str | os.PathLike | bytes, model_b: str | os.PathLike | bytes,
               options: CompareOptions) -> tuple[Runner, Runner]:
    """Both sessions, fed the same inputs (A's, made once)."""
    # Two sessions share the CPU: a session's intra-op threads spin after each run and would steal
    # cycles from the other's next block. Spinning off, unless the caller set it.
    bench = dataclasses.replace(
        options.bench, session_config={SPINNING_KEY: "0", **options.bench.session_config}
    )
    runner_a = prepare(model_a, bench)
    runner_b = prepare(model_b, bench, feeds=runner_a.feeds)
    _same_inputs(runner_a, runner_b)
    return runner_a, runner_b


@dataclass
class _Timed:
    """Both models measured: their bench results, and the statistics' units (block medians, seconds)."""

    a: BenchResult
    b: BenchResult
    units_a: list[float]
    units_b: list[float]

    @property
    def rounds(self) -> int:
        return len(self.units_a)


def _time_both(runner_a: Runner, runner_b: Runner, options: CompareOptions, seed: int, report: Progress) -> _Timed:
    """Warm both up alike, then run them interleaved; see the module docstring."""
    budget = options.time_budget
    warm_budget = None if budget is None else budget / 4
    # prepare() made each model's first warm-up run; one more each gives a timing to size the blocks
    report("warm-up", 0.0, 0)
    warm_a = warm_up(runner_a, max(options.bench.warmup_runs(runner_a.on_cuda) - 1, 1), warm_budget)
    warm_b = warm_up(runner_b, max(options.bench.warmup_runs(runner_b.on_cuda) - 1, 1), warm_budget)
    per_iteration = float(np.median(warm_a[-5:])) + float(np.median(warm_b[-5:]))
    report("measuring", 0.0, 0)
    blocks_a, blocks_b = _interleave(runner_a, runner_b, options, per_iteration, seed, report)
    samples_a = [x for block in blocks_a for x in block]
    samples_b = [x for block in blocks_b for x in block]
    # The unit of the statistics is a round's block median: iterations within a block share the
    # machine's state (load bursts, clock), so treating them as independent would overstate significance.
    return _Timed(
        a=result_from_samples(runner_a, options.bench, samples_a, 1 + len(warm_a)),
        b=result_from_samples(runner_b, options.bench, samples_b, 1 + len(warm_b)),
        units_a=[float(np.median(block)) for block in blocks_a],
        units_b=[float(np.median(block)) for block in blocks_b],
    )


@dataclass
class _Decision:
    ratio: float
    ci: tuple[float, float]
    test: MannWhitney
    verdict: str


def _decide(timed: _Timed, options: CompareOptions, seed: int) -> _Decision:
    ratio = float(np.median(timed.units_b) / np.median(timed.units_a))
    ci = bootstrap_median_ratio_ci(timed.units_a, timed.units_b, resamples=options.bootstrap_resamples, seed=seed)
    test = mann_whitney_u(timed.units_a, timed.units_b)
    return _Decision(ratio, ci, test, decide_verdict(ratio, ci, test.p_value, options.alpha, options.min_effect))


def _analyze(
    model_a: str | os.PathLike | bytes, model_b: str | os.PathLike | bytes, feeds: dict[str, np.ndarray],
    ratio: float, notes: list[str],
) -> tuple[dict[str, Any] | None, tuple[Any, Any] | None]:
    """The analyzer's reports of A and B at the measured input shapes, and their deltas; a failure is a note."""
    try:
        import analyzer

        measured_shapes = {k: list(v.shape) for k, v in feeds.items()}
        reports = tuple(analyzer.inspect(m, input_shapes=measured_shapes) for m in (model_a, model_b))
        return analyzer_delta(*reports, ratio), reports
    except (AnalyzerError, ImportError) as e:
        notes.append(f"analyzer deltas unavailable: {e}")
        return None, None


def compare(
    model_a: str | os.PathLike | bytes,
    model_b: str | os.PathLike | bytes,
    options: CompareOptions | None = None,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> CompareResult:
    """Measure A and B interleaved and decide; see the module docstring. ``progress`` (optional) is
    called as each phase starts and after every measuring round (see :data:`Progress`)."""
    options = options or CompareOptions()
    report = progress or _no_progress
    options.validate()
    report("sessions", 0.0, 0)
    runner_a, runner_b = _open_both(model_a, model_b, options)
    timed = _time_both(runner_a, runner_b, options, seed, report)
    decision = _decide(timed, options, seed)
    notes: list[str] = []
    outputs_match, outputs = None, None
    if options.check_outputs:
        report("outputs", 0.0, timed.rounds)
        outputs_match, outputs = _outputs_check(runner_a, runner_b, options.output_tolerance)
        notes += [] if outputs_match else [_mismatch_note(outputs)]
    delta, reports = None, None
    if options.analyze:
        report("analyzer", 0.0, timed.rounds)
        delta, reports = _analyze(model_a, model_b, runner_a.feeds, decision.ratio, notes)
    if timed.rounds < FEW_ROUNDS:
        notes.append(f"only {timed.rounds} rounds: the test has little power (give more --time or --iters)")
    gates = evaluate_gates(
        decision.verdict,
        decision.ratio,
        fail_if_slower=options.fail_if_slower,
        require_faster=options.require_faster,
        outputs_match=outputs_match,
        allow_output_mismatch=options.allow_output_mismatch,
    )
    return CompareResult(
        model_a=runtime.model_label(model_a),
        model_b=runtime.model_label(model_b),
        a=timed.a,
        b=timed.b,
        ratio=decision.ratio,
        ci=decision.ci,
        p_value=decision.test.p_value,
        prob_b_slower=decision.test.prob_b_greater,
        verdict=decision.verdict,
        rounds=timed.rounds,
        order_seed=seed,
        outputs_match=outputs_match,
        outputs=outputs,
        analyzer_delta=delta,
        gates=gates,
        options=options,
        notes=notes + ([runtime.fallback_note(timed.a.provider)] if timed.a.fell_back else []),
        block_medians_a=timed.units_a,
        block_medians_b=timed.units_b,
        reports=reports,
    )


# ---- rendering ----


def _delta_lines(result: CompareResult) -> list[tuple[str, str, str, str]]:
    delta = result.analyzer_delta
    if not delta:
        return []
    rows = []
    for metric in DELTA_METRICS:
        fmt = units.nbytes if metric.endswith("bytes") else units.count
        ratio = delta["ratio"][metric]
        rows.append((metric, fmt(delta["a"][metric]), fmt(delta["b"][metric]), "n/a" if ratio is None else f"{ratio:.3f}"))
    return rows


def summary_rows(result: CompareResult) -> list[tuple[str, str]]:
    """(label, value) rows of the verdict, its statistics, the outputs check and the gates; the table, the
    markdown and the HTML page all show these."""
    rows = [
        ("verdict", result.verdict),
        ("ratio B/A (median)", f"{result.ratio:.4f}  95% CI [{result.ci[0]:.4f}, {result.ci[1]:.4f}] (bootstrap)"),
        ("Mann-Whitney p", f"{result.p_value:.3g}  (P(B slower) = {result.prob_b_slower:.2f})"),
        ("median A", f"{units.ms(result.a.stats.median)} ms over {result.a.stats.iterations} iterations"),
        ("median B", f"{units.ms(result.b.stats.median)} ms over {result.b.stats.iterations} iterations"),
        ("measured speedup A/B", f"{result.measured_speedup:.3f}x"),
    ]
    if result.analyzer_delta and result.analyzer_delta.get("ideal_speedup"):
        rows.append(("ideal speedup (MAC ratio)", f"{result.analyzer_delta['ideal_speedup']:.3f}x"))
    rows += [
        ("outputs match", {True: "yes", False: "NO", None: "not checked"}[result.outputs_match]),
        ("provider", f"{result.a.provider} (requested {result.a.requested_provider})"),
        ("rounds", f"{result.rounds}, random order (seed {result.order_seed})"),
    ]
    for gate in result.gates:
        rows.append((f"gate {gate['gate']}", ("passed" if gate["passed"] else "FAILED") + f": {gate['reason']}"))
    return rows


def render_table(result: CompareResult) -> str:
    lines = [f"A = {result.model_a}, B = {result.model_b}"] + aligned_rows(summary_rows(result))
    deltas = _delta_lines(result)
    if deltas:
        lines += ["", f"  {'analyzer':<18} {'A':>12} {'B':>12} {'B/A':>8}"]
        lines += [f"  {m:<18} {a:>12} {b:>12} {r:>8}" for m, a, b, r in deltas]
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def render_markdown(result: CompareResult) -> str:
    icon = {"faster": "🟢", "slower": "🔴", "no significant difference": "⚪"}[result.verdict]
    gate = "passed" if result.passed else "**failed**"
    lines = [
        f"### Latency: `{result.model_b}` vs `{result.model_a}` — {icon} {result.verdict}, gate {gate}",
        "",
        "| | value |",
        "|---|---|",
    ]
    lines += markdown_rows(summary_rows(result))
    deltas = _delta_lines(result)
    if deltas:
        lines += ["", "| analyzer | A | B | B/A |", "|---|---:|---:|---:|"]
        lines += [f"| {m} | {a} | {b} | {r} |" for m, a, b, r in deltas]
    lines += [""] + [f"> **Note:** {n}" for n in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def render_json(result: CompareResult) -> str:
    import json

    return json.dumps(result.to_dict(), indent=2, default=str) + "\n"
