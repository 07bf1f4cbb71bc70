"""Verification run after every pass that changed the model.

1. ``onnx.checker.check_model(full_check=True)`` on the rewritten model;
2. every value the pass created has a type and a shape after shape inference;
3. onnxruntime loads the model (``analyzer.latency.runtime.create_session``, CPU);
4. the rewritten model and the pass's input model run on the same inputs — ``samples`` random draws
   (seeds ``seed``, ``seed + 1``, ...) or the user's ``.npy``/``.npz`` — and the outputs are compared
   with :func:`analyzer.latency.numerics.compare_outputs` (max abs error, relative L2, cosine, top-1).

Models whose weights exceed :data:`analyzer.model_files.EXTERNAL_DATA_BYTES` are checked and loaded from
a temporary directory with external data (protobuf cannot serialize more than 2 GB).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx_ir as ir

from analyzer import model_files
from analyzer.errors import AnalyzerError, OptionError, first_line
from analyzer.latency.numerics import Comparison, compare_outputs
from analyzer.native import contained


@dataclass(frozen=True)
class VerifyOptions:
    """How a rewrite is checked against its input, and at which input shapes; the one place these defaults live.

    ``input_shapes`` (whole shapes by input name, "" for the only input), ``dims`` (symbolic dims by name)
    and ``batch`` bind the inputs: the random draws, the analyzer's before/after figures and any timing
    all use them. With ``inputs`` the file's arrays decide the shapes. A dim left free is taken as 1."""

    samples: int = 2  # random input draws
    seed: int = 0
    inputs: str | None = None  # .npy/.npz file; replaces the random draws
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    batch: int | None = None

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise OptionError("samples", f"must be at least 1 (verification needs an input), got {self.samples}")
        if self.inputs and not Path(self.inputs).is_file():
            raise OptionError("inputs", f"file {self.inputs} does not exist")
        if self.batch is not None and self.batch < 1:
            raise OptionError("batch", f"must be positive, got {self.batch}")

    @property
    def bound(self) -> bool:
        """Whether the user chose the input shapes (or gave inputs, whose shapes count)."""
        return bool(self.input_shapes or self.dims or self.batch is not None or self.inputs)

    def analysis_binding(self) -> dict[str, Any]:
        """Keywords of :func:`analyzer.inspect` that give its figures these inputs' shapes."""
        if self.inputs:
            return {"input_shapes": _file_shapes(self.inputs)}
        return {"input_shapes": dict(self.input_shapes), "dims": dict(self.dims), "batch": self.batch}


def _file_shapes(path: str) -> dict[str, list[int]]:
    """The shapes of the arrays in an .npy (the key "": the only input) or .npz file, without reading them."""
    import numpy as np

    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as data:
                return {name: list(data[name].shape) for name in data.files}
        return {"": list(np.load(path, mmap_mode="r", allow_pickle=False).shape)}
    except Exception as e:  # numpy raises ValueError, OSError, zipfile errors for a bad file
        raise OptionError("inputs", f"cannot read {path}: {first_line(e)}") from e


@dataclass
class ModelRun:
    """Inputs fed and outputs produced, one dict per sample; reused by the next pass as its reference."""

    options: VerifyOptions
    feeds: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


@dataclass
class Verification:
    checker_error: str | None = None
    missing_shapes: list[str] = field(default_factory=list)  # new values without a type or shape
    load_error: str | None = None
    comparison: Comparison | None = None
    failure: str | None = None  # set by the pass when a tolerance is exceeded
    # relative L2 change of the input model's outputs when its float inputs move by one float32 rounding
    # step: measured for an exact pass whose outputs differ by more than the exact tolerance
    rounding_sensitivity: float | None = None

    @property
    def structural_failure(self) -> str | None:
        if self.checker_error:
            return f"onnx.checker rejects the rewritten model: {self.checker_error}"
        if self.missing_shapes:
            return f"shape inference left {len(self.missing_shapes)} new value(s) without a shape: {self.missing_shapes[0]}"
        if self.load_error:
            return self.load_error
        return None

    @property
    def passed(self) -> bool:
        return self.structural_failure is None and self.failure is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checker": self.checker_error or "ok",
            "missing_shapes": list(self.missing_shapes),
            "onnxruntime": self.load_error or "ok",
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "rounding_sensitivity": self.rounding_sensitivity,
            "failure": self.failure or self.structural_failure,
        }


@contextlib.contextmanager
def loadable(model: ir.Model) -> Iterator[Any]:
    """Yield the model as a ModelProto, or as a file path (with external data) when it is too big."""
    if not model_files.needs_external_data(model):
        yield ir.serde.serialize_model(model)
        return
    with tempfile.TemporaryDirectory(prefix="analyzer-verify-") as tmp:
        path = Path(tmp) / "model.onnx"
        ir.save(model, path, external_data="model.onnx.data")
        yield path


