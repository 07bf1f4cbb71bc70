"""``analyzer export NAME -o model.onnx``: export a zoo model or ``module.path:factory`` and check it."""

from __future__ import annotations

import argparse
import sys


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a zoo model (or module.path:factory) to one checked ONNX file (needs torch)",
        description=(
            "Build a zoo model (see `analyzer zoo`) or your own nn.Module factory (module.path:factory), "
            "export it in eval mode, run onnx.checker and compare onnxruntime with torch on a random input."
        ),
    )
    parser.add_argument("model", metavar="NAME", help="zoo name or module.path:factory")
    parser.add_argument("-o", "--output", required=True, help="ONNX file to write")
    parser.add_argument("--input-shape", metavar="SHAPE", help="batch first, e.g. 1x3x224x224 (default: the zoo's)")
    parser.add_argument("--batch", type=int, help="batch size (replaces the first dim of the input shape)")
    parser.add_argument("--opset", type=int, help="ONNX opset (default 18 for dynamo, 17 for legacy)")
    parser.add_argument("--dynamic-batch", action="store_true", help="make the batch dim symbolic ('batch')")
    parser.add_argument("--exporter", choices=("dynamo", "legacy"), default="dynamo", help="torch exporter (default dynamo)")
    parser.add_argument("--num-classes", type=int, help="classifier outputs")
    parser.add_argument("--batch-norm", type=_bool, nargs="?", const=True, metavar="BOOL",
                        help="batch norm after every conv (models where it is optional)")
    parser.add_argument("--dropout", type=float, help="dropout probability in the classifier")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights and the check input (default 0)")
    parser.add_argument("--verbose", action="store_true", help="show torch's and onnxscript's own logs")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from exporters.onnx_export import export, parse_shape

    shape = parse_shape(args.input_shape) if args.input_shape is not None else None
    console = Console(stderr=True)
    with console.status(f"exporting {args.model}") as status:
        result = export(
            args.model, args.output, input_shape=shape, batch=args.batch, opset=args.opset,
            dynamic_batch=args.dynamic_batch, exporter=args.exporter, num_classes=args.num_classes,
            batch_norm=args.batch_norm, dropout=args.dropout, verbose=args.verbose, seed=args.seed,
            progress=lambda message: status.update(message),
        )
    size_mb = result.size_bytes / 1e6
    print(
        f"wrote {result.path} ({size_mb:.1f} MB, {result.params:,} params, {result.nodes} nodes, "
        f"{result.exporter}, opset {result.opset}, IR {result.ir_version}) in {result.seconds:.1f} s"
    )
    print(
        f"onnxruntime vs torch at {'x'.join(map(str, result.input_shape))}: max abs diff {result.max_abs_diff:.3g} "
        f"(relative {result.rel_diff:.3g})",
        file=sys.stdout,
    )
    return 0
