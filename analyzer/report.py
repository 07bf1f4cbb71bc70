"""The inspection report: plain dataclasses and their one serializer (``to_dict``).

Every renderer (table, JSON, CSV, Markdown, HTML) reads a :class:`Report`; the JSON form is the
contract for scripts and CI (schema ``analyzer.report/1``, documented in docs/report.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "analyzer.report/1"


@dataclass
class TensorInfo:
    name: str
    shape: list[int | str | None] | None  # symbolic dims kept as strings; None = unknown
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict's deep copy dominated rendering large graphs
        return {"name": self.name, "shape": None if self.shape is None else list(self.shape), "dtype": self.dtype}


@dataclass
class ReceptiveFieldInfo:
    size: list[int]  # per spatial axis
    stride: list[int]  # effective stride per spatial axis
    padding: list[int]  # effective (left) padding per spatial axis
    is_global: bool = False  # serialized as "global"
    aligned: bool = True  # False where paths merging upstream disagree

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": list(self.size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "global": self.is_global,
            "aligned": self.aligned,
        }


@dataclass
class NodeReport:
    name: str
    op_type: str
    domain: str = ""
    module: str | None = None  # torch module path when the exporter stored it
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    params: int = 0  # initializer elements this node consumes (shared ones counted at every use)
    macs: int = 0
    flops: int = 0
    weight_bytes: int = 0
    activation_bytes: int = 0  # bytes of its outputs
    live_bytes: int = 0  # bytes live after it ran
    receptive_field: ReceptiveFieldInfo | None = None
    supported: bool = True  # False: no counting rule, counted as 0 and listed in unsupported_ops
    category: str = "other"  # "conv", "fc" or "other", for the conv-vs-fc share

    def to_dict(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in _NODE_FIELDS}
        d["inputs"] = [t.to_dict() for t in self.inputs]
        d["outputs"] = [t.to_dict() for t in self.outputs]
        d["receptive_field"] = None if self.receptive_field is None else self.receptive_field.to_dict()
        return d


_NODE_FIELDS = tuple(f.name for f in dataclasses.fields(NodeReport) if f.name != "receptive_field")  # it goes last


@dataclass
class ModelInfo:
    path: str | None
    ir_version: int
    opsets: dict[str, int]
    producer: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    # input -> the shape the counts used: symbolic dims as bound, or as assumed (see Report.assumed_dims)
    analyzed_inputs: dict[str, list[int] | None] = field(default_factory=dict)
    # input -> the value the user bound (a number, or nested lists for a tensor): the counts follow the
    # If branches and shapes it selects
    input_values: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingMemory:
    """Training memory estimate: weights + gradients + optimizer state + activations kept for backward."""

    batch: int
    optimizer: str  # sgd | momentum | adam
    weights: int
    gradients: int
    optimizer_state: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_state + self.activations


@dataclass
class Totals:
    params: int = 0  # each initializer counted once
    macs: int = 0
    flops: int = 0
    weight_bytes: int = 0  # each initializer counted once
    activation_bytes: int = 0  # sum of every node's outputs
    peak_memory_bytes: int = 0  # by liveness over the execution order
    peak_memory_node: str | None = None
    training_memory_bytes: int = 0
    nodes: int = 0


@dataclass
class OpTypeSummary:
    count: int = 0
    params: int = 0
    macs: int = 0
    flops: int = 0


@dataclass
class UnsupportedOp:
    op_type: str
    domain: str
    count: int
    nodes: list[str]


@dataclass
class Report:
    model: ModelInfo
    totals: Totals
    nodes: list[NodeReport]
    by_op_type: dict[str, OpTypeSummary]
    training: TrainingMemory
    assumed_dims: dict[str, int] = field(default_factory=dict)  # symbolic dim -> value used
    unsupported_ops: list[UnsupportedOp] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # node outputs the shape engine computed from the input shapes (Shape -> Gather -> Div ... chains)
    folded_values: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every node had a counting rule and a known shape."""
        return not self.unsupported_ops and not any(w.startswith("cost unknown") for w in self.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": dataclasses.asdict(self.model),
            "assumed_dims": dict(self.assumed_dims),
            "complete": self.complete,
            "totals": dataclasses.asdict(self.totals),
            "training_memory": {**dataclasses.asdict(self.training), "total": self.training.total},
            "by_op_type": {k: dataclasses.asdict(v) for k, v in self.by_op_type.items()},
            "nodes": [n.to_dict() for n in self.nodes],
            "unsupported_ops": [dataclasses.asdict(u) for u in self.unsupported_ops],
            "warnings": list(self.warnings),
            "folded_values": list(self.folded_values),
        }
