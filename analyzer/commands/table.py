"""``analyzer table``: architectures side by side, one row per model (and ``analyzer zoo --table``)."""

from __future__ import annotations

import argparse

FORMAT_CHOICES = ("table", "markdown", "csv", "json", "html")


def add_table_arguments(p: argparse.ArgumentParser) -> None:
    """What both ``table`` and ``zoo --table`` accept."""
    p.add_argument("--batch", type=int, help="bind symbolic batch dims to N; also the training-memory batch")
    p.add_argument("--dim", action="append", metavar="NAME=N", help="bind a symbolic dim (repeatable)")
    p.add_argument("--input-shape", action="append", metavar="NAME:SHAPE",
                   help="an input's shape, e.g. input:1x3x224x224 (NAME: optional for one-input models)")
    p.add_argument("--optimizer", choices=("sgd", "momentum", "adam"), default="sgd",
                   help="optimizer state in the training memory (default sgd)")
    p.add_argument("--latency", action="store_true",
                   help="add each model's median latency with its 95%% CI, the models timed in turn in one run")
    p.add_argument("--time", type=float, default=2.0, help="with --latency: seconds of timing per model (default 2)")
    p.add_argument("--provider", default="auto", help="with --latency: cpu, cuda or auto (default auto)")
    p.add_argument("--threads", type=int, help="with --latency: onnxruntime intra-op threads")
    p.add_argument("--accuracy", action="append", default=[], metavar="NAME=VALUE",
                   help="a model's accuracy as you know it, e.g. vgg16=71.6 (repeatable; NAME is the file's stem)")
    p.add_argument("--device-memory", metavar="SIZE", help="e.g. 16GiB: the largest training batch that fits, per model")
    p.add_argument("--format", "-f", choices=FORMAT_CHOICES, default="table")
    p.add_argument("-o", "--output", help="write to this file (atomically) instead of stdout")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("table", help="architectures side by side: params, MACs, memory, depth, RF (and latency)",
                              description="One row per model: params, MACs, FLOPs, weight bytes, peak inference memory, "
                                          "training memory at the batch, the conv/fc split, depth and receptive field; "
                                          "with --latency each model's median latency, all timed in turn in one run. "
                                          "--format html draws the course's charts.")
    p.add_argument("models", nargs="+", metavar="MODEL", help=".onnx files")
    add_table_arguments(p)
    p.set_defaults(func=run)


def build(paths: list[str], args: argparse.Namespace, names: list[str] | None = None):
    """The side-by-side table of ``paths`` under the options of :func:`add_table_arguments`."""
    from pathlib import Path

    from analyzer.errors import AnalyzerError
    from analyzer.model_files import refuse_overwrite
    from analyzer.shapes import parse_dim_options, parse_input_shape_options
    from analyzer.side_by_side import parse_accuracy, parse_size, side_by_side

    if args.output:
        refuse_overwrite(args.output, paths)
    for path in paths:
        if not Path(path).is_file():
            raise AnalyzerError(f"{path}: no such file")
    if (args.time != 2.0 or args.threads is not None or args.provider != "auto") and not args.latency:
        raise AnalyzerError("--time, --provider and --threads go with --latency")
    return side_by_side(
        paths, names=names, batch=args.batch, dims=parse_dim_options(args.dim),
        input_shapes=parse_input_shape_options(args.input_shape), optimizer=args.optimizer, latency=args.latency,
        time_per_model=args.time, provider=args.provider, threads=args.threads, accuracy=parse_accuracy(args.accuracy),
        device_memory_bytes=parse_size(args.device_memory) if args.device_memory else None)


def emit_table(table, args: argparse.Namespace) -> int:
    from analyzer.commands.output import emit
    from analyzer.render.side_by_side import render

    emit(render(table.to_dict(), args.format), args.output, f"{args.format} table",
         inputs=tuple(row.path for row in table.rows))
    return 0


def run(args: argparse.Namespace) -> int:
    return emit_table(build(args.models, args), args)
