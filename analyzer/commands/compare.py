"""``analyzer compare``: A/B latency of two models, interleaved, with a verdict and CI gates."""

from __future__ import annotations

import argparse
import sys

from analyzer.commands.bench import (
    FORMAT_CHOICES,
    add_output_arguments,
    add_run_arguments,
    bench_options_from,
    emit,
    refuse_output,
    warn_fallback,
)


def _epilog(default_time_budget: float) -> str:
    """The help's closing text: how compare measures, decides and gates."""
    return f"""\
Measurement: A and B alternate in rounds, in random order (seeded by --seed), each running a block
of about 2 ms of iterations per round; the statistical unit is a block's median latency.
Statistics: ratio = median(B's block medians) / median(A's block medians); ci = 95% percentile
bootstrap CI of that ratio; p = two-sided Mann-Whitney U on the block medians (normal
approximation, tie-corrected). --time S is the budget for the interleaved rounds (default {default_time_budget:g} s).

Verdict: "slower" when p < --alpha, the CI lies wholly above 1 and ratio > 1 + --min-effect;
"faster" when p < --alpha, the CI lies wholly below 1 and ratio < 1 - --min-effect;
otherwise "no significant difference".

Gates (all must pass; with none given the run passes):
  --fail-if-slower X   fails when verdict is "slower" AND ratio > 1 + X
                       (e.g. 5%: fails only for a significant slowdown whose point estimate exceeds 5%)
  --require-faster Y   fails unless verdict is "faster" AND ratio <= 1 - Y
                       (e.g. 10%: B's median must be at least 10% below A's, significantly)
  outputs              fail when the outputs differ (relative L2 error above --output-tolerance or a
                       different top-1 class), unless --allow-output-mismatch or --no-check-outputs

--format html: one offline page with both graphs (from the analyzer run on A and B, with --no-analyze
none), the totals delta, the verdict, ratio, CI, p-value, gates and both latency distributions.

Exit status: 0 all gates passed, 1 a gate failed, 2 bad input or error.
X and Y are written as percentages (5%) or fractions (0.05).
"""


def fraction_argument(text: str) -> float:
    """argparse's type for X and Y: :func:`analyzer.latency.options.parse_fraction`, its errors argparse's."""
    from analyzer.latency.options import parse_fraction

    try:
        return parse_fraction(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def register(subparsers: argparse._SubParsersAction) -> None:
    from analyzer.latency.options import CompareOptions

    defaults = CompareOptions()
    p = subparsers.add_parser(
        "compare",
        help="A/B latency of two models (interleaved), verdict and CI gates; also output agreement and MAC deltas",
        description="Run A (before) and B (after) interleaved in random order, compare medians, check the "
                    "outputs agree and show the analyzer's MAC/param/memory deltas beside the latency delta.",
        epilog=_epilog(defaults.default_time_budget),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model_a", metavar="before.onnx")
    p.add_argument("model_b", metavar="after.onnx")
    add_run_arguments(p, time_default=f"default {defaults.default_time_budget:g}")
    p.add_argument("--rounds", type=int, default=defaults.rounds, help="rounds of A/B in random order (default %(default)s)")
    p.add_argument("--fail-if-slower", type=fraction_argument, metavar="X", help="gate: see below")
    p.add_argument("--require-faster", type=fraction_argument, metavar="Y", help="gate: see below")
    p.add_argument("--alpha", type=float, default=defaults.alpha, help="significance level (default %(default)s)")
    p.add_argument("--min-effect", type=fraction_argument, default=defaults.min_effect,
                   help=f"smallest ratio change called a difference (default {100 * defaults.min_effect:g}%%)")
    p.add_argument("--output-tolerance", type=float, default=defaults.output_tolerance,
                   help="largest relative L2 error for outputs to match (default %(default)g)")
    p.add_argument("--allow-output-mismatch", action="store_true", help="report differing outputs but do not fail")
    p.add_argument("--no-check-outputs", action="store_true", help="skip the output comparison")
    p.add_argument("--no-analyze", action="store_true", help="skip the analyzer's MAC/param/memory deltas")
    add_output_arguments(p, FORMAT_CHOICES + ("html",))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analyzer.latency.compare import compare, render_json, render_markdown, render_table
    from analyzer.latency.options import CompareOptions

    options = CompareOptions(
        bench=bench_options_from(args),
        rounds=args.rounds,
        alpha=args.alpha,
        min_effect=args.min_effect,
        fail_if_slower=args.fail_if_slower,
        require_faster=args.require_faster,
        check_outputs=not args.no_check_outputs,
        allow_output_mismatch=args.allow_output_mismatch,
        output_tolerance=args.output_tolerance,
        analyze=not args.no_analyze,
    )
    refuse_output(args)
    result = compare(args.model_a, args.model_b, options, seed=args.seed)
    warn_fallback(result.a.fell_back, result.a.provider)
    if args.format == "html":
        emit(_html_page(result, args), args)
    else:
        render = {"table": render_table, "json": render_json, "markdown": render_markdown}[args.format]
        emit(render(result), args)
    if not result.passed:
        failed = ", ".join(g["gate"] for g in result.gates if not g["passed"])
        print(f"analyzer compare: gate failed: {failed}", file=sys.stderr)
        return 1
    return 0


def _html_page(result, args: argparse.Namespace) -> str:
    """The before/after page; the graphs are the reports compare() made with the input shapes it measured."""
    from analyzer.render.html_compare import render_compare

    if args.no_analyze:
        return render_compare(result, note="graphs not drawn: --no-analyze")
    if result.reports is None:
        return render_compare(result, note="graphs not drawn: " + next(
            (n for n in result.notes if n.startswith("analyzer deltas unavailable")), "no analysis"))
    return render_compare(result, *result.reports)
