"""Architectures side by side: one row per model, the course's comparison table for any set of ONNX files.

:func:`side_by_side` inspects each model (``analyzer.inspect``, the same report ``inspect`` writes) and
reads from its report: params, MACs, FLOPs, weight bytes, peak inference memory, training memory at
the batch, the conv / fully-connected split of params and MACs, the depth and the receptive field at
the last spatial layer. With ``latency``, every model is timed in the same run, in turn: each round
runs a short block of each model in a fresh random order, so that load drift falls on all of them
alike, and each model's median comes with its 95% CI (:func:`analyzer.latency.stats.summarize`).
Accuracy is only what the user states.

Definitions (docs/report.md):

- **depth**: the most weighted layers (conv and fully-connected nodes) on any path from an input to an
  output — VGG-16 16, AlexNet 8, ResNet-50 50 (a projection shortcut runs beside three convs, not after
  them), GoogLeNet 22, as the papers count;
- **receptive field**: of the last node, in execution order, whose output is still spatial (rank 3 or
  more) and whose receptive field is not global;
- **training memory at batch b**: weights + gradients + optimizer state + activations per sample × b,
  the report's training memory with its activations scaled from the analyzed batch (activations of a
  CNN grow linearly with the batch); ``device_memory`` gives the largest batch that fits.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from analyzer.errors import AnalyzerError, OptionError

BATCH_CURVE = tuple(2**k for k in range(10))  # 1 .. 512, the memory-vs-batch chart's x axis
WEIGHTED = ("conv", "fc")
BLOCK_SECONDS = 0.05  # one model's share of a latency round


@dataclass
class Latency:
    median_s: float
    ci_s: tuple[float, float]
    iterations: int
    provider: str


@dataclass
class ModelRow:
    name: str
    path: str
    params: int
    macs: int
    flops: int
    weight_bytes: int
    peak_memory_bytes: int
    training_memory_bytes: int  # at the table's batch
    conv_params: int
    fc_params: int
    conv_macs: int
    fc_macs: int
    depth: int
    receptive_field: list[int] | None
    receptive_field_node: str | None
    fixed_training_bytes: int  # weights + gradients + optimizer state
    activation_bytes_per_sample: float
    complete: bool
    latency: Latency | None = None
    accuracy: float | None = None

    def training_memory_at(self, batch: int) -> float:
        return self.fixed_training_bytes + self.activation_bytes_per_sample * batch

    def largest_batch(self, device_bytes: int | None) -> int | None:
        """The largest batch whose training memory fits ``device_bytes`` (0: not even one)."""
        if device_bytes is None or self.activation_bytes_per_sample <= 0:
            return None
        return max(0, math.floor((device_bytes - self.fixed_training_bytes) / self.activation_bytes_per_sample))


@dataclass
class SideBySide:
    rows: list[ModelRow]
    batch: int
    optimizer: str
    device_memory_bytes: int | None = None
    latency_settings: dict[str, Any] | None = None
    machine: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def fits(self) -> dict[str, float | None]:
        """R² of latency against MACs and against params (least squares in log-log space)."""
        timed = [r for r in self.rows if r.latency is not None and r.macs > 0 and r.params > 0]
        if len(timed) < 3:
            return {"macs": None, "params": None}
        latency = [r.latency.median_s for r in timed]
        return {"macs": log_r2([r.macs for r in timed], latency), "params": log_r2([r.params for r in timed], latency)}

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for row in self.rows:
            doc = asdict(row)
            doc["training_memory_curve"] = {str(b): round(row.training_memory_at(b)) for b in BATCH_CURVE}
            doc["largest_batch"] = row.largest_batch(self.device_memory_bytes)
            rows.append(doc)
        return {"schema": "analyzer.table/1", "batch": self.batch, "optimizer": self.optimizer,
                "device_memory_bytes": self.device_memory_bytes, "latency_settings": self.latency_settings,
                "machine": self.machine, "fits_r2": self.fits(), "notes": self.notes, "rows": rows}


def log_r2(x: list[float], y: list[float]) -> float | None:
    """R² of the least-squares line log y = a + b log x (None when y does not vary)."""
    import numpy as np

    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    spread = (ly - ly.mean()) @ (ly - ly.mean())
    if spread == 0 or np.ptp(lx) == 0:
        return None
    slope, intercept = np.polyfit(lx, ly, 1)
    residual = ly - (intercept + slope * lx)
    return float(1 - residual @ residual / spread)


def depth(nodes: list[dict[str, Any]]) -> int:
    """The most conv/fc nodes on one path (nodes in execution order, as the report lists them)."""
    best_at: dict[str, int] = {}  # tensor name -> weighted layers on the deepest path that produced it
    deepest = 0
    for node in nodes:
        before = max((best_at.get(t["name"], 0) for t in node["inputs"] if t.get("name")), default=0)
        here = before + (1 if node.get("category") in WEIGHTED and node.get("params", 0) > 0 else 0)
        for out in node["outputs"]:
            best_at[out["name"]] = here
        deepest = max(deepest, here)
    return deepest


def last_spatial_receptive_field(nodes: list[dict[str, Any]]) -> tuple[list[int] | None, str | None]:
    """The receptive field of the last node whose output is spatial (rank 3 or more) and not global, with
    that node's name; None for the size where the analyzer could not follow the field that far (e.g.
    through the legacy exporter's decomposition of LRN), rather than an earlier layer's."""
    for node in reversed(nodes):
        rf = node.get("receptive_field")
        shape = node["outputs"][0].get("shape") if node["outputs"] else None
        if not shape or len(shape) < 3 or (rf and rf.get("global")):
            continue
        return (list(rf["size"]) if rf and rf.get("size") else None), node["name"]
    return None, None


def row_from_report(name: str, path: str, report: dict[str, Any]) -> ModelRow:
    nodes = report["nodes"]
    split = {(c, k): sum(n.get(k) or 0 for n in nodes if n.get("category") == c) for c in WEIGHTED for k in ("params", "macs")}
    totals, training = report["totals"], report["training_memory"]
    rf, rf_node = last_spatial_receptive_field(nodes)
    return ModelRow(
        name=name, path=path, params=totals["params"], macs=totals["macs"], flops=totals["flops"],
        weight_bytes=totals["weight_bytes"], peak_memory_bytes=totals["peak_memory_bytes"],
        training_memory_bytes=training["total"], conv_params=split["conv", "params"], fc_params=split["fc", "params"],
        conv_macs=split["conv", "macs"], fc_macs=split["fc", "macs"], depth=depth(nodes), receptive_field=rf,
        receptive_field_node=rf_node,
        fixed_training_bytes=training["weights"] + training["gradients"] + training["optimizer_state"],
        activation_bytes_per_sample=training["activations"] / max(training["batch"], 1),
        complete=report["complete"])


def parse_accuracy(items: list[str]) -> dict[str, float]:
    """``NAME=VALUE`` items (a percentage or a fraction, as the user writes it)."""
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            values[name.strip()] = float(value.strip().rstrip("%"))
        except ValueError:
            raise OptionError("accuracy", f"{item!r}: expected NAME=VALUE, e.g. vgg16=71.6") from None
        if not sep or not name.strip():
            raise OptionError("accuracy", f"{item!r}: expected NAME=VALUE, e.g. vgg16=71.6")
    return values


def parse_size(text: str) -> int:
    """``16GiB``, ``512MiB``, ``8GB``, or a byte count."""
    units = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "kb": 10**3, "mb": 10**6, "gb": 10**9,
             "tb": 10**12, "b": 1, "": 1}
    stripped = text.strip().lower()
    number = stripped.rstrip("kmgtib")
    unit = stripped[len(number):]
    try:
        value = float(number) * units[unit]
    except (ValueError, KeyError):
        raise OptionError("device_memory", f"{text!r}: expected a size such as 16GiB, 512MiB or 8GB") from None
    if value <= 0:
        raise OptionError("device_memory", f"{text!r} must be positive")
    return int(value)


def model_names(paths: list[str | os.PathLike]) -> list[str]:
    """Each file's stem; a parent folder added where two stems are alike."""
    stems = [Path(p).stem for p in paths]
    return [f"{Path(p).parent.name}/{s}" if stems.count(s) > 1 else s for p, s in zip(paths, stems)]


