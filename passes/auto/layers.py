"""One conv as a model of its own, its candidate rewrites as models, and their measured latency.

A layer model holds the conv with its weights and takes the layer's real input shape; a candidate's
model is the same after the candidate's pass. Both are timed as ``analyzer compare`` times two models
(interleaved rounds, block medians, bootstrap CI, verdict) on the chosen provider. Results go to a table
on disk keyed by the two models' op signatures (ops, attributes, tensor shapes: never names or weight
values), the provider really used, the thread count and the machine (CPU model, cores, onnxruntime
version), as NetAdapt keeps its per-layer latency tables: a second search on the same machine looks the
timings up instead of measuring.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from analyzer.cache import default_cache_dir

TABLE_FILE = "layer-latency.json"
TABLE_SCHEMA = "analyzer.layer-latency/1"


def layer_model(node: ir.Node, input_shape: list[int], input_type: ir.TypeProtocol | None, opset: int) -> ir.Model:
    """``node`` (a Conv with constant weights) alone, fed by an input of ``input_shape`` (float when
    ``input_type`` is None); the weights are shared with ``node``'s model."""
    x = ir.Value(name="x", shape=ir.Shape(input_shape), type=input_type or ir.TensorType(ir.DataType.FLOAT))
    initializers = []
    inputs = [x]
    for i, value in enumerate(node.inputs[1:], start=1):
        if value is None:
            inputs.append(None)
            continue
        copy = ir.Value(name=f"w{i}", const_value=value.const_value, shape=value.shape, type=value.type)
        initializers.append(copy)
        inputs.append(copy)
    y = ir.Value(name="y")
    attributes = {name: attr.value for name, attr in node.attributes.items()}
    conv = ir.node(node.op_type, inputs, attributes=attributes, name=node.name, outputs=[y], domain=node.domain)
    graph = ir.Graph([x], [y], nodes=[conv], initializers=initializers, opset_imports={"": opset}, name="layer")
    return ir.Model(graph, ir_version=10)


def serialized(model: ir.Model) -> bytes:
    return ir.serde.serialize_model(model).SerializeToString()


def signature(model: ir.Model) -> list[Any]:
    """What a layer's latency depends on: each node's op, domain and attributes, each input's shape and
    type, each initializer's shape and type (not names, not values)."""
    parts: list[Any] = [["input", str(v.type), [int(d) for d in v.shape]] for v in model.graph.inputs]
    for node in model.graph:
        attributes = sorted((name, repr(attr.value)) for name, attr in node.attributes.items())
        weights = [[str(v.type), list(v.shape) if v.shape is not None else None]
                   for v in node.inputs[1:] if v is not None and v.const_value is not None]
        parts.append([node.domain, node.op_type, attributes, weights])
    return parts


@dataclass
class Timing:
    """A candidate layer against the original, as :func:`analyzer.latency.compare.compare` measured it."""

    ratio: float
    ci: tuple[float, float]
    verdict: str
    p_value: float
    ms_before: float
    ms_after: float
    rounds: int
    measured: str = ""  # UTC time of the measurement

    def to_dict(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "ci": list(self.ci), "verdict": self.verdict, "p_value": self.p_value,
                "ms_before": self.ms_before, "ms_after": self.ms_after, "rounds": self.rounds, "measured": self.measured}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Timing:
        return cls(float(d["ratio"]), (float(d["ci"][0]), float(d["ci"][1])), str(d["verdict"]), float(d["p_value"]),
                   float(d["ms_before"]), float(d["ms_after"]), int(d["rounds"]), str(d.get("measured", "")))


@dataclass
class LatencyTable:
    """The on-disk table of layer timings; ``context`` (provider, threads, machine) is part of every key."""

    path: Path | None  # None: nothing is kept between runs
    context: dict[str, Any]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    @classmethod
    def open(cls, cache_dir: Path | None, context: dict[str, Any]) -> LatencyTable:
        table = cls(None if cache_dir is None else Path(cache_dir) / TABLE_FILE, context)
        if table.path is not None and table.path.is_file():
            try:
                doc = json.loads(table.path.read_text())
                if doc.get("schema") == TABLE_SCHEMA:
                    table.entries = dict(doc.get("entries", {}))
            except (OSError, ValueError):
                table.entries = {}  # a damaged table is measured afresh, then rewritten whole
        return table

    def key(self, before: ir.Model, after: ir.Model) -> str:
        text = json.dumps({"before": signature(before), "after": signature(after), "context": self.context},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> Timing | None:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        try:
            timing = Timing.from_dict(entry)
        except (KeyError, TypeError, ValueError, IndexError):
            self.misses += 1
            return None
        self.hits += 1
        return timing

    def put(self, key: str, timing: Timing) -> None:
        self.entries[key] = timing.to_dict()

    def save(self) -> None:
        if self.path is None:
            return
        from analyzer.atomic import write_text_atomic

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps({"schema": TABLE_SCHEMA, "entries": self.entries}, indent=0) + "\n")

    def describe(self) -> dict[str, Any]:
        return {"path": None if self.path is None else str(self.path), "hits": self.hits, "misses": self.misses,
                "context": self.context}


def time_pair(before: bytes, after: bytes, options: Any, seconds: float, seed: int) -> Timing:
    """Time ``after`` against ``before`` interleaved for about ``seconds`` (``options``: BenchOptions)."""
    import dataclasses

    from analyzer.latency.compare import compare
    from analyzer.latency.options import CompareOptions

    bench = dataclasses.replace(options, time_budget=seconds, iters=None, inputs_file=None, dims={}, batch=None,
                                input_shapes={})
    result = compare(before, after, CompareOptions(bench=bench, check_outputs=False, analyze=False,
                                                   bootstrap_resamples=1000), seed=seed)
    return Timing(result.ratio, result.ci, result.verdict, result.p_value, result.a.stats.median * 1e3,
                  result.b.stats.median * 1e3, result.rounds, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def run_layer(model: bytes, activations: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The layer model's output for each captured input (CPU: the error does not depend on the provider)."""
    from analyzer.latency.runtime import create_session

    session = create_session(model, provider="cpu").session
    return [{"y": session.run(None, {"x": x})[0]} for x in activations]


__all__ = ["layer_model", "signature", "LatencyTable", "Timing", "time_pair", "run_layer", "default_cache_dir",
           "serialized"]
