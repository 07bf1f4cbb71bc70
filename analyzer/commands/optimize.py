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
Input shapes: --input-shape, --dim and --batch bind the inputs as in `inspect`; the before/after figures,
the verification inputs and any timing all use them (a model that cannot run at them: exit 2).

--auto chooses the rewrites itself: for every conv carrying at least 0.5% of the MACs it times candidate
rewrites (stack3x3, bottleneck, separable, asymmetric at a few ranks) against the conv at its real input
shape on --provider (interleaved, as `compare` times; cached on disk per machine and provider), measures
their error on calibration inputs (--inputs arrays, or --images DIR; random inputs only when neither is
given, said loudly), picks layers greedily by latency saved per error added within --max-error, then
times the whole model against the input. If nothing pays, the model is written unchanged.
  analyzer optimize yolov8n.onnx -o fast.onnx --auto --images photos/ --input-shape 1x3x320x320 --max-error 0.02
Exit status: 0 written (also unchanged by --auto), 1 a pass failed verification (nothing written),
2 bad input or request.
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
    p.add_argument("--pass", dest="passes", action="append", metavar="NAME[:KEY=VALUE,...]",
                   help="a pass to run (repeatable, in order); or --auto")
    p.add_argument("--auto", action="store_true",
                   help="choose rewrites by measured latency within --max-error (see below)")
    # no defaults here: passes.VerifyOptions and passes.auto.AutoOptions hold them
    p.add_argument("--samples", type=int, help="random inputs for the numerical check (default 2; --auto: 4)")
    p.add_argument("--seed", type=int, help="seed of the first random input (default 0)")
    p.add_argument("--inputs", help="use these inputs (.npy for one input, .npz by input name) instead; with --auto "
                                    "the calibration set (a leading dim that is a multiple of the batch is split into runs)")
    p.add_argument("--input-shape", action="append", metavar="NAME:SHAPE",
                   help="an input's shape, e.g. images:1x3x320x320 (NAME: optional for one-input models)")
    p.add_argument("--dim", action="append", metavar="NAME=N", help="bind a symbolic dim (repeatable)")
    p.add_argument("--batch", type=int, help="bind symbolic batch (leading) dims to N")
    auto = p.add_argument_group("--auto")
    auto.add_argument("--max-error", type=float, metavar="E",
                      help="largest output error on the calibration inputs, relative L2 (default 0.01)")
    auto.add_argument("--provider", metavar="{auto,cuda,cpu}", help="execution provider to time on (default auto)")
    auto.add_argument("--threads", type=int, help="onnxruntime intra-op threads for the timings")
    auto.add_argument("--images", metavar="DIR", help="calibration images (jpg, png, ...) instead of --inputs")
    auto.add_argument("--image-size", metavar="HxW", help="resize images to HxW (default: the input's)")
    auto.add_argument("--image-mean", metavar="M1,M2,M3", help="per-channel mean after scaling to [0, 1] (default 0)")
    auto.add_argument("--image-std", metavar="S1,S2,S3", help="per-channel std after scaling to [0, 1] (default 1)")
    auto.add_argument("--image-bgr", action="store_true", help="feed channels in BGR order (default RGB)")
    auto.add_argument("--layer-time", type=float, metavar="S", help="seconds of timing per candidate layer (default 0.6)")
    auto.add_argument("--time", type=float, metavar="S", help="seconds of the end-to-end timing (default 10)")
    auto.add_argument("--cache-dir", metavar="DIR",
                      help="where the layer-latency table lives (default $ANALYZER_CACHE_DIR or ~/.cache/onnx-analyzer)")
    auto.add_argument("--no-cache", action="store_true", help="time every layer afresh and keep nothing")
    p.add_argument("--format", "-f", choices=("table", "json", "html"), default="table",
                   help="the summary: table, json, or html (one offline page: both graphs, totals delta, every "
                        "pass's records; see --report)")
    p.add_argument("--report", metavar="FILE",
                   help="write the summary to FILE (atomically) instead of stdout; written on failure too")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def _progress(quiet: bool, prefix: str = ""):
    """One progress line per step on stderr (rewritten in place on a terminal): ``{prefix}{what}: i/n {detail}``;
    the callback takes (what, index, total, detail), as the passes and the auto search call it."""
    if quiet:
        return None
    tty = sys.stderr.isatty()

    def show(what: str, index: int, total: int, detail: str) -> None:
        end = "\r" if tty else "\n"
        text = f"{prefix}{what}: {index + 1}/{total} {detail}".rstrip()
        print((text[:78] if tty else text).ljust(78 if tty else 0), end=end, file=sys.stderr, flush=True)

    return show


