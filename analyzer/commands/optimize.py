"""``analyzer optimize``: verified rewrites (passes/) with a before/after table of the analyzer's figures."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

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
    p.add_argument("--samples", type=int, default=2, help="random inputs for the numerical check (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first random input (default 0)")
    p.add_argument("--inputs", help="use these inputs (.npy for one input, .npz by input name) instead")
    p.add_argument("--format", "-f", choices=("table", "json"), default="table")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_paths(source: Path, target: Path) -> None:
    if not source.is_file():
        raise AnalyzerError(f"{source} does not exist or is not a file")
    data = target.with_name(target.name + ".data")
    if target.resolve() == source.resolve() or _same_file(source, target) or _same_file(source, data):
        raise AnalyzerError(f"refusing to overwrite the input model {source}; choose another -o")


def _progress(quiet: bool):
    if quiet:
        return None
    tty = sys.stderr.isatty()

    def show(pass_name: str, index: int, total: int, node: str) -> None:
        end = "\r" if tty else "\n"
        print(f"{pass_name}: {index + 1}/{total} {node}".ljust(78 if tty else 0), end=end, file=sys.stderr, flush=True)

    return show


def load(path: Path) -> tuple[Any, list[Path]]:
    """The input as an onnx-ir model (external data read, checked by onnx, and inlined) and the input's files."""
    import onnx
    import onnx_ir as ir

    try:
        proto = onnx.load(str(path), load_external_data=False)
        data_files = sorted({(path.parent / entry.value) for tensor in proto.graph.initializer
                             for entry in tensor.external_data if entry.key == "location"})
        onnx.load_external_data_for_model(proto, str(path.parent))
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AnalyzerError(f"cannot read {path.name} as an ONNX model: {first}") from e
    return ir.serde.deserialize_model(proto), [path, *data_files]


def _check_output(target: Path, input_files: list[Path]) -> None:
    """Neither the output nor its external-data file may be one of the input's files."""
    outputs = [target, target.with_name(target.name + ".data")]
    for out in outputs:
        for used in input_files:
            if out.resolve() == used.resolve() or _same_file(out, used):
                raise AnalyzerError(f"refusing to overwrite the input's file {used}; choose another -o")


def save(model: Any, target: Path) -> None:
    """Write atomically; above protobuf's limit the weights go to ``<output>.data`` beside it (our choice of
    location: an input's external-data location is never reused)."""
    import tempfile

    import onnx_ir as ir

    from analyzer.atomic import atomic_path, write_bytes_atomic
    from passes._verify import EXTERNAL_DATA_BYTES, initializer_bytes

    if initializer_bytes(model) < EXTERNAL_DATA_BYTES:
        write_bytes_atomic(target, ir.serde.serialize_model(model).SerializeToString())
        return
    data_name = target.name + ".data"
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent or ".") as tmp:
        staged = Path(tmp) / target.name
        ir.save(model, staged, external_data=data_name)
        os.replace(staged.with_name(data_name), target.with_name(data_name))
        with atomic_path(target) as out:
            os.replace(staged, out)


def run(args: argparse.Namespace) -> int:
    from passes import PassFailed, Sequential, VerifyOptions
    from passes.options import parse_pass
    from passes.report import render_json, render_table

    source, target = Path(args.model), Path(args.output)
    _check_paths(source, target)
    if args.inputs and not Path(args.inputs).is_file():
        raise AnalyzerError(f"--inputs file {args.inputs} does not exist")
    verify = VerifyOptions(samples=args.samples, seed=args.seed, inputs=args.inputs)
    pipeline = [parse_pass(spec, verify=verify, progress=_progress(args.quiet)) for spec in args.passes]
    model, input_files = load(source)
    _check_output(target, input_files)
    render = render_json if args.format == "json" else render_table
    try:
        result = Sequential(*pipeline)(model)
    except PassFailed as e:
        if not args.quiet and sys.stderr.isatty():
            print(file=sys.stderr)
        print(render(e.completed + [e.result], source=source, target=None, failure=str(e)))
        print(f"analyzer optimize: {e}; no output written", file=sys.stderr)
        return e.exit_code
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    save(result.model, target)
    print(render(result.steps, source=source, target=target, comparison=result.comparison))
    return 0
