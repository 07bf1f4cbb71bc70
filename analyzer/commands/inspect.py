"""``analyzer inspect``: shapes, params, MACs, FLOPs, memory and receptive field of every node."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from analyzer.errors import OptionError

FORMAT_CHOICES = ("table", "json", "csv", "markdown", "html")


def add_analysis_arguments(p: argparse.ArgumentParser) -> None:
    """The options that decide what is analyzed (shared by ``inspect`` and ``annotate``)."""
    p.add_argument("--dim", action="append", metavar="NAME=N", help="bind a symbolic dim, e.g. --dim batch=8 (repeatable)")
    p.add_argument("--input-shape", action="append", metavar="NAME:SHAPE",
                   help="override an input's shape, e.g. input:1x3x224x224 (NAME: optional for one-input models)")
    p.add_argument("--batch", type=int, help="bind symbolic batch dims to N; also the training-memory batch")
    p.add_argument("--input-value", action="append", metavar="NAME=VALUE",
                   help="bind the value of a small input, e.g. --input-value sr=16000 (N1,N2,... for a 1-D input; "
                        "repeatable): what depends on it is computed, an If on it counts the branch it selects")
    p.add_argument("--optimizer", choices=("sgd", "momentum", "adam"), default="sgd",
                   help="optimizer state for the training-memory estimate (default sgd)")
    p.add_argument("--strict", action="store_true", help="fail (exit 2) on ops without a counting rule or unknown shapes")


def analyze(args: argparse.Namespace) -> Any:
    """The report for ``args.model`` under the options of :func:`add_analysis_arguments`."""
    from analyzer.pipeline import inspect
    from analyzer.shapes import parse_dim_options, parse_input_shape_options, parse_input_value_options

    return inspect(
        args.model,
        dims=parse_dim_options(args.dim),
        input_shapes=parse_input_shape_options(args.input_shape),
        batch=args.batch,
        input_values=parse_input_value_options(args.input_value),
        optimizer=args.optimizer,
        strict=args.strict,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="report shapes, params, MACs, FLOPs, memory and receptive field of every node",
        description="Analyze an ONNX model without loading its weight bytes.",
    )
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("--format", "-f", choices=FORMAT_CHOICES, default="table")
    p.add_argument("-o", "--output", help="write the report to this file (atomically) instead of stdout")
    p.add_argument("--netron", metavar="FILE.json",
                   help="also write a Netron attachment: open the model in Netron, then this file, to see "
                        "MACs, FLOPs, params, bytes and receptive field in each node's Metrics")
    add_analysis_arguments(p)
    p.add_argument("--max-rows", type=int, default=0, help="table: show at most N node rows (default all)")
    p.add_argument("--show-constants", action="store_true",
                   help="table: list Constant nodes too (hidden by default; their values count as the params and "
                        "weight bytes of the nodes that read them)")
    p.set_defaults(func=run)


def write_netron_attachment(report: Any, model_path: str, target: str) -> None:
    import json

    from analyzer.atomic import write_text_atomic
    from analyzer.loader import load_model
    from analyzer.netron import attachment

    made = attachment(report, list(load_model(model_path).proto.graph.node))
    write_text_atomic(target, json.dumps(made.document, indent=1) + "\n")
    print(f"wrote Netron attachment to {target}", file=sys.stderr)
    if made.untargetable:
        shown = ", ".join(made.untargetable[:5]) + (", ..." if len(made.untargetable) > 5 else "")
        print(f"note: {len(made.untargetable)} node(s) have no name of their own or share one, so Netron cannot "
              f"show their figures from an attachment ({shown}); `analyzer annotate` writes them into the model",
              file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from analyzer.commands.output import emit
    from analyzer.render import render

    from analyzer.model_files import refuse_overwrite

    for option, target in (("output", args.output), ("netron", args.netron)):  # before any work
        if target:
            refuse_overwrite(target, [args.model], option)
    if args.output and args.netron and args.output == args.netron:
        raise OptionError("netron", f"{args.netron} is also the report's --output; choose two files")
    report = analyze(args)
    options = {"max_rows": args.max_rows, "color": args.output is None and sys.stdout.isatty(),
               "show_constants": args.show_constants} if args.format == "table" else {}
    text = render(report, args.format, **options)
    if args.netron:
        write_netron_attachment(report, args.model, args.netron)
    emit(text, args.output or None, f"{args.format} report", inputs=(args.model,))
    return 0
