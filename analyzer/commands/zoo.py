"""``analyzer zoo``: list the model zoo (names, default input shapes, descriptions) without importing torch."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "zoo",
        help="list the built-in CNN architectures that `analyzer export` can write",
        description="List the model zoo: name, default input shape (batch first) and a one-line description.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from exporters.registry import ZOO

    name_width = max(len(name) for name in ZOO)
    shapes = {name: "x".join(map(str, entry.input_shape)) for name, entry in ZOO.items()}
    shape_width = max(len(s) for s in shapes.values())
    for name, entry in ZOO.items():
        print(f"{name:<{name_width}}  {shapes[name]:<{shape_width}}  {entry.description}")
    return 0