def side_by_side(paths: list[str | os.PathLike], *, names: list[str] | None = None, batch: int | None = None,
                 dims: dict[str, int] | None = None, input_shapes: dict[str, list[int]] | None = None,
                 optimizer: str = "sgd", latency: bool = False, time_per_model: float = 2.0,
                 provider: str = "auto", threads: int | None = None, accuracy: dict[str, float] | None = None,
                 device_memory_bytes: int | None = None, seed: int = 0) -> SideBySide:
    import analyzer

    if not paths:
        raise AnalyzerError("give at least one model")
    names = names or model_names(paths)
    accuracy = dict(accuracy or {})
    unknown = sorted(set(accuracy) - set(names))
    if unknown:
        raise OptionError("accuracy", f"{unknown[0]!r} is not one of the models ({', '.join(names)})")
    rows = []
    for name, path in zip(names, paths):
        report = analyzer.inspect(path, batch=batch, dims=dims or {}, input_shapes=input_shapes or {}, optimizer=optimizer)
        row = row_from_report(name, str(path), report.to_dict())
        row.accuracy = accuracy.get(name)
        rows.append(row)
    table = SideBySide(rows, batch=batch or 1, optimizer=optimizer, device_memory_bytes=device_memory_bytes)
    incomplete = [r.name for r in rows if not r.complete]
    if incomplete:
        table.notes.append(f"incomplete counts (see each model's inspect report): {', '.join(incomplete)}")
    if latency:
        _time_in_turn(table, paths, batch=batch, dims=dims, input_shapes=input_shapes, time_per_model=time_per_model,
                      provider=provider, threads=threads, seed=seed)
    return table


