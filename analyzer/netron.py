"""The analyzer's figures where Netron shows them: an attachment file, or each node's ``metadata_props``.

Netron opens a JSON *attachment* beside a model (``{"signature": "netron:attachment", "metadata": [...],
"metrics": [...]}``) and lists each entry under its target's "Metrics" section. An entry targets a model
or graph (``target: ""``), a node, or a value by *name*, so a node without a name, or one sharing its
name with another node, cannot be addressed; those are counted in ``untargetable`` and left out rather
than given a neighbour's figures. ``annotate`` has no such limit: it writes into the nodes themselves.

Both read one table, :data:`NODE_METRICS`, so the attachment and the annotated model carry the same figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer import units
from analyzer.report import NodeReport, Report
from analyzer.summary import input_values_note

SIGNATURE = "netron:attachment"
METADATA_PREFIX = "analyzer."  # keys in metadata_props, clear of the exporters' own ("module", ...)


@dataclass(frozen=True)
class Metric:
    name: str  # as Netron shows it
    key: str  # metadata_props key suffix
    kind: str  # Netron's type: "int64" for counts and bytes, "string" for text
    read: Callable[[NodeReport], Any]  # None: not applicable to this node (left out)


def _receptive_field(node: NodeReport) -> str | None:
    return units.receptive_field(node.receptive_field) or None


NODE_METRICS: tuple[Metric, ...] = (
    Metric("MACs", "macs", "int64", lambda n: n.macs),
    Metric("FLOPs", "flops", "int64", lambda n: n.flops),
    Metric("params", "params", "int64", lambda n: n.params),
    Metric("weight bytes", "weight_bytes", "int64", lambda n: n.weight_bytes),
    Metric("activation bytes", "activation_bytes", "int64", lambda n: n.activation_bytes),
    Metric("live bytes after", "live_bytes", "int64", lambda n: n.live_bytes),
    Metric("receptive field", "receptive_field", "string", _receptive_field),
)


def model_metrics(report: Report) -> list[tuple[str, str, Any, str]]:
    """(name, metadata key, value, type) for the whole model."""
    t = report.totals
    rows = [
        ("params", "params", t.params, "int64"),
        ("MACs", "macs", t.macs, "int64"),
        ("FLOPs", "flops", t.flops, "int64"),
        ("weight bytes", "weight_bytes", t.weight_bytes, "int64"),
        ("peak memory bytes", "peak_memory_bytes", t.peak_memory_bytes, "int64"),
        ("training memory bytes", "training_memory_bytes", report.training.total, "int64"),
        ("complete", "complete", "true" if report.complete else "false", "string"),
    ]
    if t.peak_memory_node is not None:
        rows.append(("peak memory node", "peak_memory_node", t.peak_memory_node, "string"))
    if report.assumed_dims:
        rows.append(("assumed dims", "assumed_dims",
                     ", ".join(f"{k}={v}" for k, v in sorted(report.assumed_dims.items())), "string"))
    if report.model.input_values:
        rows.append(("input values", "input_values", input_values_note(report), "string"))
    return rows


def node_values(node: NodeReport) -> list[tuple[Metric, Any]]:
    return [(m, v) for m in NODE_METRICS if (v := m.read(node)) is not None]


def onnx_names(report_names: Sequence[str], nodes: Sequence[Any]) -> dict[str, str | None]:
    """Report node name -> the node's own name in the file, or None where Netron cannot address it.

    ``nodes``: the main graph's nodes in file order (``NodeProto`` or onnx-ir nodes). The report names
    nodes as :func:`analyzer.graph.unique_names` does (``Conv_3`` for a nameless one, ``x__1`` for a
    repeat), so the file's names are needed to tell which report names are real.
    """
    from analyzer.graph import unique_names

    counts = Counter(n.name or "" for n in nodes)
    own = {unique: (n.name if n.name and counts[n.name] == 1 else None) for unique, n in zip(unique_names(nodes), nodes)}
    return {name: own.get(name) for name in report_names}


@dataclass
class Attachment:
    document: dict[str, Any]
    untargetable: list[str] = field(default_factory=list)  # report names of nodes Netron cannot address


def attachment(report: Report, nodes: Sequence[Any]) -> Attachment:
    """The Netron attachment for ``report``; ``nodes`` are the analyzed model's main-graph nodes in file order."""
    names = onnx_names([n.name for n in report.nodes], nodes)
    metrics: list[dict[str, Any]] = [
        {"kind": "model", "target": "", "name": name, "value": value, "type": kind}
        for name, _, value, kind in model_metrics(report)
    ]
    untargetable: list[str] = []
    seen_values: set[str] = set()
    for node in report.nodes:
        target = names[node.name]
        if target is None:
            untargetable.append(node.name)
        else:
            metrics += [{"kind": "node", "target": target, "name": m.name, "value": v, "type": m.kind}
                        for m, v in node_values(node)]
        for out in node.outputs:
            # a value's size, where its shape is known: the figure Netron users read off edges
            size = _value_bytes(out)
            if out.name and size is not None and out.name not in seen_values:
                seen_values.add(out.name)
                metrics.append({"kind": "value", "target": out.name, "name": "bytes", "value": size, "type": "int64"})
    return Attachment({"signature": SIGNATURE, "metadata": [], "metrics": metrics}, untargetable)


def _value_bytes(tensor) -> int | None:
    """Bytes of a report tensor whose shape is fully known; None otherwise."""
    from analyzer.views import DTYPES, tensor_nbytes

    if tensor.shape is None or any(not isinstance(d, int) for d in tensor.shape):
        return None
    elem_type = next((code for code, (name, _) in DTYPES.items() if name == tensor.dtype), None)
    if elem_type is None:
        return None
    numel = 1
    for d in tensor.shape:
        numel *= d
    return tensor_nbytes(elem_type, numel)


def annotate(model, report: Report) -> int:
    """Write the report's figures into ``model`` (an onnx-ir Model) in place: each main-graph node's
    ``metadata_props["analyzer.<key>"]`` and the model's ``metadata_props["analyzer.total.<key>"]``.
    Returns the number of nodes annotated. Node metadata needs IR version 10, so an older model is raised to it.
    """
    from analyzer.graph import unique_names

    by_name = {n.name: n for n in report.nodes}
    nodes = list(model.graph)
    annotated = 0
    for unique, node in zip(unique_names(nodes), nodes):
        found = by_name.get(unique)
        if found is None or found.op_type != node.op_type:
            continue
        for metric, value in node_values(found):
            node.metadata_props[METADATA_PREFIX + metric.key] = str(value)
        annotated += 1
    for _, key, value, _ in model_metrics(report):
        model.metadata_props[f"{METADATA_PREFIX}total.{key}"] = str(value)
    model.ir_version = max(model.ir_version, 10)
    return annotated
