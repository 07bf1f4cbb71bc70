"""``analyzer annotate``: a copy of the model with the analyzer's figures in each node's ``metadata_props``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analyzer.commands.inspect import add_analysis_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "annotate",
        help="write MACs, FLOPs, params, bytes and receptive field into each node's metadata_props",
        description="Write a copy of the model whose nodes carry the analyzer's figures as metadata_props "
                    "(keys analyzer.macs, analyzer.flops, analyzer.params, analyzer.weight_bytes, "
                    "analyzer.activation_bytes, analyzer.live_bytes, analyzer.receptive_field; model totals "
                    "under analyzer.total.*). Netron shows them in each node's properties. The weights are "
                    "copied unchanged; the input is never modified.",
    )
    p.add_argument("model", help="input .onnx file (never modified)")
    p.add_argument("-o", "--output", required=True, help="output .onnx file (written atomically; not the input)")
    add_analysis_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analyzer.commands.inspect import analyze
    from analyzer.model_files import check_output, check_paths, load, save
    from analyzer.netron import annotate

    source, target = Path(args.model), Path(args.output)
    check_paths(source, target)
    report = analyze(args)
    model, input_files = load(source, normalise=False)  # annotations only: the graph is copied as it is
    check_output(target, input_files)
    count = annotate(model, report)
    save(model, target)
    print(f"wrote {target}: {count} of {len(report.nodes)} nodes annotated", file=sys.stderr)
    return 0