AUTO_ONLY = ("max_error", "provider", "threads", "images", "image_size", "image_mean", "image_std", "layer_time",
             "time", "cache_dir")


def _shape_options(args: argparse.Namespace) -> dict:
    from analyzer.shapes import parse_dim_options, parse_input_shape_options

    return {"input_shapes": parse_input_shape_options(args.input_shape), "dims": parse_dim_options(args.dim),
            "batch": args.batch}


def run(args: argparse.Namespace) -> int:
    if args.auto:
        return run_auto(args)
    if not args.passes:
        raise AnalyzerError("give at least one --pass, or --auto")
    given_auto = [f"--{name.replace('_', '-')}" for name in AUTO_ONLY if getattr(args, name) is not None]
    given_auto += ["--image-bgr"] * args.image_bgr + ["--no-cache"] * args.no_cache
    if given_auto:
        raise AnalyzerError(f"{given_auto[0]} applies to --auto only")
    from passes import PassFailed, VerifyOptions, optimize

    source, target = Path(args.model), Path(args.output)
    _check_report_path(args.report, source, target)
    given = {"samples": args.samples, "seed": args.seed, "inputs": args.inputs}
    verify = VerifyOptions(**{k: v for k, v in given.items() if v is not None}, **_shape_options(args))
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


def _numbers(text: str | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise AnalyzerError(f"{option} {text!r}: expected numbers separated by commas, e.g. 0.485,0.456,0.406") from None


def auto_options_from(args: argparse.Namespace):
    from analyzer.shapes import parse_shape
    from passes.auto import AutoOptions, ImageOptions

    image = {"mean": _numbers(args.image_mean, "--image-mean"), "std": _numbers(args.image_std, "--image-std"),
             "size": tuple(parse_shape(args.image_size)) if args.image_size else None, "bgr": args.image_bgr or None}
    if image["size"] is not None and len(image["size"]) != 2:
        raise AnalyzerError(f"--image-size {args.image_size!r}: expected HxW, e.g. 224x224")
    given = {"max_error": args.max_error, "provider": args.provider, "threads": args.threads, "inputs": args.inputs,
             "images": args.images, "samples": args.samples, "seed": args.seed, "layer_seconds": args.layer_time,
             "end_to_end_seconds": args.time, "cache_dir": args.cache_dir}
    options = AutoOptions(**{k: v for k, v in given.items() if v is not None}, **_shape_options(args),
                          image=ImageOptions(**{k: v for k, v in image.items() if v is not None}),
                          use_cache=not args.no_cache)
    return options


def run_auto(args: argparse.Namespace) -> int:
    if args.passes:
        raise AnalyzerError("give --pass or --auto, not both")
    from passes.auto import auto_optimize

    source, target = Path(args.model), Path(args.output)
    _check_report_path(args.report, source, target)
    options = auto_options_from(args)
    result = auto_optimize(source, options, output=target, progress=_progress(args.quiet, prefix="auto "))
    _end_progress_line(args.quiet)
    doc = result.to_dict()
    if args.format == "html":
        from analyzer.render.html_auto import render_auto

        text = render_auto(doc)
    else:
        from passes.auto.render import render_json, render_table

        text = render_json(doc) if args.format == "json" else render_table(doc)
    _emit(text, args)
    if doc["calibration"].get("note"):
        print(f"analyzer optimize: {doc['calibration']['note']}", file=sys.stderr)  # loud even with -q
    if not result.modified and not args.quiet:
        print(f"analyzer optimize: {result.outcome}; {target} is the input unchanged", file=sys.stderr)
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
