"""Build a model (zoo name or ``module.path:factory``), export it to one ONNX file and check the file.

Steps: build in eval mode under a fixed seed -> ``torch.onnx.export`` (dynamo or legacy) -> readable node
names and module paths (:mod:`exporters.naming`) -> IR version onnxruntime loads -> ``onnx.checker``
(full check) -> written atomically -> onnxruntime output compared with torch's on a random input.
The check fails when ``max|ort - torch| > 1e-4 · max|torch|``; the file is then not left behind.
torch and onnxscript are imported only here, inside functions.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.atomic import atomic_path
from analyzer.errors import AnalyzerError, OptionError
from exporters.naming import STACK_TRACE_KEY, drop_metadata, lower_ir_version, rename_nodes
from exporters.registry import ZOO

EXPORTERS = ("dynamo", "legacy")
DEFAULT_OPSET = {"dynamo": 18, "legacy": 17}
MAX_IR_VERSION = 10  # onnxruntime 1.31 loads up to 13; 10 also suits older runtimes
RELATIVE_TOLERANCE = 1e-4
TWO_GB = 2**31
INSTALL_HINT = "install the export extra: pip install 'cnn-onnx-analyzer[export]'"


@dataclass
class ExportResult:
    path: Path
    model: str  # zoo name or module.path:factory
    exporter: str
    input_shape: tuple[int, ...]  # the shape checked with onnxruntime
    opset: int
    ir_version: int
    dynamic_batch: bool
    params: int  # torch module parameters (BN running stats not counted)
    nodes: int
    size_bytes: int
    max_abs_diff: float
    rel_diff: float  # max_abs_diff / max|torch output|
    seconds: float


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x3x224x224"`` -> ``(1, 3, 224, 224)``; every dim a positive integer."""
    parts = str(text).lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise AnalyzerError(f"bad input shape {text!r}: expected positive integers joined by 'x', e.g. 1x3x224x224") from None
    if not dims or any(d <= 0 for d in dims):
        raise AnalyzerError(f"bad input shape {text!r}: every dimension must be a positive integer")
    return dims


def import_torch(exporter: str = "legacy") -> Any:
    """torch (and onnxscript for the dynamo exporter), or an AnalyzerError saying how to install them."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        raise AnalyzerError(f"torch is not installed; {INSTALL_HINT}") from None
    if exporter == "dynamo":
        try:
            importlib.import_module("onnxscript")
        except ImportError:
            raise AnalyzerError(f"onnxscript (needed by the dynamo exporter) is not installed; {INSTALL_HINT}") from None
    return torch


def _one_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # torch colours its messages
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def resolve_factory(name_or_factory: str | Callable[..., Any]) -> tuple[str, Callable[..., Any], Any]:
    """(label, factory, zoo entry or None) for a zoo name, ``module.path:factory`` or a callable."""
    if callable(name_or_factory):
        return getattr(name_or_factory, "__qualname__", repr(name_or_factory)), name_or_factory, None
    name = str(name_or_factory)
    entry = ZOO.get(name)
    if entry is not None:
        return name, getattr(importlib.import_module(entry.module), entry.function), entry
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        raise AnalyzerError(f"unknown model {name!r}: run `analyzer zoo` for the names, or give module.path:factory")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a user's own module in the working directory, as `python -m` would
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise AnalyzerError(f"cannot import {module_name!r} for {name}: {_one_line(e)}") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise AnalyzerError(f"{module_name} has no callable {attr!r}")
    return name, factory, None


def build(name: str | Callable[..., Any], **options: Any) -> Any:
    """The torch module for a zoo name (or factory) with keyword options; ``None`` options are dropped."""
    torch = import_torch("legacy")
    label, factory, entry = resolve_factory(name)
    options = {k: v for k, v in options.items() if v is not None}
    if entry is not None:
        unknown = sorted(set(options) - set(entry.options))
        if unknown:
            allowed = ", ".join(entry.options) or "none"
            raise AnalyzerError(f"{label} has no option {unknown[0]!r} (its options: {allowed})")
    try:
        model = factory(**options)
    except Exception as e:
        raise AnalyzerError(f"building {label} failed: {_one_line(e)}") from e
    if not isinstance(model, torch.nn.Module):
        raise AnalyzerError(f"{label} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def build_seeded(name: str | Callable[..., Any], *, seed: int = 0, **options: Any) -> Any:
    """:func:`build` in eval mode with weights drawn under ``torch.manual_seed(seed)``: the module
    :func:`export` wrote, rebuilt bit for bit. The caller's global RNG state is left untouched."""
    torch = import_torch("legacy")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(name, **options).eval()
        if resolve_factory(name)[2] is not None:
            _randomize_batchnorm(model, torch)
        return model


