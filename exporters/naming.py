"""Readable node names and module paths for exported models (onnx only, no torch).

The dynamo exporter names nodes after FX nodes (``node_conv2d_3``) and keeps the module path in each
node's ``pkg.torch.onnx.name_scopes`` metadata, e.g. ``['', 'features', 'features.0', 'conv2d']``.
:func:`rename_nodes` renames them the way the legacy exporter does (``/features/features.0/Conv``),
unique with ``_1``, ``_2`` suffixes, and stores the module path (``features.0``; ``""`` for the root
module) under :data:`MODULE_KEY` in every node's metadata_props, for both exporters.
"""

from __future__ import annotations

import ast
from typing import Any

MODULE_KEY = "module"
_NAME_SCOPES = "pkg.torch.onnx.name_scopes"
STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def _metadata(node: Any) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


def _scopes_from_metadata(node: Any) -> list[str] | None:
    """Module scopes of a dynamo node, without the root ('') and the trailing FX node name."""
    raw = _metadata(node).get(_NAME_SCOPES)
    if raw is None:
        return None
    try:
        scopes = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    return [s for s in scopes[:-1] if s]


def _scopes_from_legacy_name(name: str) -> list[str]:
    """``/features/features.0/Conv`` -> ``['features', 'features.0']`` (the legacy exporter's scope names)."""
    parts = [p for p in name.split("/") if p]
    return parts[:-1] if name.startswith("/") else []


def _set_metadata(node: Any, key: str, value: str) -> None:
    for prop in node.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    entry = node.metadata_props.add()
    entry.key, entry.value = key, value


def rename_nodes(model: Any, *, from_metadata: bool = True) -> int:
    """Give every node of ``model.graph`` a readable unique name and a :data:`MODULE_KEY` entry.

    ``from_metadata=True`` (dynamo) builds names from the name-scope metadata; ``False`` (legacy) keeps
    the exporter's scoped names (``/...``) and names the rest (e.g. its ``Identity_0``) ``/<OpType>``.
    Returns the number of renamed nodes.
    """
    planned: list[tuple[Any, str | None]] = []  # (node, base name to give it; None = keep its name)
    taken: set[str] = set()
    for node in model.graph.node:
        scopes = _scopes_from_metadata(node) if from_metadata else None
        if scopes is None:
            scopes = _scopes_from_legacy_name(node.name)
        _set_metadata(node, MODULE_KEY, scopes[-1] if scopes else "")
        if not from_metadata and node.name.startswith("/"):
            taken.add(node.name)
            planned.append((node, None))
        else:
            planned.append((node, "/" + "/".join([*scopes, node.op_type])))
    renamed = 0
    counters: dict[str, int] = {}
    for node, base in planned:
        if base is None:
            continue
        count = counters.get(base, 0)
        new_name = base if count == 0 else f"{base}_{count}"
        while new_name in taken:
            count += 1
            new_name = f"{base}_{count}"
        counters[base] = count + 1
        taken.add(new_name)
        if new_name != node.name:
            node.name = new_name
            renamed += 1
    return renamed


def drop_metadata(model: Any, key: str) -> int:
    """Remove ``key`` from every node's metadata_props (e.g. dynamo's stack traces, which hold local
    file paths); returns how many entries were removed."""
    removed = 0
    for node in model.graph.node:
        kept = [(p.key, p.value) for p in node.metadata_props if p.key != key]
        if len(kept) != len(node.metadata_props):
            removed += len(node.metadata_props) - len(kept)
            del node.metadata_props[:]
            for k, v in kept:
                entry = node.metadata_props.add()
                entry.key, entry.value = k, v
    return removed


def lower_ir_version(model: Any, max_ir_version: int) -> int:
    """Lower ``model.ir_version`` to ``max_ir_version`` when its opsets allow it; returns the version kept.

    Safe when every imported opset existed at that IR version (onnx's VERSION_TABLE); otherwise the model
    is left as it is and the caller's load check reports the problem.
    """
    import onnx.helper

    if model.ir_version <= max_ir_version:
        return model.ir_version
    try:
        needed = onnx.helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True)
    except ValueError:  # an opset version newer than this onnx knows
        return model.ir_version
    if needed <= max_ir_version:
        model.ir_version = max_ir_version
    return model.ir_version
