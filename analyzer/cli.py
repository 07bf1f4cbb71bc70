"""The ``analyzer`` command line: a thin shell over the Python API.

Each subcommand lives in ``analyzer/commands/<name>.py`` with ``register(subparsers)``; those modules
import nothing heavy at module level so that ``analyzer --help`` stays fast and never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from analyzer.errors import AnalyzerError, OptionError

# The flag that sets a Python API parameter, where it is not ``--`` + the name with dashes.
FLAGS = {"dims": "--dim", "input_shapes": "--input-shape", "time_budget": "--time", "passes": "--pass",
         "bandwidth_gbs": "--bandwidth", "input_values": "--input-value",
         "layer_seconds": "--layer-time", "end_to_end_seconds": "--time", "time_per_model": "--time"}

# Order is the order shown in --help.
COMMAND_MODULES = ("inspect", "annotate", "optimize", "bench", "compare", "profile", "table", "serve", "worker", "zoo", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analyzer",
        description="ONNX graph analyzer and optimizer for CNNs.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"analyzer.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"analyzer.commands.{name}":
                continue  # command not built yet
            raise
        module.register(subparsers)
    return parser


def flag(parameter: str) -> str:
    """How the command line spells a Python API parameter."""
    return FLAGS.get(parameter) or "--" + parameter.replace("_", "-")


def describe_error(error: AnalyzerError) -> str:
    """The error's one line, with a named parameter spelled as its flag."""
    return error.worded(flag) if isinstance(error, OptionError) else str(error)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = args.debug or bool(os.environ.get("ANALYZER_DEBUG"))
    try:
        return int(args.func(args) or 0)
    except AnalyzerError as e:
        if debug:
            raise
        print(f"analyzer {args.command}: error: {describe_error(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"analyzer {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: still one line unless --debug
        if debug:
            raise
        print(
            f"analyzer {args.command}: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