def _randomize_batchnorm(model: Any, torch: Any) -> None:
    """Give a zoo model's BatchNorm layers the statistics of a trained one.

    Fresh BatchNorm is the identity (mean 0, var 1, scale 1, shift 0): folding it into a conv would go
    unchecked and every folded bias would be zero, which exporters then drop or share between layers —
    nothing like a real model. A user's own factory is never touched.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                if module.affine:
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_(0.0, 0.1)


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[io.StringIO]:
    """Keep torch's and onnxscript's progress lines, warnings and log records off the terminal."""
    sink = io.StringIO()
    if verbose:
        yield sink
        return
    loggers = [logging.getLogger(n) for n in ("torch", "torch.onnx", "torch.export", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL + 1)  # torch.export logs ERROR records for failures we report ourselves
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield sink
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _to_onnx(torch: Any, model: Any, example: Any, *, exporter: str, opset: int, dynamic_batch: bool) -> Any:
    """The exported ModelProto (in memory; every zoo model is far below protobuf's 2 GB limit)."""
    import onnx

    if exporter == "dynamo":
        dynamic_shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
        program = torch.onnx.export(
            model, (example,), dynamo=True, opset_version=opset, dynamic_shapes=dynamic_shapes,
            input_names=["input"], output_names=["output"], external_data=False,
        )
        return program.model_proto
    buffer = io.BytesIO()
    dynamic_axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(
        model, (example,), buffer, dynamo=False, opset_version=opset,
        input_names=["input"], output_names=["output"], dynamic_axes=dynamic_axes,
    )
    return onnx.load_from_string(buffer.getvalue())


def _save(model: Any, path: Path, final_name: str) -> None:
    """One self-contained file; weights go to a ``<name>.data`` sidecar only past protobuf's 2 GB limit."""
    import onnx

    weight_bytes = sum(len(t.raw_data) for t in model.graph.initializer)
    if weight_bytes < TWO_GB - 2**24:
        onnx.save_model(model, str(path))
    else:
        onnx.save_model(model, str(path), save_as_external_data=True, location=f"{final_name}.data")


def compare_with_torch(torch: Any, model: Any, onnx_path: Path, shape: tuple[int, ...], seed: int) -> tuple[float, float]:
    """(max |ort - torch|, that divided by max |torch|) on a seeded standard-normal input of ``shape``."""
    import numpy as np

    from analyzer.latency.runtime import create_session

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=generator)
    with torch.no_grad():
        expected = model(x)
    if not isinstance(expected, torch.Tensor):
        raise AnalyzerError(f"the model returns {type(expected).__name__}; only a single tensor output can be checked")
    expected = expected.numpy()
    session = create_session(onnx_path, provider="cpu").session
    actual = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    if actual.shape != expected.shape:
        raise AnalyzerError(f"onnxruntime output shape {list(actual.shape)} differs from torch's {list(expected.shape)}")
    max_abs = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    return max_abs, rel


