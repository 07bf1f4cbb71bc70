"""onnxruntime sessions and model inputs, shared by verification, benchmarks and profiling.

The provider really in use is read back from the session: ``get_available_providers()`` lists CUDA
even on machines without a GPU, so only ``session.get_providers()`` tells the truth.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.errors import AnalyzerError, OptionError, first_line

PROVIDER_CHOICES = ("auto", "cuda", "cpu")
# --optimization choices -> onnxruntime.GraphOptimizationLevel member names
OPTIMIZATION_LEVELS = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# onnxruntime type strings -> numpy dtype names
ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def model_label(model: str | os.PathLike | bytes) -> str:
    """How reports and errors name a model: its file name, or "model" for one given as bytes."""
    return "model" if isinstance(model, bytes) else Path(model).name


def fallback_note(provider: str) -> str:
    """The note a report carries when the session asked for CUDA and runs on ``provider`` instead."""
    return f"CUDA execution provider was listed but the session fell back to {provider}"


@dataclass
class SessionInfo:
    session: Any  # onnxruntime.InferenceSession
    requested: str  # auto | cuda | cpu
    providers: list[str]  # as reported by the session
    fell_back: bool  # CUDA was asked for (or auto found it listed) but the session runs on CPU
    creation_seconds: float

    @property
    def provider(self) -> str:
        return self.providers[0] if self.providers else "unknown"


def _import_ort():
    import onnxruntime as ort

    ort.set_default_logger_severity(4)  # keep ORT's own log lines off the user's terminal
    return ort


def _preload_cuda_libraries(ort: Any, verbose: bool) -> None:
    """Load CUDA/cuDNN from pip-installed wheels where present; it prints each miss, so silence it."""
    if not hasattr(ort, "preload_dlls"):
        return
    import contextlib
    import io

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            ort.preload_dlls()
        except Exception:  # noqa: BLE001 - best effort; the fall-back check after session creation is what counts
            pass
    if verbose and sink.getvalue():
        print(sink.getvalue(), end="")


def _session_options(
    ort: Any,
    *,
    threads: int | None,
    verbose: bool,
    graph_optimization: str | None,
    optimized_model_path: str | os.PathLike | None,
    session_config: dict[str, str] | None,
    profile_prefix: str | None,
    enable_profiling: bool,
) -> Any:
    """``onnxruntime.SessionOptions`` for :func:`create_session`'s arguments of the same names."""
    so = ort.SessionOptions()
    so.log_severity_level = 0 if verbose else 4
    if verbose:
        ort.set_default_logger_severity(0)
    if threads is not None:
        if threads < 1:
            raise OptionError("threads", f"must be positive, got {threads}")
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    if graph_optimization is not None:
        if graph_optimization not in OPTIMIZATION_LEVELS:
            raise AnalyzerError(
                f"unknown optimization level {graph_optimization!r}; choose one of {', '.join(OPTIMIZATION_LEVELS)}"
            )
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[graph_optimization])
    if optimized_model_path is not None:
        so.optimized_model_filepath = str(optimized_model_path)
        so.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", Path(optimized_model_path).name + ".weights"
        )
    for key, value in (session_config or {}).items():
        so.add_session_config_entry(key, str(value))
    if enable_profiling:
        so.enable_profiling = True
        if profile_prefix:
            so.profile_file_prefix = profile_prefix
    return so


def create_session(
    model: str | os.PathLike | bytes,
    *,
    provider: str = "cpu",
    threads: int | None = None,
    cuda_options: dict[str, Any] | None = None,
    enable_profiling: bool = False,
    profile_prefix: str | None = None,
    verbose: bool = False,
    graph_optimization: str | None = None,
    optimized_model_path: str | os.PathLike | None = None,
    session_config: dict[str, str] | None = None,
) -> SessionInfo:
    """Create an inference session with explicit providers and report what it really uses.

    ``provider="cuda"`` raises :class:`AnalyzerError` when the session falls back to CPU;
    ``"auto"`` takes CUDA when onnxruntime lists it and records a fall-back instead of failing.
    ``graph_optimization`` is one of :data:`OPTIMIZATION_LEVELS` (None: onnxruntime's default, "all");
    ``optimized_model_path`` makes onnxruntime write the graph it really runs there, weights in a
    sidecar ``<name>.weights`` so that large models stay under protobuf's 2 GiB limit.
    ``session_config`` entries go to ``SessionOptions.add_session_config_entry`` as they are.
    """
    if provider not in PROVIDER_CHOICES:
        raise AnalyzerError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDER_CHOICES)}")
    ort = _import_ort()
    want_cuda = provider == "cuda" or (provider == "auto" and CUDA in ort.get_available_providers())
    providers: list[Any] = [CPU]
    if want_cuda:
        _preload_cuda_libraries(ort, verbose)
        providers = [(CUDA, dict(cuda_options or {})), CPU]
    so = _session_options(
        ort,
        threads=threads,
        verbose=verbose,
        graph_optimization=graph_optimization,
        optimized_model_path=optimized_model_path,
        session_config=session_config,
        profile_prefix=profile_prefix,
        enable_profiling=enable_profiling,
    )
    source = model if isinstance(model, bytes) else str(model)
    start = time.perf_counter()
    try:
        session = ort.InferenceSession(source, sess_options=so, providers=providers)
    except Exception as e:  # ORT raises several exception types; all mean "cannot load"
        raise AnalyzerError(f"onnxruntime cannot load {model_label(model)}: {first_line(e)}") from e
    creation = time.perf_counter() - start
    used = list(session.get_providers())
    fell_back = want_cuda and (not used or used[0] != CUDA)
    if fell_back and provider == "cuda":
        raise AnalyzerError(
            f"CUDA execution provider requested but onnxruntime fell back to {used[0] if used else 'nothing'} "
            "(no usable GPU or CUDA libraries)"
        )
    return SessionInfo(session, provider, used, fell_back, creation)


