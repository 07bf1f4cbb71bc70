"""``analyzer zoo``: list the model zoo (names, default input shapes, descriptions) without importing torch;
``analyzer zoo --table``: the zoo's architectures side by side (exporting them as needed)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from analyzer.commands.table import add_table_arguments

    parser = subparsers.add_parser(
        "zoo",
        help="list the built-in CNN architectures that `analyzer export` can write (--table: side by side)",
        description="List the model zoo: name, default input shape (batch first) and a one-line description. With "
                    "--table, the architectures side by side as `analyzer table` shows them, each exported once "
                    "(legacy exporter, the export extra) into --cache-dir.",
    )
    parser.add_argument("--table", action="store_true", help="the side-by-side table of the zoo (or of --models)")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="with --table: these zoo models only, in this order")
    parser.add_argument("--cache-dir", help="with --table: where the exports are kept (default $ANALYZER_CACHE_DIR/zoo "
                                            "or ~/.cache/onnx-analyzer/zoo)")
    add_table_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from exporters.registry import ZOO

    if args.table:
        return run_table(args, ZOO)
    if args.models or args.cache_dir or args.latency or args.accuracy or args.device_memory or args.output:
        raise_error("--models, --cache-dir and the table options go with --table")
    name_width = max(len(name) for name in ZOO)
    shapes = {name: "x".join(map(str, entry.input_shape)) for name, entry in ZOO.items()}
    shape_width = max(len(s) for s in shapes.values())
    for name, entry in ZOO.items():
        print(f"{name:<{name_width}}  {shapes[name]:<{shape_width}}  {entry.description}")
    return 0


def raise_error(message: str) -> None:
    from analyzer.errors import AnalyzerError

    raise AnalyzerError(message)


def run_table(args: argparse.Namespace, zoo) -> int:
    import sys
    from pathlib import Path

    from analyzer.commands.table import build, emit_table

    names = args.models or list(zoo)
    unknown = [n for n in names if n not in zoo]
    if unknown:
        raise_error(f"{unknown[0]!r} is not in the zoo (analyzer zoo lists it)")
    cache = Path(args.cache_dir) if args.cache_dir else default_zoo_cache()
    paths = []
    for name in names:
        path = cache / f"{name}.onnx"
        if not path.is_file():
            try:
                import exporters
            except ModuleNotFoundError as e:
                raise_error(f"exporting the zoo needs the export extra ({e.name} is missing): "
                            "pip install 'cnn-onnx-analyzer[export]'")
            print(f"exporting {name} into {cache} ...", file=sys.stderr, flush=True)
            exporters.export_cached(name, cache)
        paths.append(str(path))
    return emit_table(build(paths, args, names=names), args)


def default_zoo_cache():
    from analyzer.cache import default_cache_dir

    return default_cache_dir() / "zoo"