def export(
    name_or_factory: str | Callable[..., Any],
    output: str | os.PathLike,
    *,
    input_shape: tuple[int, ...] | str | None = None,
    batch: int | None = None,
    opset: int | None = None,
    dynamic_batch: bool = False,
    exporter: str = "dynamo",
    num_classes: int | None = None,
    batch_norm: bool | None = None,
    dropout: float | None = None,
    verbose: bool = False,
    seed: int = 0,
    keep_stack_traces: bool = True,
    progress: Callable[[str], None] | None = None,
    **model_options: Any,
) -> ExportResult:
    """Export a zoo model or a user's factory to ``output`` and check it (see the module docstring).

    ``input_shape`` is batch first (default: the zoo entry's); ``batch`` replaces its first dim.
    With ``dynamic_batch`` the first input and output dim is symbolic (``batch``). ``seed`` fixes the
    weights and the check input. ``keep_stack_traces=False`` drops dynamo's per-node Python stack
    traces (they hold this machine's file paths). ``progress`` receives a short line per step.
    Other keywords go to the factory (e.g. ``lrn=False`` for AlexNet, ``input_size=28`` for LeNet-5; a
    zoo model's default input shape follows ``input_size``).
    """
    start = time.perf_counter()
    step = progress or (lambda _msg: None)
    if exporter not in EXPORTERS:
        raise AnalyzerError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    output = Path(output)
    if output.is_dir():
        raise AnalyzerError(f"cannot write {output}: it is a directory")
    directory = output.parent if str(output.parent) else Path(".")
    if not directory.is_dir():
        raise AnalyzerError(f"cannot write {output}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise AnalyzerError(f"cannot write {output}: directory {directory} is not writable")
    if batch is not None and batch <= 0:
        raise OptionError("batch", f"must be positive, got {batch}")
    opset = DEFAULT_OPSET[exporter] if opset is None else int(opset)
    torch = import_torch(exporter)
    import onnx

    label, _factory, entry = resolve_factory(name_or_factory)
    if isinstance(input_shape, str):
        input_shape = parse_shape(input_shape)
    if input_shape is None:
        if entry is None:
            raise OptionError("input_shape", f"is needed for {label}, which is not in the zoo (e.g. 1x3x224x224)")
        input_shape = entry.input_shape
        if model_options.get("input_size") is not None:
            size = int(model_options["input_size"])
            input_shape = (*entry.input_shape[:-2], size, size)
    shape = tuple(int(d) for d in input_shape)
    if batch is not None:
        shape = (batch, *shape[1:])

    step(f"building {label}")
    model = build_seeded(name_or_factory, seed=seed, num_classes=num_classes, batch_norm=batch_norm, dropout=dropout,
                         **model_options)
    params = sum(p.numel() for p in model.parameters())
    # torch.export specialises a dim of size 1, so a dynamic batch is traced at 2 at least
    trace_shape = (max(shape[0], 2), *shape[1:]) if dynamic_batch else shape
    example = torch.randn(*trace_shape, generator=torch.Generator().manual_seed(seed))

    try:
        with torch.no_grad():
            model(example)
    except Exception as e:
        given = "x".join(map(str, trace_shape))
        raise AnalyzerError(f"{label} cannot run on an input of shape {given}: {_one_line(e)}") from e

    step(f"exporting {label} with the {exporter} exporter (opset {opset})")
    with _quiet(verbose):
        try:
            with torch.no_grad():
                proto = _to_onnx(torch, model, example, exporter=exporter, opset=opset, dynamic_batch=dynamic_batch)
        except Exception as e:
            raise AnalyzerError(f"{exporter} export of {label} failed: {_one_line(e)}") from e
    rename_nodes(proto, from_metadata=exporter == "dynamo")
    if not keep_stack_traces:
        drop_metadata(proto, STACK_TRACE_KEY)
    lower_ir_version(proto, MAX_IR_VERSION)

    step("checking the model (onnx.checker, full check)")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise AnalyzerError(f"exported {label} fails onnx.checker: {_one_line(e)}") from e

    step("comparing onnxruntime with torch")
    with atomic_path(output) as tmp:
        _save(proto, tmp, output.name)
        max_abs, rel = compare_with_torch(torch, model, tmp, shape, seed)
        if not rel <= RELATIVE_TOLERANCE:
            raise AnalyzerError(
                f"onnxruntime output of {label} differs from torch: max abs diff {max_abs:.3g} "
                f"= {rel:.3g} of the output's max abs (limit {RELATIVE_TOLERANCE:g})"
            )
    return ExportResult(
        path=output, model=label, exporter=exporter, input_shape=shape, opset=opset,
        ir_version=proto.ir_version, dynamic_batch=dynamic_batch, params=params, nodes=len(proto.graph.node),
        size_bytes=output.stat().st_size, max_abs_diff=max_abs, rel_diff=rel,
        seconds=time.perf_counter() - start,
    )
