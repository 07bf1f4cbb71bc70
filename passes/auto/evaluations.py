"""What a search measured about one model on one calibration set, kept on disk so that a second search
of the same file with the same inputs reads it instead of measuring again.

Keyed by the sha256 of the serialized model and of the calibration arrays, then by node: the layer's
input shape, MACs and params, and per candidate its MACs and params, the key of its timing in the
layer-latency table (:class:`passes.auto.layers.LatencyTable`), its layer error and its output error
alone. Timings are not stored here: they belong to the machine, and live in the latency table.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVALUATIONS_FILE = "evaluations.json"
SCHEMA = "analyzer.auto-evaluations/1"
MAX_MODELS = 50  # model/calibration pairs kept; the oldest go first


def digest(model: bytes, runs: list[dict[str, Any]]) -> str:
    """sha256 of the model's bytes and of every calibration array (name, dtype, shape, bytes)."""
    h = hashlib.sha256(model)
    for run in runs:
        for name in sorted(run):
            array = run[name]
            h.update(f"{name}|{array.dtype}|{list(array.shape)}".encode())
            h.update(array.tobytes())
    return h.hexdigest()


@dataclass
class EvaluationStore:
    path: Path | None
    key: str
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> node -> layer record
    hits: int = 0

    @classmethod
    def open(cls, cache_dir: Path | None, key: str) -> EvaluationStore:
        store = cls(None if cache_dir is None else Path(cache_dir) / EVALUATIONS_FILE, key)
        if store.path is not None and store.path.is_file():
            try:
                doc = json.loads(store.path.read_text())
                if doc.get("schema") == SCHEMA and isinstance(doc.get("models"), dict):
                    store.models = doc["models"]
            except (OSError, ValueError):
                store.models = {}  # a damaged file is measured afresh, then rewritten whole
        return store

    def layer(self, node: str) -> dict[str, Any] | None:
        record = self.models.get(self.key, {}).get(node)
        if record is not None:
            self.hits += 1
        return record

    def put_layer(self, node: str, record: dict[str, Any]) -> None:
        self.models.setdefault(self.key, {})[node] = record

    def set_output_error(self, node: str, label: str, error: float) -> None:
        record = self.models.get(self.key, {}).get(node)
        if record is not None and label in record["candidates"]:
            record["candidates"][label]["output_error"] = error

    def save(self) -> None:
        if self.path is None:
            return
        from analyzer.atomic import write_text_atomic

        models = dict(self.models)
        models[self.key] = models.pop(self.key, {})  # the newest last: the oldest leave first
        while len(models) > MAX_MODELS:
            models.pop(next(iter(models)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps({"schema": SCHEMA, "models": models}) + "\n")


__all__ = ["EvaluationStore", "digest"]
