"""``analyzer optimize``: verified rewrites (passes/) with a before/after table of the analyzer's figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analyzer.errors import AnalyzerError

EPILOG = """\
Passes (repeat --pass; they run in order, each verified before the next starts):
  fold-bn      BatchNormalization into the preceding Conv/Gemm (exact)
  cleanup      Identity, inference Dropout, unused nodes and initializers (exact)
  stack3x3     kxk conv (odd k >= 5) -> (k-1)/2 stacked 3x3     mode=fit|exact|init, mid=M, iters, relu (init)
  bottleneck   Tucker-2: 1x1 -> kxk -> 1x1                       rank=|rank_ratio=|energy=|max_error=, form=tucker2|reduce, iters
  separable    depthwise kxk (multiplier m) + pointwise 1x1      m=|energy=|max_error=
  asymmetric   kx1 + 1xk                                         rank=|rank_ratio=|energy=|max_error=
Every pass takes nodes=NAME-OR-REGEX, kernel=K, stride=S, min_macs=N to choose targets.
Example: --pass fold-bn --pass bottleneck:energy=0.9 --pass separable:m=2,nodes=conv3 --pass stack3x3:mode=exact

Verification after each pass: onnx.checker (full), shapes of new values, onnxruntime load, outputs
against the pass's input on --samples random inputs (or --inputs). mode=exact and max_error= fail the
pass when exceeded: it is rolled back and no output is written.
Summary: --format table (default), json or html, on stdout or, with --report FILE, in FILE. The html page
holds both graphs (coloured by MACs, params, ...), the totals delta and every pass's records:
  analyzer optimize in.onnx -o out.onnx --pass bottleneck:energy=0.9 --format html --report changes.html
Exit status: 0 written, 1 a pass failed verification (nothing written), 2 bad input or request.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "optimize",
        help="factorize convs (stack3x3, bottleneck, separable, asymmetric), fold BN, clean up; verified",
        description="Rewrite an ONNX model with verified passes and show the analyzer's before/after figures.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="input .onnx file (never modified)")
    p.add_argument("-o", "--output", required=True, help="output .onnx file (written atomically; not the input)")
    p.add_argument("--pass", dest="passes", action="append", required=True, metavar="NAME[:KEY=VALUE,...]",
                   help="a pass to run (repeatable, in order)")
    # no defaults here: passes.VerifyOptions holds them
    p.add_argument("--samples", type=int, help="random inputs for the numerical check (default 2)")
    p.add_argument("--seed", type=int, help="seed of the first random input (default 0)")
    p.add_argument("--inputs", help="use these inputs (.npy for one input, .npz by input name) instead")
    p.add_argument("--format", "-f", choices=("table", "json", "html"), default="table",
                   help="the summary: table, json, or html (one offline page: both graphs, totals delta, every "
                        "pass's records; see --report)")
    p.add_argument("--report", metavar="FILE",
                   help="write the summary to FILE (atomically) instead of stdout; written on failure too")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def _progress(quiet: bool):
    if quiet:
        return None
    tty = sys.stderr.isatty()

    def show(pass_name: str, index: int, total: int, node: str) -> None:
        end = "\r" if tty else "\n"
        print(f"{pass_name}: {index + 1}/{total} {node}".ljust(78 if tty else 0), end=end, file=sys.stderr, flush=True)

    return show


def run(args: argparse.Namespace) -> int:
    from passes import PassFailed, VerifyOptions, optimize

    source, target = Path(args.model), Path(args.output)
    _check_report_path(args.report, source, target)
    given = {"samples": args.samples, "seed": args.seed, "inputs": args.inputs}
    verify = VerifyOptions(**{k: v for k, v in given.items() if v is not None})
    render = _renderer(args.format)
    try:
        result = optimize(source, args.passes, verify=verify, output=target, progress=_progress(args.quiet))
    except PassFailed as e:
        _end_progress_line(args.quiet)
        _emit(render(e.run), args)
        print(f"analyzer optimize: {e}; no output written", file=sys.stderr)
        return e.exit_code
    _end_progress_line(args.quiet)
    _emit(render(result), args)
    return 0


def _end_progress_line(quiet: bool) -> None:
    if not quiet and sys.stderr.isatty():
        print(file=sys.stderr)  # the progress line ends in a carriage return on a terminal


def _renderer(fmt: str):
    if fmt == "html":
        from analyzer.render.html_compare import render_optimize

        return render_optimize
    from passes.report import render_json, render_table

    return render_json if fmt == "json" else render_table


def _check_report_path(report: str | None, source: Path, target: Path) -> None:
    from analyzer.model_files import same_file

    if report is None:
        return
    path = Path(report)
    if path.resolve() in (source.resolve(), target.resolve()) or same_file(path, source):
        raise AnalyzerError(f"--report {report} would overwrite a model; choose another file")


def _emit(text: str, args: argparse.Namespace) -> None:
    """The summary on stdout, or written atomically to --report."""
    from analyzer.commands.output import emit

    emit(text if text.endswith("\n") else text + "\n", args.report or None, f"{args.format} summary", quiet=args.quiet)