def _session(source: Any) -> Any:
    from analyzer.latency.runtime import create_session

    data = str(source) if isinstance(source, Path) else source.SerializeToString()
    return create_session(data, provider="cpu").session


def _run(session: Any, options: VerifyOptions, feeds: list[dict[str, Any]] | None) -> ModelRun:
    from analyzer.latency.runtime import load_inputs, make_inputs, shape_text

    assumed: dict[str, int] = {}
    if feeds is None:
        if options.inputs:
            feeds = [load_inputs(options.inputs, session)]
        else:
            made = [make_inputs(session, dims=options.dims, batch=options.batch, shapes=options.input_shapes,
                                seed=options.seed + i) for i in range(options.samples)]
            feeds, assumed = [f for f, _ in made], made[0][1]
    names = [o.name for o in session.get_outputs()]
    outputs = []
    for feed in feeds:
        try:
            outputs.append(dict(zip(names, session.run(None, feed))))
        except Exception as e:  # onnxruntime's errors for shapes a model cannot take (Concat, Reshape, ...)
            free = f"; dims nobody bound were taken as 1 ({', '.join(assumed)})" if assumed else ""
            raise OptionError("input_shapes", f"must fit the model: it cannot run at {shape_text(feed)}{free}: "
                              f"{first_line(e)}") from e
    return ModelRun(options, feeds, outputs)


def run_model(model: ir.Model, options: VerifyOptions, feeds: list[dict[str, Any]] | None = None) -> ModelRun:
    """Run ``model`` on ``feeds`` (or on inputs made from ``options``) and keep the outputs."""
    with loadable(model) as source:
        session = _session(source)
    return _run(session, options, feeds)


def _shape_lost(value: ir.Value) -> bool:
    """A new value without a type or shape although its node's inputs have theirs: the rewrite lost it.
    Where an input's shape is unknown (a model onnx cannot infer past some op: a Concat of a value of
    unknown rank, a Reshape to a computed shape), the new value cannot have one either, as the value it
    replaces had none."""
    if value.type is not None and value.shape is not None:
        return False
    producer = value.producer()
    inputs = [] if producer is None else [v for v in producer.inputs if v is not None and v.const_value is None]
    return all(v.shape is not None and v.type is not None for v in inputs)


FLOAT32_STEP = 2.0 ** -23  # relative spacing of float32 numbers near 1


def rounding_sensitivity(model: ir.Model, reference: ModelRun) -> float:
    """How far ``model``'s outputs move when each float input element moves by one float32 rounding step
    (``x · (1 ± 2⁻²³)``, signs drawn at random): the floor below which no rewrite can be told from
    float32 rounding. Well-conditioned CNNs give about 1e-7; a network that amplifies rounding (random
    inputs through a thresholding head) can give 1e-2."""
    import numpy as np

    rng = np.random.default_rng(12345)
    feeds = []
    for feed in reference.feeds:
        moved = {}
        for name, array in feed.items():
            if np.issubdtype(array.dtype, np.floating):
                signs = rng.choice(np.array([-1.0, 1.0]), size=array.shape)
                moved[name] = (array * (1.0 + FLOAT32_STEP * signs)).astype(array.dtype)
            else:
                moved[name] = array
        feeds.append(moved)
    perturbed = run_model(model, reference.options, feeds)
    return compare_outputs(reference.outputs, perturbed.outputs).relative_l2_error


def verify_rewrite(
    before: ir.Model,
    after: ir.Model,
    new_values: list[ir.Value],
    options: VerifyOptions,
    reference: ModelRun | None = None,
) -> tuple[Verification, ModelRun | None, ModelRun | None]:
    """Check ``after`` structurally and numerically against ``before``; returns the runs of both."""
    import onnx

    verification = Verification()
    verification.missing_shapes = [v.name for v in new_values if _shape_lost(v)]
    with loadable(after) as source:
        try:
            contained("onnx.checker", lambda: onnx.checker.check_model(
                source if isinstance(source, onnx.ModelProto) else str(source), full_check=True))
        except Exception as e:  # checker raises ValidationError, InferenceError and others
            verification.checker_error = (str(e).strip().splitlines() or [type(e).__name__])[0]
            return verification, reference, None
        try:
            session_after = _session(source)
        except AnalyzerError as e:
            verification.load_error = str(e)
            return verification, reference, None
    if reference is None or reference.options != options:
        reference = run_model(before, options)
    run_after = _run(session_after, options, reference.feeds)
    verification.comparison = compare_outputs(reference.outputs, run_after.outputs)
    return verification, reference, run_after