def _time_in_turn(table: SideBySide, paths: list[str | os.PathLike], *, batch, dims, input_shapes,
                  time_per_model: float, provider: str, threads: int | None, seed: int) -> None:
    from analyzer.latency.bench import prepare, warm_up
    from analyzer.latency.machine import machine_info
    from analyzer.latency.options import BenchOptions
    from analyzer.latency.stats import summarize

    if not time_per_model > 0:
        raise OptionError("time_per_model", f"must be positive, got {time_per_model}")
    options = BenchOptions(provider=provider, batch=batch, dims=dims or {}, input_shapes=input_shapes or {},
                           threads=threads, seed=seed)
    runners = [prepare(path, options) for path in paths]
    for runner in runners:
        warm_up(runner, 3, 1.0)
    samples: list[list[float]] = [[] for _ in runners]
    spent = [0.0 for _ in runners]
    order = list(range(len(runners)))
    rng = random.Random(seed)
    while min(spent) < time_per_model:
        rng.shuffle(order)
        for i in order:
            start = time.perf_counter()
            while True:  # one block: at least one run, about BLOCK_SECONDS
                samples[i].append(runners[i].run_once())
                if time.perf_counter() - start >= BLOCK_SECONDS:
                    break
            spent[i] += time.perf_counter() - start
    for row, runner, times in zip(table.rows, runners, samples):
        stats = summarize(times, batch=runner.items_per_run)
        row.latency = Latency(stats.median, tuple(stats.median_ci), stats.iterations, runner.info.provider)
    table.latency_settings = {"provider": runners[0].info.provider, "seconds_per_model": time_per_model,
                              "block_seconds": BLOCK_SECONDS, "threads": threads, "order_seed": seed,
                              "method": "models in turn, a fresh random order each round; median with its 95% CI"}
    table.machine = machine_info(on_cuda=any(r.on_cuda for r in runners))
