"""One optimize run — pass specs → load → :class:`~passes.sequential.Sequential` → save — as the Python entry
point that ``analyzer optimize`` and the service's worker both call; they only parse their input and render.

    import passes
    result = passes.optimize("in.onnx", ["fold-bn", "bottleneck:energy=0.9"])
    result.save("out.onnx")          # atomic; refuses to overwrite the input's files

A pass that fails verification raises :class:`~passes._records.PassFailed` whose ``run`` is the
:class:`OptimizeResult` up to the failure (its ``failure`` set, nothing written).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx_ir as ir

from analyzer.errors import AnalyzerError, OptionError
from passes._base import Progress, as_ir_model
from passes._records import PassFailed, SavesModel, totals_dict
from passes._verify import VerifyOptions
from passes.sequential import Sequential, SequentialResult

Stage = Callable[[str], None]  # called with "loading", "passes", "saving" as the run reaches each
IN_MEMORY = "(in memory)"  # how the summaries name an input given as a model, not a file


@dataclass
class OptimizeResult(SavesModel, SequentialResult):
    """A :class:`~passes.sequential.SequentialResult` that knows its input and output, and can save itself.

    ``source`` and ``output`` are the names the summaries print (a shell may replace them with its own
    labels); ``to_dict()`` is the ``analyzer.optimize/1`` document."""

    source: str = IN_MEMORY
    output: str | None = None  # where the model was written; None: not written
    failure: str | None = None  # the rejected pass's message, when the run stopped there
    input_files: list[Path] = field(default_factory=list, repr=False)  # what a save must not overwrite

    @property
    def written(self) -> bool:
        return self.output is not None

    def save(self, path: str | os.PathLike[str]) -> Path:
        if self.failure is not None:
            raise AnalyzerError(f"nothing to save: {self.failure}")
        return super().save(path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "analyzer.optimize/1",
            "input": self.source,
            "output": self.output,
            "written": self.written,
            "failure": self.failure,
            "before": totals_dict(self.report_before),
            "after": totals_dict(self.report_after) if self.failure is None else None,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "passes": [step.to_dict() for step in self.steps],
        }


def optimize(model: Any, passes: Iterable[str | ir.passes.PassBase], *, verify: VerifyOptions | None = None,
             output: str | os.PathLike[str] | None = None, progress: Progress | None = None,
             on_stage: Stage | None = None) -> OptimizeResult:
    """Run ``passes`` in order on ``model`` and, with ``output``, save the result there.

    ``model``: a path to an .onnx file (external data read and inlined; the file is never changed), an
    ``onnx.ModelProto`` or an ``onnx_ir.Model``. ``passes``: specs as the CLI writes them
    (``"bottleneck:energy=0.9,kernel=3"``) or pass objects (``passes.bottleneck(energy=0.9)``, onnx-ir's
    passes). ``verify`` (when given) replaces every rewrite pass's verification options; ``progress``
    is called per target node, ``on_stage`` per stage. ``output`` is checked before any work is done.
    """
    path = Path(model) if isinstance(model, (str, os.PathLike)) else None
    target = None if output is None else Path(output)
    _check_paths(path, target)
    pipeline = Sequential(*_build(passes), verify=verify, progress=progress)
    stage = on_stage or (lambda _: None)
    stage("loading")
    source, input_files, model = _read(path, model)
    if target is not None:
        from analyzer.model_files import check_output

        check_output(target, input_files)
    stage("passes")
    try:
        run = pipeline(model)
    except PassFailed as e:
        e.run = OptimizeResult(model, False, e.steps, source=source, failure=str(e), input_files=input_files)
        raise
    result = OptimizeResult(run.model, run.modified, run.steps, run.comparison, source=source, input_files=input_files)
    if target is not None:
        stage("saving")
        result.save(target)
    return result


def _check_paths(path: Path | None, target: Path | None) -> None:
    from analyzer.model_files import check_paths

    if path is not None and target is not None:
        check_paths(path, target)
    elif path is not None and not path.is_file():
        raise AnalyzerError(f"{path} does not exist or is not a file")


def _build(specs: Iterable[str | ir.passes.PassBase]) -> list[ir.passes.PassBase]:
    from passes.options import parse_pass

    if isinstance(specs, (str, ir.passes.PassBase)):
        specs = [specs]  # one pass given on its own
    built = [parse_pass(s) if isinstance(s, str) else s for s in specs]
    if not built:
        raise OptionError("passes", "must name at least one pass")
    return built


def _read(path: Path | None, model: Any) -> tuple[str, list[Path], ir.Model]:
    """The input's name for the summaries, its files and the model."""
    if path is None:
        model = as_ir_model(model)
        return IN_MEMORY, [], model.model if isinstance(model, ir.passes.PassResult) else model
    from analyzer.model_files import load

    model, files = load(path)
    return str(path), files, model


__all__ = ["optimize", "OptimizeResult", "Stage"]