def _resolve_dims(
    name: str, shape: list[Any], dims: dict[str, int], batch: int | None, assumed: dict[str, int]
) -> tuple[int, ...]:
    resolved = []
    for axis, d in enumerate(shape):
        if isinstance(d, int) and d >= 0:
            resolved.append(d)
        elif isinstance(d, str) and d in dims:
            resolved.append(dims[d])
        elif axis == 0 and batch is not None:
            resolved.append(batch)
        else:
            key = d if isinstance(d, str) else f"{name}[{axis}]"
            assumed[key] = 1
            resolved.append(1)
    return tuple(resolved)


def bound_shapes(specs: list[tuple[str, list[Any], str]], shapes: dict[str, list[int]]) -> dict[str, list[int]]:
    """``shapes`` by input name, checked against the inputs' ranks and fixed dims; the key "" names the
    only input of a one-input model (``--input-shape 1x3x320x320``)."""
    by_name = {name: shape for name, shape, _ in specs}
    bound: dict[str, list[int]] = {}
    for name, shape in shapes.items():
        if name == "":
            if len(specs) != 1:
                raise OptionError("input_shapes", f"without a name needs a model with one input; this one has "
                                  f"{len(specs)}: {', '.join(by_name)} (use NAME:SHAPE)")
            name = specs[0][0]
        if name not in by_name:
            raise OptionError("input_shapes", f"names {name!r}, which is not an input (inputs: {', '.join(by_name)})")
        declared = by_name[name]
        if len(declared) != len(shape):
            raise OptionError("input_shapes", f"{name}: rank {len(shape)} given, the model's input has rank {len(declared)}")
        fixed = [(axis, d, s) for axis, (d, s) in enumerate(zip(declared, shape)) if isinstance(d, int) and d >= 0 and d != s]
        if fixed:
            axis, d, s = fixed[0]
            raise OptionError("input_shapes", f"{name}: dim {axis} is fixed at {d} in the model, {s} given")
        bound[name] = list(shape)
    return bound


def shape_text(feeds: dict[str, Any]) -> str:
    """``images 1x3x320x320, mask 1x100`` for messages."""
    return ", ".join(f"{name} {'x'.join(map(str, array.shape)) or 'scalar'}" for name, array in feeds.items())


def input_specs(session: Any) -> list[tuple[str, list[Any], str]]:
    """(name, shape with symbolic dims, numpy dtype name) for each model input."""
    specs = []
    for arg in session.get_inputs():
        dtype = ORT_TYPES.get(arg.type)
        if dtype is None:
            raise AnalyzerError(f"input {arg.name!r} has type {arg.type}, which cannot be generated")
        specs.append((arg.name, list(arg.shape), dtype))
    return specs


def make_inputs(
    session: Any,
    *,
    dims: dict[str, int] | None = None,
    batch: int | None = None,
    shapes: dict[str, list[int]] | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, int]]:
    """Random inputs from the session's input shapes and dtypes; returns (feeds, assumed dims).

    ``shapes`` (by input name; "" for the only input) gives whole input shapes, ``dims`` binds symbolic
    dims by name and ``batch`` a free leading dim; any dim still free is taken as 1 and listed in the
    assumed dims."""
    import numpy as np

    rng = np.random.default_rng(seed)
    feeds: dict[str, Any] = {}
    assumed: dict[str, int] = {}
    specs = input_specs(session)
    whole = bound_shapes(specs, shapes or {})
    for name, shape, dtype in specs:
        concrete = tuple(whole[name]) if name in whole else _resolve_dims(name, shape, dims or {}, batch, assumed)
        if dtype.startswith("float"):
            feeds[name] = rng.standard_normal(concrete).astype(dtype)
        elif dtype == "bool":
            feeds[name] = rng.integers(0, 2, concrete).astype(bool)
        else:
            # small non-negative integers: safe as indices or token ids in most models
            feeds[name] = rng.integers(0, 2, concrete).astype(dtype)
    return feeds, assumed


def load_inputs(path: str | os.PathLike, session: Any) -> dict[str, Any]:
    """Inputs from ``.npy`` (a model with one input) or ``.npz`` (arrays named after the inputs), checked."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise AnalyzerError(f"input file {path} does not exist")
    specs = input_specs(session)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        else:
            if len(specs) != 1:
                raise AnalyzerError(f"{path.name}: a .npy file feeds a model with one input; this one has {len(specs)}")
            arrays = {specs[0][0]: np.load(path, allow_pickle=False)}
    except AnalyzerError:
        raise
    except Exception as e:
        raise AnalyzerError(f"cannot read inputs from {path}: {e}") from e
    feeds = {}
    for name, shape, dtype in specs:
        if name not in arrays:
            raise AnalyzerError(f"{path.name} has no array for input {name!r} (has: {', '.join(sorted(arrays))})")
        array = arrays[name]
        if array.ndim != len(shape) or any(
            isinstance(d, int) and d >= 0 and d != a for d, a in zip(shape, array.shape)
        ):
            raise AnalyzerError(f"{path.name}: input {name!r} has shape {list(array.shape)}, the model expects {shape}")
        feeds[name] = array.astype(dtype, copy=False)
    return feeds
